# Board configuration (JSON) with defaults; errors name the key.
import jsonfile
from check import normalize_ski
from doccheck import Kit
from ship.connection import Timers
from ship.pin import MODES as PIN_MODES, valid_pin

# the SHIP port: the gateway's default, and that of a CEM it dials (ship.cem.port); the test
# CEM (tools/testcem, which must not import lib/) keeps the same number, checked by a test
SHIP_PORT = 4712


def _defaults():
    # built per load, not kept: a dict tree held at module level would stay resident for the
    # whole run (0.8 KB on the 32-bit build) to serve one call at start-up
    return {
        "ship": {
            "host": "0.0.0.0",
            "port": SHIP_PORT,
            "path": "/ship/",
            "max_message": 16384,
            "pairing_window_s": 0,
            "cem": None,
            "cem_browse": False,  # with cem null: dial the first trusted CEM found by mDNS
            "max_sessions": 2,  # SHIP peers at once (distinct SKIs); 4 with PSRAM
            "timers_ms": {},
            # SHIP PIN (ship/pin.py): none | optional | required; pin null: generated once and kept
            # in the data directory (pin.json); pin_tries wrong PINs lock PIN input for pin_lock_s,
            # doubling with every further lock
            "pin_mode": "none",
            "pin": None,
            "pin_tries": 5,
            "pin_lock_s": 60,
            # admission control (lib/ship/admission.py): connections not yet known trusted (TLS,
            # upgrade, CMI, hello/pending) get `preauth` slots plus one reserve slot kept for a
            # trusted peer; trusted connections get max_sessions slots. A WROOM holds two TLS
            # sessions beside one handshake; a PSRAM board can take more. Connection buffer
            # sets: one per session, stranger_sets more that peers not yet trusted may hold.
            "admission": {"preauth": 2, "stranger_sets": 1},
        },
        # the pairing button (BOOT, GPIO0, on the ESP32 boards): held hold_ms, it opens the pairing
        # window for window_s; status_led (a pin, or null) blinks while the window is open
        "pair_button": None,
        "status_led": None,
        "identity": {"brand": "OpenEVGW", "model": "Gateway", "type": "ChargingStation", "serial": None},
        # DNS-SD for SHIP (lib/mdns). enabled null: on on the ESP32, off on the host (a host run
        # multicasts only where a test turns it on, in a network namespace); instance default
        # <brand>-<model>-<serial>, hostname default <brand>-<serial>, ip default the interface's
        "mdns": {"enabled": None, "instance": None, "hostname": None, "ip": None},
        # file_kb: a rotating log file in the data directory (two files of this size), 0: none;
        # ring: bytes of the RAM ring of recent lines (packed, each line at most 120 B and a NUL),
        # null: 2048 (log.RING)
        "log": {"level": 2, "file_kb": 0, "ring": None},
        # the charging controller behind Modbus; None: no charger bridge (SHIP only)
        "charger": None,
        # SPINE use cases on top of the charger (spine.md 12); null values: the defaults of
        # usecases.lpc (failsafe limit 4.2 kW or the nominal max, 2 h, a guard heartbeat within 60 s,
        # failsafe after 120 s without one)
        # lpc_init: "always" (LPC-TS-017 after every start) or "paired" (only once a guard was
        # ever seen, kept in lpc.json); ev_fallback_a: the OPEV safe current (null: the EV's minimum)
        "usecases": {"evcs": True, "cevc": False, "failsafe_w": None, "failsafe_s": None,
                     "hb_timeout_s": None, "lpc_timeout_s": None, "lpc_init": "always", "ev_fallback_a": None},
        # device runtime (boot.py, gateway/netboot, supervisor, timesync); kind none: the host, or a
        # network brought up by other means
        "network": {"kind": "none", "ssid": None, "password": None, "hostname": None, "timeout_s": 20,
                    "phy": None, "mdc": None, "mdio": None, "power": None, "addr": 0, "clock": None},
        "safe_mode_pin": None,  # held low at reset: the application is not started
        "ntp": {"servers": ["pool.ntp.org"], "retries": 5},
        "watchdog_ms": 30000,  # hardware watchdog (machine.WDT), 0: none
        # ECHONET Lite (lib/echonet) on UDP port 3610: host 0.0.0.0 is the device's one socket; a
        # unicast host (127.0.0.2 on the host rig) adds a socket on the group 224.0.23.0.
        # manufacturer: 6 hex digits (FFFFFF: unregistered); discharges null: charger.discharges
        # (class 0x027E instead of 0x02A1); announce_interval_ms: least gap between INFs
        "echonet": {"enabled": False, "host": "0.0.0.0", "port": 3610, "multicast": True,
                    "manufacturer": "FFFFFF", "discharges": None, "announce_interval_ms": 1000},
    }


