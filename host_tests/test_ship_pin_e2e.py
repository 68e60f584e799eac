"""Pairing without a cable, end to end: the gateway under the MicroPython unix port over real TLS
on 127.0.0.1 against the independent test CEM (tools/testcem): PIN right and wrong, the attempt
lock across reconnects and a restart, the gateway typing a CEM's PIN, the console's pairing
window, a SHIP 1.1 peer and unknown control messages during data exchange."""

import asyncio
import json
import os

import pytest
from support.bounded import runner
from support.gateway_proc import FAST_TIMERS, Gateway
from testcem.identity import Identity
from testcem.ship import ShipPeer
from testcem.shipmsg import CLOSE_REJECTED, ShipError
from testcem.shipserver import ShipServer

HOST = "127.0.0.1"
PIN = "31415926"


run = runner(40.0)


def peer(identity, **kw):
    kw.setdefault("ship_id", "TestCEM-PIN-1")
    kw.setdefault("timeout", 8)
    return ShipPeer(identity, **kw)


async def connected(gw, identity, **kw):
    p = peer(identity, **kw)
    await p.dial(HOST, gw.port, expected_ski=gw.ski)
    return p


def trust_doc(g):
    try:
        with open(os.path.join(g.data_dir, "trust.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"trusted": {}, "denied": []}


@pytest.fixture
def pin_gw(tmp_path):
    g = Gateway(tmp_path / "pin", ship={"pin_mode": "required", "pin": PIN, "pin_tries": 2, "pin_lock_s": 30})
    g.start()
    yield g
    g.stop()


def test_banner_prints_pin_and_qr(pin_gw):
    pin_gw.wait_for(r"^SHIP PIN %s \(required\)" % PIN)
    m = pin_gw.wait_for(r"^QR (SHIP;SKI:[0-9a-f]{40};ID:\S+;ENDSHIP;)$")
    text = m.group(1)
    assert ";SKI:%s;" % pin_gw.ski in text and text.endswith(";PIN:%s;ENDSHIP;" % PIN)


def test_right_pin_trusts_and_data_flows(pin_gw):
    cem = Identity.generate(common_name="PinCEM")

    async def go():
        p = await connected(pin_gw, cem, pin=PIN)
        assert p.handshake_complete
        assert [s.get("pinState") for s in p.peer_pin_states][:2] == ["required", "pinOk"]
        dg = await p.recv_datagram(timeout=5)
        assert dg["header"]["cmdClassifier"] == "read"
        assert await p.close()
        # trusted and persisted like an approval: the next connection needs no PIN
        p2 = await connected(pin_gw, cem)
        assert [s.get("pinState") for s in p2.peer_pin_states] == ["none"]
        await p2.close()

    run(go())
    assert trust_doc(pin_gw)["trusted"][cem.ski]["by"] == "pin"
    pin_gw.wait_for(r"paired by PIN, now trusted")


def test_wrong_pins_error_then_lock_survives_reconnect_and_restart(pin_gw):
    bad = Identity.generate(common_name="Guesser")
    good = Identity.generate(common_name="Late")

    async def wrong():
        with pytest.raises(ShipError) as ei:
            await connected(pin_gw, bad, pin="00000000")
        assert "connectionPinError" in str(ei.value)
        return ei.value

    async def go():
        await wrong()  # first wrong PIN: error, connection stays until the timer (we drop it)
        await wrong()  # second: the lock (pin_tries 2)
        # the next connection, even with the right PIN and from another peer: input busy
        with pytest.raises(ShipError) as ei:
            await connected(pin_gw, good, pin=PIN)
        assert "busy" in str(ei.value)
        p = peer(good, pin=PIN, pin_on_busy=True)
        with pytest.raises(ShipError) as ei:
            await p.dial(HOST, pin_gw.port, expected_ski=pin_gw.ski)
        assert p.pin_errors == [1]
        assert p.close_code in (CLOSE_REJECTED, None)

    run(go(), timeout=60)
    assert bad.ski not in trust_doc(pin_gw)["trusted"] and good.ski not in trust_doc(pin_gw)["trusted"]
    st = json.load(open(os.path.join(pin_gw.data_dir, "pinstate.json")))
    assert st["locked"] is True and st["total"] >= 2
    # a restart does not reset the lock
    pin_gw.stop()
    pin_gw.lines = []
    pin_gw.start()
    pin_gw.wait_for(r"^PIN input locked for \d+ s")

    async def after():
        with pytest.raises(ShipError) as ei:
            await connected(pin_gw, good, pin=PIN)
        assert "busy" in str(ei.value)

    run(after())


def test_gateway_types_pin_for_cem_that_requires_one(tmp_path):
    server_ident = Identity.generate(common_name="PinServerCEM")

    async def go():
        srv = ShipServer(server_ident, ship_id="PinServerCEM-1", timeout=8, require_pin="27182818")
        await srv.start(HOST, 0)
        g = Gateway(tmp_path / "gwc", ship={"cem": {"host": HOST, "port": srv.port, "ski": server_ident.ski,
                                                   "pin": "27182818"}})
        g.trust(server_ident.ski)
        await asyncio.get_running_loop().run_in_executor(None, g.start)
        try:
            srv.trusted = {g.ski}
            p = await srv.accept(timeout=15)
            assert p.handshake_complete and p.peer_ski == g.ski
            await p.recv_datagram(timeout=5)
            assert await p.close()
        finally:
            await srv.close()
            g.stop()

    run(go(), timeout=40)


def test_console_pair_opens_window_and_reports(tmp_path):
    g = Gateway(tmp_path / "btn", console=True, extra={"pair_button": None})
    g.start()
    try:
        newcomer = Identity.generate(common_name="Newcomer")
        g.type("diag.pair(3)")
        g.wait_for(r"pairing window open for 3 s \(console\)")

        async def go():
            p = await connected(g, newcomer)
            assert p.handshake_complete
            await p.close()

        run(go())
        g.wait_for(r"pairing window closed; trusted meanwhile: %s" % newcomer.ski, timeout=10)
        assert trust_doc(g)["trusted"][newcomer.ski]["by"] == "window"
    finally:
        g.stop()


@pytest.fixture(scope="module")
def plain_gw(tmp_path_factory):
    cem = Identity.generate(common_name="Plain")
    g = Gateway(tmp_path_factory.mktemp("plain"))
    g.trust(cem.ski)
    g.start()
    g.cem = cem
    yield g
    g.stop()


def test_ship_11_peer_completes_handshake(plain_gw):
    async def go():
        p = await connected(plain_gw, plain_gw.cem, ship_version=(1, 1))
        assert p.handshake_complete
        await p.recv_datagram(timeout=5)
        await p.close()

    run(go())


def test_unknown_control_messages_keep_the_session(plain_gw):
    async def go():
        p = await connected(plain_gw, plain_gw.cem)
        await p.recv_datagram(timeout=5)
        for i in range(30):
            await p.send_message({"commissioningRequestXY": [{"n": i}]})
        # still up: the close handshake below still runs
        await p.send_message({"keyMaterialStateXY": []})
        await asyncio.sleep(0.5)
        assert p.close_code is None
        assert await p.close()

    run(go())
    plain_gw.wait_for(r"ignored unknown control message commissioningRequestXY")


async def stranger_at_pin(gw, ident):
    """A stranger through hello (the gateway says ready: it may type the PIN) and the protocol
    handshake, then sitting in the PIN phase without typing one."""
    p = peer(ident, ship_id="Stranger-%s" % ident.ski[:6])
    await p.connect(HOST, gw.port, expected_ski=gw.ski)
    await p.upgrade()
    await p.cmi()
    await p.hello("ready")
    await p.protocol_handshake()
    return p


@pytest.mark.parametrize("strangers", [2, 3])
def test_strangers_awaiting_the_pin_take_no_session_slot(tmp_path, strangers):
    """Regression (review of 18f2a7e): with a PIN mode on, a stranger let through hello to type
    the PIN was promoted to a trusted session; two of them (max_sessions 2) locked the trusted
    CEM out with 1013 "too many sessions". They stay pre-auth until the PIN makes them trusted.
    The strangers' share of connection buffer sets is raised to 2 (it is 1 by default, which
    alone would keep a second stranger from the PIN phase), so that as many strangers sit there
    as there are sessions to lock out."""
    cem = Identity.generate(common_name="SlotCEM")
    # a hello (and PIN) timer long enough that the strangers still sit there when the CEM dials
    g = Gateway(tmp_path / "slots", ship={"pin_mode": "required", "pin": PIN, "max_sessions": 2,
                                          "admission": {"preauth": 2, "stranger_sets": 2},
                                          "timers_ms": dict(FAST_TIMERS, hello=20000)})
    g.trust(cem.ski)
    g.start()
    try:
        async def go():
            held = []
            for i in range(strangers):
                held.append(await stranger_at_pin(g, Identity.generate(common_name="Stranger%d" % i)))
            await asyncio.sleep(0.5)  # the gateway's loop has seen them in the PIN phase
            assert sum(1 for s in held if s.close_code is None) >= 2
            p = peer(cem, ship_id="SlotCEM-1")
            await p.dial(HOST, g.port, expected_ski=g.ski)
            assert p.handshake_complete
            dg = await p.recv_datagram(timeout=5)
            assert dg["header"]["cmdClassifier"] == "read"
            assert await p.close()
            for s in held:
                await s.drop()

        run(go(), timeout=60)
        assert "too many sessions" not in g.output()
    finally:
        g.stop()
