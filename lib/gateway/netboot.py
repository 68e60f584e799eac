# Network bring-up for boot.py (Wi-Fi station, or Ethernet through network.LAN on boards with
# an RMII PHY such as the Olimex ESP32-POE or WT32-ETH01), bounded by the configured timeout,
# and the safe-mode check: the application is left out when the safe-mode pin is held low at
# reset or the flag file exists (written by the supervisor after repeated crashes).
# The network and machine modules are passed in, so tests run this with stand-ins. What it
# finds goes to gateway/netup.py (status, iface, safe), which stays; this module is let go
# once the gateway has started (gateway/startup.py _forget).
import time

from compat import const, ticks_diff, ticks_ms
from gateway import netup

_PIN_WINDOW_MS = const(300)  # how long boot looks at the safe-mode pin (a button pressed after reset)

try:
    _sleep_ms = time.sleep_ms
except AttributeError:  # CPython (the case files)

    def _sleep_ms(ms):
        time.sleep(ms / 1000)


def pin_held(machine, pin, window_ms=_PIN_WINDOW_MS):
    """True when the pin reads low (pulled up, button to ground) within window_ms."""
    try:
        p = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
    except (ValueError, OSError):
        # GPIO34..39 have no internal pull-up (boards put an external one on their button)
        p = machine.Pin(pin, machine.Pin.IN)
    t0 = ticks_ms()
    while True:
        if p.value() == 0:
            return True
        if ticks_diff(ticks_ms(), t0) >= window_ms:
            return False
        _sleep_ms(20)


def safe_reason(pin=None, machine=None, flag=netup.SAFE_FLAG, window_ms=_PIN_WINDOW_MS):
    """Why the application must not start ("pin 0 held low", "flag /safe: ..."), or None."""
    if pin is not None and machine is not None and pin_held(machine, pin, window_ms):
        return "pin %d held low" % pin
    try:
        with open(flag) as f:
            why = f.read().strip()
    except OSError:
        return None
    return "flag %s%s" % (flag, ": " + why if why else "")


def _clock(machine, spec):
    # "GPIO17_OUT": the ESP32 drives the 50 MHz RMII clock on GPIO17; "GPIO0_IN": the PHY does
    pin, mode = spec[4:].split("_")
    return machine.Pin(int(pin)), machine.Pin.OUT if mode == "OUT" else machine.Pin.IN


def start(n, network, machine):
    """Start the interface the network section asks for; returns it (None for kind none)."""
    kind = n["kind"]
    if kind == "none":
        return None
    if n["hostname"]:
        try:
            network.hostname(n["hostname"])  # before activation, or DHCP and mDNS miss it
        except (AttributeError, OSError, ValueError):
            pass
    if kind == "wifi":
        w = network.WLAN(network.STA_IF)
        w.active(True)
        try:
            w.config(reconnects=-1)  # keep rejoining after an AP restart
        except (OSError, ValueError, TypeError):
            pass
        if n["password"]:
            w.connect(n["ssid"], n["password"])
        else:
            w.connect(n["ssid"])
        return w
    Pin = machine.Pin
    kw = {"mdc": Pin(n["mdc"]), "mdio": Pin(n["mdio"]), "phy_type": getattr(network, "PHY_" + n["phy"]),
          "phy_addr": n["addr"]}
    if n["power"] is not None:
        kw["power"] = Pin(n["power"])
    if n["clock"]:
        kw["ref_clk"], kw["ref_clk_mode"] = _clock(machine, n["clock"])
    w = network.LAN(**kw)
    w.active(True)
    return w


def wait(w, timeout_ms, poll_ms=100):
    """Wait for a link with an address; False after timeout_ms."""
    t0 = ticks_ms()
    while not w.isconnected():
        if ticks_diff(ticks_ms(), t0) >= timeout_ms:
            return False
        _sleep_ms(poll_ms)
    return True


def bring_up(n, network, machine):
    """Start the interface and wait for it (at most network.timeout_s); returns status."""
    status = netup.status
    t0 = ticks_ms()
    status["kind"] = n["kind"]
    status["up"] = False
    status["ip"] = None
    status["error"] = None
    try:
        netup.iface = w = start(n, network, machine)
        if w is None:
            status["up"] = True
        elif wait(w, n["timeout_s"] * 1000):
            status["up"] = True
            status["ip"] = netup.address(w)
        else:
            st = None
            try:
                st = w.status()
            except (AttributeError, OSError):
                pass
            # Wi-Fi keeps trying in the background; the application starts anyway
            status["error"] = "no link after %d s (status %s)" % (n["timeout_s"], st)
    except (OSError, ValueError, TypeError, AttributeError) as e:
        status["error"] = "%s: %s" % (type(e).__name__, e)
    status["ms"] = ticks_diff(ticks_ms(), t0)
    return status


def boot(board="/board.json", flag=netup.SAFE_FLAG, machine=None, network=None):
    """What boot.py runs: safe-mode check, then network bring-up. Never raises."""
    from gateway import config

    if machine is None:
        try:
            import machine
        except ImportError:
            machine = None
    try:
        cfg = config.load(board)
    except config.ConfigError as e:
        print("boot: config error: %s (network not started)" % e)
        cfg = None
    # first: after a soft reset the watchdog may still run (supervisor.py explains)
    from gateway import supervisor

    supervisor.early_feed(machine, cfg["watchdog_ms"] if cfg else None)
    status = netup.status
    safe = netup.safe = safe_reason(cfg and cfg["safe_mode_pin"], machine, flag)
    if safe:
        print("safe mode (%s): the application does not start; diag.resume() leaves it" % safe)
        if safe.startswith("pin"):
            return status  # the bare REPL: not even the network
    if cfg is None:
        return status
    n = cfg["network"]
    if n["kind"] != "none" and network is None:
        try:
            import network
        except ImportError:
            status["error"] = "no network module"
            print("boot: network: no network module")
            return status
    bring_up(n, network, machine)
    if status["up"]:
        print("boot: network %s up%s in %d ms" % (n["kind"], " " + status["ip"] if status["ip"] else "", status["ms"]))
    else:
        print("boot: network %s: %s" % (n["kind"], status["error"]))
    return status
