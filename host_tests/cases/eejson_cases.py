# EEBUS JSON reader/writer scenarios. Plain functions with asserts, no pytest: the same file
# runs under CPython (test_eejson.py) and under the MicroPython unix port (test_cases_mpy.py).
# The captures are host_tests/vectors/eebus-captures (support.paths, which works under both).
import json
import os
import sys

from eejson import reader as reader_mod
from eejson import writer as writer_mod
from eejson.dialect import Path, build
from eejson.reader import Consumer, JsonError, Names, Reader, parse, to_float
from eejson.writer import Writer
from support.paths import CAPTURES

MPY = sys.implementation.name == "micropython"

# ship.md 12.1: the reference pair of ship-go's TestJsonIntoEEBUSJson
REF_EEBUS = (
    b'{"datagram":[{"header":[{"specificationVersion":"1.2.0"},{"addressSource":[{"device":"d:_i:3210_EVSE"},'
    b'{"entity":[1,1]},{"feature":6}]},{"addressDestination":[{"device":"d:_i:3210_HEMS"},{"entity":[1]},'
    b'{"feature":1}]},{"msgCounter":194},{"msgCounterReference":4890},{"cmdClassifier":"reply"}]},'
    b'{"payload":[{"cmd":[[{"deviceClassificationManufacturerData":[{"deviceName":""},{"deviceCode":""},'
    b'{"brandName":""},{"powerSource":"mains3Phase"}]}]]}]}]}'
)
REF_PLAIN = (
    '{"datagram":{"header":{"specificationVersion":"1.2.0","addressSource":{"device":"d:_i:3210_EVSE",'
    '"entity":[1,1],"feature":6},"addressDestination":{"device":"d:_i:3210_HEMS","entity":[1],"feature":1},'
    '"msgCounter":194,"msgCounterReference":4890,"cmdClassifier":"reply"},"payload":{"cmd":'
    '[{"deviceClassificationManufacturerData":{"deviceName":"","deviceCode":"","brandName":"",'
    '"powerSource":"mains3Phase"}}]}}}'
)


def captures_dir():
    return CAPTURES


def capture_names():
    return sorted(n for n in os.listdir(captures_dir()) if n.endswith(".json"))


def load(name):
    with open(captures_dir() + "/" + name, "rb") as f:
        data = f.read()
    if data.endswith(b"\n"):
        data = data[:-1]
    return data


class Recorder(Consumer):
    # Keeps the events as (code, argument) so that an emit function can replay them.
    def __init__(self):
        self.ev = []

    def start_object(self):
        self.ev.append((0, None))

    def end_object(self):
        self.ev.append((1, None))

    def start_array(self):
        self.ev.append((2, None))

    def end_array(self):
        self.ev.append((3, None))

    def key(self, k):
        self.ev.append((4, k))

    def value(self, v):
        self.ev.append((5, v))


def replay(events):
    # The re-emitter: mirrors the raw structure ({} -> plain object, [] -> list).
    def emit(w):
        for t, a in events:
            if t == 5:
                w.value(a)
            elif t == 4:
                w.member(a)
            elif t == 0:
                w.plain_begin()
            elif t == 1:
                w.plain_end()
            elif t == 2:
                w.list_begin()
            else:
                w.list_end()

    return emit


def events(data, chunk=0, max_str=256):
    return parse(data, Recorder(), max_str, chunk).ev


def write(emit, size=1024):
    # The output of emit through a writer of `size` bytes, checking that measure(), stream()
    # with its full-buffer chunks, and window() all agree.
    w = Writer(size)
    n = w.measure(emit)
    out = bytearray()
    chunks = []

    def sink(mv):
        chunks.append(len(mv))
        out.extend(mv)

    m = w.stream(emit, sink)
    assert m == n == len(out), (m, n, len(out))
    for k in chunks[:-1]:
        assert k == size
    win = bytearray()
    off = 0
    while off < n:
        k = w.window(emit, off)
        assert k == size or off + k == n
        win.extend(w.mv[:k])
        off += k
    assert win == out
    # window_into() a foreign buffer (as into the WebSocket's tx part), at a varying start:
    # the same bytes, and nothing outside its room touched
    into = Writer(0)
    other = bytearray(b"\xa5" * (size + 9))
    win = bytearray()
    while len(win) < n:
        t = len(win) % 9
        e = into.window_into(emit, len(win), other, t, t + size)
        assert e == t + size or len(win) + e - t == n
        win.extend(other[t:e])
        assert other[:t] == b"\xa5" * t and other[e:] == b"\xa5" * (len(other) - e)
        other[:] = b"\xa5" * len(other)
    assert win == out
    return bytes(out)


