# The device runtime's sans-IO parts: crash counting and back-off, liveness and watchdog
# feeding, the NTP retry schedule and heartbeat gating, configuration errors that name their
# key (board and device config), network bring-up against fake network/machine objects, the
# rotating log file. Runs under CPython and MicroPython alike.
import json
import os

import log
from gateway import config, devconfig, netboot, netup, supervisor, timesync
from gateway.supervisor import CrashState, Liveness, Supervisor
from usecases.station import SpineApp

_DIR = "/tmp/runtime_case"


def _fresh():
    try:
        os.mkdir(_DIR)
    except OSError:
        pass
    for f in os.listdir(_DIR):
        os.remove(_DIR + "/" + f)
    return _DIR


def _exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False


# ---- crash counting


def case_crash_backoff_grows_then_safe_mode():
    st = CrashState(None, safe_after=5, backoff=(0, 5, 15, 30, 60))
    assert st.delay_s() == 0
    delays = []
    for i in range(4):
        assert not st.crashed("boom %d" % i)
        delays.append(st.delay_s())
    assert delays == [5, 15, 30, 60]
    assert st.crashed("boom 4")  # the fifth in a row: safe mode
    assert st.count == 0 and st.total == 5 and st.last == "boom 4"
    assert st.delay_s() == 0


def case_crash_backoff_stays_at_the_last_step():
    st = CrashState({"count": 40, "total": 41}, safe_after=100, backoff=(0, 1, 2))
    assert st.delay_s() == 2


def case_stable_run_clears_the_series():
    st = CrashState({"count": 3, "total": 7, "last": "x"})
    assert st.stable() and st.count == 0 and st.total == 7
    assert not st.stable()
    again = CrashState(st.doc())
    assert (again.count, again.total, again.last) == (0, 7, "x")


def case_crash_state_tolerates_garbage():
    for doc in (None, [], {"count": "3"}, {"count": -2, "total": True, "last": 5}):
        st = CrashState(doc)
        assert st.count == 0 and st.total == 0 and st.last is None


def case_supervisor_records_to_flash_and_enters_safe_mode():
    d = _fresh()
    flag = d + "/safe"
    sup = Supervisor(d, None, flag)
    for i in range(supervisor.SAFE_AFTER - 1):
        assert not sup.record("boom %d" % i, "Traceback: boom\n")
    assert not _exists(flag)
    assert Supervisor(d, None, flag).state.count == supervisor.SAFE_AFTER - 1  # persisted
    assert sup.record("last straw", "Traceback: last\n")
    with open(flag) as f:
        assert "last straw" in f.read()
    text = sup.crashlog.read()
    assert text.count(" crash ") == supervisor.SAFE_AFTER and "Traceback: last" in text
    assert netboot.safe_reason(None, None, flag).startswith("flag " + flag)
    netup.leave_safe(flag)
    assert netboot.safe_reason(None, None, flag) is None


class _Machine:
    # the parts of machine the supervisor uses
    WDT_RESET = 3

    def __init__(self, cause=1):
        self.cause = cause
        self.wdts = []

    def reset_cause(self):
        return self.cause

    def WDT(self, timeout):
        w = _Wdt(timeout)
        self.wdts.append(w)
        return w


class _Wdt:
    def __init__(self, timeout):
        self.timeout = timeout
        self.feeds = 0

    def feed(self):
        self.feeds += 1


def case_watchdog_reset_counts_as_a_crash():
    d = _fresh()
    for cause in (1, 5):  # power-on, soft reset
        supervisor._cause_seen = False
        assert Supervisor(d, _Machine(cause), d + "/safe").state.count == 0
    supervisor._cause_seen = False
    sup = Supervisor(d, _Machine(3), d + "/safe")
    assert sup.state.count == 1 and sup.state.last == "watchdog reset"
    assert "watchdog" in sup.crashlog.read()
    # main() called again from the REPL in the same boot: not counted twice
    assert Supervisor(d, _Machine(3), d + "/safe").state.count == 1


# ---- liveness and the watchdog