_CHARGER_KEYS = (
    "map", "link", "hw_min", "hw_max", "phases", "nominal_v", "timeout_ms", "retries", "fail_limit", "discharges",
)
# ESP32 Ethernet PHYs (network.PHY_*) and RMII clock modes (ESP-IDF emac_rmii_clock_gpio_t)
PHYS = ("LAN8720", "IP101", "RTL8201", "DP83848", "KSZ8041", "KSZ8081")
CLOCKS = ("GPIO0_IN", "GPIO0_OUT", "GPIO16_OUT", "GPIO17_OUT")
_LINK_KEYS = ("kind", "host", "port", "path", "baudrate", "unit", "uart", "tx", "rx", "de")
LINK_KINDS = ("rtu-over-tcp", "tcp", "serial", "uart")


class ConfigError(ValueError):
    pass


def _merge(defaults, given, where):
    if not isinstance(given, dict):
        raise ConfigError("%s: must be an object" % where)
    out = {}
    for k in defaults:
        d = defaults[k]
        # a fresh dict per section: the checks below and devconfig.apply fill sections in place
        out[k] = _merge(d, {}, where) if isinstance(d, dict) else d
    for k in given:
        if k not in defaults:
            raise ConfigError("%s.%s: unknown key" % (where, k))
        d = defaults[k]
        v = given[k]
        if isinstance(d, dict) and d:
            v = _merge(d, v, where + "." + k)
        out[k] = v
    return out


_need = Kit(ConfigError).need


def text_ok(v):
    """An identity value (brand, model, type, serial) of the board config or device.json."""
    return isinstance(v, str) and 0 < len(v) <= 32 and ";" not in v and '"' not in v


def cem_host(h, key):
    """A CEM's host name or address: getaddrinfo on the device (lwIP) and the unix port do not
    resolve mDNS names, so a .local name could never be dialled."""
    _need(not h.rstrip(".").lower().endswith(".local"), key,
          "%s is an mDNS name, which the gateway cannot resolve: give the CEM's IP address "
          "(or ship.cem null with ship.cem_browse true to find it by mDNS)" % h)


def _ipv4(v):
    p = v.split(".") if isinstance(v, str) else ()
    return len(p) == 4 and all(x.isdigit() and int(x) < 256 for x in p)


def load(path):
    try:
        doc = jsonfile.load(path)
    except OSError as e:
        raise ConfigError("%s: cannot read (%s)" % (path, e))
    except ValueError as e:
        raise ConfigError("%s: not JSON (%s)" % (path, e))
    cfg = parse(doc)
    c = cfg["charger"]
    if c is not None and not c["map"].startswith("/"):
        # the map sits next to the board config (on the device both are copied to /)
        i = path.rfind("/")
        c["map"] = (path[:i] if i >= 0 else ".") + "/" + c["map"]
    return cfg


def _num(d, key, where, lo, hi, default, integer=False):
    v = d.get(key, default)
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    _need(ok and not isinstance(v, bool) and lo <= v <= hi, where + "." + key,
          "must be %s %s..%s" % ("an integer" if integer else "a number", lo, hi))
    return v


