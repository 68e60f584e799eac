"""ECHONET Lite end to end on plain loopback (no privileges): the gateway under the
MicroPython unix port on 127.0.0.2:3610 with the charging-station simulator behind it, and
pychonet (the Home Assistant library) as the controller on 127.0.0.1:3610; SetGet and INFC
with the independent controller of echonet_peer.py; the mutation corpus under MicroPython;
a bounded flood that must not starve SHIP and Modbus nor grow the heap."""

import asyncio
import json
import os
import threading
import time

from support import echonet_peer as peer
from support import mpyrun
import pytest
from support.echonet_node_proc import Node
from support.gateway_proc import Gateway
from pychonet import ECHONETAPIClient, ElectricVehicleCharger
from pychonet.lib.epc_functions import EPC_SUPER_FUNCTIONS
from pychonet.lib.udpserver import UDPServer
from sim import Simulator

DEV = "127.0.0.2"
CTRL = "127.0.0.1"
MAP = os.path.join(mpyrun.ROOT, "board_configs", "chargers", "sim.json")
EVC = 0x02A101




@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    sim = Simulator(MAP, port=0, framing="rtu", seed=3).start()
    gw = Gateway(
        tmp_path_factory.mktemp("gw"), env_probe=True,
        charger={"map": MAP, "link": {"kind": "rtu-over-tcp", "host": CTRL, "port": sim.port}},
        # LPC starts in failsafe (4.2 kW, 6 A here): lifted above the station, ECHONET limits show
        extra={"echonet": {"enabled": True, "host": DEV, "multicast": False}, "usecases": {"failsafe_w": 1000000}},
    )
    try:
        gw.start()
        gw.wait_for(r"^ECHONET 127\.0\.0\.2:3610 EOJ 02A101$", 10)
        gw.wait_for(r"charger link up", 10)
        yield gw, sim
    finally:
        gw.stop()
        sim.stop()


class Pychonet:
    """pychonet's client on its UDP server, bound to 127.0.0.1:3610 like Home Assistant's."""

    def __init__(self):
        self.udp = UDPServer(local_ip=CTRL)
        self.udp.run(CTRL, 3610, asyncio.get_running_loop())
        self.api = ECHONETAPIClient(self.udp)
        self.api.configure(message_timeout=50, logger=lambda *a: None)

    def inst(self):
        return self.api.state[DEV]["instances"][2][0xA1][1]

    def close(self):
        self.udp.close()


def _u(b):
    return int.from_bytes(b, "big")


def test_pychonet_discovers_reads_and_sets(rig):
    gw, sim = rig

    async def scenario():
        c = Pychonet()
        try:
            api = c.api
            assert await api.discover(DEV) is True
            node = api.state[DEV]
            assert node["discovered"] and node["manufacturer"] == "Experimental"
            assert node["product_code"] == "GW"  # identity.model, 12 bytes NUL-padded
            assert list(node["instances"]) == [2] and list(node["instances"][2]) == [0xA1]
            assert await api.getAllPropertyMaps(DEV, 2, 0xA1, 1) is True
            maps = c.inst()
            assert sorted(maps[0x9D]) == [0x80, 0x81, 0x88, 0xC7, 0xDA]
            assert sorted(maps[0x9E]) == [0x81, 0xCD, 0xDA, 0xEB, 0xED]
            getmap = sorted(maps[0x9F])
            assert len(getmap) == 30  # bitmap form, decoded by pychonet
            ev = ElectricVehicleCharger(DEV, api, 1)
            got = {}
            for epc in getmap:
                got[epc] = await ev.getMessage(epc)
            return c, ev, got, getmap
        except BaseException:
            c.close()
            raise

    async def reads():
        c, ev, got, getmap = await scenario()
        try:
            s = sim.state()
            # the vehicle battery is unknown without a vehicle data link: Get_SNA, PDC 0
            assert {e for e in getmap if got[e] is None} == {0xCE, 0xCF, 0xD0, 0xE2, 0xE4}
            assert got[0x80] == b"\x30" and got[0x81] == b"\x00" and got[0x82] == b"\x00\x00R\x00"
            uid = got[0x83]  # pychonet: hex of bytes 1..16
            assert len(uid) == 32 and uid.startswith("ffffff") and uid.endswith("02a101")
            assert got[0x8A] == "Experimental" and got[0x8C] == "GW"
            assert got[0x8D].rstrip(b"\0").decode() == "0001"
            assert got[0x88] == b"\x42"  # no fault
            assert got[0xC7] == b"\x30" and not s["plugged"]  # not connected
            assert got[0xCC] == b"\x11" and got[0xDA] == b"\x42" and got[0xE6] == b"\x00"
            assert _u(got[0xC5]) == 16 * 3 * 230 and _u(got[0xD2]) == 230
            assert (_u(got[0xC8][:4]), _u(got[0xC8][4:])) == (6 * 690, 16 * 690)
            assert (_u(got[0xCA][:2]), _u(got[0xCA][2:])) == (60, 160)
            assert _u(got[0xED]) == 160 and _u(got[0xEB]) == 16 * 690
            assert _u(got[0x84]) == _u(got[0xD3]) == 0
            assert _u(got[0x85]) == _u(got[0xD8]) == int(s["total_wh"]) % 1000000000
            # pychonet's own decoders where they work (update() with an explicit EPC list:
            # its 0x83/0x8A/0x8C re-decoding and single-element decoder lists are broken)
            assert await ev.update([0x80, 0xC7, 0xDA, 0xCC]) == {
                0x80: "on", 0xC7: "Vehicle not connected", 0xDA: "Charging", 0xCC: "AC_CPLT"}
            assert EPC_SUPER_FUNCTIONS[0x9F](bytes([30]) + bytes(16)) == []  # (form check of its decoder)

            # Set accepted: a current setting becomes the effective limit at the controller
            assert await ev.setMessage(0xED, 100, 2) is True
            sim.wait_state(lambda st: st["limit_a"] == 10, 5.0)
            assert _u(await ev.getMessage(0xED)) == 100
            # Set rejected: above the hardware maximum, an operation mode the station lacks
            assert await ev.setMessage(0xED, 500, 2) is False
            assert await ev.setMessage(0xDA, 0x43) is False
            assert _u(await ev.getMessage(0xED)) == 100
            # standby pauses the station; charge restores the current setting
            assert await ev.setMessage(0xDA, 0x44) is True
            sim.wait_state(lambda st: st["limit_a"] == 0, 5.0)
            assert await ev.setMessage(0xDA, 0x42) is True
            sim.wait_state(lambda st: st["limit_a"] == 10, 5.0)
            # not in the Set map: pychonet filters it and sends OPC 0, answered with OPC 0
            assert await ev.setMessage(0xC7, 0x30) is False
            # the installation location is kept on flash
            assert await ev.setMessage(0x81, 0x08) is True
            assert await ev.getMessage(0x81) == b"\x08"
        finally:
            c.close()

    asyncio.run(asyncio.wait_for(reads(), 60))
    with open(os.path.join(gw.data_dir, "echonet.json")) as f:
        assert json.load(f) == {"location": "08"}


