"""lib/ws/codec.py under CPython (examples, every bad-frame kind, properties) and under MicroPython
(zero allocation while decoding, same result as CPython)."""

import hashlib
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import mpyrun
from support.paths import MPY_SCRIPTS
from ws.codec import Decoder, WsError, close_payload, encode_header, utf8_valid

# the opcodes of RFC 6455 5.2, written here (lib/ws keeps them as private constants)
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10



# A frame builder written from RFC 6455 section 5.2, independent of the codec's encoder.
def frame(op, payload=b"", fin=True, key=None, rsv=0, length=None):
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | rsv | op
    m = 0x80 if key is not None else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if key is None:
        return head + payload
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


class Rec:
    """Sink recording messages; control frames are appended by run() in stream order."""

    def __init__(self):
        self.events = []
        self.cur = None
        self.max_chunk = 0

    def ws_begin(self):
        assert self.cur is None
        self.cur = bytearray()

    def ws_data(self, buf, off, n):
        assert self.cur is not None and n > 0
        self.cur += buf[off : off + n]
        self.max_chunk = max(self.max_chunk, n)

    def ws_end(self):
        self.events.append(("msg", bytes(self.cur)))
        self.cur = None


def run(dec, data, cuts=(), sink=None):
    """Feed data split at the given cut points (each piece in its own bytearray, as an
    adapter's receive buffer would hold it); returns the sink."""
    sink = sink or Rec()
    pos = [0, *sorted(set(c for c in cuts if 0 < c < len(data))), len(data)]
    for a, b in zip(pos, pos[1:]):
        buf = bytearray(b"\xee" * 3) + bytearray(data[a:b]) + bytearray(b"\xee" * 2)
        off, end = 3, 3 + (b - a)
        while off < end:
            used = dec.feed(buf, off, end - off, sink)
            assert 0 < used <= end - off
            off += used
            if dec.control:
                ev = (dec.control, bytes(dec.ctl[: dec.ctl_len]))
                if dec.control == OP_CLOSE:
                    ev += (dec.close_code,)
                sink.events.append(ev)
    return sink


def err(client, data, max_message=1 << 20):
    with pytest.raises(WsError) as ei:
        run(Decoder(client, max_message), data)
    return ei.value.code


KEY = b"\x37\xfa\x21\x3d"


# --- RFC 6455 section 5.7 examples (binary where the RFC uses text, which SHIP forbids)


def test_rfc_masked_hello():
    rfc = bytes.fromhex("818537fa213d7f9f4d5158")
    assert err(False, rfc) == 1003
    s = run(Decoder(False, 100), b"\x82" + rfc[1:])
    assert s.events == [("msg", b"Hello")]


def test_rfc_unmasked_hello_and_fragments():
    assert run(Decoder(True, 100), bytes.fromhex("820548656c6c6f")).events == [("msg", b"Hello")]
    frags = bytes.fromhex("020348656c") + bytes.fromhex("80026c6f")
    assert run(Decoder(True, 100), frags).events == [("msg", b"Hello")]


def test_rfc_ping_pong_and_lengths():
    d = Decoder(True, 1 << 17)
    s = run(d, bytes.fromhex("890548656c6c6f"))
    assert s.events == [(OP_PING, b"Hello")]
    s = run(Decoder(False, 10), bytes.fromhex("8a8537fa213d7f9f4d5158"))
    assert s.events == [(OP_PONG, b"Hello")]
    p = bytes(range(256))
    s = run(Decoder(True, 1 << 17), b"\x82\x7e\x01\x00" + p)
    assert s.events == [("msg", p)]
    p = os.urandom(65536)
    s = run(Decoder(True, 1 << 17), b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00" + p)
    assert s.events == [("msg", p)]


# --- encoder


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 65535, 65536, 70000, (1 << 32) + 5])
@pytest.mark.parametrize("key", [None, KEY])
def test_encode_header_matches_reference(n, key):
    buf = bytearray(20)
    h = encode_header(buf, 3, OP_BINARY, n, key)
    ref = frame(OP_BINARY, key=key, length=n)
    assert bytes(buf[3 : 3 + h]) == ref and h == len(ref)


