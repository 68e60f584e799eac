# A full SPINE session with every use case under MicroPython, sans-IO: the gateway's SpineApp
# over a charger model, one Session fed datagrams as SHIP hands them over, every answer and
# notify rendered through the connection's 1 KB writer to a sink that drops the bytes.
# Usage: micropython usecase_session.py WRITES NOTIFIES
# Prints:
#   DISCOVERY <bytes of the full EVSE+EV discovery reply> <bytes allocated beyond the writer>
#   CYCLE <n> <live heap after a full collection>   (one cycle: 1 limit write, N/W notifies)
#   RESULT {json}
import gc
import json
import sys

from charger import F_I1, F_POWER, F_SESSION_WH, F_TOTAL_WH, F_U1, Charger
from compat import ticks_add
from usecases.station import SpineApp

GW = "d:_n:Test_GW-0001"
CEM = "d:_n:Bench_CEM-1"


def dialect(v):
    # plain JSON value -> the EEBUS dialect text (objects as lists of one-key objects)
    if isinstance(v, dict):
        return "[" + ",".join('{"%s":%s}' % (k, dialect(v[k])) for k in v) + "]"
    if isinstance(v, list):
        return "[" + ",".join(dialect(x) for x in v) + "]"
    return json.dumps(v)


def datagram(counter, src, dst, classifier, cmd, ack=False):
    head = ('[{"specificationVersion":"1.3.0"},{"addressSource":%s},{"addressDestination":%s},'
            '{"msgCounter":%d},{"cmdClassifier":"%s"}%s]') % (
        dialect({"device": CEM, "entity": src[0], "feature": src[1]}),
        dialect({"device": GW, "entity": dst[0], "feature": dst[1]}),
        counter, classifier, ',{"ackRequest":true}' if ack else "")
    return ('{"datagram":[{"header":%s},{"payload":[{"cmd":[%s]}]}]}' % (head, cmd)).encode()


def link_call(counter, kind, client, server, ftype):
    inner = "subscriptionRequest" if kind == "subscription" else "bindingRequest"
    fn = "nodeManagementSubscriptionRequestCall" if kind == "subscription" else "nodeManagementBindingRequestCall"
    body = {inner: {"clientAddress": {"device": CEM, "entity": client[0], "feature": client[1]},
                    "serverAddress": {"device": GW, "entity": server[0], "feature": server[1]},
                    "serverFeatureType": ftype}}
    return datagram(counter, ([0], 0), ([0], 0), "call", dialect([{fn: body}]), True)


def limit_write(counter, amps):
    data = {"loadControlLimitData": [
        [{"limitId": p}, {"isLimitActive": True}, {"value": [{"number": amps}, {"scale": 0}]}] for p in range(3)]}
    cmd = ('[{"function":"loadControlLimitListData"},{"filter":[[{"cmdControl":[{"partial":[]}]}]]},'
           '{"loadControlLimitListData":%s}]') % (
        "[" + ",".join('{"%s":%s}' % (k, json.dumps(data[k]).replace(" ", "")) for k in data) + "]")
    return datagram(counter, ([1], 7), ([1, 1], 7), "write", cmd, True)


def feed(s, data):
    s.spine_begin()
    for i in range(0, len(data), 1024):
        s.spine_data(data, i, min(1024, len(data) - i))
    s.spine_end()


# what the endpoint renders each window into: the WebSocket's tx part (ws.room/advance), 1 KB
TX_SIZE = 1024
TX = bytearray(TX_SIZE)


def drain(s, w):
    n = 0
    while s.out:
        o = s.out.pop(0)
        size = w.measure(o.emit)
        off = 0
        while off < size:
            off += w.window_into(o.emit, off, TX, 0, TX_SIZE)
        n += 1
    return n


def main():
    writes = int(sys.argv[1])
    notifies = int(sys.argv[2])
    per = notifies // writes
    clock = [0]
    ch = Charger(6, 16, 3, 230)
    app = SpineApp(GW, {"brand": "Bench", "model": "GW", "serial": "1"}, ch,
                   {"phases": 3, "voltage": 230, "lpc": {"nominal_max_w": 11040}, "evcs": True, "cevc": True,
                    "clock": lambda: clock[0]})
    app.clock_synced = lambda: True
    ep = app.endpoint(None)
    s = ep  # the endpoint is the session
    app.sessions.append(s)
    w = ep.writer
    now = 0
    ch.tick(now)
    ch.update(link=True, state="B", phases=3, plugged=True, hw_min=6, hw_max=16)
    gc.collect()
    base = gc.mem_alloc()  # imports, the device model with the EV entity, one session
    # the full discovery reply with the EV entity: its bytes and what a send allocates
    c = 1
    feed(s, datagram(c, ([0], 0), ([0], 0), "read", '[{"nodeManagementDetailedDiscoveryData":[]}]'))
    o = s.out.pop(0)
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    size = w.measure(o.emit)
    off = 0
    while off < size:
        off += w.window_into(o.emit, off, TX, 0, TX_SIZE)
    a1 = gc.mem_alloc()
    gc.enable()
    print("DISCOVERY", size, a1 - a0)
    # the CEM's start-up: subscribe and bind what eebus-go does
    for ent, fid, ftype, bind in (([0], 0, "NodeManagement", False), ([1, 1], 7, "LoadControl", True),
                                  ([1, 1], 6, "Measurement", False), ([1], 7, "Measurement", False),
                                  ([1], 4, "LoadControl", True), ([1, 1], 4, "DeviceDiagnosis", False),
                                  ([1], 2, "DeviceDiagnosis", False)):
        c += 1
        feed(s, link_call(c, "subscription", ([1], fid), (ent, fid), ftype))
        if bind:
            c += 1
            feed(s, link_call(c, "binding", ([1], 7), (ent, fid), ftype))
    drain(s, w)
    heap = [0] * writes  # preallocated: a growing list here would show as growth
    sent = 0
    for cycle in range(writes):
        c += 1
        feed(s, limit_write(c, 10 + cycle % 6))
        sent += drain(s, w)
        for k in range(per):
            now = ticks_add(now, 1001)
            clock[0] = now
            x = 8 + (cycle + k) % 5 * 0.1
            for p in range(3):
                ch.set(F_I1 + p, x)
                ch.set(F_U1 + p, 229.5 + p)
            ch.set(F_POWER, int(3 * 230 * x))
            ch.set(F_SESSION_WH, cycle * per + k)
            ch.set(F_TOTAL_WH, 100000 + cycle * per + k)
            ch.flush()
            app.tick(now)
            sent += drain(s, w)
        gc.collect()
        heap[cycle] = gc.mem_alloc()
        print("CYCLE", cycle, heap[cycle])
    after10 = heap[9] if len(heap) > 10 else heap[0]
    print("RESULT " + json.dumps({
        "base": base,
        "writes": writes, "datagrams_sent": sent,
        "high_water": max(heap), "after_10": after10, "final": heap[-1],
        "growth_after_10": max(heap[10:]) - after10 if len(heap) > 10 else 0,
        "errors": s.stats["errors"],
    }))


main()