@pytest.fixture
def node():
    n = Node(discharges=True)
    yield n
    n.close()


def test_setget_infc_and_inf_req_with_an_independent_controller(node):
    c = peer.Controller("127.0.0.3")
    try:
        evcd = 0x027E01
        # SetGet: set the mode, read it back with another property in the same frame
        r = c.ask(DEV, evcd, 0x6E, [(0xDA, b"\x44")], [(0xDA, b""), (0x80, b"")])
        assert r.esv == 0x7E and r.seoj == evcd and r.deoj == peer.CONTROLLER
        assert r.props == [peer.Prop(0xDA)] and r.gets == [peer.Prop(0xDA, b"\x44"), peer.Prop(0x80, b"\x30")]
        assert json.loads(node.cmd("limit", r"^LIMIT (.*)$").group(1))["paused"] is True
        # SetGet_SNA: a rejected set is echoed, an unavailable get has PDC 0
        r = c.ask(DEV, evcd, 0x6E, [(0xDA, b"\x49"), (0xED, b"\x00\x64")], [(0xED, b""), (0xC0, b"")])
        assert r.esv == 0x5E
        assert r.props == [peer.Prop(0xDA, b"\x49"), peer.Prop(0xED)]
        assert r.gets == [peer.Prop(0xED, b"\x00\x64"), peer.Prop(0xC0)]
        # INFC to the node profile: INFC_Res with the EPCs, PDC 0
        r = c.ask(DEV, 0x0EF001, 0x74, [(0xD5, b"\x01\x05\xff\x01"), (0x80, b"\x30")])
        assert r.esv == 0x7A and r.seoj == 0x0EF001 and r.props == [peer.Prop(0xD5), peer.Prop(0x80)]
        # INF_REQ: answered by unicast INF to the requester
        r = c.ask(DEV, 0x027E00, 0x63, [(0xC7, b"")])
        assert r.esv == 0x73 and r.seoj == evcd and r.props == [peer.Prop(0xC7, b"\x30")]
        # SetI: silent on success, SetI_SNA on rejection
        tid = c.next_tid()
        c.send(peer.build(tid, peer.CONTROLLER, evcd, 0x60, [(0xDA, b"\x42")]), DEV)
        r = c.ask(DEV, evcd, 0x62, [(0xDA, b"")])
        assert r.tid == tid + 1 and r.value(0xDA) == b"\x42"
        r = c.ask(DEV, evcd, 0x60, [(0xCD, b"\x11")])
        assert r.esv == 0x50 and r.props == [peer.Prop(0xCD, b"\x11")]
        # unknown DEOJ and malformed frames: silence, then a Get is still answered
        c.send(peer.get(0x013001, [0x80], tid=9), DEV)
        c.send(b"\x10\x81\x00\x09\x05\xff\x01\x02\x7e\x01\x62\x05\x80", DEV)
        r = c.ask(DEV, evcd, 0x62, [(0x80, b"")])
        assert r.esv == 0x72 and not c.inbox
        st = node.stats()
        assert st["dropped"] == 2 and st["errors"] == 0
    finally:
        c.close()


