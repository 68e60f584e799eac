# The device's own settings on flash (/data/device.json), kept apart from the board config so
# that a new board config or firmware does not lose them; merged over the board config:
#   {"identity": {"brand": "...", "model": "...", "serial": "..."},
#    "ship": {"port": 4712, "pin_mode": "required", "pin": "8..16 digits",
#             "cem": {"host": "192.168.1.5", "port": 4712, "ski": "40 hex", "pin": "the CEM's PIN"}},
#    "echonet": {"manufacturer": "00000B"}}
# Every key is optional; a missing serial is derived from the SKI (config.ship_settings).
# Errors name the key as device.<section>.<key>.
import jsonfile
from check import normalize_ski
from doccheck import Kit
from gateway.config import SHIP_PORT, ConfigError, cem_host, text_ok
from ship.pin import MODES as PIN_MODES, valid_pin

_KEYS = {
    "identity": ("brand", "model", "serial"),
    "ship": ("port", "cem", "pin", "pin_mode"),
    "echonet": ("manufacturer",),
}


_need = Kit(ConfigError, "device.").need


def _text(v, key):
    _need(text_ok(v), key, "1..32 characters, no ; or quote")
    return v


def manufacturer(v, key="echonet.manufacturer"):
    """ECHONET manufacturer code (3 bytes) from 6 hex digits (0x optional) or a number."""
    if isinstance(v, str):
        s = v[2:] if v[:2] in ("0x", "0X") else v
        ok = len(s) == 6
        try:
            v = int(s, 16) if ok else -1
        except ValueError:
            v = -1
    _need(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFFFFFF, key,
          "6 hex digits (3 bytes), e.g. \"00000B\"")
    return v


def parse(doc):
    """The device config checked: {section: {key: value}} with only the keys given."""
    _need(isinstance(doc, dict), "json", "must be a JSON object")
    out = {}
    for sec in doc:
        _need(sec in _KEYS, sec, "unknown section (identity, ship, echonet)")
        d = doc[sec]
        _need(isinstance(d, dict), sec, "must be an object")
        out[sec] = {}
        for k in d:
            _need(k in _KEYS[sec], sec + "." + k, "unknown key")
    ident = out.get("identity")
    if ident is not None:
        d = doc["identity"]
        for k in ("brand", "model"):
            if k in d:
                ident[k] = _text(d[k], "identity." + k)
        if "serial" in d:
            ident["serial"] = None if d["serial"] is None else _text(d["serial"], "identity.serial")
    ship = out.get("ship")
    if ship is not None:
        d = doc["ship"]
        if "port" in d:
            p = d["port"]
            _need(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536, "ship.port", "must be 1..65535")
            ship["port"] = p
        if "pin" in d:
            _need(d["pin"] is None or valid_pin(d["pin"]), "ship.pin", "null or 8..16 digits as a string")
            ship["pin"] = d["pin"]
        if "pin_mode" in d:
            _need(d["pin_mode"] in PIN_MODES, "ship.pin_mode", "none, optional or required")
            ship["pin_mode"] = d["pin_mode"]
        if "cem" in d:
            c = d["cem"]
            if c is not None:
                _need(isinstance(c, dict), "ship.cem", "null or an object with host, port and ski")
                for k in c:
                    _need(k in ("host", "port", "ski", "pin"), "ship.cem." + k, "unknown key")
                _need(isinstance(c.get("host"), str) and c["host"], "ship.cem.host", "must be a host name or address")
                cem_host(c["host"], "device.ship.cem.host")
                p = c.get("port", SHIP_PORT)
                _need(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536, "ship.cem.port",
                      "must be 1..65535")
                try:
                    ski = normalize_ski(c.get("ski"))
                except (ValueError, AttributeError, TypeError):
                    raise ConfigError("device.ship.cem.ski: must have 40 hex digits")
                pin = c.get("pin")
                _need(pin is None or valid_pin(pin), "ship.cem.pin", "null or the CEM's PIN, 8..16 digits")
                c = {"host": c["host"], "port": p, "ski": ski}
                if pin is not None:
                    c["pin"] = pin
            ship["cem"] = c
    ech = out.get("echonet")
    if ech is not None and "manufacturer" in doc["echonet"]:
        ech["manufacturer"] = manufacturer(doc["echonet"]["manufacturer"])
    return out


def apply(cfg, dev):
    """Merge the checked device config over the board config (in place); cfg["device"] keeps
    the device config itself for those who want to know where a value came from."""
    for sec in dev:
        d = dev[sec]
        target = cfg.get(sec)
        if not isinstance(target, dict):
            # a section the board config does not have (ECHONET off): kept under device only
            continue
        for k in d:
            target[k] = d[k]
    cfg["device"] = dev
    return cfg


def load(path, cfg):
    """Read path (a missing file is an empty device config) and merge it over cfg."""
    try:
        doc = jsonfile.load(path)
    except OSError:
        cfg["device"] = {}
        return cfg
    except ValueError as e:
        raise ConfigError("device.json: %s: not JSON (%s)" % (path, e))
    return apply(cfg, parse(doc))