def expect_error(data, chunk=0, reason=None):
    try:
        parse(data, Consumer(), 256, chunk)
    except JsonError as e:
        if reason is not None:
            assert reason in e.reason, (data, e.reason)
        return e
    raise AssertionError("accepted: %r" % data)


def split_feed(data, cut, consumer):
    r = Reader(consumer)
    buf = bytearray(data)
    r.feed(buf, 0, cut)
    r.feed(buf, cut, len(buf) - cut)
    r.finish()
    return consumer


# --- reader against the captures ---


def case_captures_roundtrip_in_all_chunk_sizes():
    names = capture_names()
    assert len(names) >= 40
    for name in names:
        data = load(name)
        ref = None
        for chunk in (1, 7, 64, 0):
            ev = events(data, chunk)
            if ref is None:
                ref = ev
            assert ev == ref, (name, chunk)
        emit = replay(ref)
        assert write(emit, 1024) == data, name
        assert write(emit, 61) == data, name


def case_dialect_reference_pair():
    assert build(REF_EEBUS) == json.loads(REF_PLAIN)
    assert build(REF_EEBUS, chunk=3) == json.loads(REF_PLAIN)


def case_tree_of_a_data_message():
    t = build(load("23_evsesim_reply_loadcontrol_limitlist.raw.json"))
    assert t["data"]["header"] == {"protocolId": "ee1.0"}
    dg = t["data"]["payload"]["datagram"]
    assert dg["header"]["addressSource"] == {"device": "d:_n:Demo_EVSESim-sim-0001", "entity": [1, 1], "feature": 7}
    assert dg["header"]["msgCounter"] == 35
    limits = dg["payload"]["cmd"][0]["loadControlLimitListData"]["loadControlLimitData"]
    assert [x["limitId"] for x in limits] == [0, 1, 2, 3, 4, 5]
    assert limits[2] == {"limitId": 2, "isLimitChangeable": True, "isLimitActive": False,
                         "value": {"number": 16, "scale": 0}}


def case_tree_builds_only_the_filtered_path():
    data = load("23_evsesim_reply_loadcontrol_limitlist.raw.json")
    found = build(data, at=("data", "payload", "datagram", "header", "*"))
    got = dict((p[-1], v) for p, v in found)
    assert got["msgCounter"] == 35 and got["cmdClassifier"] == "reply"
    assert got["addressDestination"] == {"device": "d:_n:Demo_CEMPeer-cem-0001", "entity": [1], "feature": 7}
    vals = build(data, at=("*", "*", "*", "*", "*", "loadControlLimitListData", "loadControlLimitData", "value"))
    assert [v for p, v in vals] == [{"number": 16, "scale": 0}] * 6


class HeaderReader(Path):
    # What the SPINE layer will do: pick the header without building anything.
    def __init__(self):
        super().__init__()
        self.h = {}
        self.src = {}

    def leaf(self, v):
        if self.under(("data", "payload", "datagram", "header")):
            if self.n == 5:
                self.h[self.keys[4]] = v
            elif self.n == 6 and self.keys[4] == "addressSource":
                k = self.keys[5]
                if k == "entity":
                    self.src.setdefault(k, []).append((self.index(), v))
                else:
                    self.src[k] = v