def case_liveness_beats_and_probes():
    lv = Liveness()
    work = [0]
    lv.watch("beater", 1000, 0)
    lv.watch("prober", 2000, 0, lambda: work[0])
    assert lv.stale(900) is None
    assert lv.stale(1001) == ("beater", 1001)
    lv.beat("beater", 1001)
    assert lv.stale(1500) is None
    work[0] += 1  # progress seen at 1800
    lv.beat("beater", 1800)
    assert lv.stale(1800) is None
    assert lv.stale(2500) is None
    lv.beat("beater", 3800)
    assert lv.stale(3801) == ("prober", 2001)
    lv.unwatch("prober")
    assert lv.stale(3000) is None


def case_wdt_fed_only_while_healthy():
    d = _fresh()
    sup = Supervisor(d, None, d + "/safe")
    sup.configure(4000)
    wdt = sup.wdt = _Wdt(4000)
    sup.live.watch("task", 1000, 0)
    sup.check(500)
    sup.check(900)
    assert wdt.feeds == 2
    sup.check(1600)  # the task has been silent 1.6 s
    sup.check(2600)
    assert wdt.feeds == 2 and sup.starving[0] == "task"
    assert sup.fatal is None  # the hardware watchdog does the resetting
    sup.live.beat("task", 2700)
    sup.check(2800)
    assert wdt.feeds == 3 and sup.starving is None


def case_software_watchdog_without_machine_wdt():
    d = _fresh()
    sup = Supervisor(d, None, d + "/safe")
    sup.configure(2000)
    sup.live.watch("task", 1000, 0)
    sup.check(1500)
    assert sup.fatal is None and sup.starving[0] == "task"
    sup.check(3000)
    assert sup.fatal is None
    sup.check(3600)  # silent for the watchdog time beyond its deadline
    assert sup.fatal[0] == "watchdog" and "task silent" in str(sup.fatal[1])


def case_long_run_clears_the_crash_count():
    d = _fresh()
    sup = Supervisor(d, None, d + "/safe")
    sup.record("boom", "")
    sup.started = 0
    sup.check(supervisor.STABLE_MS - 1)
    assert sup.state.count == 1
    sup.check(supervisor.STABLE_MS)
    assert sup.state.count == 0 and Supervisor(d, None, d + "/safe").state.count == 0


# ---- time sync


def case_ntp_schedule_backs_off_then_slows():
    s = timesync.Schedule(retries=4)
    assert [s.result(False) for _ in range(6)] == [1, 2, 4, 8, timesync.SLOW_S, timesync.SLOW_S]
    assert not s.synced
    assert s.result(True) == timesync.RESYNC_S and s.synced and s.fails == 0
    assert s.result(False) == 1 and s.synced  # a failed resync keeps the clock
    s = timesync.Schedule(retries=20)
    assert max(s.result(False) for _ in range(20)) == timesync.FAST_MAX_S


class _Ntp:
    def __init__(self, answers):
        self.host = None
        self.answers = answers  # host -> True (answers) / False (times out)
        self.asked = []

    def settime(self):
        self.asked.append(self.host)
        if not self.answers.get(self.host):
            raise OSError(110)


def case_timesync_tries_each_server():
    ntp = _Ntp({"b": True})
    ts = timesync.TimeSync(["a", "b"], 3, ntp)
    assert not ts.host_clock() and not ts.synced()
    assert ts.step() == timesync.RESYNC_S
    assert ntp.asked == ["a", "b"] and ts.synced() and ts.last_server == "b"
    ntp = _Ntp({})
    ts = timesync.TimeSync(["a"], 3, ntp)
    assert ts.step() == 1 and not ts.synced() and "110" in ts.last_error


def case_host_clock_without_ntptime():
    ts = timesync.TimeSync(["a"], 3, False)
    assert ts.host_clock() and ts.synced()  # the host's clock is past 2024


