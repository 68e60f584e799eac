"""The device runtime under the MicroPython unix port with stand-in machine, network, ntptime
and esp32 modules (host_tests/machine_stub/ on MICROPYPATH): boot (Wi-Fi, Ethernet, timeout,
safe-mode pin and flag), main() (crash logged and counted, restart through machine.reset(),
growing back-off, safe mode after repeated crashes, leaving it), the watchdog fed while the
gateway runs, a dying task, Ctrl-C, a watchdog reset, and the diag screens."""

import json
import os

import certs
from support import mpyrun
from support.paths import MACHINE_STUB
import pytest

STUB = MACHINE_STUB


def run(code, tmp_path, env=None, timeout=60):
    return mpyrun.run_code(code, tmp_path, extra_path=(STUB,), timeout=timeout, env=env)


def board(tmp_path, **extra):
    cfg = {"board": "t", "ship": {"host": "127.0.0.1", "port": 0}, "watchdog_ms": 1000}
    cfg.update(extra)
    p = tmp_path / "board.json"
    p.write_text(json.dumps(cfg))
    return str(p)


@pytest.fixture(scope="module")
def identity():
    return certs.create(cn="runtime-test")


def data_dir(tmp_path, identity):
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    (d / "cert.der").write_bytes(identity[0])
    (d / "key.der").write_bytes(identity[1])
    return str(d)


# ---- boot


BOOT = """
import machine, network
from gateway import netboot, netup
%s
st = netboot.boot(%r, %r)
print("SAFE", netup.safe)
print("STATUS", st["kind"], st["up"], st["ip"], st["error"])
print("MADE", len(network.made))
for w in network.made:
    print("JOINED", getattr(w, "joined", None))
    print("KW", sorted((k, repr(v)) for k, v in getattr(w, "kwargs", {}).items()))
print("HOSTNAME", network.host_name)
"""


def boot(tmp_path, cfg, setup="", flag_text=None):
    flag = str(tmp_path / "safe")
    if flag_text is not None:
        (tmp_path / "safe").write_text(flag_text)
    return run(BOOT % (setup, board(tmp_path, **cfg), flag), tmp_path).check().stdout


def test_boot_wifi_connects(tmp_path):
    out = boot(tmp_path, {"network": {"kind": "wifi", "ssid": "home", "password": "pw", "hostname": "wallbox"}})
    assert "SAFE None" in out
    assert "STATUS wifi True 192.168.4.3 None" in out
    assert "JOINED ('home', 'pw')" in out and "HOSTNAME wallbox" in out
    assert "boot: network wifi up 192.168.4.3 in" in out


def test_boot_wifi_timeout(tmp_path):
    out = boot(tmp_path, {"network": {"kind": "wifi", "ssid": "home", "timeout_s": 1}}, "network.connect_after = None")
    assert "STATUS wifi False None no link after 1 s (status 1001)" in out
    assert "boot: network wifi: no link after 1 s" in out


def test_boot_ethernet_olimex_poe(tmp_path):
    net = {"kind": "ethernet", "phy": "LAN8720", "mdc": 23, "mdio": 18, "power": 12, "addr": 0, "clock": "GPIO17_OUT"}
    out = boot(tmp_path, {"network": net})
    assert "STATUS ethernet True" in out
    kw = [line for line in out.splitlines() if line.startswith("KW")][0]
    for part in ("('mdc', 'Pin(23)')", "('mdio', 'Pin(18)')", "('power', 'Pin(12)')", "('phy_addr', '0')",
                 "('phy_type', '0')", "('ref_clk', 'Pin(17)')", "('ref_clk_mode', '3')"):
        assert part in kw, kw


def test_boot_ethernet_phy_missing(tmp_path):
    net = {"kind": "ethernet", "phy": "LAN8720", "mdc": 23, "mdio": 18, "timeout_s": 1}
    out = boot(tmp_path, {"network": net}, "network.lan_error = OSError(-1, 'ESP_ERR_TIMEOUT')")
    assert "STATUS ethernet False None OSError:" in out


def test_boot_safe_mode_pin_skips_everything(tmp_path):
    out = boot(tmp_path, {"network": {"kind": "wifi", "ssid": "home"}, "safe_mode_pin": 0}, "machine.levels[0] = 0")
    assert "SAFE pin 0 held low" in out and "MADE 0" in out
    assert "safe mode (pin 0 held low)" in out


def test_boot_safe_flag_keeps_the_network(tmp_path):
    out = boot(tmp_path, {"network": {"kind": "wifi", "ssid": "home"}, "safe_mode_pin": 0}, flag_text="5 crashes")
    assert "SAFE flag %s: 5 crashes" % (tmp_path / "safe") in out
    assert "STATUS wifi True" in out


def test_boot_config_error_does_not_raise(tmp_path):
    out = boot(tmp_path, {"network": {"kind": "wifi"}})
    assert "boot: config error: network.ssid: 1..32 characters (network not started)" in out
    assert "MADE 0" in out


