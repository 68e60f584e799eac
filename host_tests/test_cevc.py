"""CEVC station-side data (lib/usecases/cevc.py) under CPython: the shared cases (MicroPython runs
them in test_cases_mpy) and properties over written tree shapes."""
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cases import caserun, cevc_cases
from charger import SRC_CEVC, Charger
from spine.table import Table
from support import mpyrun
from support.trees import mutate, rendered
from usecases.cevc import Cevc


@pytest.mark.parametrize("name", caserun.names(cevc_cases))
def test_case(name):
    getattr(cevc_cases, name)()


# ---- properties over written tree shapes: a write never raises, answers 0 or
# commandRejected with a text, changes nothing when refused, and what it accepts renders

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
DUR = st.one_of(st.sampled_from(["PT0S", "PT1M", "PT15M", "PT1H", "P7D", "PT168H", "PT90S", "-PT1H", "P", "PT",
                                 "2026-01-01T00:00:00Z"]),
                st.integers(0, 10 ** 7).map(lambda s: "PT%dS" % s), TEXT)
SN = st.one_of(st.fixed_dictionaries({"number": st.integers(-10 ** 12, 10 ** 12), "scale": st.integers(-12, 12)}),
               st.fixed_dictionaries({"number": st.integers(-100, 30000)}))
KEYS = ["timeSeriesId", "timeSeriesSlotId", "timePeriod", "startTime", "endTime", "duration", "maxValue", "value",
        "timeSeriesSlot", "timeSeriesData", "number", "scale", "relative", "tariff", "tariffId", "incentiveSlot",
        "timeInterval", "tier", "tierId", "boundary", "boundaryId", "incentive", "incentiveId", "lowerBoundaryValue",
        "incentiveTable", "incentiveTableDescription", "tariffDescription", "tierDescription", "tierType",
        "boundaryDescription", "incentiveDescription", "boundaryType", "incentiveType", "currency"]
LEAF = st.one_of(st.none(), st.booleans(), st.integers(-5, 10 ** 10), st.floats(allow_nan=True), TEXT, DUR, SN)
TREE = st.recursive(LEAF, lambda ch: st.one_of(st.lists(ch, max_size=4),
                                               st.dictionaries(st.sampled_from(KEYS), ch, max_size=5)), max_leaves=25)


def valid_series(n, d, w):
    return cevc_cases.eebus_write([(d, w)] * n)


def snapshot(c, now):
    return [rendered(emit) for emit in (Table("timeSeriesListData", c.series_rows(now)).emitter(),
                                        c.incentive_description_emit(), c.incentive_data_emit(now))]


def check_write(c, ch, fn, tree, partial, now):
    before = snapshot(c, now)
    req = ch.request_of(SRC_CEVC)
    r = fn(tree, partial, now)
    assert isinstance(r, tuple) and len(r) == 2
    err, desc = r
    assert err in (0, 7)
    if err:
        assert isinstance(desc, str) and desc
        assert snapshot(c, now) == before
        assert ch.request_of(SRC_CEVC) == req
    else:
        snapshot(c, now)  # renders, equal lengths measured and streamed


def fresh():
    ch = Charger(hw_min=6, hw_max=32)
    c = Cevc(ch, 0, demand_wh=10000, departure_s=3600, slots_max=8)
    c.write_series(valid_series(2, 600, 4000), False, 0)
    c.write_incentive_data(cevc_cases.incentive_data([(600, {"number": 3, "scale": -1})]), False, 0)
    return ch, c


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREE, partial=st.booleans(), which=st.integers(0, 2))
def test_arbitrary_trees_rejected_cleanly(tree, partial, which):
    ch, c = fresh()
    fn = (c.write_series, c.write_incentive_description, c.write_incentive_data)[which]
    check_write(c, ch, fn, tree, partial, 1000)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), partial=st.booleans(), which=st.integers(0, 2), n=st.integers(1, 9),
       d=st.sampled_from([60, 900, 3600, 86400]))
def test_mutated_valid_writes(data, partial, which, n, d):
    ch, c = fresh()
    base = (valid_series(n, d, 3000), cevc_cases.incentive_descriptions(),
            cevc_cases.incentive_data([(d, {"number": 25, "scale": -2})] * n, tier=data.draw(st.integers(0, 1))))[which]
    if which == 2:
        c.write_incentive_description(cevc_cases.incentive_descriptions(), False, 0)
    fn = (c.write_series, c.write_incentive_description, c.write_incentive_data)[which]
    check_write(c, ch, fn, mutate(base, data, TREE), partial, 1000)


@settings(max_examples=200, deadline=None)
@given(slots=st.lists(st.tuples(st.integers(1, 240).map(lambda m: 60 * m), st.integers(0, 22000)),
                      min_size=1, max_size=8),
       at=st.lists(st.integers(0, 30 * 3600 * 1000), min_size=1, max_size=10))
