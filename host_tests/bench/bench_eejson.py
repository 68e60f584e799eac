"""Bench: the streaming EEBUS JSON reader and writer against MicroPython's json.loads.

Run: .venv/bin/python -m pytest host_tests/bench/bench_eejson.py -q -s   (or make bench)

Inputs: the largest wire capture, and a synthetic 16 KB detailed-discovery reply generated
here deterministically in the dialect (a SHIP data message, like 02_ but with many entities).

Figures, all under the MicroPython unix port (64-bit: objects are ~1.5-2x an ESP32's):
- time: best of N runs (time.ticks_us) of json.loads(bytes) and of the reader fed the message
  in 1 KB pieces, as the WebSocket hands them over;
- allocated: bytes allocated during one parse, with the GC disabled (gc.mem_alloc() after
  minus before). This counts garbage too, so it is the GC pressure, not the peak;
- peak heap: the transient need, by heap bisection inside the process: fill the heap with
  small ballast blocks until only K bytes are free, parse once, see whether MemoryError came;
  the smallest free heap at which the parse passes is its peak need on top of what is live.
  The GC collects as it likes meanwhile, so garbage does not count: only what is live at the
  same time, which is what a device runs out of. (The smallest -X heapsize of a whole script
  does not work here: compiling the viper lexer at import needs far more than any parse,
  tens of KB on this host, and would mask the figure.);
- the writer: the largest capture's events (pre-parsed into a list) written through a 1 KB
  buffer to a sink that drops them: allocation beyond the buffer (GC off, and peak).
Nothing about speed is asserted (machines are noisy); the targets are printed with the figures.
"""

import json
import os
import re

from support import mpyrun
from support.paths import CAPTURES

HEAP_TARGET = 0.10  # transient heap of the streaming reader <= 10% of json.loads's
TIME_TARGET = 10.0  # reader time <= 10x json.loads's
WRITER_TARGET = 2048  # writer allocation beyond its 1 KB buffer


def largest_capture():
    names = [n for n in os.listdir(CAPTURES) if n.endswith(".json")]
    name = max(names, key=lambda n: os.path.getsize(os.path.join(CAPTURES, n)))
    with open(os.path.join(CAPTURES, name), "rb") as f:
        return name, f.read().rstrip(b"\n")


def dialect(v, top=True):
    if isinstance(v, dict):
        if top:
            return {k: dialect(x, False) for k, x in v.items()}
        return [{k: dialect(x, False)} for k, x in v.items()]
    if isinstance(v, list):
        return [dialect(x, False) for x in v]
    return v


FEATURES = [
    ("DeviceClassification", ["deviceClassificationManufacturerData"]),
    ("DeviceDiagnosis", ["deviceDiagnosisStateData", "deviceDiagnosisHeartbeatData"]),
    ("ElectricalConnection", ["electricalConnectionDescriptionListData",
                              "electricalConnectionParameterDescriptionListData",
                              "electricalConnectionPermittedValueSetListData"]),
    ("LoadControl", ["loadControlLimitDescriptionListData", "loadControlLimitListData"]),
    ("Measurement", ["measurementDescriptionListData", "measurementConstraintsListData", "measurementListData"]),
    ("DeviceConfiguration", ["deviceConfigurationKeyValueDescriptionListData", "deviceConfigurationKeyValueListData"]),
    ("Identification", ["identificationListData"]),
]


def _discovery_message(dev, entities, features):
    datagram = {"datagram": {
        "header": {"specificationVersion": "1.3.0", "addressSource": {"device": dev, "entity": [0], "feature": 0},
                   "addressDestination": {"device": "d:_n:Demo_CEM-1", "entity": [0], "feature": 0},
                   "msgCounter": 4711, "msgCounterReference": 17, "cmdClassifier": "reply"},
        "payload": {"cmd": [{"nodeManagementDetailedDiscoveryData": {
            "specificationVersionList": {"specificationVersion": ["1.3.0"]},
            "deviceInformation": {"description": {"deviceAddress": {"device": dev}, "deviceType": "ChargingStation",
                                                  "networkFeatureSet": "smart"}},
            "entityInformation": entities, "featureInformation": features}}]}}}
    text = json.dumps(dialect(datagram), separators=(",", ":")).encode()
    return b'{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":' + text + b"}]}"