def _charger(c):
    """The charger section checked and completed with defaults (link values the map also
    knows, unit and baud rate, stay None here: the map's apply)."""
    _need(isinstance(c, dict), "charger", "must be an object")
    for k in c:
        _need(k in _CHARGER_KEYS, "charger." + k, "unknown key")
    _need(isinstance(c.get("map"), str) and c["map"], "charger.map",
          "must name a register map file (board_configs/chargers/*.json)")
    out = {"map": c["map"]}
    out["hw_min"] = _num(c, "hw_min", "charger", 0, 80, 6)
    out["hw_max"] = _num(c, "hw_max", "charger", 1, 80, 16)
    _need(out["hw_min"] <= out["hw_max"], "charger.hw_min", "above hw_max")
    out["phases"] = _num(c, "phases", "charger", 1, 3, 3, True)
    out["nominal_v"] = _num(c, "nominal_v", "charger", 100, 300, 230)
    out["timeout_ms"] = _num(c, "timeout_ms", "charger", 20, 10000, 500, True)
    out["retries"] = _num(c, "retries", "charger", 0, 5, 2, True)
    out["fail_limit"] = _num(c, "fail_limit", "charger", 1, 100, 3, True)
    out["discharges"] = c.get("discharges", False)
    _need(isinstance(out["discharges"], bool), "charger.discharges", "must be true or false")
    lk = c.get("link", {})
    _need(isinstance(lk, dict), "charger.link", "must be an object")
    for k in lk:
        _need(k in _LINK_KEYS, "charger.link." + k, "unknown key")
    kind = lk.get("kind")
    _need(kind in LINK_KINDS, "charger.link.kind", "one of " + ", ".join(LINK_KINDS))
    w = "charger.link"
    link = {"kind": kind, "unit": None, "baudrate": None}
    if "unit" in lk:
        link["unit"] = _num(lk, "unit", w, 0, 255, 1, True)
    if "baudrate" in lk:
        link["baudrate"] = _num(lk, "baudrate", w, 1200, 1000000, 9600, True)
    if kind in ("rtu-over-tcp", "tcp"):
        _need(isinstance(lk.get("host"), str) and lk["host"], w + ".host", "must be a host name or address")
        link["host"] = lk["host"]
        link["port"] = _num(lk, "port", w, 1, 65535, 502, True)
    elif kind == "serial":
        _need(isinstance(lk.get("path"), str) and lk["path"], w + ".path", "must be a tty path")
        link["path"] = lk["path"]
    else:
        link["uart"] = _num(lk, "uart", w, 0, 2, 2, True)
        link["tx"] = _num(lk, "tx", w, 0, 48, 17, True)
        link["rx"] = _num(lk, "rx", w, 0, 48, 16, True)
        link["de"] = lk.get("de")
        _pin(link["de"], w + ".de")
    for k in ("host", "port", "path"):
        _need(k not in lk or k in link, w + "." + k, "not for kind " + kind)
    for k in ("uart", "tx", "rx", "de"):
        _need(k not in lk or kind == "uart", w + "." + k, "only for kind uart")
    out["link"] = link
    return out