def test_encode_roundtrip_both_roles():
    for client in (False, True):
        data = os.urandom(3000)
        buf = bytearray(14 + len(data))
        key = None if client else KEY
        h = encode_header(buf, 0, OP_BINARY, len(data), key)
        buf[h:] = data
        if key:
            for i in range(len(data)):
                buf[h + i] ^= key[i % 4]
        s = run(Decoder(client, 4096), bytes(buf[: h + len(data)]), cuts=range(1, 3014, 97))
        assert s.events == [("msg", data)]
    buf = bytearray(20)
    h = encode_header(buf, 0, OP_CONT, 5, None, fin=False)
    assert bytes(buf[:h]) == b"\x00\x05"


def test_close_payload():
    buf = bytearray(125)
    n = close_payload(buf, 0, 4452, "Node rejected by application")
    assert bytes(buf[:n]) == b"\x11\x64Node rejected by application"
    n = close_payload(buf, 0, 1000)
    assert bytes(buf[:n]) == b"\x03\xe8"
    n = close_payload(buf, 0, 1000, "\u20ac" * 60)  # 180 bytes of 3-byte characters
    assert n <= 125 and (n - 2) % 3 == 0
    bytes(buf[2:n]).decode()


# --- every bad frame kind


BAD = [
    ("text frame", False, frame(1, b"hi", key=KEY), 1003),
    ("unmasked from client", False, frame(2, b"hi"), 1002),
    ("masked from server", True, frame(2, b"hi", key=KEY), 1002),
    ("continuation first", False, frame(0, b"x", key=KEY), 1002),
    ("data inside fragmented", False, frame(2, b"a", fin=False, key=KEY) + frame(2, b"b", key=KEY), 1002),
    ("text inside fragmented", False, frame(2, b"a", fin=False, key=KEY) + frame(1, b"b", key=KEY), 1003),
    ("rsv1", False, frame(2, b"x", key=KEY, rsv=0x40), 1002),
    ("rsv2", True, frame(2, b"x", rsv=0x20), 1002),
    ("rsv3", True, frame(9, b"", rsv=0x10), 1002),
    ("opcode 3", False, frame(3, b"x", key=KEY), 1002),
    ("opcode 7", True, frame(7), 1002),
    ("opcode 11", False, frame(11, key=KEY), 1002),
    ("opcode 15", True, frame(15), 1002),
    ("control not fin", False, frame(9, b"x", fin=False, key=KEY), 1002),
    ("control 126 bytes", False, frame(9, b"x" * 126, key=KEY), 1002),
    ("close 1 byte", True, frame(8, b"\x03"), 1002),
    ("64-bit top bit", False, b"\x82\xff\x80" + bytes(7) + KEY, 1002),
    ("64-bit huge", True, b"\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00", 1009),
    ("64-bit 2^30", True, b"\x82\x7f\x00\x00\x00\x00\x40\x00\x00\x00", 1009),
    ("over max in header", False, frame(2, key=KEY, length=16385), 1009),
    (
        "over max over fragments",
        False,
        frame(2, b"a" * 10000, fin=False, key=KEY) + frame(0, key=KEY, length=6385),
        1009,
    ),
    ("close reason not utf-8", True, frame(8, b"\x03\xe8\xff"), 1007),
    ("close reason overlong", False, frame(8, b"\x03\xe8\xc0\xaf", key=KEY), 1007),
    ("close reason surrogate", True, frame(8, b"\x03\xe8\xed\xa0\x80"), 1007),
    ("close reason truncated", True, frame(8, b"\x03\xe8\xe2\x82"), 1007),
]


@pytest.mark.parametrize("name,client,data,code", BAD, ids=[b[0] for b in BAD])
def test_bad_frames(name, client, data, code):
    assert err(client, data, max_message=16384) == code
    # Header errors surface whatever the split.
    for cut in range(1, min(len(data), 16)):
        with pytest.raises(WsError) as ei:
            run(Decoder(client, 16384), data, cuts=[cut])
        assert ei.value.code == code