def synthetic_discovery(target=16384):
    # entities [1,e] with the seven server features of an EV entity, added one feature at a
    # time until the next one would pass the target size
    dev = "d:_n:Demo_EVSE-234567890"
    entities, features = [], []
    last = None
    e = 0
    while True:
        e += 1
        entities.append({"description": {"entityAddress": {"device": dev, "entity": [1, e]}, "entityType": "EV",
                                          "label": "EV %d" % e, "description": "Electric vehicle entity %d" % e}})
        for f, (ftype, funcs) in enumerate(FEATURES, 1):
            features.append({"description": {
                "featureAddress": {"device": dev, "entity": [1, e], "feature": f},
                "featureType": ftype, "role": "server",
                "supportedFunction": [{"function": fn,
                                       "possibleOperations": {"read": {}, "write": {"partial": {}}} if i % 2
                                       else {"read": {"partial": {}}}} for i, fn in enumerate(funcs)],
                "description": "%s of entity %d, scale %.1f" % (ftype, e, e / 4)}})
            msg = _discovery_message(dev, entities, features)
            if len(msg) > target:
                return last
            last = msg


BENCH = r"""
import sys, gc, time, json
gc.collect()
_a = gc.mem_alloc()
from eejson.reader import Reader, Consumer, Names
from eejson.dialect import Tree, Path
from eejson.writer import Writer
gc.collect()
print("FIG import retained", gc.mem_alloc() - _a)
from eejson_cases import Recorder, replay

def best(fn, n):
    b = 1 << 30
    for _ in range(n):
        t = time.ticks_us()
        fn()
        d = time.ticks_diff(time.ticks_us(), t)
        if d < b:
            b = d
    return b

def allocated(fn):
    fn()
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    fn()
    d = gc.mem_alloc() - a
    gc.enable()
    return d

# Peak (transient) heap of fn by ballast bisection: fill the heap with small blocks until
# only `keep` bytes are free, run fn, see whether it hit MemoryError; the smallest free heap
# at which fn passes is its peak need above what is live before it. The GC runs as it
# likes during fn, so garbage does not count, only what is live at the same time.
BALLAST = [None] * 8192

def fill(keep):
    gc.collect()
    i = 0
    for size in (8192, 1024, 128, 16):
        while gc.mem_free() > keep + size + 64:
            try:
                BALLAST[i] = bytes(size)
            except MemoryError:
                break
            i += 1
    return i

def run_with(fn, keep):
    k = fill(keep)
    free = gc.mem_free()
    ok = True
    try:
        fn()
    except MemoryError:
        ok = False
    for j in range(k):
        BALLAST[j] = None
    gc.collect()
    return ok, free

def peak(fn):
    fn()
    lo = 0
    hi = 1 << 17
    need = None
    while hi - lo > 32:
        mid = (lo + hi) // 2
        ok, free = run_with(fn, mid)
        if ok:
            hi = mid
            need = free
        else:
            lo = mid
    return need

r = Reader(None)
null = Consumer()

for label, path in zip(("capture", "synthetic"), sys.argv[1:3]):
    with open(path, "rb") as f:
        data = f.read()
    buf = bytearray(data)
    n = len(buf)
    reps = 30 if n < 8000 else 10

    def stream(c, rd=r):
        rd.reset(c)
        off = 0
        while off < n:
            k = 1024 if n - off > 1024 else n - off
            rd.feed(buf, off, k)
            off += k
        rd.finish()

    def keep_nothing():
        stream(null)

    def tree():
        stream(Tree())

    pth = Path()

    def path():
        pth.reset()
        stream(pth)

    def loads():
        json.loads(data)

    # the SPINE layer will know every key: hand them out from a Names table
    rec = Recorder()
    stream(rec)
    keys = []
    for t, a in rec.ev:
        if t == 4 and a not in keys:
            keys.append(a)
    rn = Reader(null, names=Names(keys))
    rec = None

    def named():
        stream(null, rn)

    ops = (("loads", loads), ("null", keep_nothing), ("named", named), ("path", path), ("tree", tree))
    print("FIG", label, "bytes", n)
    for key, fn in ops:
        print("FIG", label, key + "_us", best(fn, reps))
    for key, fn in ops:
        print("FIG", label, key + "_alloc", allocated(fn))
    for key, fn in ops:
        print("FIG", label, key + "_peak", peak(fn))

    if label == "capture":
        rec = Recorder()
        stream(rec)
        emit = replay(rec.ev)

        w = Writer(1024)

        def sink(mv):
            pass

        def write():
            w.measure(emit)
            w.stream(emit, sink)

        out = bytearray()
        w.stream(emit, out.extend)
        assert bytes(out) == data, "writer output differs from the capture"
        print("FIG", label, "write_us", best(lambda: w.stream(emit, sink), reps))
        print("FIG", label, "measure_us", best(lambda: w.measure(emit), reps))
        print("FIG", label, "write_alloc", allocated(write))
        print("FIG", label, "write_peak", peak(write))
print("BENCH DONE")
"""


