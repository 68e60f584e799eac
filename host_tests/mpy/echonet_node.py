# An ECHONET Lite node under the MicroPython unix port for the end-to-end tests: lib/echonet's
# engine and UDP adapter on a charger model that stdin drives (a stand-in for the bridge).
#   micropython echonet_node.py HOST MULTICAST(0|1) DISCHARGES(0|1) [ANNOUNCE_MS]
# Commands, one per line: plug, stats, limit, quit. Answers are lines.
import asyncio
import json
import sys

from charger import Charger, SOURCE_NAMES, SRC_ECHONET
from echonet.engine import Engine
from echonet.udp import EchonetUdp


def main():
    host = sys.argv[1]
    mcast = sys.argv[2] == "1"
    dis = sys.argv[3] == "1"
    ann = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    ch = Charger(6, 16, 3, 230)
    ch.update(link=True, state="A", plugged=False, charging=False, error=0, power=0, total_wh=123456)
    eng = Engine(ch, manufacturer=0xFFFFFF, ident=b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a",
                 discharges=dis, product="HostSim", serial="SN0001", phases=3, nominal_v=230,
                 hw_min=6, hw_max=16, announce_ms=ann)
    u = EchonetUdp(eng, host, 3610, mcast).open()

    async def commands():
        r = asyncio.StreamReader(sys.stdin)
        while True:
            line = await r.readline()
            if not line:
                return
            w = line.decode().split()
            if not w:
                continue
            c = w[0]
            if c == "quit":
                return
            if c == "plug":
                ch.update(state="B", plugged=True)
            elif c == "stats":
                print("STATS", json.dumps(u.stats()))
                continue
            elif c == "limit":
                amps, src, paused = ch.effective()
                req = ch.request_of(SRC_ECHONET)
                print("LIMIT", json.dumps({"amps": amps, "source": None if src is None else SOURCE_NAMES[src],
                                           "paused": paused, "request": req}))
                continue
            print("OK", c)

    async def both():
        t = asyncio.create_task(u.run())
        await asyncio.sleep_ms(0)
        print("READY %s:3610 EOJ %06X multicast %d" % (host, eng.eoj, 1 if u.joined else 0))
        await commands()
        t.cancel()
        u.close()
        print("DONE")

    asyncio.run(both())


main()
