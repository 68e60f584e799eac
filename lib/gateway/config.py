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
}


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
    return parse(doc)


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
