"""Register-map interpreter under CPython: the shared cases (MicroPython runs them in
test_cases_mpy), and properties: random and mutated maps are accepted or refused with
MapError only; random register contents decode without errors; values and limits round-trip."""

import copy
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cases import caserun, regmap_cases
from charger import Charger, FIELD_NAMES
from controller import mapload, regmap
from controller.regmap import MapError
from mapcodec import decode_limit, encode, store

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHIPPED = [regmap_cases.MAPS + n + ".json" for n in regmap_cases.NAMES]


@pytest.mark.parametrize("name", caserun.names(regmap_cases))
def test_case(name):
    getattr(regmap_cases, name)()


def _doc(path):
    with open(path) as f:
        return json.load(f)


# -- strategies ---------------------------------------------------------------------------------

JUNK = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)

POINT = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(regmap.KINDS),
        "address": st.integers(0, 0xFFFF),
        "field": st.sampled_from(mapload.FIELDS),
    },
    optional={
        "type": st.sampled_from(regmap.TYPES),
        "words": st.sampled_from(["big", "little"]),
        "scale": st.sampled_from([1, 0.1, 0.01, 0.001, 10, 0.5, 2.5]),
        "mask": st.integers(1, 0xFFFF),
        "interval_ms": st.sampled_from([100, 1000, 5000, 60000]),
        "enum": st.dictionaries(
            st.integers(0, 300).map(str),
            st.one_of(st.sampled_from(["A", "A1", "B2", "C", "C1", "C2", "D", "E", "F"]),
                      st.fixed_dictionaries({"state": st.sampled_from(["A", "B", "C2", "E"])},
                                            optional={"error": st.integers(0, 20),
                                                      "plugged": st.booleans(),
                                                      "charging": st.booleans()})),
            min_size=1, max_size=6),
    },
)



def _fix(p):
    """Mostly-valid points: the combinations the loader refuses are tested by the raw POINT."""
    p = dict(p)
    bits = p["kind"] in ("coil", "discrete")
    if bits:
        p["type"] = "bit"
        p.pop("mask", None)
        p.pop("scale", None)
    elif p.get("type") == "bit":
        p["type"] = "u16"
    if p.get("type") not in ("u32", "s32"):
        p.pop("words", None)
    if "enum" in p:
        p["field"] = "state"
        p.pop("scale", None)
    elif p["field"] == "state":
        p["field"] = "power"
    return p


GOOD_POINT = POINT.map(_fix)

LIMIT = st.fixed_dictionaries(
    {"address": st.integers(0, 0xFFFF), "min": st.sampled_from([0, 6, 6.5]), "max": st.sampled_from([16, 32, 63, 80])},
    optional={"scale": st.sampled_from([1, 0.1, 0.01, 0.5]), "pause": st.sampled_from(["zero", "enable"]),
              "fc": st.sampled_from([6, 16])},
)

MAP = st.fixed_dictionaries(
    {
        "name": st.just("r"),
        "document": st.just("random"),
        "link": st.fixed_dictionaries({"kind": st.sampled_from(["rtu", "tcp"]), "unit": st.integers(1, 247)}),
        "points": st.one_of(
            st.lists(GOOD_POINT, min_size=1, max_size=12,
                     unique_by=lambda p: "state" if p["field"] in ("plugged", "charging") else p["field"]),
            st.lists(POINT, min_size=1, max_size=12),
        ),
        "writes": st.fixed_dictionaries(
            {"limit": LIMIT},
            optional={"enable": st.fixed_dictionaries({"kind": st.sampled_from(["coil", "holding"]),
                                                       "address": st.integers(0, 0xFFFF)})},
        ),
    },
    optional={"max_gap": st.integers(0, 16), "poll_ms": st.sampled_from([100, 1000])},
)


def _mutate(doc, data):
    """Replace, delete or add one entry somewhere in the document."""
    doc = copy.deepcopy(doc)
    node = doc
    for _ in range(data.draw(st.integers(0, 4))):
        if isinstance(node, dict) and node:
            k = data.draw(st.sampled_from(sorted(node)))
            if isinstance(node[k], (dict, list)) and node[k]:
                node = node[k]
                continue
        elif isinstance(node, list) and node:
            i = data.draw(st.integers(0, len(node) - 1))
            if isinstance(node[i], (dict, list)) and node[i]:
                node = node[i]
                continue
        break
    op = data.draw(st.sampled_from(["set", "del", "add"]))
    if isinstance(node, dict):
        if op == "add" or not node:
            node[data.draw(st.text(max_size=6))] = data.draw(JUNK)
        else:
            k = data.draw(st.sampled_from(sorted(node)))
            if op == "del":
                del node[k]
            else:
                node[k] = data.draw(JUNK)
    elif isinstance(node, list):
        if op == "add" or not node:
            node.append(data.draw(JUNK))
        else:
            i = data.draw(st.integers(0, len(node) - 1))
            if op == "del":
                del node[i]
            else:
                node[i] = data.draw(JUNK)
    return doc


