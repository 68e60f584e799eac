"""The console next to the running gateway (lib/gateway/console.py): the diagnostics and a
pairing approval typed while the gateway serves, under the MicroPython unix port, with the
console on a pipe (GW_CONSOLE=pipe) instead of the device's serial port."""

import asyncio

import pytest
from support.gateway_proc import FAST_TIMERS, Gateway
from testcem.identity import Identity
from testcem.ship import ShipPeer

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    # a hello wait long enough for a person at the console (the SHIP default is 60 s)
    timers = dict(FAST_TIMERS, hello=20000)
    g = Gateway(tmp_path_factory.mktemp("consolegw"), ship={"timers_ms": timers}, console=True)
    g.start()
    g.wait_for(r"^console: ", 5)
    yield g
    g.stop()


def test_diag_screens_and_mistakes(gw):
    mk = gw.mark()
    gw.type("diag.status()")
    gw.wait_for(r"^heap: \d+ used", 5, mk)
    mk = gw.mark()
    gw.type("1/0")
    gw.wait_for(r"^ZeroDivisionError: ", 5, mk)
    mk = gw.mark()
    gw.type("x = 6 * 7")
    gw.type("x")
    gw.wait_for(r"^42$", 5, mk)
    # a control character and an overlong line neither break nor grow anything
    mk = gw.mark()
    gw.type("\x01" + "y" * 500)
    gw.wait_for(r"^NameError: name 'y{200}' ", 5, mk)  # cut at 200 characters
    mk = gw.mark()
    gw.type("diag.pending()")
    gw.wait_for(r"^no pairing requests", 5, mk)
    assert gw.alive()


def test_pairing_approved_at_the_console(gw):
    newcomer = Identity.generate(common_name="ConsoleCEM")

    async def go():
        p = ShipPeer(newcomer, ship_id="ConsoleCEM-1", timeout=25, hello_phase="ready")
        task = asyncio.ensure_future(p.dial(HOST, gw.port, expected_ski=gw.ski))
        loop = asyncio.get_running_loop()
        mk = gw.mark()
        await loop.run_in_executor(None, gw.wait_for, "pairing request from SKI %s" % newcomer.ski, 10)
        gw.type("diag.pending()")
        await loop.run_in_executor(None, gw.wait_for, r"^%s  from " % newcomer.ski, 5, mk)
        gw.type("diag.approve()")
        await loop.run_in_executor(None, gw.wait_for, r"^trusted %s" % newcomer.ski, 5, mk)
        await asyncio.wait_for(task, 20)
        assert p.handshake_complete
        await p.close()

    asyncio.run(go())


def test_start_up_only_modules_and_config_are_let_go(gw):
    # the set-up code, the configs' parsers, the map parser, their checks and the QR text are
    # imported by start-up and then let go (gateway.startup _forget), and so is the parsed
    # configuration; what runs on keeps its own
    mk = gw.mark()
    # (a console line takes at most 200 B: the names first, then the question)
    gw.type("L=('gateway.startup','gateway.config','gateway.devconfig','controller.mapload','doccheck','ship.qrtext',"
            "'gateway.mdns_service')")
    gw.type("print('LEFT', sorted(m for m in __import__('sys').modules if m in L), app.cfg, app.pair_window_s())")
    gw.wait_for(r"^LEFT \[\] None 120$", 5, mk)
    # a console line may still import one: it loads again
    mk = gw.mark()
    gw.type("from gateway import config; print('AGAIN', config.SHIP_PORT)")
    gw.wait_for(r"^AGAIN \d+$", 5, mk)
    assert gw.alive()