def parse(doc):
    _need(isinstance(doc, dict), "board", "must be a JSON object")
    board = doc.get("board")
    rest = {}
    for k in doc:
        if k != "board":
            rest[k] = doc[k]
    cfg = _merge(_defaults(), rest, "config")
    cfg["board"] = board
    s = cfg["ship"]
    _need(isinstance(s["host"], str), "ship.host", "must be a string")
    _need(isinstance(s["path"], str) and s["path"].startswith("/"), "ship.path", "must start with /")
    _need(isinstance(s["port"], int) and 0 <= s["port"] < 65536, "ship.port", "must be 0..65535")
    _need(isinstance(s["max_message"], int) and 4096 <= s["max_message"] <= 65536, "ship.max_message",
          "must be 4096..65536")
    _need(isinstance(s["pairing_window_s"], int) and s["pairing_window_s"] >= 0, "ship.pairing_window_s",
          "must be >= 0")
    _num(s, "max_sessions", "ship", 1, 8, 2, True)
    t = s["timers_ms"]
    _need(isinstance(t, dict), "ship.timers_ms", "must be an object")
    for k in t:
        _need(k in ("cmi", "hello", "prolong_threshold", "prolong_min", "close", "idle", "pong", "send"),
              "ship.timers_ms." + k, "unknown timer")
        _need(isinstance(t[k], int) and 0 < t[k] <= 3600000, "ship.timers_ms." + k, "must be 1..3600000")
    _num(s["admission"], "preauth", "ship.admission", 1, 8, 2, True)  # _merge refused other keys
    _num(s["admission"], "stranger_sets", "ship.admission", 1, 8, 1, True)
    _need(s["pin_mode"] in PIN_MODES, "ship.pin_mode", "none, optional or required")
    _need(s["pin"] is None or valid_pin(s["pin"]), "ship.pin", "null or 8..16 digits as a string")
    _num(s, "pin_tries", "ship", 1, 100, 5, True)
    _num(s, "pin_lock_s", "ship", 1, 86400, 60, True)
    b = cfg["pair_button"]
    if b is not None:
        _need(isinstance(b, dict), "pair_button", "null or {pin, hold_ms, window_s}")
        for k in b:
            _need(k in ("pin", "hold_ms", "window_s"), "pair_button." + k, "unknown key")
        b.setdefault("hold_ms", 3000)
        b.setdefault("window_s", 120)
        _pin(b.get("pin"), "pair_button.pin", False)
        _num(b, "hold_ms", "pair_button", 100, 30000, 3000, True)
        _num(b, "window_s", "pair_button", 10, 3600, 120, True)
    _pin(cfg["status_led"], "status_led")
    cem = s["cem"]
    if cem is not None:
        _need(isinstance(cem, dict) and "host" in cem and "port" in cem and "ski" in cem, "ship.cem",
              "needs host, port and ski")
        _need(cem.get("pin") is None or valid_pin(cem["pin"]), "ship.cem.pin", "null or the CEM's PIN, 8..16 digits")
        _need(isinstance(cem["host"], str) and isinstance(cem["port"], int), "ship.cem",
              "host is a string, port a number")
        cem_host(cem["host"], "ship.cem.host")
        try:
            normalize_ski(cem["ski"])
        except (ValueError, AttributeError):
            raise ConfigError("ship.cem.ski: must have 40 hex digits")
    lv = cfg["log"]["level"]
    _need(isinstance(lv, int) and 0 <= lv <= 3, "log.level", "0 error, 1 warning, 2 info, 3 debug")
    ident = cfg["identity"]
    for k in ("brand", "model", "type"):
        _need(text_ok(ident[k]), "identity." + k, "1..32 characters, no ; or quote")
    v = ident["serial"]
    _need(v is None or text_ok(v), "identity.serial", "null or 1..32 characters, no ; or quote")
    if cfg["charger"] is not None:
        cfg["charger"] = _charger(cfg["charger"])
    _runtime(cfg)
    _usecases(cfg["usecases"])
    _mdns(cfg)
    _echonet(cfg)
    return cfg


def _echonet(cfg):
    e = cfg["echonet"]
    _need(e["enabled"] in (True, False), "echonet.enabled", "true or false")
    _need(e["multicast"] in (True, False), "echonet.multicast", "true or false")
    _need(_ipv4(e["host"]), "echonet.host", "an IPv4 address")
    _num(e, "port", "echonet", 1, 65535, 3610, True)
    m = e["manufacturer"]
    _need(isinstance(m, str) and len(m) == 6 and not m.lower().strip("0123456789abcdef"), "echonet.manufacturer",
          "6 hex digits (FFFFFF: unregistered)")
    if e["discharges"] is None:
        e["discharges"] = bool(cfg["charger"] and cfg["charger"]["discharges"])
    _need(e["discharges"] in (True, False), "echonet.discharges", "null, true or false")
    _num(e, "announce_interval_ms", "echonet", 100, 600000, 1000, True)


def _mdns(cfg):
    import sys

    m = cfg["mdns"]
    if m["enabled"] is None:
        m["enabled"] = sys.platform == "esp32"
    _need(m["enabled"] in (True, False), "mdns.enabled", "true, false or null (on on the device)")
    _need(cfg["ship"]["cem_browse"] in (True, False), "ship.cem_browse", "true or false")
    _need(m["enabled"] or not cfg["ship"]["cem_browse"], "ship.cem_browse", "needs mdns.enabled (or set ship.cem)")
    v = m["instance"]
    _need(v is None or (isinstance(v, str) and 0 < len(v.encode()) <= 63), "mdns.instance", "null or 1..63 bytes")
    v = m["hostname"]
    _need(v is None or (isinstance(v, str) and 0 < len(v) <= 63 and not v.strip("-").lower().strip(
        "abcdefghijklmnopqrstuvwxyz0123456789-")), "mdns.hostname", "null or 1..63 letters, digits and -")
    _need(m["ip"] is None or _ipv4(m["ip"]), "mdns.ip", "null or an IPv4 address")


