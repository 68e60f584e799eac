# lib/controller/bridge.py under the MicroPython unix port for test_bridge_e2e.py and bench_bridge.py:
#   bridge_client.py <map.json> <rtutcp|tcp|serial> <host or tty path> <port> [fail_limit]
# runs the Bridge task against the simulator and prints what a model subscriber sees:
#   EV link up|down / EV state <S> plugged <0|1> charging <0|1> / EV applied <A>
# Commands on stdin, one per line (answers are lines too):
#   request <amps>   model.request(SRC_LOCAL, OBLIGATION, amps, UNIT_A, now) -> "REQ"
#   withdraw         -> "WITHDRAWN"
#   stats            -> "STATS {json}"
#   quit
import asyncio
import json
import sys
import time

from charger import (F_APPLIED, F_CHARGING, F_LINK, F_PLUGGED, F_STATE, OBLIGATION, SRC_LOCAL,
                     UNIT_A, Charger)
from controller import mapload
from controller.bridge import Bridge
from modbus.master import Master
from modbus.net import RtuOverTcp, Tcp
from modbus.tty import Serial


def main():
    path, kind, where, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    fail_limit = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    rm = mapload.load_file(path)
    if kind == "tcp":
        link = Tcp(where, port)
    elif kind == "serial":
        link = Serial(where, rm.baudrate)
    else:
        link = RtuOverTcp(where, port)
    # buffers sized as the gateway sizes them (gateway.app)
    master = Master(link, timeout_ms=150, retries=1, size=mapload.frame_size(rm))
    # hw_max 16: the simulator's station; write pacing short so that the bench can repeat
    model = Charger(hw_min=6, hw_max=16, write_interval_ms=100)
    br = Bridge(rm, master, model, fail_limit=fail_limit, verify_ms=1000)

    def on_change(mask):
        if mask & (1 << F_LINK):
            print("EV link", "up" if model.get(F_LINK) else "down")
        if mask & ((1 << F_STATE) | (1 << F_PLUGGED) | (1 << F_CHARGING)):
            print("EV state %s plugged %d charging %d" % (
                model.get(F_STATE), 1 if model.get(F_PLUGGED) else 0, 1 if model.get(F_CHARGING) else 0))
        if mask & (1 << F_APPLIED):
            print("EV applied", model.applied())

    model.subscribe(on_change)

    async def commands():
        r = asyncio.StreamReader(sys.stdin)
        while True:
            line = await r.readline()
            if not line:
                break
            words = line.decode().split()
            if not words:
                continue
            cmd = words[0]
            if cmd == "quit":
                break
            if cmd == "request":
                a = float(words[1]) if "." in words[1] else int(words[1])
                ok = model.request(SRC_LOCAL, OBLIGATION, a, UNIT_A, time.ticks_ms())
                print("REQ", ok)
            elif cmd == "withdraw":
                model.withdraw(SRC_LOCAL, time.ticks_ms())
                print("WITHDRAWN")
            elif cmd == "stats":
                print("STATS", json.dumps(br.stats()))
            else:
                print("ERR unknown command")
        br.stop()

    async def both():
        t = asyncio.create_task(br.run())
        print("READY", rm.name, len(rm.blocks))
        await commands()
        await t
        master.close()
        print("DONE")

    asyncio.run(both())


main()