def test_mutation_corpus_under_micropython_matches_cpython(tmp_path):
    """The same 3000 mutated frames through the engine under MicroPython: the answers are byte
    for byte those of CPython, nothing raises, and the live heap does not grow."""
    from charger import Charger
    from echonet.engine import Engine
    from test_echonet_props import corpus

    frames = corpus()
    ch = Charger(6, 16, 3, 230)
    e = Engine(ch, ident=b"0123456789")
    want = []
    for f in frames:
        n = e.feed(f, len(f), 0)
        want.append(bytes(e.tx[:n]).hex())
    code = mpyrun.HEAP_SNIPPET + (
        "import sys, binascii\n"
        "from charger import Charger\nfrom echonet.engine import Engine\n"
        "e = Engine(Charger(6, 16, 3, 230), ident=b'0123456789')\n"
        "frames = [binascii.unhexlify(l.strip()) for l in open(sys.argv[1])]\n"
        "out = open(sys.argv[2], 'w')\n"
        "for f in frames[:100]:\n    e.feed(f, len(f), 0)\n"
        "heap('before')\n"
        "for f in frames:\n"
        "    n = e.feed(f, len(f), 0)\n"
        "    out.write(binascii.hexlify(e.tx[:n]).decode() + '\\n')\n"
        "out.close()\n"
        "heap('after')\n"
    )
    src = tmp_path / "frames.txt"
    dst = tmp_path / "answers.txt"
    src.write_text("".join(f.hex() + "\n" for f in frames))
    r = mpyrun.run_code(code, tmp_path, heapsize="1M", args=(str(src), str(dst))).check()
    got = dst.read_text().split("\n")[:-1]
    assert got == want
    h = r.heap()
    assert h["after"] - h["before"] <= 64, h  # the output file object aside, nothing stays


def test_flood_starves_nothing_and_leaks_nothing(rig, tmp_path):
    """10 000 frames (valid Gets and mutated frames) at 127.0.0.2:3610 while a SHIP session runs
    and the bridge polls the controller: both make progress while the flood is on, every
    later Get is answered, and the live heap after a SHIP session (the probe's checkpoint)
    is the same before and after the flood."""
    from testcem.identity import Identity
    from testcem.ship import ShipPeer
    from test_echonet_props import corpus

    gw, sim = rig
    cem = Identity.generate(common_name="FloodCEM")
    gw.trust(cem.ski)
    time.sleep(1.5)  # the gateway polls its trust file

    async def ship_session():
        p = ShipPeer(cem, ship_id="FloodCEM-1", timeout=15)
        await p.dial("127.0.0.1", gw.port, expected_ski=gw.ski)
        await p.recv_datagram(timeout=15)
        assert await p.close()

    def heap_after(coro):
        mark = gw.mark()
        asyncio.run(asyncio.wait_for(coro, 40))
        return int(gw.wait_for(r"^HEAP closed (\d+) open 0$", 10, mark).group(1))

    heap_after(ship_session())  # first session: one-time set-up lands before the baseline
    # the smallest of three sessions: the GC is conservative, a stale word may keep a block
    before = min(heap_after(ship_session()) for _ in range(3))

    bad = corpus(seed=11, count=3000)
    good = [peer.get(EVC, [0x80, 0x88, 0xC7, 0xDA, 0xD3, 0xD8, 0x9F], tid=i) for i in range(64)]
    progress = {"sent": 0, "ship_at": None, "modbus_at": None, "answers": 0}
    done = threading.Event()
    req0 = sim.state()["requests"]

    def flood():
        s = peer.Controller("127.0.0.3")
        s.s.setblocking(False)
        try:
            for i in range(10000):
                f = bad[i % len(bad)] if i % 3 == 0 else good[i % len(good)]
                s.send(f, DEV)
                progress["sent"] = i + 1
                if i % 50 == 49:
                    time.sleep(0.02)
                    try:
                        while True:
                            s.s.recvfrom(2048)
                            progress["answers"] += 1
                    except BlockingIOError:
                        pass
                    if progress["modbus_at"] is None and sim.state()["requests"] >= req0 + 3:
                        progress["modbus_at"] = i + 1
        finally:
            s.close()
            done.set()

    t = threading.Thread(target=flood)
    t.start()

    async def ship_during():
        await ship_session()
        progress["ship_at"] = progress["sent"]

    heap_after(ship_during())
    t.join(120)
    assert done.is_set()
    # SHIP and Modbus both made progress while frames were still arriving
    assert progress["ship_at"] is not None and progress["ship_at"] < 10000, progress
    assert progress["modbus_at"] is not None and progress["modbus_at"] < 10000, progress
    assert progress["answers"] > 1000, progress
    # still serving, and the heap is where it was
    c = peer.Controller("127.0.0.3")
    try:
        r = c.ask(DEV, EVC, 0x62, [(0x80, b"")])
        assert r is not None and r.value(0x80) == b"\x30"
    finally:
        c.close()
    after = min(heap_after(ship_session()) for _ in range(3))
    print("flood: heap %d -> %d B, %s" % (before, after, progress))
    assert after - before <= 1024, (before, after)
    assert gw.alive()
