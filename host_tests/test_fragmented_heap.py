"""The steady paths need no large block (issue 15): a running gateway whose heap is cut, through
its console, into holes of 256 bytes (nothing of 512 B or more free) still serves what runs after
start-up. An established CEM session goes on (heartbeats both ways, measurement notifies, OPEV
and LPC writes with their notifies, a read), ECHONET Gets are answered, the charger is polled
over Modbus, and no MemoryError appears anywhere in the gateway's output.

The holes are bytearrays of HOLE bytes, every other one freed; the largest free block is read
from micropython.mem_info(). This runs on the 64-bit unix port, whose objects are up to twice the
device's (pointers), so 256 B here is stricter than the device's 256 B. Measured when it was
written: the whole scenario still passes with 208 B holes, and fails with 112 B ones.
"""

import asyncio
import os
import re

from support import echonet_peer as peer
from support import mpyrun
from support.gateway_proc import Gateway
from sim import Simulator
from testcem.identity import Identity
from testcem.ship import ShipPeer
from testcem.spine import SpineCem

HOST = "127.0.0.1"
DEV = "127.0.0.2"
MAP = os.path.join(mpyrun.ROOT, "board_configs", "chargers", "sim.json")
EV = (1, 1)
EVC = 0x02A101
HOLE = 256  # bytes per piece: a freed piece's data is the largest hole
BLOCK = 16  # the 64-bit port's GC block

HOLD_S = 12  # the cut stays this long, then the gateway gives it back by itself

# console lines (at most 200 characters each), all compiled before the heap is cut: a console
# line's compilation is not a steady path. The cut is made in one go, so that the gateway never
# runs on a full heap: pairs of pieces are chained (no list that must grow in one block) until
# none fits, then the first of each pair is let go; a task made beforehand lets the rest go.
FRAGMENT = (
    'exec("import gc,asyncio,micropython as M\\nasync def R(s):\\n global C,c\\n await asyncio.sleep(s)\\n'
    " C=c=None\\n gc.collect()\\n print('RELEASED',gc.mem_free())\\nC=None\")",
    'exec("t=R(%d);n=0\\ntry:\\n while 1:C=[bytearray(%d),bytearray(%d),C];n+=1\\nexcept MemoryError:pass\\n'
    "c=C\\nwhile c:c[0]=None;c=c[2]\\ngc.collect();asyncio.create_task(t);print('CUT',n);M.mem_info()\")"
    % (HOLD_S, HOLE, HOLE),
)


def server(remote, ftype, entity):
    for f in remote.features.values():
        if f.type == ftype and f.role == "server" and tuple(f.entity) == tuple(entity):
            return f
    raise AssertionError("no %s server on %s" % (ftype, entity))


def echonet_get(ctrl):
    f = ctrl.ask(DEV, EVC, 0x62, [peer.Prop(0x80), peer.Prop(0xDA), peer.Prop(0xD3)], timeout=3.0)
    assert f is not None and f.esv == 0x72, "no ECHONET Get_Res: %r" % (f,)