def _usecases(u):
    for k in ("evcs", "cevc"):
        _need(u[k] in (True, False), "usecases." + k, "must be true or false")
    for k, lo, hi, whole in (("failsafe_w", 0, 1000000, True), ("failsafe_s", 7200, 86400, True),
                             ("hb_timeout_s", 0.1, 600, False), ("lpc_timeout_s", 0.1, 600, False)):
        if u[k] is not None:
            _num(u, k, "usecases", lo, hi, None, whole)
    _need(u["lpc_init"] in ("always", "paired"), "usecases.lpc_init", "always or paired")
    if u["ev_fallback_a"] is not None:
        _num(u, "ev_fallback_a", "usecases", 0, 80, None, False)


def _pin(v, key, null=True):
    _need((v is None and null) or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 48), key,
          "null or a pin number 0..48" if null else "a pin number 0..48")


def _runtime(cfg):
    """The device runtime's sections: network, safe_mode_pin, ntp, watchdog_ms, log.file_kb."""
    n = cfg["network"]
    kind = n["kind"]
    _need(kind in ("wifi", "ethernet", "none"), "network.kind", "one of wifi, ethernet, none")
    _num(n, "timeout_s", "network", 1, 300, 20, True)
    h = n["hostname"]
    _need(h is None or (isinstance(h, str) and 0 < len(h) <= 32), "network.hostname", "null or 1..32 characters")
    if kind == "wifi":
        _need(isinstance(n["ssid"], str) and 0 < len(n["ssid"]) <= 32, "network.ssid", "1..32 characters")
        p = n["password"]
        _need(p is None or (isinstance(p, str) and len(p) <= 64), "network.password", "null or up to 64 characters")
    else:
        for k in ("ssid", "password"):
            _need(n[k] is None, "network." + k, "only for kind wifi")
    if kind == "ethernet":
        _need(n["phy"] in PHYS, "network.phy", "one of " + ", ".join(PHYS))
        _pin(n["mdc"], "network.mdc", False)
        _pin(n["mdio"], "network.mdio", False)
        _pin(n["power"], "network.power")
        _num(n, "addr", "network", 0, 31, 0, True)
        _need(n["clock"] is None or n["clock"] in CLOCKS, "network.clock", "null or one of " + ", ".join(CLOCKS))
    else:
        for k in ("phy", "mdc", "mdio", "power", "clock"):
            _need(n[k] is None, "network." + k, "only for kind ethernet")
    _pin(cfg["safe_mode_pin"], "safe_mode_pin")
    t = cfg["ntp"]
    sv = t["servers"]
    _need(isinstance(sv, list) and 0 < len(sv) <= 4, "ntp.servers", "a list of 1..4 host names")
    for s in sv:
        _need(isinstance(s, str) and 0 < len(s) <= 64, "ntp.servers", "a list of 1..4 host names")
    _num(t, "retries", "ntp", 0, 20, 5, True)
    wd = cfg["watchdog_ms"]
    _need(isinstance(wd, int) and not isinstance(wd, bool) and (wd == 0 or 1000 <= wd <= 600000), "watchdog_ms",
          "0 (none) or 1000..600000")
    _num(cfg["log"], "file_kb", "log", 0, 256, 0, True)
    if cfg["log"]["ring"] is not None:
        _num(cfg["log"], "ring", "log", 120, 16384, None, True)


def ship_settings(cfg, ski):
    """The settings ShipNode takes, with the SHIP ID derived from the identity and SKI."""
    s = cfg["ship"]
    ident = cfg["identity"]
    serial = ident["serial"] or ski[:10]
    return {
        "host": s["host"],
        "port": s["port"],
        "path": s["path"],
        "max_message": s["max_message"],
        "cem": s["cem"],
        "max_sessions": s["max_sessions"],
        "ship_id": "%s-%s-%s" % (ident["brand"], ident["model"], serial),
        "serial": serial,
        "timers": Timers(**s["timers_ms"]),
        "pin_mode": s["pin_mode"],
        "pin": s["pin"],
        "pin_tries": s["pin_tries"],
        "pin_lock_s": s["pin_lock_s"],
        "admission": s["admission"],
    }