def test_oversize_rejected_before_payload():
    s = Rec()
    d = Decoder(False, 100)
    with pytest.raises(WsError) as ei:
        run(d, frame(2, b"z" * 101, key=KEY), sink=s)
    assert ei.value.code == 1009 and s.cur is None and not s.events
    # A failed decoder stays failed.
    with pytest.raises(WsError):
        d.feed(bytearray(b"\x82\x00"), 0, 2, s)


def test_exact_max_ok_and_fragment_sum():
    d = Decoder(False, 16384)
    data = frame(2, b"a" * 10000, fin=False, key=KEY) + frame(0, b"b" * 6384, key=KEY)
    assert run(d, data).events == [("msg", b"a" * 10000 + b"b" * 6384)]
    # The limit is per message: the next one starts from zero.
    assert run(d, frame(2, b"c" * 16384, key=KEY)).events == [("msg", b"c" * 16384)]


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1011, 1014, 3000, 4001, 4452, 4999])
def test_close_codes_valid(code):
    s = run(Decoder(True, 10), frame(8, struct.pack(">H", code) + "ok \u00e9".encode()))
    assert s.events == [(OP_CLOSE, struct.pack(">H", code) + "ok \u00e9".encode(), code)]


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_close_codes_invalid(code):
    assert err(True, frame(8, struct.pack(">H", code))) == 1002


def test_close_empty_and_ignored_tail():
    d = Decoder(False, 10)
    s = run(d, frame(8, key=KEY) + frame(2, b"late", key=KEY))
    assert s.events == [(OP_CLOSE, b"", 0)]
    assert d.feed(bytearray(b"junk"), 0, 4, s) == 4


def test_empty_messages_delivered():
    data = frame(2, key=KEY) + frame(2, fin=False, key=KEY) + frame(0, key=KEY) + frame(2, b"x", key=KEY)
    assert run(Decoder(False, 10), data).events == [("msg", b""), ("msg", b""), ("msg", b"x")]


def test_feed_returns_after_each_control_frame():
    data = frame(9, b"a") + frame(9, b"b") + frame(2, b"m")
    d = Decoder(True, 10)
    buf = bytearray(data)
    s = Rec()
    used = d.feed(buf, 0, len(buf), s)
    assert used == 3 and d.control == OP_PING and bytes(d.ctl[: d.ctl_len]) == b"a"
    used2 = d.feed(buf, used, len(buf) - used, s)
    assert used2 == 3 and bytes(d.ctl[: d.ctl_len]) == b"b"
    assert d.feed(buf, 6, len(buf) - 6, s) == 3 and d.control == 0
    assert s.events == [("msg", b"m")]


def test_chunks_bounded_by_feed_size():
    # A 10 KB message in 1 KB fragments reaches the sink in pieces no larger than a read.
    msg = os.urandom(10240)
    data = b"".join(
        frame(2 if i == 0 else 0, msg[i : i + 1024], fin=i + 1024 >= len(msg), key=os.urandom(4))
        for i in range(0, len(msg), 1024)
    )
    s = run(Decoder(False, 16384), data, cuts=range(700, len(data), 700))
    assert s.events == [("msg", msg)] and s.max_chunk <= 700


# --- properties

keys = st.binary(min_size=4, max_size=4)


@st.composite
def streams(draw):
    client = draw(st.booleans())
    mk = (lambda: None) if client else (lambda: draw(keys))
    data, expected = b"", []
    for _ in range(draw(st.integers(0, 5))):
        msg = draw(st.binary(max_size=3000))
        cuts = sorted(draw(st.lists(st.integers(0, len(msg)), max_size=4)))
        parts = [msg[a:b] for a, b in zip([0, *cuts], [*cuts, len(msg)])]
        for i, p in enumerate(parts):
            data += frame(OP_BINARY if i == 0 else OP_CONT, p, fin=i == len(parts) - 1, key=mk())
            if i == len(parts) - 1:
                expected.append(("msg", msg))
            if draw(st.integers(0, 3)) == 0:
                op = draw(st.sampled_from([OP_PING, OP_PONG]))
                pl = draw(st.binary(max_size=125))
                data += frame(op, pl, key=mk())
                expected.append((op, pl))
    if draw(st.booleans()):
        data += frame(OP_CLOSE, b"\x03\xe8bye", key=mk())
        expected.append((OP_CLOSE, b"\x03\xe8bye", 1000))
    splits = draw(st.lists(st.integers(0, len(data)), max_size=12))
    return client, data, splits, expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_valid_streams_reassemble(s):
    client, data, splits, expected = s
    assert run(Decoder(client, 4096), data, cuts=splits).events == expected