def test_recommendation_is_the_running_slot(slots, at):
    # reference: the slot whose [start, end) holds the elapsed time, by plain arithmetic
    ch = Charger(hw_min=6, hw_max=32)
    c = Cevc(ch, 0)
    assert c.write_series(cevc_cases.eebus_write(slots), False, 0) == (0, None)
    for t in sorted(at):
        c.tick(t)
        ch.tick(t)
        start = 0
        want = None
        for d, w in slots:
            if start * 1000 <= t < (start + d) * 1000:
                want = w
            start += d
        got = ch.request_of(SRC_CEVC)
        assert (None if got is None else got[1]) == want
        if got is not None:
            assert got[3] == start * 1000 - t  # expires with the series


# ---- under MicroPython: a tick that changes nothing allocates nothing; a mutation run

HEAP_CODE = """
import micropython
from charger import Charger
from usecases.cevc import Cevc
import cevc_cases
ch = Charger()
c = Cevc(ch, 0, demand_wh=5000, departure_s=7200)
c.write_series(cevc_cases.eebus_write([(3600, 4000), (3600, 5000)]), False, 0)
c.write_incentive_data(cevc_cases.incentive_data([(3600, {"number": 3, "scale": -1})] * 2), False, 0)
c.tick(1000)


def run(c):
    n = 0
    t = 2000
    micropython.heap_lock()
    while t < 3000000:
        n += c.tick(t)
        t += 1000
    micropython.heap_unlock()
    return n


print("TICKS", run(c))
"""


def test_tick_allocates_nothing_under_micropython(tmp_path):
    r = mpyrun.run_code(HEAP_CODE, tmp_path, heapsize="256K", extra_path=mpyrun.CASE_PATH).check()
    assert "TICKS 0" in r.stdout


MUTATION_CODE = """
import random, sys
from charger import Charger
from eejson.dialect import build
from usecase_cases import dialect
from usecases.cevc import Cevc
from spine.table import Table
from eejson.writer import Writer
import cevc_cases

W = Writer(512)

def snap(c):
    return [W.measure(e) for e in (Table("timeSeriesListData", c.series_rows(0)).emitter(),
                                    c.incentive_description_emit(), c.incentive_data_emit(0))]

seeds = [(0, cevc_cases.eebus_write([(900, 4000), (900, 0), (1800, 11000)])),
         (1, cevc_cases.incentive_descriptions()),
         (2, cevc_cases.incentive_data([(900, {"number": 30, "scale": -2})] * 3))]
random.seed(7)
rnd = random
count = int(sys.argv[1])
ok = bad = unparsable = 0
for i in range(count):
    which, tree = seeds[i % 3]
    b = bytearray(dialect(tree).encode())
    for _ in range(rnd.randint(1, 4)):
        j = rnd.randint(0, len(b) - 1)
        op = rnd.randint(0, 3)
        if op == 0:
            b[j] = rnd.choice(b'0123456789-[]{}",:PTHMSabc')
        elif op == 1:
            b = b[:j] + b[j + rnd.randint(1, 8):]
        elif op == 2:
            b = b[:j] + b[j:j + rnd.randint(1, 12)] + b[j:]
        else:
            b[j] = rnd.randint(32, 126)
    try:
        t = build(bytes(b))
    except (ValueError, MemoryError):
        unparsable += 1
        continue
    ch = Charger()
    c = Cevc(ch, 0, slots_max=8)
    c.write_incentive_description(cevc_cases.incentive_descriptions(), False, 0)
    before = snap(c)
    err, desc = (c.write_series, c.write_incentive_description, c.write_incentive_data)[which](t, (i & 4) == 4, 0)
    if err:
        assert err == 7 and desc, (err, desc)
        assert snap(c) == before
        bad += 1
    else:
        snap(c)
        ok += 1
print("MUTATIONS", count, "ok", ok, "rejected", bad, "unparsable", unparsable)
"""


def test_mutation_run_under_micropython(tmp_path):
    r = mpyrun.run_code(MUTATION_CODE, tmp_path, heapsize="1M", args=("10000",), extra_path=mpyrun.CASE_PATH,
                        timeout=300).check()
    m = re.search(r"MUTATIONS 10000 ok (\d+) rejected (\d+) unparsable (\d+)", r.stdout)
    assert m, r.stdout[-2000:]
    print(m.group(0))
    assert int(m.group(2)) > 100 and int(m.group(1)) > 10


def test_cevc_names_the_ev_entity_usecases_ev_serves():
    # usecases.cevc keeps its own copy of the EV's address (importing usecases.ev would bring
    # the EV's description tables into every import of CEVC)
    from usecases import cevc, ev

    assert cevc._EV == ev.ADDRESS