def case_heartbeat_waits_for_the_clock():
    ntp = _Ntp({})
    ts = timesync.TimeSync(["a"], 3, ntp)
    app = SpineApp("d:_n:T_G-1", {"brand": "T", "model": "G", "serial": "1"})
    app.clock_synced = ts.synced
    now = app._hb_at
    for i in range(5):
        now += 2500
        app.tick(now)
    assert app.heartbeat_counter == 0
    ntp.answers["a"] = True
    ts.step()
    now += 2500
    app.tick(now)
    assert app.heartbeat_counter == 1


# ---- configuration errors name their key

_BAD_BOARD = (
    ({"network": {"kind": "wlan"}}, "network.kind"),
    ({"network": {"kind": "wifi"}}, "network.ssid"),
    ({"network": {"kind": "wifi", "ssid": "x", "password": 5}}, "network.password"),
    ({"network": {"kind": "wifi", "ssid": "x", "timeout_s": 0}}, "network.timeout_s"),
    ({"network": {"kind": "wifi", "ssid": "x", "phy": "LAN8720"}}, "network.phy"),
    ({"network": {"kind": "wifi", "ssid": "x", "channel": 3}}, "config.network.channel"),
    ({"network": {"kind": "ethernet", "phy": "LAN9999", "mdc": 23, "mdio": 18}}, "network.phy"),
    ({"network": {"kind": "ethernet", "phy": "LAN8720", "mdio": 18}}, "network.mdc"),
    ({"network": {"kind": "ethernet", "phy": "LAN8720", "mdc": 23, "mdio": 18, "addr": 32}}, "network.addr"),
    ({"network": {"kind": "ethernet", "phy": "LAN8720", "mdc": 23, "mdio": 18, "clock": "GPIO5_OUT"}}, "network.clock"),
    ({"network": {"kind": "ethernet", "phy": "LAN8720", "mdc": 23, "mdio": 18, "ssid": "x"}}, "network.ssid"),
    ({"network": {"kind": "none", "hostname": ""}}, "network.hostname"),
    ({"network": "wifi"}, "config.network"),
    ({"safe_mode_pin": 99}, "safe_mode_pin"),
    ({"safe_mode_pin": True}, "safe_mode_pin"),
    ({"ntp": {"servers": []}}, "ntp.servers"),
    ({"ntp": {"servers": "pool.ntp.org"}}, "ntp.servers"),
    ({"ntp": {"retries": -1}}, "ntp.retries"),
    ({"watchdog_ms": 500}, "watchdog_ms"),
    ({"log": {"file_kb": 1000}}, "log.file_kb"),
    ({"charger": {"map": "m.json", "link": {"kind": "tcp", "host": "h"}, "discharges": "yes"}}, "charger.discharges"),
)


def _err(fn, *a):
    try:
        fn(*a)
    except config.ConfigError as e:
        return str(e)
    raise AssertionError("no ConfigError for %r" % (a,))


def case_board_config_errors_name_the_key():
    for doc, key in _BAD_BOARD:
        msg = _err(config.parse, doc)
        assert msg.startswith(key + ":"), (doc, msg)


def case_board_configs_of_the_boards_parse():
    wifi = config.parse({"network": {"kind": "wifi", "ssid": "home", "password": "secret", "timeout_s": 20},
                         "safe_mode_pin": 0, "watchdog_ms": 30000})
    assert wifi["network"]["ssid"] == "home" and wifi["safe_mode_pin"] == 0
    eth = config.parse({
        "network": {"kind": "ethernet", "phy": "LAN8720", "mdc": 23, "mdio": 18, "power": 12, "addr": 0,
                    "clock": "GPIO17_OUT", "timeout_s": 20},
        "charger": {"map": "m.json", "link": {"kind": "uart", "uart": 2, "tx": 17, "rx": 16, "de": 4},
                    "discharges": False},
    })
    assert eth["network"]["clock"] == "GPIO17_OUT" and eth["charger"]["discharges"] is False
    d = config.parse({})
    assert d["network"]["kind"] == "none" and d["ntp"]["servers"] == ["pool.ntp.org"] and d["watchdog_ms"] == 30000