def case_path_reads_header_fields():
    h = parse(load("02_evse_reply_detaileddiscovery.raw.json"), HeaderReader(), chunk=5)
    assert h.h == {"specificationVersion": "1.3.0", "msgCounter": 2, "msgCounterReference": 1, "cmdClassifier": "reply"}
    assert h.src == {"device": "d:_n:Demo_EVSE-234567890", "entity": [(0, 0)], "feature": 0}
    h = parse(load("23_evsesim_reply_loadcontrol_limitlist.raw.json"), HeaderReader())
    assert h.src["entity"] == [(0, 1), (1, 1)]


class LimitReader(Path):
    # List elements of a list of objects: item_begin/item_end frame each one.
    def __init__(self):
        super().__init__()
        self.items = []
        self.cur = None
        self.entered = []
        self.left = 0

    def item_begin(self):
        if self.keys[self.n - 1] == "loadControlLimitData":
            self.cur = {"i": self.index()}

    def item_end(self):
        if self.keys[self.n - 1] == "loadControlLimitData":
            self.items.append(self.cur)
            self.cur = None

    def enter(self):
        if self.n == 4 and self.keys[3] == "cmd":
            self.entered.append(self.index(3))

    def leave(self):
        if self.keys[self.n - 1] == "loadControlLimitListData":
            self.left += 1

    def leaf(self, v):
        if self.cur is not None and self.under(("*", "*", "*", "*", "cmd", "*", "loadControlLimitData")):
            self.cur[self.keys[self.n - 1]] = v


def case_path_frames_list_elements():
    r = parse(load("23_evsesim_reply_loadcontrol_limitlist.raw.json"), LimitReader(), chunk=13)
    assert [x["i"] for x in r.items] == [0, 1, 2, 3, 4, 5]
    assert r.items[4] == {"i": 4, "limitId": 4, "isLimitChangeable": True, "isLimitActive": False,
                          "number": 16, "scale": 0}
    assert r.left == 1
    p = Path()
    parse(b'{"a":[{"b":[1,2]}]}', p)
    assert p.n == 0 and p.path() == ()


def case_path_handles_plain_objects_and_unwrapped_payload():
    seen = []

    class P(Path):
        def leaf(self, v):
            seen.append((self.path(), v))

    parse(b'{"x":1,"y":{"z":[{"q":true}],"w":null}}', P())
    assert seen == [(("x",), 1), (("y", "z", "q"), True), (("y", "w"), None)]


def case_empty_array_is_ambiguous():
    t = build(b'{"m":[{"read":[]},{"list":[]},{"o":[{"a":[]}]}]}')
    assert t == {"m": {"read": [], "list": [], "o": {"a": []}}}
    assert build(b"[]") == []
    assert build(b"{}") == {}
    assert build(b"[[],[]]") == [[], []]
    # a list of objects stays a list even when each element has one member
    assert build(b'{"l":[[{"a":1}],[{"a":2}]]}') == {"l": [{"a": 1}, {"a": 2}]}
    assert build(b'{"l":[[{"a":1}]]}') == {"l": [{"a": 1}]}
    assert build(b'[{"a":1},{"a":2,"b":3}]') == [{"a": 1}, {"a": 2, "b": 3}]


# --- strings ---


def case_surrogate_pair_decodes_to_astral_character():
    for chunk in (0, 1, 3):
        assert events(b'"\\ud83d\\ude00"', chunk) == [(5, "\U0001f600")]
        assert events(b'"a\\uD83D\\uDE00b"', chunk) == [(5, "a\U0001f600b")]
    assert events(b'"\xf0\x9f\x98\x80"') == [(5, "\U0001f600")]


def case_lone_surrogates_are_errors():
    # they have no UTF-8 form; Go would substitute U+FFFD, we refuse the message
    for bad in (b'"\\ud83d"', b'"\\ud83dx"', b'"\\ud83d\\n"', b'"\\ud83d\\u0041"', b'"\\ude00"', b'"\\udfff\\ud83d"'):
        expect_error(bad, 0, "surrogate")
        expect_error(bad, 1, "surrogate")


