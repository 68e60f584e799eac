"""Properties of the device runtime's parsers: the board config's runtime sections, the device
config and the crash state file take any JSON value and either accept it or raise ConfigError
naming a key (CrashState never raises); a mutation corpus of device.json, board.json and
crash.json texts runs the same parsers under MicroPython."""

import json
import random

from support import mpyrun
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import config, devconfig
from gateway.supervisor import CrashState

KEYS = ["network", "kind", "wifi", "ethernet", "none", "ssid", "password", "hostname", "timeout_s", "phy",
        "mdc", "mdio", "power", "addr", "clock", "safe_mode_pin", "ntp", "servers", "retries", "watchdog_ms",
        "log", "file_kb", "level", "identity", "brand", "model", "serial", "ship", "port", "cem", "host", "ski",
        "echonet", "manufacturer", "count", "total", "last", "LAN8720", "GPIO17_OUT"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 70000), st.floats(allow_nan=False),
                    st.sampled_from(KEYS + ["", "ab" * 20, "00000B", "0x00000B", "GPIO0_IN"]), st.text(max_size=40))
values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                   st.dictionaries(st.sampled_from(KEYS), c, max_size=5)),
                      max_leaves=20)
key_of = st.sampled_from(["network", "safe_mode_pin", "ntp", "watchdog_ms", "log"])


def _key_named(msg):
    head = msg.split(":", 1)[0]
    return head and " " not in head.strip()


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(key_of, values, max_size=4))
def test_board_runtime_sections_accept_or_name_a_key(doc):
    try:
        cfg = config.parse(doc)
    except config.ConfigError as e:
        assert _key_named(str(e)), str(e)
        return
    n = cfg["network"]
    assert n["kind"] in ("wifi", "ethernet", "none")
    assert isinstance(cfg["watchdog_ms"], int)


@settings(max_examples=400, deadline=None)
@given(st.one_of(values, st.dictionaries(st.sampled_from(["identity", "ship", "echonet"]), values, max_size=3)))
def test_device_config_accepts_or_names_a_key(doc):
    try:
        dev = devconfig.parse(doc)
    except config.ConfigError as e:
        assert str(e).startswith("device."), str(e)
        return
    cfg = devconfig.apply(config.parse({}), dev)
    config.ship_settings(cfg, "0" * 40)  # a merged config is usable


@settings(max_examples=300, deadline=None)
@given(values)
def test_crash_state_takes_anything(doc):
    s = CrashState(doc)
    assert s.count >= 0 and s.total >= 0 and s.delay_s() >= 0
    assert CrashState(s.doc()).doc() == s.doc()


SEEDS = [
    ("device", json.dumps({"identity": {"brand": "B", "model": "M", "serial": "S1"},
                           "ship": {"port": 4712, "cem": {"host": "10.0.0.2", "port": 4712, "ski": "ab" * 20}},
                           "echonet": {"manufacturer": "00000B"}})),
    ("board", json.dumps({"network": {"kind": "ethernet", "phy": "LAN8720", "mdc": 23, "mdio": 18, "power": 12,
                                      "addr": 0, "clock": "GPIO17_OUT", "timeout_s": 20},
                          "safe_mode_pin": 0, "ntp": {"servers": ["pool.ntp.org"], "retries": 5},
                          "watchdog_ms": 30000, "log": {"level": 2, "file_kb": 8}})),
    ("board", json.dumps({"network": {"kind": "wifi", "ssid": "home", "password": "pw", "hostname": "wb"}})),
    ("crash", json.dumps({"count": 3, "total": 9, "last": "task bridge: OSError: 5"})),
]


def _mutate(rng, text):
    b = bytearray(text.encode())
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        i = rng.randrange(len(b))
        if op == 0:
            b[i] = rng.randrange(256)
        elif op == 1:
            del b[i]
        elif op == 2:
            b.insert(i, rng.choice(b'{}[]",:0123456789-.aetnrul'))
        else:
            j = rng.randrange(len(b))
            b[i], b[j] = b[j], b[i]
    return bytes(b)


MUTANTS = """
import json
from gateway import config, devconfig
from gateway.supervisor import CrashState
ok = rejected = 0
with open(%r, "rb") as f:
    for line in f:
        kind, _, text = line.rstrip(b"\\n").partition(b" ")
        try:
            doc = json.loads(text)
        except (ValueError, UnicodeError):
            rejected += 1
            continue
        try:
            if kind == b"device":
                devconfig.parse(doc)
            elif kind == b"board":
                config.parse(doc)
            else:
                CrashState(doc).delay_s()
            ok += 1
        except config.ConfigError:
            rejected += 1
print("MUTANTS", ok, rejected)
"""


def test_mutation_corpus_under_micropython(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "corpus"
    n = 0
    with open(path, "wb") as f:
        for _ in range(300):
            for kind, text in SEEDS:
                m = _mutate(rng, text)
                if b"\n" in m:
                    continue
                f.write(kind.encode() + b" " + m + b"\n")
                n += 1
    r = mpyrun.run_code(MUTANTS % str(path), tmp_path, heapsize="512K").check()
    ok, rejected = map(int, r.stdout.split("MUTANTS")[1].split())
    assert ok + rejected == n and ok > 0 and rejected > 0