def _load(doc):
    try:
        return mapload.load(doc)
    except MapError as e:
        msg = e.args[0]
        assert isinstance(msg, str) and ": " in msg, msg
        return None


def _exercise(m):
    """Random-ish registers through every block: nothing but model updates may happen."""
    c = Charger()
    for seed in (0, 0xFFFF, 0x8000, 0x1234):
        for b in m.blocks:
            assert b.count <= (256 if b.kind >= 2 else 125)
            for i in range(b.count):
                b.regs[i] = (seed + 7919 * i) & (1 if b.kind >= 2 else 0xFFFF)
            m.decode(b, b.regs, c)
        c.flush()


# -- properties ---------------------------------------------------------------------------------


@SETTINGS
@given(MAP)
def test_random_maps_load_or_raise_map_error(doc):
    m = _load(doc)
    if m is not None:
        _exercise(m)
        fed = [FIELD_NAMES[p.field] for p in m.points]
        assert len(fed) == len(set(fed))


@SETTINGS
@given(st.sampled_from(SHIPPED), st.data())
def test_mutated_shipped_maps_load_or_raise_map_error(path, data):
    doc = _mutate(_doc(path), data)
    m = _load(doc)
    if m is not None:
        _exercise(m)


@SETTINGS
@given(JUNK)
def test_junk_is_refused_with_map_error(doc):
    with pytest.raises(MapError):
        mapload.load(doc)


@SETTINGS
@given(st.sampled_from(SHIPPED), st.data())
def test_random_registers_decode(path, data):
    m = mapload.load(_doc(path))
    c = Charger()
    for _ in range(3):
        for b in m.blocks:
            for i in range(b.count):
                b.regs[i] = data.draw(st.integers(0, 0xFFFF))
            m.decode(b, b.regs, c)
        c.flush()
        for p in m.points:
            if p.enum is None:
                v = c.get(p.field)
                assert isinstance(v, (int, float)) and not math.isnan(v)


@SETTINGS
@given(st.sampled_from(SHIPPED), st.data())
def test_decode_encode_round_trip(path, data):
    m = mapload.load(_doc(path))
    for p in m.points:
        if p.enum is not None:
            # every named code decodes to its own entry
            code = data.draw(st.sampled_from(sorted(p.enum)))
            regs = [0, 0]
            store(p, code, regs, 0)
            assert regmap.raw(p, regs, 0) & (p.mask or 0xFFFFFFFF) == code
            continue
        bits = 16 * p.width
        raw = data.draw(st.integers(0, (1 << bits) - 1))
        if p.mask:
            raw &= p.mask
        regs = [0, 0]
        store(p, raw, regs, 0)
        assert regmap.raw(p, regs, 0) == raw
        assert encode(p, regmap.value(p, raw)) == raw


@SETTINGS
@given(st.sampled_from(SHIPPED + [None]), st.one_of(st.integers(0, 100), st.floats(0, 100, allow_nan=False)), st.data())
def test_encode_limit_never_exceeds_and_round_trips(path, amps, data):
    doc = _doc(path) if path else regmap_cases.small()
    m = mapload.load(doc)
    value, enable = m.encode_limit(amps)
    if amps < m.limit_min or amps == 0:
        assert (value, enable) in ((0, None), (None, m.enable_off if m.enable else None))
        return
    got = decode_limit(m, value)
    assert m.limit_min <= got <= m.limit_max
    assert got <= amps + 1e-9
    assert amps > m.limit_max or got > amps - m.limit_scale - 1e-9
    assert enable == (m.enable_on if m.enable else None)
    assert 0 <= value <= 0xFFFF
    # a value on the register's grid comes back exactly
    grid = data.draw(st.integers(0, 0xFFFF))
    a = decode_limit(m, grid)
    if m.limit_min <= a <= m.limit_max and a > 0:
        assert m.encode_limit(a)[0] == grid


@SETTINGS
@given(st.one_of(st.integers(-5, -1), st.floats(max_value=-1e-9), st.just(float("nan")), st.text(max_size=2),
                 st.none()))
def test_encode_limit_refuses_junk_with_value_error(amps):
    m = mapload.load(regmap_cases.small())
    with pytest.raises(ValueError):
        m.encode_limit(amps)