@settings(max_examples=500, deadline=None)
@given(st.booleans(), st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=6))
def test_random_bytes_only_wserror(client, data, splits):
    try:
        run(Decoder(client, 200), data, cuts=splits)
    except WsError as e:
        assert e.code in (1002, 1003, 1007, 1009)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_streams_only_wserror(s, flips):
    client, data, splits, _ = s
    data = bytearray(data)
    for pos, val in flips:
        if data:
            data[pos % len(data)] = val
    try:
        run(Decoder(client, 2048), bytes(data), cuts=splits)
    except WsError as e:
        assert e.code in (1002, 1003, 1007, 1009)


@given(st.binary(max_size=40))
def test_utf8_validator_agrees_with_cpython(b):
    try:
        b.decode("utf-8")
        ok = True
    except UnicodeDecodeError:
        ok = False
    assert utf8_valid(b, 0, len(b)) == ok


@given(st.text(max_size=20))
def test_utf8_validator_accepts_text(t):
    b = t.encode()
    assert utf8_valid(b, 0, len(b))


# --- MicroPython: same result, no allocation while decoding


def _mpy_stream():
    rnd = __import__("random").Random(6455)

    def rb(n):
        return bytes(rnd.getrandbits(8) for _ in range(n))

    big = rb(10240)
    data = b""
    for i in range(0, len(big), 1024):
        data += frame(OP_BINARY if i == 0 else OP_CONT, big[i : i + 1024], fin=i + 1024 >= len(big), key=rb(4))
        if i == 4096:
            data += frame(OP_PING, b"keepalive", key=rb(4))
    data += frame(OP_BINARY, big, key=rb(4))
    data += frame(OP_BINARY, b"", key=rb(4))
    data += frame(OP_CLOSE, b"\x0f\xa1close", key=rb(4))
    return data


def _describe(events):
    out = []
    for ev in events:
        if ev[0] == "msg":
            out.append("MSG %d %s" % (len(ev[1]), hashlib.sha1(ev[1]).hexdigest()))
        else:
            out.append("CTL %d %d %s" % (ev[0], len(ev[1]), hashlib.sha1(ev[1]).hexdigest()))
    return out


@pytest.mark.parametrize("chunk", [1024, 7])
def test_micropython_decoder_zero_alloc_and_same_result(tmp_path, chunk):
    data = _mpy_stream()
    path = tmp_path / "stream.bin"
    path.write_bytes(data)
    expected = _describe(run(Decoder(False, 16384), data, cuts=range(chunk, len(data), chunk)).events)
    r = mpyrun.run(os.path.join(MPY_SCRIPTS, "ws_codec_check.py"), args=[str(path), str(chunk)]).check()
    got = [line for line in r.stdout.splitlines() if line.startswith(("MSG", "CTL"))]
    assert got == expected
    assert "ZERO-ALLOC ok" in r.stdout


def test_codec_and_stream_keep_the_rfc_opcodes():
    """ws.codec and ws.stream keep the opcodes as private constants (inlined under MicroPython,
    no module globals): they must be RFC 6455's."""
    from ws import codec, stream

    assert (codec._OP_CONT, codec._OP_TEXT, codec._OP_BINARY, codec._OP_CLOSE, codec._OP_PING,
            codec._OP_PONG) == (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG)
    assert (stream._OP_BINARY, stream._OP_CLOSE, stream._OP_PING, stream._OP_PONG) == (
        OP_BINARY, OP_CLOSE, OP_PING, OP_PONG)
