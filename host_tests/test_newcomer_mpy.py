"""Small start-up behaviours a newcomer meets first, under the MicroPython unix port: the
pairing banner names what works where it is read (host: tools/gw; device: its console and its
own address)."""

import json
import os

from support import mpyrun

BANNER = r'''
from gateway import netup, startup
ski = "ab" * 20
host = "\n".join(startup.banner(ski, "127.0.0.1", 4712, False))
assert "tools/gw trust add" in host and "--host 127.0.0.1 --port 4712" in host, host
netup.status["ip"] = "192.168.1.50"
dev = "\n".join(startup.banner(ski, "0.0.0.0", 4712, True))
# the device has no tools/gw trust, and 0.0.0.0 is no address to dial
assert "trust add" not in dev and "diag.approve()" in dev, dev
assert "--host 192.168.1.50 --port 4712" in dev and "0.0.0.0" not in dev, dev
netup.status["ip"] = None
assert "<the gateway's IP>" in "\n".join(startup.banner(ski, "0.0.0.0", 4712, True))
print("OK")
'''


def test_banner_says_what_works_where_it_is_read(tmp_path):
    r = mpyrun.run_code(BANNER, tmp_path).check()
    assert "OK" in r.stdout


# ---- the watchdog across a soft reset (lib/gateway/supervisor.py early_feed), with the
# stand-in machine module of host_tests/machine_stub (MACHINE_STUB_CAUSE picks the reset cause)

STUB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "machine_stub")

SOFT = r'''
import asyncio, machine
from gateway import netboot, supervisor
netboot.boot(%r, %r)
print("WDTS", [w.timeout for w in machine.wdts])
if machine.wdts:
    w = machine.wdts[0]
    n = w.feeds
    machine.timers[0].fire()
    machine.timers[0].fire()
    print("FED", w.feeds - n, machine.timers[0].period)
    # the supervisor takes over: its own WDT, the early timer stopped
    sup = supervisor.Supervisor(%r, machine)
    sup.configure(2000)
    async def go():
        t = asyncio.create_task(sup.run())
        await asyncio.sleep_ms(50)
        t.cancel()
    asyncio.run(go())
    print("TAKEN", len(machine.wdts), machine.timers[0].callback is None, supervisor._early is None)
'''


def _soft(tmp_path, cause, wd_ms):
    b = tmp_path / "board.json"
    b.write_text(json.dumps({"board": "t", "watchdog_ms": wd_ms}))
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    r = mpyrun.run_code(SOFT % (str(b), str(tmp_path / "safe"), str(d)), tmp_path, extra_path=(STUB,),
                        env={"MACHINE_STUB_CAUSE": str(cause)}).check()
    return r.stdout


def test_soft_reset_keeps_a_running_watchdog_fed_until_the_supervisor_runs(tmp_path):
    out = _soft(tmp_path, 5, 2000)  # SOFT_RESET
    assert "WDTS [2000]" in out and "FED 2 500" in out and "TAKEN 2 True True" in out, out
    assert "soft reset: watchdog fed from Timer(0)" in out


def test_hard_reset_arms_no_watchdog_at_boot(tmp_path):
    assert "WDTS []" in _soft(tmp_path, 1, 2000)  # PWRON_RESET: nothing runs yet
    assert "WDTS []" in _soft(tmp_path, 5, 0)  # a config without a watchdog starts none