def case_escapes_decode():
    ev = events(b'["\\"\\\\\\/\\b\\f\\n\\r\\t", "\\u0000\\u001f\\u00e9\\u20ac\\u003c", "\xc3\xa9\xe2\x82\xac"]', 1)
    assert ev[1:4] == [(5, '"\\/\b\f\n\r\t'), (5, "\x00\x1f\u00e9\u20ac<"), (5, "\u00e9\u20ac")]
    assert events(b'{"k\\u00e9y":1}') == [(0, None), (4, "k\u00e9y"), (5, 1), (1, None)]


def case_invalid_strings_are_errors():
    for bad, why in (
        (b'"a\x01"', "control"),
        (b'"a\nb"', "control"),
        (b'"\\x"', "escape"),
        (b'"\\u12g4"', "\\u"),
        (b'"\xff"', "UTF-8"),
        (b'"\xc0\x80"', "UTF-8"),  # overlong
        (b'"\xed\xa0\x80"', "UTF-8"),  # encoded surrogate
        (b'"\xf4\x90\x80\x80"', "UTF-8"),  # above U+10FFFF
        (b'"\xc3"', "UTF-8"),  # cut character before the quote
        (b'"\xe2\x82"', "UTF-8"),
    ):
        expect_error(bad, 0, why)
        expect_error(bad, 1, why)
    expect_error(b'"abc', 0, "end")
    expect_error(b'"abc\\', 0, "end")


def case_long_strings_are_truncated_with_a_flag():
    flags = []

    class C(Recorder):
        def __init__(self, r):
            super().__init__()
            self.r = r

        def value(self, v):
            flags.append(self.r.truncated)
            super().value(v)

        def key(self, k):
            flags.append(self.r.truncated)
            super().key(k)

    for chunk in (0, 1, 5):
        del flags[:]
        s = "\u00e9" * 30  # 60 bytes of UTF-8
        data = ('{"%s":["%s","%s","%s"]}' % ("k" * 40, s, "x" * 32, "\\u00e9" * 17)).encode()
        c = C(None)
        r = Reader(c, max_str=33)
        c.r = r
        n = len(data)
        off = 0
        step = chunk or n
        while off < n:
            k = min(step, n - off)
            r.feed(data, off, k)
            off += k
        r.finish()
        # cut on a character boundary, never beyond max_str bytes
        assert c.ev[1] == (4, "k" * 33)
        assert c.ev[3] == (5, "\u00e9" * 16)
        assert c.ev[4] == (5, "x" * 32)
        assert c.ev[5] == (5, "\u00e9" * 16)
        assert flags == [True, True, False, True]
    # the rest of a cut string is still checked
    e = Reader(Consumer(), 32)
    try:
        e.feed(b'"' + b"a" * 40 + b'\\q"')
        raise AssertionError("accepted")
    except JsonError as x:
        assert x.pos == 42


# --- numbers and literals ---


def case_numbers():
    ev = events(b"[0,-0,7,-7,999999999,1000000000,-12345678901234567890,1.5,-0.25,1e3,1E+3,2e-2,1.50,0.0]", 1)
    vals = [a for t, a in ev if t == 5]
    assert vals == [0, 0, 7, -7, 999999999, 1000000000, -12345678901234567890,
                    (15, -1), (-25, -2), (1, 3), (1, 3), (2, -2), (150, -2), (0, -1)]
    assert [to_float(v) for v in vals[7:]] == [1.5, -0.25, 1000.0, 1000.0, 0.02, 1.5, 0.0]
    assert to_float((1, 999999999)) == float("inf") and to_float((-1, -999999999)) == 0.0
    assert to_float((17976931349, 298)) == float("inf") and to_float(-(10**400)) == float("-inf")
    assert events(b"12") == [(5, 12)] and events(b" -3.5e1 ") == [(5, (-35, 0))]
    assert events(b"[true,false,null]", 1) == [(2, None), (5, True), (5, False), (5, None), (3, None)]


