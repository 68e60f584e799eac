# Mutation run of the SPINE engine under MicroPython: every capture, addressed to the gateway,
# mutated deterministically and fed to one session in varying chunks. Nothing may escape but
# the session's own handling; every queued answer must render to exactly its measured length;
# a valid read afterwards is still answered.
# Usage: micropython spine_mutations.py CAPTURES_DIR COUNT
import os
import random
import sys

from charger import Charger
from eejson.writer import Writer
from usecases.station import SpineApp
from spine.datagram import Addr
from spine.session import Session

GW = "d:_n:Test_GW-0001"


def captures(d):
    out = []
    for f in sorted(os.listdir(d)):
        if not f.endswith(".json"):
            continue
        with open(d + "/" + f, "rb") as fh:
            b = fh.read().strip()
        if b.startswith(b'{"data"'):
            b = b[b.index(b'"payload":') + 10 : -3]
        for dev in (b"d:_n:Demo_EVSE-234567890", b"d:_n:Demo_EVSESim-sim-0001", b"TestDeviceAddress", b"Wallbox"):
            b = b.replace(dev, GW.encode())
        out.append(b)
    return out


def mutate(b, rnd):
    b = bytearray(b)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randint(0, 4)
        i = rnd.randint(0, len(b) - 1) if b else 0
        if op == 0 and b:
            b[i] = rnd.randint(0, 255)
        elif op == 1:
            b = b[:i] + b[i + rnd.randint(1, 16) :]
        elif op == 2:
            b = b[:i] + bytes(rnd.randint(0, 255) for _ in range(rnd.randint(1, 6))) + b[i:]
        elif op == 3 and b:
            # structural damage: swap a bracket kind
            for j in range(i, len(b)):
                if b[j] in b"[]{}":
                    b[j] = b"[]{}"[rnd.randint(0, 3)]
                    break
        else:
            j = rnd.randint(0, len(b)) if b else 0
            b = b[:j] + b[i : i + rnd.randint(1, 40)] + b[j:]
    return b


def feed(s, data, chunk):
    s.spine_begin()
    for i in range(0, len(data), chunk):
        s.spine_data(data, i, min(chunk, len(data) - i))
    s.spine_end()


def drain(s, w):
    n_out = 0
    for o in s.out:
        n = w.measure(o.emit)
        got = [0]

        def sink(mv):
            got[0] += len(mv)

        w.stream(o.emit, sink)
        assert got[0] == n, "rendered length differs from measured"
        n_out += 1
    s.out = []
    return n_out


def main():
    d, count = sys.argv[1], int(sys.argv[2])
    base = captures(d)
    rnd = random.Random(20261121) if hasattr(random, "Random") else None
    if rnd is None:
        random.seed(20261121)
        rnd = random
    app = SpineApp(GW, {"brand": "T", "model": "GW", "serial": "1"})
    s = Session(app)
    # the same with every use case and the EV plugged in, every server feature bound to the
    # client features the captures write from, so that mutated writes reach the handlers
    ch = Charger(6, 16, 3, 230)
    ch.update(link=True, plugged=True, state="B")
    uapp = SpineApp(GW, {"brand": "T", "model": "GW", "serial": "1"}, ch,
                    {"phases": 3, "voltage": 230, "discharges": True, "cevc": True, "lpc": {"nominal_max_w": 11040}})
    us = Session(uapp)
    uapp.sessions.append(us)

    def bind_all():
        us.binds = []
        for e in uapp.device.entities:
            for f in e.features:
                if f.role == "server":
                    for cf in (1, 2, 7):
                        us.binds.append([len(us.binds) + 1, Addr(None, (1,), cf), Addr(GW, e.address, f.fid)])

    bind_all()
    w = Writer(128)
    answers = 0
    for k in range(count):
        data = mutate(base[k % len(base)], rnd)
        for sess in (s, us):
            feed(sess, data, (1, 7, 64, 4096)[k % 4])
            answers += drain(sess, w)
        if len(s.subs) > 20 or len(s.binds) > 20:
            s.subs = []
            s.binds = []
        if len(us.subs) > 20 or len(us.binds) > 200:
            us.subs = []
            bind_all()
        if k % 97 == 0:
            uapp.tick(k * 1000)
            ch.update(plugged=k % 2 == 0, state="B" if k % 2 == 0 else "A")
            answers += drain(us, w)
    good = bytearray(
        b'{"datagram":[{"header":[{"specificationVersion":"1.3.0"},'
        b'{"addressSource":[{"device":"d:_n:X"},{"entity":[0]},{"feature":0}]},'
        b'{"addressDestination":[{"entity":[0]},{"feature":0}]},{"msgCounter":5},{"cmdClassifier":"read"}]},'
        b'{"payload":[{"cmd":[[{"nodeManagementDetailedDiscoveryData":[]}]]}]}]}')
    feed(s, good, 13)
    assert drain(s, w) == 1
    print("MUTATIONS", count, "answers", answers, "errors", s.stats["errors"] + us.stats["errors"])


main()
