"""EEBUS JSON reader and writer under CPython: the shared cases, property tests against an
independent reference (plain JSON -> dialect with json.dumps), and the mutation corpus
under both runtimes."""

import json
import os
import re
import subprocess
import sys
from decimal import Decimal

import pytest
from cases import caserun
from cases import eejson_cases as cases
from eejson.dialect import Tree
from eejson.reader import Consumer, JsonError, Reader
from eejson.writer import Writer
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from support import mpyrun
from support.paths import CAPTURES, LIB, MPY_SCRIPTS, NATIVE

NAMES = caserun.names(cases)
CAPTURE_DATA = [cases.load(n) for n in cases.capture_names()]


@pytest.mark.parametrize("name", NAMES)
def test_eejson_case(name):
    getattr(cases, name)()


# --- the independent reference: plain JSON value -> dialect text, as ship-go writes it ---

_MARK = "\ue000"


def to_dialect(v, top=True):
    if isinstance(v, dict):
        if top:
            return {k: to_dialect(x, False) for k, x in v.items()}
        return [{k: to_dialect(x, False)} for k, x in v.items()]
    if isinstance(v, list):
        return [to_dialect(x, False) for x in v]
    return v


def go_float(f):
    # encoding/json: 'f' format with the shortest digits, 'e' for |f| < 1e-6 or >= 1e21
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        return re.sub(r"e-0(\d)$", r"e-\1", repr(f))
    s = format(Decimal(repr(f)), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def reference_text(plain):
    floats = []

    def hide(v):
        # json.dumps writes floats as Python does; park them behind markers, put Go's text back
        if isinstance(v, float):
            floats.append(go_float(v))
            return "%s%d%s" % (_MARK, len(floats) - 1, _MARK)
        if isinstance(v, dict):
            return {k: hide(x) for k, x in v.items()}
        if isinstance(v, list):
            return [hide(x) for x in v]
        return v

    text = json.dumps(hide(to_dialect(plain)), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = re.sub('"%s(\\d+)%s"' % (_MARK, _MARK), lambda m: floats[int(m.group(1))], text)
    for a, b in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(a, b)
    return text.encode()


def depth(v):
    if isinstance(v, dict):
        return 1 + max([depth(x) for x in v.values()] or [0])
    if isinstance(v, list):
        return 1 + max([depth(x) for x in v] or [0])
    return 0


def same(built, plain):
    # equality up to the dialect's ambiguity: [] stands for an empty object or list
    if built == [] and plain in ([], {}):
        return True
    if isinstance(plain, dict):
        return isinstance(built, dict) and built.keys() == plain.keys() and all(same(built[k], plain[k]) for k in plain)
    if isinstance(plain, list):
        return isinstance(built, list) and len(built) == len(plain) and all(same(b, p) for b, p in zip(built, plain))
    if isinstance(plain, float):
        # Go writes integral floats without a fraction ("1", "0"): they read back as ints
        return type(built) in (float, int) and float(built) == plain
    return type(built) is type(plain) and built == plain


def emit_plain(v, top=True):
    # drives the writer from a plain value the way the SPINE layer will: dicts are objects
    def emit(w):
        walk(w, v, top)

    return emit


def walk(w, v, top):
    if isinstance(v, dict):
        if top:
            w.plain_begin()
        else:
            w.obj_begin()
        for k, x in v.items():
            w.member(k)
            walk(w, x, False)
        if top:
            w.plain_end()
        else:
            w.obj_end()
    elif isinstance(v, list):
        w.list_begin()
        for x in v:
            walk(w, x, False)
        w.list_end()
    else:
        w.value(v)


def feed_split(data, cuts, consumer, max_str=256):
    r = Reader(consumer, max_str)
    buf = bytearray(data)
    prev = 0
    for c in sorted(set(cuts)) + [len(buf)]:
        if c < prev or c > len(buf):
            continue
        r.feed(buf, prev, c - prev)
        prev = c
    r.finish()
    return consumer


def stream(emit, size):
    w = Writer(size)
    out = bytearray()
    n = w.measure(emit)
    m = w.stream(emit, out.extend)
    return n, m, bytes(out)


# every code point but surrogates, with the ones that need care drawn often
text = st.text(st.characters(codec="utf-8")
               | st.sampled_from('<>&"\\/\n\r\t\b\f\x00\x1f\x7f\u2028\u2029\u00e9\U0001f600'), max_size=16)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.integers(-1000, 1000)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
documents = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(text, kids, max_size=5),
    max_leaves=25,
)
cut_lists = st.lists(st.integers(0, 5000), max_size=12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, cut_lists)
def test_reader_builds_what_the_reference_wrote(plain, cuts):
    data = reference_text(plain)
    deep = depth(json.loads(data)) > 32
    try:
        t = feed_split(data, [c % (len(data) + 1) for c in cuts], Tree())
    except JsonError as e:
        assert deep and "deeper" in e.reason, (data, e)
        return
    assert not deep
    assert same(t.result, plain), (data, t.result, plain)


@settings(max_examples=400, deadline=None)
@given(documents, st.integers(1, 300))
def test_writer_is_byte_exact_with_the_reference(plain, size):
    want = reference_text(plain)
    assume(depth(json.loads(want)) <= 32)
    n, m, out = stream(emit_plain(plain), size)
    assert out == want
    assert n == m == len(want)


@settings(max_examples=200, deadline=None)
@given(documents, st.integers(1, 64))
def test_measure_equals_stream_and_window(plain, size):
    assume(depth(json.loads(reference_text(plain))) <= 32)
    emit = emit_plain(plain)
    n, m, out = stream(emit, size)
    assert n == m == len(out)
    w = Writer(size)
    win = bytearray()
    while len(win) < n:
        k = w.window(emit, len(win))
        assert k
        win.extend(w.mv[:k])
    assert bytes(win) == out


@settings(max_examples=200, deadline=None)
@given(documents, st.lists(st.tuples(st.integers(0, 20), st.integers(1, 64)), min_size=1, max_size=40))
def test_window_into_a_foreign_buffer(plain, rooms):
    # the SPINE writer renders into the WebSocket's tx part (ws.room/advance): any start, any
    # room, windows in sequence give the whole output, and nothing outside a room is written
    assume(depth(json.loads(reference_text(plain))) <= 32)
    emit = emit_plain(plain)
    n, m, out = stream(emit, 16)
    w = Writer(0)
    assert w.measure(emit) == n
    got = bytearray()
    i = 0
    while len(got) < n:
        start, room = rooms[i % len(rooms)]
        i += 1
        buf = bytearray(b"\x5a" * (start + room + 3))
        e = w.window_into(emit, len(got), buf, start, start + room)
        assert start < e <= start + room
        assert buf[:start] == b"\x5a" * start and buf[e:] == b"\x5a" * (len(buf) - e)
        got.extend(buf[start:e])
    assert bytes(got) == out
    assert w.measure(emit) == n and len(w.buf) == 0  # the writer's own state is untouched


def has_float(v):
    if isinstance(v, float):
        return True
    if isinstance(v, dict):
        v = list(v.values())
    return isinstance(v, list) and any(has_float(x) for x in v)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_reemitting_reader_events_reproduces_the_text(plain):
    data = reference_text(plain)
    assume(depth(json.loads(data)) <= 32)
    out = cases.write(cases.replay(cases.events(data)), 97)
    if has_float(plain):
        # decimals come back as (mantissa, scale) and are written positionally: same values
        assert same(cases.build(out), plain)
    else:
        assert out == data


# --- errors: any input ends in success or JsonError ---


def mutate(data, draw):
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.integers(0, 4))
        i = draw(st.integers(0, len(b)))
        if kind == 0:
            del b[i:]
        elif kind == 1 and i < len(b):
            b[i] ^= draw(st.integers(1, 255))
        elif kind == 2:
            b[i:i] = draw(st.binary(min_size=1, max_size=4) | st.sampled_from(
                [b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\", b"\\u", b"\x00", b"-", b"e", b"."]))
        elif kind == 3:
            del b[i : i + draw(st.integers(1, 4))]
        else:
            b[i:i] = b[i : i + draw(st.integers(0, 12))]
    return bytes(b)


def outcome(data, cuts, consumer):
    try:
        feed_split(data, cuts, consumer)
        return None
    except JsonError as e:
        return e


def reference_events(data):
    # CPython's json module, made as strict as the reader: events or None if refused
    body = data.rstrip(b"\x00 \t\r\n")
    try:
        s = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not s.strip(" \t\r\n") or "\x00" in s:
        return None

    def reject(_):
        raise ValueError("constant")

    def num(t):
        d = Decimal(t).as_tuple()
        m = int("".join(map(str, d.digits)))
        return (-m if d.sign else m, d.exponent)

    try:
        v = json.loads(s, parse_constant=reject, parse_float=num, object_pairs_hook=lambda p: ("OBJ", p))
    except (ValueError, RecursionError):
        return None
    ev = []

    def walk(x, level):
        if level > 32:
            raise ValueError("deep")
        if isinstance(x, tuple) and x and x[0] == "OBJ":
            ev.append((0, None))
            for k, y in x[1]:
                check(k)
                ev.append((4, k))
                walk(y, level + 1)
            ev.append((1, None))
        elif isinstance(x, list):
            ev.append((2, None))
            for y in x:
                walk(y, level + 1)
            ev.append((3, None))
        else:
            if isinstance(x, str):
                check(x)
            ev.append((5, x))

    def check(t):
        if re.search("[\ud800-\udfff]", t):
            raise ValueError("lone surrogate")
        if len(t.encode()) > 256:
            raise LookupError("long: the reader truncates")

    try:
        walk(v, 1 if isinstance(v, (list, tuple)) else 0)
    except ValueError:
        return None
    except LookupError:
        return "skip"
    # numbers longer than the scratch are refused by the reader
    if re.search(rb"[-0-9.eE+]{257,}", body):
        return None
    return ev


@settings(max_examples=1500, deadline=None)
@given(st.data())
def test_mutations_end_in_success_or_json_error_and_agree_with_json(data):
    base = data.draw(st.sampled_from(CAPTURE_DATA) | documents.map(reference_text))
    m = mutate(base, data.draw)
    cuts = data.draw(cut_lists)
    rec = cases.Recorder()
    e = outcome(m, cuts, rec)
    assert e is None or isinstance(e, JsonError)
    ref = reference_events(m)
    assume(ref != "skip")
    if ref is None:
        assert e is not None, m
    else:
        assert e is None, (m, e)
        assert rec.ev == ref
    # the tree builder on top never raises anything else either
    e = outcome(m, cuts, Tree())
    assert e is None or isinstance(e, JsonError)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), cut_lists)
def test_random_bytes_end_in_json_error(data, cuts):
    for consumer in (Consumer(), Tree()):
        e = outcome(data, cuts, consumer)
        assert e is None or isinstance(e, JsonError)
        if e is not None:
            assert 0 <= e.pos <= len(data)


def test_nesting_limit():
    for chunk in (0, 1):
        assert cases.events(b"[" * 32 + b"]" * 32, chunk)
        with pytest.raises(JsonError, match="deeper"):
            cases.events(b"[" * 33 + b"]" * 33, chunk)
        with pytest.raises(JsonError, match="deeper"):
            cases.events(b"[" * 5000, chunk)


def test_surrogates():
    assert cases.events(b'"\\ud83d\\ude00"') == [(5, "\U0001f600")]
    for bad in (b'"\\ud83d"', b'"\\ude00"', b'"\\ud83d\\ud83d"'):
        with pytest.raises(JsonError, match="surrogate"):
            cases.events(bad)


# --- the viper modules compile for the ESP32 (and the host) as native code ---

VIPER_MODULES = ("ws_mask.py", "utf8.py", "eejson_lexer.py", "eejson_escape.py")  # native/
# build.ARCHS index: the arch number in a .mpy header
MPY_ARCH = {"x64": 2, "xtensawin": 10}


@pytest.mark.parametrize("arch", ["xtensawin", "x64"])
def test_viper_sources_compile_for_the_device(tmp_path, arch):
    # mpy-cross uses the 32-bit small-int range: a literal that viper cannot hold there would
    # fail here rather than on the device (the frozen firmware and gw build compile likewise)
    for rel in VIPER_MODULES:
        out = tmp_path / "out.mpy"
        p = subprocess.run([mpyrun.MPY_CROSS, "-march=" + arch, "-o", str(out), os.path.join(NATIVE, rel)],
                           capture_output=True, text=True)
        assert p.returncode == 0, (rel, p.stdout + p.stderr)
        data = out.read_bytes()
        # machine code for that arch, not bytecode
        assert data[2] >> 2 == MPY_ARCH[arch], (rel, data[:4])
        # the const() names of the slot tables fold away: none of them is in the .mpy
        src = open(os.path.join(NATIVE, rel)).read()
        names = re.findall(r"^(_[A-Z][A-Z0-9_]*) = const\(", src, re.M)
        assert names or rel == "ws_mask.py"
        assert not [n for n in names if n.encode() in data], rel


def test_viper_modules_need_an_arch(tmp_path):
    # module-level viper is why they live in native/, which mpy-check and gw build compile with
    # -march: without it mpy-cross refuses
    p = subprocess.run([mpyrun.MPY_CROSS, "-o", str(tmp_path / "out.mpy"), os.path.join(NATIVE, "utf8.py")],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "invalid arch" in p.stdout + p.stderr


def test_slot_and_event_names_agree_with_the_viper_sources():
    # reader.py and writer.py name the state slots and events the viper modules name alike;
    # under CPython their const() names are plain globals, so they can be compared
    import eejson.reader as reader_mod
    import eejson.writer as writer_mod
    import eejson_escape
    import eejson_lexer

    for mod, name in ((reader_mod, eejson_lexer), (writer_mod, eejson_escape)):
        g = vars(name)
        shared = [k for k in vars(mod) if k.startswith("_") and k.isupper() and k in g]
        assert shared and all(getattr(mod, k) == g[k] for k in shared), (name, shared)


# --- the mutation corpus under MicroPython (and CPython: same outcomes) ---

MUTATIONS = os.path.join(MPY_SCRIPTS, "eejson_mutations.py")
_RESULT = re.compile(r"RESULT total=(\d+) ok=(\d+) err=(\d+) other=(\d+) digest=(\d+)")


def test_mutation_corpus_under_micropython_matches_cpython():
    r = mpyrun.run(MUTATIONS, args=[CAPTURES, "2000"], timeout=60).check()
    got = _RESULT.search(r.stdout)
    assert got, r.stdout
    total, ok, err, other, digest = map(int, got.groups())
    assert total == ok + err == 2000 and other == 0
    assert ok > 100 and err > 1000  # the corpus reaches both outcomes
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((LIB, NATIVE)))
    p = subprocess.run([sys.executable, MUTATIONS, CAPTURES, "2000"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert _RESULT.search(p.stdout).groups() == got.groups()