def case_invalid_numbers_and_literals_are_errors():
    for bad in (b"01", b"-", b"1.", b".5", b"1e", b"1e+", b"--1", b"+1", b"1.e3", b"[1.]", b"0x10", b"1_000",
                b"NaN", b"Infinity", b"-Infinity"):
        expect_error(bad, 0)
        expect_error(bad, 1)
    for bad in (b"tru", b"nul", b"fals", b"trUe", b"nulll", b"truex", b"[t]"):
        expect_error(bad, 0)
        expect_error(bad, 1)
    expect_error(b"1" * 257, 0, "too long")
    assert events(b"1" * 256)[0][1] == int("1" * 256)


# --- structure ---


def case_nesting_32_ok_33_error():
    for chunk in (0, 1):
        assert len(events(b"[" * 32 + b"]" * 32, chunk)) == 64
        e = expect_error(b"[" * 33 + b"]" * 33, chunk, "deeper")
        assert e.pos == 32
        obj = b'{"a":' * 32 + b"1" + b"}" * 32
        assert len(events(obj, chunk)) == 32 * 3 + 1
        expect_error(b'{"a":' * 33 + b"1" + b"}" * 33, chunk, "deeper")


def case_trailing_nul_and_whitespace_accepted():
    for tail in (b"\x00", b"\x00\x00\x00", b" \r\n\t", b"\n\x00 \x00"):
        assert events(b'{"a":1}' + tail, 1) == [(0, None), (4, "a"), (5, 1), (1, None)]
    assert events(b'  \n{"a" : [ 1 , 2 ] }  ') == [(0, None), (4, "a"), (2, None), (5, 1), (5, 2), (3, None), (1, None)]


def case_anything_else_after_the_value_is_an_error():
    for bad in (b'{"a":1}x', b'{"a":1}{}', b'{"a":1}\x00x', b"[]]", b"1 2", b'"a""b"', b'{"a":1} \x00 ,'):
        expect_error(bad, 0, "after")
        expect_error(bad, 1, "after")


def case_structural_errors():
    for bad in (b"", b" ", b"{", b"[", b'{"a"', b'{"a":', b'{"a":1', b'{"a":1,', b"[1,", b"[1"):
        expect_error(bad, 0, "end")
    for bad in (b"}", b"]", b"{]", b"[}", b'{"a":1,}', b"[1,]", b"[,1]", b'{,"a":1}', b'{"a"1}', b'{"a"::1}',
                b'{1:2}', b'{"a":1 "b":2}', b"[1 2]", b'{"a",1}', b"[:]", b"\x00", b"\x00{}", b"{}}"):
        expect_error(bad, 0)
        expect_error(bad, 1)


def case_error_position_and_reader_stays_failed():
    r = Reader(Consumer())
    r.feed(b'{"a":[1,2')
    try:
        r.feed(b",]}")
        raise AssertionError("accepted")
    except JsonError as e:
        assert e.pos == 10 and "unexpected" in e.reason
        assert isinstance(e, ValueError)
    for call in (lambda: r.feed(b"]}"), r.finish):
        try:
            call()
            raise AssertionError("accepted after failure")
        except JsonError as e:
            assert e.pos == 10
    r.reset()
    r.feed(b"[1]")
    r.finish()
    assert r.done


def case_every_split_point_gives_the_same_events():
    data = ('{"k\\u00e9":["a\\"b\\ud83d\\ude00","\xe2\x82\xac\u00e9",'
            '-12.5e-3,123456789012,true,false,null,[],{}]}\x00 ').encode()
    ref = events(data)
    for cut in range(len(data) + 1):
        assert split_feed(data, cut, Recorder()).ev == ref, cut


def case_reader_reuse_with_reset():
    rec = Recorder()
    r = Reader(rec)
    data = load("09_evse_notify_heartbeat.raw.json")
    for _ in range(3):
        r.reset()
        del rec.ev[:]
        r.feed(data)
        r.finish()
        assert len(rec.ev) > 20
    assert r.pos == len(data)


# --- writer ---