def case_config_sections_are_fresh_dicts():
    # the device config and the checks fill sections in place: the defaults must not change
    cfg = config.parse({})
    devconfig.apply(cfg, devconfig.parse({"identity": {"model": "Other"}, "ship": {"port": 5000}}))
    d = config.parse({})
    assert d["ship"]["port"] == 4712 and d["identity"]["model"] == "Gateway"


_BAD_DEVICE = (
    ([], "device.json"),
    ({"wifi": {}}, "device.wifi"),
    ({"identity": []}, "device.identity"),
    ({"identity": {"brand": ""}}, "device.identity.brand"),
    ({"identity": {"model": "a;b"}}, "device.identity.model"),
    ({"identity": {"serial": 12}}, "device.identity.serial"),
    ({"identity": {"colour": "red"}}, "device.identity.colour"),
    ({"ship": {"port": 70000}}, "device.ship.port"),
    ({"ship": {"cem": {"port": 4712, "ski": "ab" * 20}}}, "device.ship.cem.host"),
    ({"ship": {"cem": {"host": "cem", "ski": "zz"}}}, "device.ship.cem.ski"),
    ({"ship": {"cem": {"host": "cem", "ski": "ab" * 20, "tls": 1}}}, "device.ship.cem.tls"),
    ({"echonet": {"manufacturer": "12345"}}, "device.echonet.manufacturer"),
    ({"echonet": {"manufacturer": "GGGGGG"}}, "device.echonet.manufacturer"),
    ({"echonet": {"manufacturer": 0x1000000}}, "device.echonet.manufacturer"),
)


def case_device_config_errors_name_the_key():
    for doc, key in _BAD_DEVICE:
        msg = _err(devconfig.parse, doc)
        assert msg.startswith(key + ":"), (doc, msg)


def case_device_config_merges_over_the_board():
    cfg = config.parse({"identity": {"brand": "Board", "model": "M"}, "ship": {"port": 4712}})
    dev = devconfig.parse({"identity": {"model": "Wallbox 11", "serial": None}, "ship": {
        "port": 4800, "cem": {"host": "192.168.1.5", "ski": "AB:" * 19 + "AB"}},
        "echonet": {"manufacturer": "0x00000B"}})
    devconfig.apply(cfg, dev)
    assert cfg["identity"]["brand"] == "Board" and cfg["identity"]["model"] == "Wallbox 11"
    assert cfg["ship"]["port"] == 4800
    assert cfg["ship"]["cem"] == {"host": "192.168.1.5", "port": 4712, "ski": "ab" * 20}
    assert cfg["device"]["echonet"]["manufacturer"] == 0x0B
    ski = "0123456789" * 4
    s = config.ship_settings(cfg, ski)
    assert s["serial"] == ski[:10] and s["ship_id"] == "Board-Wallbox 11-" + ski[:10]  # serial from the SKI


def case_device_config_file_missing_or_broken():
    d = _fresh()
    cfg = devconfig.load(d + "/device.json", config.parse({}))
    assert cfg["device"] == {}
    with open(d + "/device.json", "w") as f:
        json.dump({"ship": {"port": 5000}}, f)
    assert devconfig.load(d + "/device.json", config.parse({}))["ship"]["port"] == 5000
    with open(d + "/device.json", "w") as f:
        f.write("{not json")
    assert _err(devconfig.load, d + "/device.json", config.parse({})).startswith("device.json:")


# ---- network bring-up (fake network and machine modules)


class _Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2
    levels = {}

    def __init__(self, id, mode=-1, pull=-1):
        self.id = id
        self.mode = mode

    def value(self):
        return _Pin.levels.get(self.id, 1)

    def __eq__(self, other):
        return isinstance(other, _Pin) and other.id == self.id


class _MachineNet:
    Pin = _Pin


class _Iface:
    def __init__(self, net, **kw):
        self.net = net
        self.kw = kw
        self.on = False
        self.polls = 0
        self.joined = None
        net.made.append(self)

    def active(self, on):
        self.on = on

    def config(self, **kw):
        pass

    def connect(self, ssid, key=None):
        self.joined = (ssid, key)

    def isconnected(self):
        self.polls += 1
        return self.net.after is not None and self.polls > self.net.after

    def status(self):
        return 1001

    def ifconfig(self):
        return ("10.0.0.7", "255.255.255.0", "10.0.0.1", "10.0.0.1")


