# The gateway's ECHONET Lite front end: the engine on the charger model, its UDP adapter,
# and the installation location (0x81) kept on flash as ECHONET requires.
import binascii

import jsonfile
import log
from echonet.engine import Engine
from echonet.udp import EchonetUdp

_TAG = "echonet"
_FILE = "/echonet.json"


def build(cfg, charger, data_dir, ski, serial):
    """The EchonetUdp (not yet open) for a parsed board config, or None when disabled."""
    e = cfg["echonet"]
    if not e["enabled"]:
        return None
    c = cfg["charger"] or {}
    m = e["manufacturer"]  # hex text from the board config, an int from /data/device.json
    eng = Engine(
        charger,
        manufacturer=m if isinstance(m, int) else int(m, 16),
        ident=binascii.unhexlify(ski)[:10],  # stable per device (its certificate), unique
        discharges=e["discharges"],
        product=cfg["identity"]["model"],
        serial=serial,
        phases=c.get("phases", 3),
        nominal_v=c.get("nominal_v", 230),
        hw_min=c.get("hw_min", 6),
        hw_max=c.get("hw_max", 16),
        location=_load(data_dir),
        announce_ms=e["announce_interval_ms"],
    )
    eng.on_location = lambda loc: _save(data_dir, loc)
    return EchonetUdp(eng, e["host"], e["port"], e["multicast"])


def _load(data_dir):
    try:
        return binascii.unhexlify(jsonfile.read(data_dir + _FILE, None)["location"])
    except (ValueError, KeyError, TypeError):  # no file (None), not JSON (None), no location
        return None


def _save(data_dir, loc):
    # temp file + rename: a crash mid-write leaves the previous value
    path = data_dir + _FILE
    try:
        jsonfile.write(path, {"location": binascii.hexlify(loc).decode()})
    except OSError as x:
        log.warn(_TAG, "cannot store the installation location (%s)", x)