def case_writer_dialect_shapes():
    def emit(w):
        w.plain_begin()
        w.member("datagram")
        w.obj_begin()
        w.member("header")
        w.obj_begin()
        w.member("entity")
        w.list_begin()
        w.integer(1)
        w.integer(1)
        w.list_end()
        w.member("feature")
        w.integer(6)
        w.obj_end()
        w.member("payload")
        w.obj_begin()
        w.member("cmd")
        w.list_begin()
        w.obj_begin()
        w.member("nodeManagementDetailedDiscoveryData")
        w.obj_begin()
        w.obj_end()
        w.obj_end()
        w.list_end()
        w.obj_end()
        w.obj_end()
        w.plain_end()

    want = (
        b'{"datagram":[{"header":[{"entity":[1,1]},{"feature":6}]},'
        b'{"payload":[{"cmd":[[{"nodeManagementDetailedDiscoveryData":[]}]]}]}]}'
    )
    for size in (1, 2, 7, 1024):
        assert write(emit, size) == want


def case_writer_data_envelope_payload_is_plain():
    def emit(w):
        w.plain_begin()
        w.member("data")
        w.obj_begin()
        w.member("header")
        w.obj_begin()
        w.member("protocolId")
        w.string("ee1.0")
        w.obj_end()
        w.member("payload")
        w.plain_begin()
        w.member("datagram")
        w.obj_begin()
        w.obj_end()
        w.plain_end()
        w.obj_end()
        w.plain_end()

    assert write(emit) == b'{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[]}}]}'


def case_writer_escapes_like_go():
    cases = [
        ("plain", b'"plain"'),
        ('q"b\\s/', b'"q\\"b\\\\s/"'),
        ("\n\r\t\b\f", b'"\\n\\r\\t\\b\\f"'),
        ("\x00\x01\x1f\x7f", b'"\\u0000\\u0001\\u001f\x7f"'),
        ("<a href='x'>&amp;</a>", b"\"\\u003ca href='x'\\u003e\\u0026amp;\\u003c/a\\u003e\""),
        ("\u2028\u2029\u2027\u202a", b'"\\u2028\\u2029\xe2\x80\xa7\xe2\x80\xaa"'),
        ("\u00e9\u20ac\U0001f600", b'"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"'),
        ("", b'""'),
    ]
    for s, want in cases:
        for size in (1, 5, 64):
            assert write(lambda w: w.string(s), size) == want, (s, size)
        assert write(lambda w: (w.plain_begin(), w.member(s), w.null(), w.plain_end()), 3) == b"{" + want + b":null}"
        # and the reader gives the string back
        assert events(want) == [(5, s)]


def case_writer_numbers():
    def emit(w):
        w.list_begin()
        for v in (0, 7, -7, 999999999, -999999999, 1000000000, -1000000000, 2**70, -(2**70)):
            w.integer(v)
        for m, s in ((150, -2), (-5, -3), (0, -1), (0, 3), (12, 2), (-1, 0), (7, -1)):
            w.decimal(m, s)
        w.boolean(True)
        w.boolean(False)
        w.null()
        w.raw(b'{"pre":"rendered"}')
        w.list_end()

    out = write(emit, 16)
    assert out == (
        b"[0,7,-7,999999999,-999999999,1000000000,-1000000000,1180591620717411303424,-1180591620717411303424,"
        b'1.50,-0.005,0.0,0,1200,-1,0.7,true,false,null,{"pre":"rendered"}]'
    )
    assert [a for t, a in events(out)][1:17] == [0, 7, -7, 999999999, -999999999, 1000000000, -1000000000,
                                                 2**70, -(2**70),
                                                 (150, -2), (-5, -3), (0, -1), 0, 1200, -1, (7, -1)]


def case_writer_floats_like_go():
    # encoding/json: shortest digits, 'f' form for 1e-6 <= |f| < 1e21, else 'e' with e-07 -> e-7
    cases = [(1.0, b"1"), (0.5, b"0.5"), (-0.0, b"-0"), (0.0, b"0"), (1e20, b"100000000000000000000"),
             (1e21, b"1e+21"), (1.5e300, b"1.5e+300"), (1e-6, b"0.000001"), (1e-7, b"1e-7"), (1.5e-10, b"1.5e-10"),
             (123.456, b"123.456"), (-2.5e-8, b"-2.5e-8"), (1e16, b"10000000000000000")]
    if not MPY:  # MicroPython's repr() does not always give the shortest digits
        cases.append((0.1 + 0.2, b"0.30000000000000004"))
    for f, want in cases:
        assert write(lambda w: w.floating(f)) == want, (f, want)


