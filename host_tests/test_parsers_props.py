"""Property and mutation runs for the small parsers at the edge: the WebSocket upgrade head and
the board configuration. Whatever arrives, they answer with their own error or a result."""

import json

from hypothesis import given, settings, strategies as st

from gateway import config
from ws import upgrade

REQUEST = (
    b"GET /ship/ HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: ship\r\n\r\n"
)
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RESPONSE = upgrade.accept_response(KEY)


@st.composite
def mutated(draw, base):
    b = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 3))
        i = draw(st.integers(0, max(0, len(b) - 1)))
        if op == 0 and b:
            b[i] = draw(st.integers(0, 255))
        elif op == 1:
            del b[i : i + draw(st.integers(1, 8))]
        elif op == 2:
            b[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            del b[i:]
    return bytes(b)


def _parse(fn, data, *args):
    buf = bytearray(2048)
    n = min(len(data), len(buf))
    buf[:n] = data[:n]
    try:
        return fn(buf, n, *args)
    except upgrade.UpgradeError as e:
        # a server answers with one of its statuses; a client reports the status it received
        assert isinstance(e.status, int)
        if fn is upgrade.parse_request:
            assert e.status in (400, 403, 405, 408, 426, 431)
        return e


@settings(max_examples=500, deadline=None)
@given(st.one_of(mutated(REQUEST), st.binary(max_size=400)))
def test_request_parser_never_raises_foreign_errors(data):
    r = _parse(upgrade.parse_request, data)
    if isinstance(r, tuple):
        path, key, hl = r
        assert 0 < hl <= len(data) and isinstance(path, str)


@settings(max_examples=500, deadline=None)
@given(st.one_of(mutated(RESPONSE), st.binary(max_size=400)))
def test_response_parser_never_raises_foreign_errors(data):
    r = _parse(upgrade.parse_response, data, KEY)
    assert r is None or isinstance(r, (int, upgrade.UpgradeError))


@given(st.integers(0, len(REQUEST)))
def test_request_incomplete_until_the_blank_line(cut):
    r = _parse(upgrade.parse_request, REQUEST[:cut])
    if cut < len(REQUEST):
        assert r is None
    else:
        assert r[0] == "/ship/"


# ---- board configuration ---------------------------------------------------------------------

GOOD = {
    "board": "t",
    "ship": {"host": "127.0.0.1", "port": 4712, "timers_ms": {"cmi": 1000}},
    "identity": {"brand": "B", "model": "M", "type": "ChargingStation", "serial": None},
}


def test_good_config_and_derived_ship_id():
    cfg = config.parse(json.loads(json.dumps(GOOD)))
    s = config.ship_settings(cfg, "ab" * 20)
    assert s["ship_id"] == "B-M-ababababab"
    assert s["timers"].cmi == 1000 and s["timers"].hello == 60000


def test_errors_name_the_key():
    cases = [
        ({"ship": {"port": 70000}}, "ship.port"),
        ({"ship": {"bogus": 1}}, "config.ship.bogus"),
        ({"ship": {"timers_ms": {"hello": -1}}}, "ship.timers_ms.hello"),
        ({"ship": {"timers_ms": {"nap": 5}}}, "ship.timers_ms.nap"),
        ({"ship": {"cem": {"host": "x"}}}, "ship.cem"),
        ({"identity": {"brand": "a;b"}}, "identity.brand"),
        ({"identity": {"model": ""}}, "identity.model"),
    ]
    for change, key in cases:
        doc = json.loads(json.dumps(GOOD))
        for section, values in change.items():
            doc[section].update(values)
        try:
            config.parse(doc)
        except config.ConfigError as e:
            assert str(e).startswith(key), (str(e), key)
        else:
            raise AssertionError("accepted %r" % change)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-70000, 70000) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(json_values, st.fixed_dictionaries({"ship": json_values, "identity": json_values})))
def test_any_json_gives_config_or_config_error(doc):
    try:
        config.parse(doc)
    except config.ConfigError:
        pass
