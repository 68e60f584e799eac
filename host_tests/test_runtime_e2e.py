"""Time-sync gating end to end: the gateway under MicroPython with the stand-in ntptime
(host_tests/machine_stub/) failing until the test lets it answer, a CPython CEM subscribed to
the heartbeat. No heartbeat goes out before the clock is synced; the first one after it carries
counter 1 (none was sent to anyone before) and a real date."""

import asyncio

from support import gateway_proc
from support import mpyrun
import pytest
from support.gateway_proc import Gateway
from support.paths import MACHINE_STUB
from testcem.identity import Identity
from testcem.ship import ShipPeer
from testcem.spine import SpineCem

HOST = "127.0.0.1"
STUB = MACHINE_STUB
HB = "deviceDiagnosisHeartbeatData"


@pytest.fixture
def stubbed(monkeypatch, tmp_path):
    orig = mpyrun.start
    monkeypatch.setattr(gateway_proc.mpyrun, "start", lambda *a, **k: orig(*a, extra_path=(STUB,), **k))
    ctl = tmp_path / "ntp"
    ctl.write_text("fail")
    monkeypatch.setenv("NTPTIME_STUB", str(ctl))
    return ctl


def test_no_heartbeat_before_time_sync(stubbed, tmp_path):
    ident = Identity.generate(common_name="TimeCEM")
    g = Gateway(tmp_path / "gw")
    g.trust(ident.ski)
    g.start()

    async def wait_line(pattern, start=0, timeout=20):
        return await asyncio.to_thread(g.wait_for, pattern, timeout, start)

    async def go():
        peer = ShipPeer(ident, ship_id="TimeCEM-1", timeout=8)
        await peer.dial(HOST, g.port, expected_ski=g.ski)
        cem = SpineCem(peer, timeout=8)
        remote = await cem.startup()
        assert (await cem.subscribe(remote.server("DeviceDiagnosis").spec)).ok
        # two failed syncs after the subscription: a heartbeat period (2 s) and more went by
        mark = g.mark()
        await wait_line(r"\[time\] W: sync failed", mark)
        await wait_line(r"\[time\] W: sync failed", g.mark())
        assert not [d for d in cem.pending_notifies() if d.function == HB]
        stubbed.write_text("ok")
        await wait_line(r"\[time\] I: synced from pool\.ntp\.org", mark)
        first = await cem.next_notify(HB, timeout=10)
        assert first.data["heartbeatCounter"] == 1
        assert first.data["timestamp"][:2] == "20"
        second = await cem.next_notify(HB, timeout=10)
        assert second.data["heartbeatCounter"] == 2
        await cem.close()

    try:
        asyncio.run(asyncio.wait_for(go(), 60))
    finally:
        g.stop()
    out = g.output()
    assert "[sup] I: watchdog 30000 ms" in out  # the stand-in machine.WDT, fed by the supervisor