def case_writer_value_dispatch_and_depth_limit():
    out = write(lambda w: (w.list_begin(), [w.value(v) for v in (None, True, 3, "s", (5, -1), 2.5)], w.list_end()))
    assert out == b'[null,true,3,"s",0.5,2.5]'
    w = Writer(64)

    def deep(w):
        for _ in range(33):
            w.list_begin()

    try:
        w.measure(deep)
        raise AssertionError("no depth limit")
    except ValueError:
        pass
    assert w.measure(lambda w: [w.list_begin() for _ in range(32)]) == 32


def case_writer_render_fits_or_fails():
    w = Writer(8)
    n = w.render(lambda w: w.string("abc"))
    assert bytes(w.buf[:n]) == b'"abc"'
    try:
        w.render(lambda w: w.string("abcdefghij"))
        raise AssertionError("overflow not reported")
    except ValueError:
        pass


def case_writer_window_starts_inside_escapes():
    s = "<&>\n\u2028" * 5

    def emit(w):
        w.list_begin()
        w.string(s)
        w.string("\u00e9\u20ac" * 4)
        w.list_end()

    full = write(emit, 4096)
    for size in (1, 2, 3, 5, 6, 7, 11):
        assert write(emit, size) == full


def case_writer_member_cut_writes_the_cut_name():
    # member_cut(key, n, tail) writes what member(key[:n] + tail) writes, in every mode and
    # wherever a window starts (spine.table's list functions name their item this way)
    def emit(cut):
        def e(w):
            w.obj_begin()
            for key in ("loadControlLimitListData", "measurementListData"):
                if cut:
                    w.member_cut(key, len(key) - 8, b"Data")
                else:
                    w.member(key[:-8] + "Data")
                w.list_begin()
                w.integer(1)
                w.list_end()
            w.obj_end()
        return e

    full = write(emit(False), 4096)
    assert full == b'[{"loadControlLimitData":[1]},{"measurementData":[1]}]', full
    for size in (1, 2, 3, 5, 7, 11, 4096):
        assert write(emit(True), size) == full


# --- memory ---


def case_hot_loops_are_viper_on_micropython():
    # the unix port has the native emitter: a silent fallback to bytecode would be far slower
    assert reader_mod.NATIVE == MPY
    assert writer_mod.NATIVE == MPY


def as_plain_python(mod):
    # The functions of a viper module run as plain bytecode: its own source, the decorators
    # dropped, ptr8/ptr32 as no-ops (compat's CPython shim). Under CPython this is what the
    # module runs anyway; under MicroPython it checks that the code CPython tests is the
    # algorithm the device runs as viper.
    with open(mod.__file__) as f:
        src = f.read()
    n = src.count("@micropython.viper\n")
    assert n
    src = src.replace("@micropython.viper\n", "")

    def same(x):
        return x

    g = {"__name__": "plain_" + mod.__name__, "ptr8": same, "ptr32": same}
    exec(src, g)
    g["VIPER"] = False
    return g