def test_boot_py_never_raises(tmp_path):
    # the real boot.py on a host without /board.json
    r = mpyrun.run(os.path.join(mpyrun.ROOT, "boot.py"), extra_path=(STUB,)).check()
    assert "boot: config error" in r.stdout


# ---- main(): crashes, back-off, safe mode


MAIN = """
import asyncio, machine
from gateway import app, supervisor
slept = []
supervisor.Supervisor.sleep = lambda self, s: slept.append(s)
orig_start = app.Gateway.start
%s
app.Gateway.start = start
BOARD, DATA, FLAG = %r, %r, %r
def boot(n):
    for i in range(n):
        asyncio.new_event_loop()  # what a reset would give: no task of the last run
        try:
            app.main(BOARD, DATA, FLAG)
            print("RETURNED", i)
        except machine.ResetCalled:
            print("RESET", i)
%s
print("SLEPT", slept)
print("RESETS", machine.resets)
"""

CRASH_AFTER_START = """
async def start(self):
    port = await orig_start(self)
    await asyncio.sleep_ms(%d)
    raise RuntimeError("boom")
"""


def main_run(tmp_path, identity, start, body, cfg=None, env=None):
    d = data_dir(tmp_path, identity)
    code = MAIN % (start, board(tmp_path, **(cfg or {})), d, str(tmp_path / "safe"), body)
    return run(code, tmp_path, env).check().stdout, d


def test_crash_loop_backs_off_then_safe_mode(tmp_path, identity):
    body = """
boot(7)
from gateway import netup
from gateway import diag
netup.leave_safe(FLAG)  # what diag.resume() does, with the test's flag file
diag.resume(DATA)
boot(1)
"""
    out, d = main_run(tmp_path, identity, CRASH_AFTER_START % 0, body)
    # five crashes, each a reset; the back-off grows; then safe mode without a start
    assert [line for line in out.splitlines() if line.startswith(("RESET ", "RETURNED "))] == [
        "RESET 0", "RESET 1", "RESET 2", "RESET 3", "RESET 4", "RETURNED 5", "RETURNED 6", "RESET 0"]
    assert "SLEPT [5, 15, 30, 60]" in out
    assert out.count("safe mode (flag %s: 5 crashes in a row, the last: RuntimeError: boom)" % (tmp_path / "safe")) == 2
    assert "crash 1 in a row (RuntimeError: boom): starting in 5 s" in out
    assert "crash 4 in a row (RuntimeError: boom): starting in 60 s" in out
    assert "RESETS 6" in out
    log = open(os.path.join(d, "crash.log")).read()
    assert log.count("RuntimeError: boom") >= 5 and "Traceback" in log
    assert out.count("[sup] E: crash: RuntimeError: boom") == 6
    st = json.load(open(os.path.join(d, "crash.json")))
    assert st["count"] == 1 and st["total"] == 6  # after leaving safe mode: a fresh series


def test_dying_task_restarts_and_is_named(tmp_path, identity):
    start = """
async def start(self):
    port = await orig_start(self)
    async def bad():
        await asyncio.sleep_ms(50)
        {}["missing"]
    self.sup.spawn("bad", bad())
    return port
"""
    out, d = main_run(tmp_path, identity, start, "boot(1)")
    assert "RESET 0" in out
    assert "crash: task bad: KeyError: missing" in out
    assert "task bad: KeyError" in open(os.path.join(d, "crash.log")).read()


def test_watchdog_fed_while_running(tmp_path, identity):
    body = """
boot(1)
w = machine.wdts[0]
print("WDT", w.timeout, w.feeds)
"""
    out, _ = main_run(tmp_path, identity, CRASH_AFTER_START % 900, body, {"watchdog_ms": 1000})
    t, feeds = [line.split()[1:] for line in out.splitlines() if line.startswith("WDT")][0]
    assert t == "1000" and int(feeds) >= 3  # fed every 250 ms for 900 ms
    assert "[sup] I: watchdog 1000 ms" in out


def test_ctrl_c_keeps_the_watchdog_fed(tmp_path, identity):
    start = """
async def start(self):
    port = await orig_start(self)
    await asyncio.sleep_ms(300)
    raise KeyboardInterrupt
"""
    body = """
boot(1)
w = machine.wdts[0]
n = w.feeds
machine.timers[0].fire()
print("FED", w.feeds - n, machine.timers[0].period)
"""
    out, _ = main_run(tmp_path, identity, start, body)
    assert "stopped" in out and "RETURNED 0" in out and "RESETS 0" in out
    assert "FED 1 250" in out


def test_watchdog_reset_is_counted(tmp_path, identity):
    start = """
async def start(self):
    port = await orig_start(self)
    await asyncio.sleep_ms(100)
    raise KeyboardInterrupt
"""
    body = "boot(1)\nfrom gateway import diag\ndiag.crashes(DATA)"
    out, d = main_run(tmp_path, identity, start, body, env={"MACHINE_STUB_CAUSE": "3"})
    assert "crash: watchdog reset" in out
    assert "crash 1 in a row (watchdog reset): starting in 5 s" in out and "SLEPT [5]" in out
    assert "1 in a row, 1 in all, last: watchdog reset" in out