class _Network:
    STA_IF = 0
    PHY_LAN8720 = 0
    PHY_IP101 = 1

    def __init__(self, after):
        self.after = after
        self.made = []
        self.name = None

    def hostname(self, n):
        self.name = n

    def WLAN(self, i):
        return _Iface(self)

    def LAN(self, **kw):
        return _Iface(self, **kw)


def _net(**kw):
    n = config.parse({"network": kw})["network"]
    return n


def case_wifi_connects():
    net = _Network(after=3)
    st = netboot.bring_up(_net(kind="wifi", ssid="home", password="pw", hostname="wallbox"), net, _MachineNet)
    assert st["up"] and st["ip"] == "10.0.0.7" and st["error"] is None
    w = net.made[0]
    assert w.on and w.joined == ("home", "pw") and w.polls == 4 and net.name == "wallbox"


def case_wifi_timeout_is_reported():
    net = _Network(after=None)
    st = netboot.bring_up(_net(kind="wifi", ssid="home", timeout_s=1), net, _MachineNet)
    assert not st["up"] and "no link after 1 s" in st["error"] and st["ms"] >= 1000
    assert net.made[0].joined == ("home", None)


def case_ethernet_gets_the_phy_parameters():
    net = _Network(after=0)
    st = netboot.bring_up(_net(kind="ethernet", phy="LAN8720", mdc=23, mdio=18, power=12, addr=0, clock="GPIO17_OUT"),
                        net, _MachineNet)
    assert st["up"]
    kw = net.made[0].kw
    assert kw["mdc"] == _Pin(23) and kw["mdio"] == _Pin(18) and kw["power"] == _Pin(12)
    assert kw["phy_type"] == 0 and kw["phy_addr"] == 0
    assert kw["ref_clk"] == _Pin(17) and kw["ref_clk_mode"] == _Pin.OUT
    net = _Network(after=0)
    netboot.bring_up(_net(kind="ethernet", phy="IP101", mdc=23, mdio=18, addr=1, clock="GPIO0_IN"), net, _MachineNet)
    kw = net.made[0].kw
    assert "power" not in kw and kw["phy_type"] == 1 and kw["ref_clk"] == _Pin(0) and kw["ref_clk_mode"] == _Pin.IN


def case_safe_mode_pin_and_flag():
    d = _fresh()
    flag = d + "/safe"
    _Pin.levels = {}
    assert netboot.safe_reason(0, _MachineNet, flag, window_ms=40) is None
    _Pin.levels = {0: 0}
    assert netboot.safe_reason(0, _MachineNet, flag, window_ms=40) == "pin 0 held low"
    _Pin.levels = {}
    with open(flag, "w") as f:
        f.write("3 crashes")
    assert netboot.safe_reason(0, _MachineNet, flag, window_ms=40) == "flag %s: 3 crashes" % flag


# ---- the rotating log file


def case_log_file_rotates_into_two_files():
    d = _fresh()
    f = log.to_file(d + "/log.txt", 1)
    try:
        for i in range(200):
            log.warn("t", "record %d", i)
    finally:
        log.to_file(None, 0)
    assert os.stat(d + "/log.txt")[6] <= 1024 and os.stat(d + "/log.txt.1")[6] <= 1024
    text = f.read()
    lines = text.split("\n")[:-1]
    assert lines[-1].endswith("[t] W: record 199")
    n = [int(line.rsplit(" ", 1)[1]) for line in lines]
    assert n == list(range(n[0], 200)) and n[0] > 100  # oldest dropped, order kept
    assert len(os.listdir(d)) == 2


def case_log_file_survives_a_reopen():
    d = _fresh()
    log.to_file(d + "/log.txt", 2)
    log.error("t", "before")
    log.to_file(None, 0)
    f = log.to_file(d + "/log.txt", 2)
    log.error("t", "after")
    log.to_file(None, 0)
    t = f.read()
    assert t.index("before") < t.index("after") and f.size == len(t)
