# The gateway's ECHONET Lite front end: the engine on the charger model, its UDP adapter,
# and the installation location (0x81) read back from flash, where ECHONET requires it kept
# (gateway.app Gateway._echonet_location writes it: start-up lets this module go, _forget).
import binascii

import jsonfile
from echonet.engine import Engine
from echonet.udp import EchonetUdp

_FILE = "/echonet.json"  # in the data directory (and in Gateway._echonet_location)


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
    return EchonetUdp(eng, e["host"], e["port"], e["multicast"])


def _load(data_dir):
    try:
        return binascii.unhexlify(jsonfile.read(data_dir + _FILE, None)["location"])
    except (ValueError, KeyError, TypeError):  # no file (None), not JSON (None), no location
        return None

