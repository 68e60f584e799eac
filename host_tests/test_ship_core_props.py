"""Property tests of the SHIP connection core: no input sequence makes it raise or misbehave."""

import json

from hypothesis import given, settings, strategies as st

from cases import pin_cases as PC
from cases import ship_core_cases as K
from ship import connection as C
from ship import messages as M
from ship import pin as P

VALID = [M.CMI, K.HELLO_READY, K.ANNOUNCE, K.SELECT, K.PIN, K.AMR, K.AM_PEER,
         M.DATA_PREFIX + K.DATAGRAM + M.DATA_SUFFIX]
EXTRA = [K.HELLO_PENDING, M.HELLO_ABORTED, M.HELLO_PROLONG, M.CLOSE_CONFIRM,
         M.close_announce(500, "unspecific"), b'\x01{"error":1}', M.proto_error(3),
         b'\x01{"connectionPinState":[{"pinState":"required"}]}', b"\x07x", b"\x01", b"", b"\x02"]


def mutate(data, draw):
    b = bytearray(data)
    kind = draw(st.integers(0, 4))
    if not b or kind == 0:
        return bytes(b) + draw(st.binary(max_size=8))
    i = draw(st.integers(0, len(b) - 1))
    if kind == 1:
        b[i] = draw(st.integers(0, 255))
    elif kind == 2:
        del b[i:]
    elif kind == 3:
        b[i:i] = draw(st.binary(min_size=1, max_size=4))
    else:
        del b[i]
    return bytes(b)


@st.composite
def sessions(draw):
    msgs = []
    for m in VALID:
        r = draw(st.integers(0, 9))
        if r == 0:
            continue  # dropped
        if r == 1:
            m = mutate(m, draw)
        msgs.append(m)
        if draw(st.integers(0, 5)) == 0:
            msgs.append(draw(st.sampled_from(EXTRA + [draw(st.binary(max_size=40))])))
    return msgs


def check_outputs(c):
    closed = False
    for a in c.out:
        assert a[0] in ("send", "close", "pending", "ready", "unknown")
        if a[0] == "send":
            assert not closed, "sent after close"
            assert isinstance(a[1], bytes) and len(a[1]) >= 2
            assert a[1][0] in (0, 1, 3)
        if a[0] == "close":
            assert not closed, "closed twice"
            assert a[1] in (C.CLOSE_NORMAL, C.CLOSE_REJECTED, C.CLOSE_USER, 1000)
            closed = True


@settings(max_examples=400, deadline=None)
@given(sessions(), st.booleans(), st.booleans(), st.integers(1, 64), st.lists(st.integers(0, 70000), max_size=6))
def test_any_session_never_raises(msgs, server, trusted, chunk, ticks):
    c, sp = K.new(server=server, trusted=trusted)
    now = 0
    for i, m in enumerate(msgs):
        K.deliver(c, m, chunk)
        if i < len(ticks):
            now += ticks[i]
            c.tick(now)
    c.tick(now + 10 ** 6)
    check_outputs(c)
    # with time running out every connection ends, except an established one
    assert c.state in (C.CLOSED, C.DATA)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 32))
def test_random_bytes_in_data_exchange(data, chunk):
    c, sp = K.server_to_data()
    K.deliver(c, b"\x02" + data, chunk)
    K.deliver(c, data, chunk)
    check_outputs(c)
    if c.state == C.DATA:
        K.deliver(c, M.DATA_PREFIX + K.DATAGRAM + M.DATA_SUFFIX, chunk)
        assert sp.msgs[-1] == K.DATAGRAM


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 200), min_size=1, max_size=30))
def test_datagram_survives_any_chunking(cuts):
    c, sp = K.server_to_data()
    msg = bytearray(M.DATA_PREFIX + K.DATAGRAM + M.DATA_SUFFIX)
    c.ws_begin()
    off = 0
    for n in cuts:
        if off >= len(msg):
            break
        n = min(n, len(msg) - off)
        c.ws_data(msg, off, n)
        off += n
    if off < len(msg):
        c.ws_data(msg, off, len(msg) - off)
    c.ws_end()
    assert sp.msgs == [K.DATAGRAM]


# ---- the PIN phase (ship/pin.py, IEC 63380-3 6.9.6) --------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.text(max_size=40)
    | st.text(alphabet="0123456789", min_size=0, max_size=2000),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def pin_messages(draw):
    kind = draw(st.integers(0, 4))
    if kind == 0:
        body = {"connectionPinInput": [{"pin": draw(_json_values)}]}
    elif kind == 1:
        pin_state = st.sampled_from(["none", "required", "optional", "pinOk"]) | st.text(max_size=10)
        body = {"connectionPinState": [{"pinState": draw(pin_state)},
                                       {"inputPermission": draw(st.sampled_from(["ok", "busy"]) | _json_values)}]}
    elif kind == 2:
        body = {"connectionPinError": [{"error": draw(_json_values)}]}
    elif kind == 3:
        name = draw(st.sampled_from(["connectionPinInput", "connectionPinState", "connectionPinError"]))
        body = {name: draw(_json_values)}
    else:
        body = {"connectionPinInput": [{"pin": PC.SECRET}]}
    try:
        raw = json.dumps(body).encode()
    except (TypeError, ValueError):
        raw = b"{}"
    return b"\x01" + raw


@settings(max_examples=400, deadline=None)
@given(st.lists(pin_messages(), max_size=8), st.booleans(), st.sampled_from(["optional", "required"]),
       st.integers(1, 4), st.integers(1, 64))
def test_pin_phase_never_raises(msgs, trusted, mode, tries, chunk):
    pol = P.PinPolicy(mode, PC.SECRET, P.PinGuard(tries, 1000))
    c = PC.server(pol, trusted=trusted)
    for m in msgs:
        K.deliver(c, m, chunk)
    c.tick(10 ** 6)
    kinds = set(a[0] for a in c.out)
    assert kinds <= {"send", "close", "pending", "ready", "pin_wait", "pin_ok", "pin_wrong", "unknown"}, kinds
    closed = [a for a in c.out if a[0] == "close"]
    assert len(closed) <= 1
    # trusted only through the right PIN: never more wrong PINs accepted than tries allow
    if ("pin_ok",) in c.out:
        assert not trusted and c.state in (C.DATA, C.CLOSED)
    assert pol.guard.fails < tries
    assert c.state in (C.CLOSED, C.DATA)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.integers() | st.none() | st.lists(st.text(max_size=3), max_size=3))
def test_pin_equal_only_for_the_secret(given_pin):
    assert P.equal(PC.SECRET, given_pin) == (given_pin == PC.SECRET)