def test_config_error_waits_at_the_repl(tmp_path, identity):
    out, _ = main_run(tmp_path, identity, "start = orig_start", "boot(1)", {"network": {"kind": "ethernet"}})
    assert "config error: network.phy:" in out and "RETURNED 0" in out and "RESETS 0" in out


def test_diag_screens(tmp_path, identity):
    start = """
async def start(self):
    port = await orig_start(self)
    await asyncio.sleep_ms(200)
    from gateway.diag import Diag
    diag = Diag(self)  # what the console binds diag to
    diag.status()
    diag.modbus()
    diag.crashes(self.data_dir)
    raise KeyboardInterrupt
"""
    out, _ = main_run(tmp_path, identity, start, "boot(1)", {"log": {"level": 2, "file_kb": 4}})
    assert "net: not brought up by boot.py" in out
    assert "IDF heap: 48000 free, largest block 30000, least free 23500" in out
    assert "time: 20" in out and "synced from pool.ntp.org, 1 syncs" in out
    assert "tasks: " in out and "supervisor running" in out and "housekeeping running" in out
    assert "watchdog: 1000 ms  feeds" in out
    assert "no charger bridge" in out and "no crashes logged" in out
    assert "least free" in out


def test_watchdog_round_allocates_nothing(tmp_path):
    # the supervisor's round runs every few hundred ms for the device's life: no garbage
    code = """
import micropython
from gateway.supervisor import Supervisor
class W:
    feeds = 0
    def feed(self):
        self.feeds += 1
sup = Supervisor(%r, None, %r)
sup.configure(4000)
sup.wdt = W()
box = [0]
sup.live.watch("beats", 1000, 0)
sup.live.watch("probed", 1000, 0, lambda: box[0])
sup.check(10)
micropython.heap_lock()
try:
    for t in range(20, 900, 10):
        sup.live.beat("beats", t)
        sup.check(t)
finally:
    micropython.heap_unlock()
print("FEEDS", sup.wdt.feeds)
""" % (str(tmp_path), str(tmp_path / "safe"))
    r = mpyrun.run_code(code, tmp_path).check()
    assert "FEEDS 89" in r.stdout


def test_bug_while_setting_up_is_a_crash(tmp_path, identity):
    bug = "start = orig_start\nfrom gateway import startup\nstartup.Housekeeping = None"
    out, d = main_run(tmp_path, identity, bug, "boot(1)")
    assert "RESET 0" in out and "[sup] E: crash: TypeError" in out
    assert json.load(open(os.path.join(d, "crash.json")))["count"] == 1


def test_link_drop_and_rejoin_seen(tmp_path, identity):
    """The gateway's link watch: a Wi-Fi drop and rejoin with a new address are logged, ECHONET
    re-joins its group and announces, mDNS re-announces the new address (stand-ins record the
    calls; the adapters' own rejoin/changed are theirs)."""
    start = """
import network
from gateway import netup
async def start(self):
    w = network.WLAN(network.STA_IF)
    w.active(True)
    network.connect_after = 0
    netup.iface = w
    netup.status.update({"kind": "wifi", "up": True, "ip": w.ifconfig()[0]})
    print("IP0", w.ifconfig()[0])
    self.net_poll_ms = 50
    port = await orig_start(self)
    class Rec:
        def __init__(self, name):
            self.name = name
            self.responder = self
        def rejoin(self):
            print("CALL", self.name, "rejoin")
        def changed(self):
            print("CALL", self.name, "changed")
        def configure(self, ip=None):
            print("CALL", self.name, "configure", ip)
    self.echonet = Rec("echonet")
    self.mdns = Rec("mdns")
    await asyncio.sleep_ms(300)
    network.connect_after = None  # the access point is gone
    await asyncio.sleep_ms(300)
    network.made.append(None)  # the stub's next address differs: a new DHCP lease
    network.connect_after = 0
    await asyncio.sleep_ms(300)
    raise RuntimeError("end of test")
"""
    out, _ = main_run(tmp_path, identity, start, "boot(1)")
    lines = [line for line in out.splitlines() if "[app] I: network" in line]
    assert len(lines) == 2 and lines[0].endswith("network down"), out
    ip0 = [line.split()[1] for line in out.splitlines() if line.startswith("IP0 ")][0]
    assert lines[1].startswith("[app] I: network up 192.168.4.") and not lines[1].endswith(" " + ip0), (ip0, lines)
    ip1 = lines[1].split()[-1]
    calls = [line for line in out.splitlines() if line.startswith("CALL ")]
    assert calls == ["CALL mdns configure " + ip1, "CALL mdns changed", "CALL echonet rejoin"], calls