def test_steady_paths_on_a_heap_without_a_large_block(tmp_path):
    cem_id = Identity.generate(common_name="FragCEM")
    sim = Simulator(MAP, port=0, framing="rtu", seed=13).start()
    gw = Gateway(
        tmp_path / "gw", heapsize="640k", console=True,
        charger={"map": MAP, "link": {"kind": "rtu-over-tcp", "host": HOST, "port": sim.port},
                 "timeout_ms": 300, "retries": 1},
        extra={"echonet": {"enabled": True, "host": DEV, "multicast": False}, "usecases": {"failsafe_w": 1000000},
               "log": {"level": 2}},
    )
    gw.trust(cem_id.ski)
    cem2_id = Identity.generate(common_name="FragCEM2")
    gw.trust(cem2_id.ski)
    ctrl = None
    try:
        gw.start()
        gw.wait_for(r"charger link up", 10)
        gw.wait_for(r"^ECHONET 127\.0\.0\.2:3610", 10)
        ctrl = peer.Controller(HOST)
        echonet_get(ctrl)
        sim.plug()
        gw.wait_for(r"plugged 1", 10)

        async def session():
            p = ShipPeer(cem_id, ship_id="Frag-CEM-1", timeout=8)
            await p.dial(HOST, gw.port, expected_ski=gw.ski)
            cem = SpineCem(p, timeout=8)
            try:
                remote = await cem.startup()
                cem.start_heartbeat(0.5)
                ev_load = server(remote, "LoadControl", EV)
                assert (await cem.bind(ev_load.spec)).ok
                lpc_load = server(remote, "LoadControl", (1,))
                assert (await cem.bind(lpc_load.spec)).ok
                meas = server(remote, "Measurement", EV)
                assert (await cem.subscribe(meas.spec)).ok

                # the session is up: every block above a hole's size goes
                mark = gw.mark()
                for line in FRAGMENT:
                    gw.type(line)
                cut = await asyncio.to_thread(gw.wait_for, r"^CUT (\d+)$", 20, mark)
                blocks = await asyncio.to_thread(gw.wait_for, r"max free sz: (\d+)", 10, mark)
                len_before = len(gw.output())
                largest = int(blocks.group(1)) * BLOCK
                # (a few blocks of the cut's own garbage can join one hole)
                assert int(cut.group(1)) > 50 and largest < 2 * HOLE, (cut.group(0), largest)

                for k in range(3):
                    opev = [{"limitId": i, "isLimitActive": True, "value": {"number": 10 + k, "scale": 0}}
                            for i in range(3)]
                    r = await cem.write(ev_load.spec, "loadControlLimitListData", {"loadControlLimitData": opev},
                                        partial=True)
                    assert r.ok, r
                    lim = {"loadControlLimitData": [{"limitId": 0, "isLimitActive": True,
                                                     "value": {"number": 4000 + 100 * k, "scale": 0}}]}
                    r = await cem.write(lpc_load.spec, "loadControlLimitListData", lim, partial=True)
                    assert r.ok, r
                    await asyncio.to_thread(echonet_get, ctrl)
                    await asyncio.sleep(1.0)  # heartbeats, Modbus polls and notifies run meanwhile
                data = await cem.read(meas.spec, "measurementListData")
                assert data, data
                # still cut when the work is done: it ran on the cut heap throughout
                assert not re.search(r"^RELEASED", gw.output()[len_before:], re.M), "the cut ended too early"
                steady[0] = len(gw.output())

                # a new connection is no steady path: on this heap it may be dropped on accept
                # (its TLS socket is one 520 B block here), but the listener must live on
                try:
                    await second_cem()
                except Exception:  # noqa: BLE001 - dropped, reset, refused: all fine here
                    pass
                await asyncio.to_thread(gw.wait_for, r"^RELEASED \d+$", HOLD_S + 5, mark)
                await second_cem()  # the heap is whole again: served
                await cem.read(meas.spec, "measurementListData")  # the first session lived on
            finally:
                await cem.close()

        async def second_cem():
            p2 = ShipPeer(cem2_id, ship_id="Frag-CEM-2", timeout=5)
            await p2.dial(HOST, gw.port, expected_ski=gw.ski)
            cem2 = SpineCem(p2, timeout=5)
            try:
                await cem2.startup()
            finally:
                await cem2.close()

        steady = [0]
        asyncio.run(asyncio.wait_for(session(), 90))
        echonet_get(ctrl)
        assert gw.alive(), "gateway died"
        out = gw.output()[: steady[0]]
        assert "MemoryError" not in out, out[out.find("MemoryError") - 2000:][:3000]
    finally:
        if ctrl is not None:
            ctrl.close()
        gw.stop()
        sim.stop()