def _figures(stdout):
    figs = {}
    for m in re.finditer(r"^FIG (\S+) (\S+) (-?\d+)$", stdout, re.M):
        figs.setdefault(m.group(1), {})[m.group(2)] = int(m.group(3))
    return figs


def test_bench_eejson(tmp_path):
    name, cap = largest_capture()
    syn = synthetic_discovery()
    paths = []
    for label, data in (("capture", cap), ("synthetic", syn)):
        p = os.path.join(str(tmp_path), label + ".json")
        with open(p, "wb") as f:
            f.write(data)
        paths.append(p)
    # eejson_cases: Recorder, replay
    r = mpyrun.run_code(BENCH, tmp_path, heapsize="512K", name="bench.py", args=paths, timeout=120,
                        extra_path=mpyrun.CASE_PATH).check()
    assert "BENCH DONE" in r.stdout
    figs = _figures(r.stdout)

    def yn(ok):
        return "yes" if ok else "NO"

    print()
    print("EEBUS JSON bench (MicroPython unix port, 64-bit; the reader is fed 1 KB pieces)")
    print("inputs: capture = %s (%d B); synthetic = detailed-discovery reply in a SHIP data message (%d B)"
          % (name, len(cap), len(syn)))
    print()
    head = "%-10s %-21s %8s %7s %10s %7s %10s %7s" % (
        "input", "parser", "time us", "x loads", "allocated", "x loads", "peak heap", "x loads")
    print(head)
    print("-" * len(head))
    for label in ("capture", "synthetic"):
        f = figs[label]
        lt, la, lp = f["loads_us"], f["loads_alloc"], f["loads_peak"]
        for title, key in (("json.loads", "loads"), ("reader, keep nothing", "null"),
                           ("  + Names(all keys)", "named"), ("reader + Path", "path"), ("reader + Tree", "tree")):
            t, a, p = f[key + "_us"], f[key + "_alloc"], f[key + "_peak"]
            print("%-10s %-21s %8d %7.2f %10d %7.2f %10d %7.3f" % (label, title, t, t / lt, a, a / la, p, p / lp))
    print()
    print("time = best of 10-30 runs; allocated = bytes allocated by one parse with the GC off (garbage")
    print("included); peak heap = the least free heap the parse runs in (ballast bisection, ~50 B resolution)")
    print()
    print("targets: streaming reader peak heap <= %d%% of json.loads's, time <= %.0fx json.loads's"
          % (HEAP_TARGET * 100, TIME_TARGET))
    for label in ("capture", "synthetic"):
        f = figs[label]
        hp = f["null_peak"] / f["loads_peak"]
        tn = f["null_us"] / f["loads_us"]
        tt = f["tree_us"] / f["loads_us"]
        print("  %-10s keep-nothing heap %5.1f%% -> %s, time %5.2fx -> %s;  tree time %5.2fx -> %s" % (
            label, hp * 100, yn(hp <= HEAP_TARGET), tn, yn(tn <= TIME_TARGET), tt, yn(tt <= TIME_TARGET)))
    f = figs["capture"]
    print()
    print("writer: %s replayed from its event list through a 1 KB buffer (sink drops the chunks)" % name)
    print("  stream %d us, measure %d us; measure+stream allocate %d B (GC off), peak heap %d B"
          % (f["write_us"], f["measure_us"], f["write_alloc"], f["write_peak"]))
    print("  target: allocation beyond the 1 KB buffer <= %d B -> %s" % (
        WRITER_TARGET, yn(max(f["write_alloc"], f["write_peak"]) <= WRITER_TARGET)))
    print("import of reader+dialect+writer from .py source: %d B retained (bytecode and qstrs in RAM;"
          % figs["import"]["retained"])
    print("  frozen, they stay in flash)")
