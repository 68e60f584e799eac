"""EVCS station-side data (lib/usecases/evcs.py) under CPython: the shared cases (MicroPython runs
them in test_cases_mpy) and properties over written tree shapes."""
import copy
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cases import caserun, evcs_cases
from charger import Charger
from spine.table import Table
from support import mpyrun
from support.trees import mutate, rendered
from usecases.evcs import Evcs


@pytest.mark.parametrize("name", caserun.names(evcs_cases))
def test_case(name):
    getattr(evcs_cases, name)()


# ---- properties over written tree shapes: never raises, answers 0 or commandRejected with a
# text, changes nothing when refused, and what it accepts renders

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
SN = st.one_of(st.fixed_dictionaries({"number": st.integers(-10 ** 12, 10 ** 12), "scale": st.integers(-12, 12)}),
               st.fixed_dictionaries({"number": st.integers(-100, 200)}))
KEYS = ["billData", "billId", "billType", "total", "position", "positionId", "positionType", "value", "cost",
        "valuePercentage", "costPercentage", "costType", "currency", "unit", "costId", "valueId", "timePeriod",
        "number", "scale"]
LEAF = st.one_of(st.none(), st.booleans(), st.integers(-5, 10 ** 10), st.floats(allow_nan=True), TEXT, SN,
                 st.sampled_from(["chargingSummary", "gridElectricEnergy", "selfProducedElectricEnergy",
                                  "absolutePrice", "EUR"]))
TREE = st.recursive(LEAF, lambda ch: st.one_of(st.lists(ch, max_size=4),
                                               st.dictionaries(st.sampled_from(KEYS), ch, max_size=5)), max_leaves=25)


def fresh():
    ch = Charger()
    clock = evcs_cases.Clock()
    e = Evcs(ch, clock, max_bills=3)
    evcs_cases.session(e, ch, clock, 12000, "2026-03-01T18:00:00Z", "2026-03-01T21:00:00Z")
    evcs_cases.session(e, ch, clock, 3000, None, None)
    return e


def snapshot(e):
    return rendered(Table("billListData", e.bill_rows()).emitter())


def check(e, tree, partial):
    before = snapshot(e)
    err, desc = e.write_bills(tree, partial)
    assert err in (0, 7)
    if err:
        assert isinstance(desc, str) and desc
        assert snapshot(e) == before
    else:
        snapshot(e)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREE, partial=st.booleans())
def test_arbitrary_trees_rejected_cleanly(tree, partial):
    check(fresh(), tree, partial)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), partial=st.booleans(), g=st.integers(0, 100))
def test_mutated_valid_writes(data, partial, g):
    tree = {"billData": [{"billId": 2, "billType": "chargingSummary",
                          "total": {"cost": [{"costType": "absolutePrice", "cost": {"number": 99, "scale": -2},
                                              "currency": "EUR"}]},
                          "position": evcs_cases.grid_self({"number": g}, {"number": 100 - g})}]}
    e = fresh()
    assert e.write_bills(copy.deepcopy(tree), partial) == (0, None)
    check(e, mutate(tree, data, TREE), partial)


# ---- mutation run under MicroPython: mutated wire bytes of a broker write, parsed and applied

MUTATION_CODE = """
import random, sys
from charger import Charger
from eejson.dialect import build
from usecase_cases import dialect
from eejson.writer import Writer
from usecases.evcs import Evcs
from spine.table import Table
import evcs_cases

W = Writer(512)

seed = dialect({"billData": [{"billId": 1, "billType": "chargingSummary",
                              "total": {"cost": [{"costType": "absolutePrice", "cost": {"number": 99, "scale": -2},
                                                  "currency": "EUR"}]},
                              "position": evcs_cases.grid_self({"number": 30}, {"number": 70})}]}).encode()
random.seed(11)
rnd = random
count = int(sys.argv[1])
ok = bad = unparsable = 0
for i in range(count):
    b = bytearray(seed)
    for _ in range(rnd.randint(1, 4)):
        j = rnd.randint(0, len(b) - 1)
        op = rnd.randint(0, 3)
        if op == 0:
            b[j] = rnd.choice(b'0123456789-[]{}",:abcEUR')
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
    clock = evcs_cases.Clock()
    e = Evcs(ch, clock)
    evcs_cases.session(e, ch, clock, 5000, None, None)
    before = W.measure(Table("billListData", e.bill_rows()).emitter())
    err, desc = e.write_bills(t, (i & 1) == 1)
    after = W.measure(Table("billListData", e.bill_rows()).emitter())
    if err:
        assert err == 7 and desc, (err, desc)
        assert after == before
        bad += 1
    else:
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
