# Mutation corpus for the mDNS codec: deterministic mutations of seed packets (argv[1] = a
# file of hex lines written by test_mdns.py, argv[2] = count), each fed to a running
# responder (as multicast and as legacy query) and to a browser. Every packet must end in an
# answer, a drop or a counted malformed packet; anything else is printed and fails the run.
# Runs under MicroPython and CPython alike: the digest of the outcomes must match.
import sys

import fuzz
from mdns.browse import Browser
from mdns.responder import UP, Responder
from mdns.setup import ship_txt

SKI = "0123456789abcdef0123456789abcdef01234567"
# bytes that matter to the wire format: pointers, label lengths, types and classes
SPICE = b"\xc0\xc1\x3f\x40\x80\x00\x01\x05\x0c\x10\x21\xff\x80\x01"


def _more(rng, b, op, i, n):
    if op == 4 and i < n:
        # a pointer to anywhere: loops, forward jumps, jumps into the header
        t = rng.below(n + 4)
        b = b[:i] + bytes((0xC0 | (t >> 8), t & 0xFF)) + b[i + 2 :]
    elif i + 1 < n:
        b = b[:i] + bytes((rng.below(256),)) + b[i + 1 :]
    return b


def mutate(rng, b):
    return fuzz.mutate(rng, b, SPICE, 3, _more)


def responder():
    txt = ship_txt("OpenEVGW-Box-1234", SKI, brand="OpenEVGW", model="Box", dtype="ChargingStation", serial="1234")
    r = Responder("OpenEVGW-Box-1234", "openevgw-1234", 4712, "192.168.1.20", txt)
    r.start(0)
    t = 0
    while r.state != UP:
        r.poll(t)
        t += 250
    return r


def main():
    seeds = []
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.strip()
            if line:
                seeds.append(bytes.fromhex(line))
    count = int(sys.argv[2])
    rng = fuzz.Rng(20260611)
    r = responder()
    answered = dropped = learned = other = malformed = 0
    digest = 0
    for i in range(count):
        data = mutate(rng, seeds[rng.below(len(seeds))])
        port = 5353 if i & 1 else 40000
        try:
            if r.state != UP:  # a mutated response may look like a conflict: start again
                r = responder()
            bad = r.stats[2]
            n = r.handle(data, len(data), port, 5000 + i)
            malformed += r.stats[2] - bad
            if n:
                answered += 1
            else:
                dropped += 1
            b = Browser(own_ski=SKI)
            b.start(0)
            if b.feed(data, len(data), 0):
                learned += 1
            b.poll(0)
            digest = (digest * 31 + n * 7 + len(b.found)) & 0xFFFFFFF
        except Exception as e:
            other += 1
            print("OTHER", i, repr(e), data)
    print("RESULT total=%d answered=%d dropped=%d malformed=%d learned=%d other=%d digest=%d" % (
        answered + dropped + other, answered, dropped, malformed, learned, other, digest))


main()
