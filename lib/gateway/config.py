# Board configuration (JSON) with defaults; errors name the key.
import json

from ship.connection import Timers
from ship.trust import normalize_ski

_DEFAULTS = {
    "ship": {
        "host": "0.0.0.0",
        "port": 4712,
        "path": "/ship/",
        "max_message": 16384,
        "pairing_window_s": 0,
        "cem": None,
        "timers_ms": {},
    },
    "identity": {"brand": "OpenEVGW", "model": "Gateway", "type": "ChargingStation", "serial": None},
    "log": {"level": 2},
    # the charging controller behind Modbus; None: no charger bridge (SHIP only)
    "charger": None,
}

_CHARGER_KEYS = ("map", "link", "hw_min", "hw_max", "phases", "nominal_v", "timeout_ms", "retries", "fail_limit")
_LINK_KEYS = ("kind", "host", "port", "path", "baudrate", "unit", "uart", "tx", "rx", "de")
LINK_KINDS = ("rtu-over-tcp", "tcp", "serial", "uart")


class ConfigError(ValueError):
    pass


def _merge(defaults, given, where):
    if not isinstance(given, dict):
        raise ConfigError("%s: must be an object" % where)
    out = {}
    for k in defaults:
        out[k] = defaults[k]
    for k in given:
        if k not in defaults:
            raise ConfigError("%s.%s: unknown key" % (where, k))
        d = defaults[k]
        v = given[k]
        if isinstance(d, dict) and d:
            v = _merge(d, v, where + "." + k)
        out[k] = v
    return out


def _need(cond, key, why):
    if not cond:
        raise ConfigError("%s: %s" % (key, why))


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise ConfigError("%s: cannot read (%s)" % (path, e))
    except ValueError as e:
        raise ConfigError("%s: not JSON (%s)" % (path, e))
    cfg = parse(doc)
    c = cfg["charger"]
    if c is not None and not c["map"].startswith("/"):
        # the map sits next to the board config (on the device both are copied to /)
        i = path.rfind("/")
        c["map"] = (path[:i] if i > 0 else ("/" if i == 0 else ".")) + "/" + c["map"]
        c["map"] = c["map"].replace("//", "/")
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
    _need(isinstance(c.get("map"), str) and c["map"], "charger.map", "must name a register map file (board_configs/chargers/*.json)")
    out = {"map": c["map"]}
    out["hw_min"] = _num(c, "hw_min", "charger", 0, 80, 6)
    out["hw_max"] = _num(c, "hw_max", "charger", 1, 80, 16)
    _need(out["hw_min"] <= out["hw_max"], "charger.hw_min", "above hw_max")
    out["phases"] = _num(c, "phases", "charger", 1, 3, 3, True)
    out["nominal_v"] = _num(c, "nominal_v", "charger", 100, 300, 230)
    out["timeout_ms"] = _num(c, "timeout_ms", "charger", 20, 10000, 500, True)
    out["retries"] = _num(c, "retries", "charger", 0, 5, 2, True)
    out["fail_limit"] = _num(c, "fail_limit", "charger", 1, 100, 3, True)
    l = c.get("link", {})
    _need(isinstance(l, dict), "charger.link", "must be an object")
    for k in l:
        _need(k in _LINK_KEYS, "charger.link." + k, "unknown key")
    kind = l.get("kind")
    _need(kind in LINK_KINDS, "charger.link.kind", "one of " + ", ".join(LINK_KINDS))
    w = "charger.link"
    link = {"kind": kind, "unit": None, "baudrate": None}
    if "unit" in l:
        link["unit"] = _num(l, "unit", w, 0, 255, 1, True)
    if "baudrate" in l:
        link["baudrate"] = _num(l, "baudrate", w, 1200, 1000000, 9600, True)
    if kind in ("rtu-over-tcp", "tcp"):
        _need(isinstance(l.get("host"), str) and l["host"], w + ".host", "must be a host name or address")
        link["host"] = l["host"]
        link["port"] = _num(l, "port", w, 1, 65535, 502, True)
    elif kind == "serial":
        _need(isinstance(l.get("path"), str) and l["path"], w + ".path", "must be a tty path")
        link["path"] = l["path"]
    else:
        link["uart"] = _num(l, "uart", w, 0, 2, 2, True)
        link["tx"] = _num(l, "tx", w, 0, 48, 17, True)
        link["rx"] = _num(l, "rx", w, 0, 48, 16, True)
        de = l.get("de")
        _need(de is None or (isinstance(de, int) and not isinstance(de, bool) and 0 <= de <= 48), w + ".de", "null or a pin number 0..48")
        link["de"] = de
    for k in ("host", "port", "path"):
        _need(k not in l or k in link, w + "." + k, "not for kind " + kind)
    for k in ("uart", "tx", "rx", "de"):
        _need(k not in l or kind == "uart", w + "." + k, "only for kind uart")
    out["link"] = link
    return out


def parse(doc):
    _need(isinstance(doc, dict), "board", "must be a JSON object")
    board = doc.get("board")
    rest = {}
    for k in doc:
        if k != "board":
            rest[k] = doc[k]
    cfg = _merge(_DEFAULTS, rest, "config")
    cfg["board"] = board
    s = cfg["ship"]
    _need(isinstance(s["host"], str), "ship.host", "must be a string")
    _need(isinstance(s["path"], str) and s["path"].startswith("/"), "ship.path", "must start with /")
    _need(isinstance(s["port"], int) and 0 <= s["port"] < 65536, "ship.port", "must be 0..65535")
    _need(isinstance(s["max_message"], int) and 4096 <= s["max_message"] <= 65536, "ship.max_message", "must be 4096..65536")
    _need(isinstance(s["pairing_window_s"], int) and s["pairing_window_s"] >= 0, "ship.pairing_window_s", "must be >= 0")
    t = s["timers_ms"]
    _need(isinstance(t, dict), "ship.timers_ms", "must be an object")
    for k in t:
        _need(k in ("cmi", "hello", "prolong_threshold", "prolong_min", "close", "idle", "pong"), "ship.timers_ms." + k, "unknown timer")
        _need(isinstance(t[k], int) and t[k] > 0, "ship.timers_ms." + k, "must be a positive integer")
    cem = s["cem"]
    if cem is not None:
        _need(isinstance(cem, dict) and "host" in cem and "port" in cem and "ski" in cem, "ship.cem", "needs host, port and ski")
        _need(isinstance(cem["host"], str) and isinstance(cem["port"], int), "ship.cem", "host is a string, port a number")
        try:
            normalize_ski(cem["ski"])
        except (ValueError, AttributeError):
            raise ConfigError("ship.cem.ski: must have 40 hex digits")
    lv = cfg["log"]["level"]
    _need(isinstance(lv, int) and 0 <= lv <= 3, "log.level", "0 error, 1 warning, 2 info, 3 debug")
    ident = cfg["identity"]
    for k in ("brand", "model", "type"):
        v = ident[k]
        _need(isinstance(v, str) and 0 < len(v) <= 32 and ";" not in v and '"' not in v, "identity." + k, "1..32 characters, no ; or quote")
    v = ident["serial"]
    _need(v is None or (isinstance(v, str) and 0 < len(v) <= 32 and ";" not in v and '"' not in v), "identity.serial", "null or 1..32 characters, no ; or quote")
    if cfg["charger"] is not None:
        cfg["charger"] = _charger(cfg["charger"])
    return cfg


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
        "ship_id": "%s-%s-%s" % (ident["brand"], ident["model"], serial),
        "serial": serial,
        "timers": Timers(**s["timers_ms"]),
    }