def case_bytecode_fallback_reads_and_writes_the_same():
    import eejson_escape
    import eejson_lexer

    gr = as_plain_python(eejson_lexer)
    gw = as_plain_python(eejson_escape)
    assert not gr["VIPER"] and not gw["VIPER"]
    saved = (reader_mod._lex, reader_mod._shash, reader_mod._same, reader_mod.NATIVE,
             writer_mod._esc_len, writer_mod._esc_copy, writer_mod._copy, writer_mod._itoa, writer_mod._ENC)
    names = ("02_evse_reply_detaileddiscovery.raw.json", "23_evsesim_reply_loadcontrol_limitlist.raw.json")
    want = [events(load(n), 5) for n in names]
    try:
        reader_mod._lex, reader_mod._shash, reader_mod._same = gr["lex"], gr["shash"], gr["same"]
        reader_mod.NATIVE = False
        writer_mod._ENC = True
        writer_mod._esc_len, writer_mod._esc_copy = gw["esc_len"], gw["esc_copy"]
        writer_mod._copy, writer_mod._itoa = gw["copy"], gw["itoa"]
        for name, ev in zip(names, want):
            assert events(load(name), 5) == ev
            assert write(replay(ev), 100) == load(name)
        assert events(b'["\\ud83d\\ude00",-1.5e3,true,"\xc3\xa9"]', 1) == [
            (2, None), (5, "\U0001f600"), (5, (-15, 2)), (5, True), (5, "\u00e9"), (3, None)]
        assert write(lambda w: w.string("<\u2028\n\u00e9"), 3) == b'"\\u003c\\u2028\\n\xc3\xa9"'
        assert write(lambda w: w.integer(-(10**12)), 3) == b"-1000000000000"
        assert events(b'{"cmdClassifier":1}', 0, 256) == [(0, None), (4, "cmdClassifier"), (5, 1), (1, None)]
        assert Names(("abc", "cmdClassifier")).find(bytearray(b"cmdClassifier"), 13) == "cmdClassifier"
    finally:
        (reader_mod._lex, reader_mod._shash, reader_mod._same, reader_mod.NATIVE,
         writer_mod._esc_len, writer_mod._esc_copy, writer_mod._copy, writer_mod._itoa, writer_mod._ENC) = saved


def case_steady_state_allocates_nothing_but_new_strings():
    if not MPY:
        return
    import micropython

    # every key and string value below is a known name: the reader allocates nothing at all
    names = Names(("datagram", "header", "msgCounter", "cmdClassifier", "read", "payload", "cmd",
                   "nodeManagementDetailedDiscoveryData"))
    buf = bytearray(
        b'{"datagram":[{"header":[{"msgCounter":7},{"cmdClassifier":"read"}]},'
        b'{"payload":[{"cmd":[[{"nodeManagementDetailedDiscoveryData":[]}]]}]}]} \x00'
    )
    n = len(buf)
    c = Consumer()
    p = Path()
    r = Reader(c, names=names)
    r.feed(buf, 0, n)  # fills the memoryview cache
    r.finish()
    for cons in (c, p):
        r.reset(cons)
        p.reset()
        micropython.heap_lock()
        try:
            off = 0
            while off < n:
                k = 7 if n - off > 7 else n - off
                r.feed(buf, off, k)
                off += k
            r.finish()
        finally:
            micropython.heap_unlock()

    w = Writer(256)

    def emit(w):
        w.plain_begin()
        w.member("datagram")
        w.obj_begin()
        w.member("header")
        w.obj_begin()
        w.member("msgCounter")
        w.integer(123456)
        w.member("cmdClassifier")
        w.string("read")
        w.obj_end()
        w.obj_end()
        w.plain_end()

    w.measure(emit)
    w.render(emit)
    micropython.heap_lock()
    try:
        m = w.measure(emit)
        k = w.render(emit)
    finally:
        micropython.heap_unlock()
    assert m == k == len(b'{"datagram":[{"header":[{"msgCounter":123456},{"cmdClassifier":"read"}]}]}')


def case_known_names_are_handed_out_as_the_same_objects():
    known = ("entity", "feature", "device", "cmdClassifier", "reply", "x" * 40)
    names = Names(known + ("\u00e9t\u00e9",))
    rec = Recorder()
    r = Reader(rec, names=names)
    r.feed(b'[{"entity":1},{"cmdClassifier":"reply"},{"cmdClassifie":"replyx"},"' + b"x" * 40
           + b'","\xc3\xa9t\xc3\xa9"]')
    r.finish()
    got = [a for t, a in rec.ev if t in (4, 5) and isinstance(a, str)]
    assert got == ["entity", "cmdClassifier", "reply", "cmdClassifie", "replyx", "x" * 40, "\u00e9t\u00e9"]
    assert got[0] is known[0] and got[1] is known[3] and got[2] is known[4] and got[5] is known[5]
    assert got[3] is not None
