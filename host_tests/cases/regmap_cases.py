# Register-map interpreter (lib/controller/regmap.py, mapload.py): loading and refusing maps, the poll plan,
# decoding into the charger model, limit encoding. Runs under CPython (test_regmap.py) and the
# MicroPython unix port (test_cases_mpy.py).
import json
import sys

from support.paths import TOOLS

if TOOLS not in sys.path:
    sys.path.append(TOOLS)  # mapcodec: the simulator's direction, host only

from charger import (
    Charger, F_CHARGING, F_ERROR, F_HW_MAX, F_I1, F_PLUGGED, F_POWER, F_STATE, F_TOTAL_WH, F_U1,
)
from controller import mapload, regmap
from controller.regmap import MapError
from mapcodec import decode_limit, encode, store

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
ROOT = _HERE.rsplit("/", 2)[0] if _HERE.count("/") >= 2 else "."
MAPS = ROOT + "/board_configs/chargers/"
NAMES = ("sim", "heidelberg-energy-control", "phoenix-ev-charge-control", "phoenix-ev-charge-control-basic")


def small():
    return {
        "name": "t",
        "document": "test",
        "link": {"kind": "rtu", "unit": 1},
        "points": [
            {"kind": "input", "address": 5, "field": "state",
             "enum": {"2": "A1", "4": "B1", "7": "C2", "6": "C1", "11": {"state": "E", "error": 11}}},
            {"kind": "input", "address": 6, "scale": 0.1, "field": "i1"},
            {"kind": "input", "address": 10, "field": "u1"},
            {"kind": "input", "address": 17, "type": "u32", "field": "total_wh"},
            {"kind": "input", "address": 100, "field": "hw_max", "interval_ms": 60000},
        ],
        "writes": {"limit": {"address": 261, "scale": 0.1, "min": 6, "max": 16}},
    }


def refused(doc, want):
    try:
        mapload.load(doc)
    except MapError as e:
        msg = str(e.args[0])
        assert want in msg, (want, msg)
        return msg
    raise AssertionError("accepted, wanted " + want)


def copy(doc):
    return json.loads(json.dumps(doc))


# ---- the shipped maps


def case_shipped_maps_load():
    for n in NAMES:
        m = mapload.load_file(MAPS + n + ".json")
        assert m.name == n
        assert m.document and m.blocks and m.limit
        for b in m.blocks:
            assert len(b.regs) == b.count and b.count <= 125
            for p in b.points:
                assert b.address <= p.address and p.address + p.width <= b.address + b.count


def case_heidelberg_plan_and_writes():
    m = mapload.load_file(MAPS + "heidelberg-energy-control.json")
    assert m.kind == "rtu" and m.unit == 1 and m.baudrate == 19200 and m.parity == "E"
    assert [(b.fc, b.address, b.count, b.interval) for b in m.blocks] == [(4, 5, 14, 1000), (4, 100, 2, 60000)]
    assert [(w.fc, w.address, w.value) for w in m.init_writes()] == [(6, 258, 4), (6, 262, 60), (6, 257, 15000)]
    assert (m.limit.address, m.limit.fc) == (261, 6)
    assert m.encode_limit(16) == (160, None)
    assert m.encode_limit(0) == (0, None)
    assert m.watchdog_ms == 15000 and m.feed == "any"


def case_phoenix_pauses_with_the_enable_coil():
    m = mapload.load_file(MAPS + "phoenix-ev-charge-control.json")
    assert m.kind == "tcp" and m.port == 502
    assert m.encode_limit(0) == (None, 0)
    assert m.encode_limit(5.9) == (None, 0)
    assert m.encode_limit(10.7) == (10, 1)
    assert (m.enable.fc, m.enable.address) == (5, 400)
    assert m.init_writes() == []


# ---- refusals name the entry and the reason


def case_refusals():
    d = small()
    d["points"][2]["type"] = "u64"
    refused(d, 'points[2].type: unknown value "u64"')
    d = small()
    del d["writes"]["limit"]["address"]
    refused(d, "writes.limit.address: missing")
    d = small()
    del d["writes"]["limit"]
    refused(d, "writes.limit: missing")
    d = small()
    d["points"][1]["adress"] = 6
    refused(d, 'points[1]: unknown key "adress"')
    d = small()
    d["points"][2]["field"] = "i1"
    refused(d, 'points[2].field: "i1" is already fed by points[1]')
    d = small()
    d["points"].append({"kind": "input", "address": 30, "field": "plugged"})
    refused(d, 'points[5].field: "plugged" is already fed by points[0]')
    d = small()
    d["points"][0]["enum"]["x"] = "A"
    refused(d, 'points[0].enum: key "x"')
    d = small()
    d["points"][0]["enum"]["3"] = "G"
    refused(d, 'points[0].enum."3".state: unknown IEC 61851 state "G"')
    d = small()
    del d["points"][0]["enum"]
    refused(d, "points[0].enum: missing")
    d = small()
    d["points"][1]["enum"] = {"1": "A"}
    refused(d, 'points[1].enum: only for the field "state"')
    d = small()
    d["points"][1]["words"] = "little"
    refused(d, "points[1].words: only for 32-bit types")
    d = small()
    d["points"][1]["kind"] = "coil"
    d["points"][1]["type"] = "u16"
    refused(d, 'points[1].type: "u16" does not fit kind "coil"')
    d = small()
    d["points"][1]["address"] = 70000
    refused(d, "points[1].address: 70000 out of range")
    d = small()
    d["points"][1]["address"] = True
    refused(d, "points[1].address: must be an integer")
    d = small()
    d["points"][1]["scale"] = 0
    refused(d, "points[1].scale: out of range")
    d = small()
    d["points"][1]["count"] = 2
    refused(d, "points[1].count: u16 takes 1 register(s)")
    d = small()
    d["link"]["unit"] = 0
    refused(d, "link.unit: 0 out of range 1..247")
    d = small()
    d["link"]["kind"] = "ascii"
    refused(d, 'link.kind: unknown value "ascii"')
    d = small()
    d["points"] = []
    refused(d, "points: missing or empty")
    d = small()
    d["writes"]["limit"]["min"] = 20
    refused(d, "writes.limit.min: above max")
    d = small()
    d["writes"]["limit"]["pause"] = "enable"
    refused(d, 'writes.limit.pause: "enable" needs writes.enable')
    d = small()
    d["writes"]["limit"]["max"] = 7000
    refused(d, "writes.limit.max: does not fit a register")
    d = small()
    d["writes"]["watchdog"] = {"address": 257, "value": 0, "timeout_ms": 15000}
    refused(d, "writes.watchdog.timeout_ms: 0 exactly when value is 0")
    d = small()
    d["writes"]["failsafe"] = {"address": 262, "amps": 3}
    refused(d, "writes.failsafe.amps: outside the limit's min..max")
    refused([], "map: must be an object")
    d = small()
    d["writes"]["limit"]["fc"] = 10
    refused(d, "writes.limit.fc: 6 or 16")


# ---- the plan


def case_blocks_group_by_interval_kind_and_gap():
    d = small()
    m = mapload.load(d)
    assert [(b.address, b.count) for b in m.blocks] == [(5, 2), (10, 1), (17, 2), (100, 1)]
    d["max_gap"] = 3
    m = mapload.load(d)
    # 5..6, 10 (gap 3), not 17 (gap 6); 100 is in its own interval class
    assert [(b.address, b.count, b.interval) for b in m.blocks] == [(5, 6, 1000), (17, 2, 1000), (100, 1, 60000)]
    d["max_gap"] = 16
    m = mapload.load(d)
    assert [(b.address, b.count) for b in m.blocks] == [(5, 14), (100, 1)]
    assert m.blocks[0].fc == 4


def case_blocks_respect_the_request_size():
    d = small()
    d["points"] = [{"kind": "holding", "address": i * 10, "field": f} for i, f in
                   enumerate(("i1", "i2", "i3", "u1", "u2", "u3", "power", "phases", "hw_min", "hw_max",
                              "ev_max", "error", "session_wh", "total_wh"))]
    d["max_gap"] = 16
    m = mapload.load(d)
    # 0..130 does not fit one 125-register request
    assert [(b.address, b.count) for b in m.blocks] == [(0, 121), (130, 1)]
    assert all(b.fc == 3 for b in m.blocks)


# ---- decoding


def fill(m, values):
    # values: {address: raw u16}
    for b in m.blocks:
        for i in range(b.count):
            b.regs[i] = values.get(b.address + i, 0)


def poll(m, model):
    changed = False
    for b in m.blocks:
        if m.decode(b, b.regs, model):
            changed = True
    model.flush()
    return changed


def case_decode_sets_the_model():
    m = mapload.load(small())
    c = Charger()
    fill(m, {5: 7, 6: 161, 10: 231, 17: 1, 18: 5, 100: 16})
    assert poll(m, c)
    assert c.get(F_STATE) == "C" and c.get(F_PLUGGED) is True and c.get(F_CHARGING) is True
    assert c.get(F_ERROR) == 0
    assert c.get(F_I1) == 16.1 and c.get(F_U1) == 231 and type(c.get(F_U1)) is int
    assert c.get(F_TOTAL_WH) == 65541 and c.get(F_HW_MAX) == 16
    # unchanged registers change nothing
    assert not poll(m, c)
    fill(m, {5: 6, 6: 0, 10: 231, 17: 1, 18: 5, 100: 16})
    assert poll(m, c)
    assert c.get(F_STATE) == "C" and c.get(F_CHARGING) is False and c.get(F_I1) == 0
    fill(m, {5: 11, 10: 231, 17: 1, 18: 5, 100: 16})
    poll(m, c)
    assert c.get(F_STATE) == "E" and c.get(F_ERROR) == 11 and c.get(F_PLUGGED) is False
    fill(m, {5: 2, 10: 231, 17: 1, 18: 5, 100: 16})
    poll(m, c)
    assert c.get(F_STATE) == "A" and c.get(F_ERROR) == 0


def case_unknown_enum_codes_change_nothing_and_are_counted():
    m = mapload.load(small())
    c = Charger()
    fill(m, {5: 4})
    poll(m, c)
    assert c.get(F_STATE) == "B"
    fill(m, {5: 99})
    assert not poll(m, c) or c.get(F_STATE) == "B"
    assert c.get(F_STATE) == "B" and m.unknown == 1 and m.last_unknown == 99
    m.forget()
    c2 = Charger()
    fill(m, {5: 4})
    poll(m, c2)
    assert c2.get(F_STATE) == "B"


def case_types_words_mask_and_signs():
    d = small()
    d["points"] = [
        {"kind": "holding", "address": 0, "type": "s16", "field": "power"},
        {"kind": "holding", "address": 1, "type": "s32", "words": "little", "field": "i1"},
        {"kind": "holding", "address": 3, "type": "u32", "words": "big", "scale": 0.001, "field": "total_wh"},
        {"kind": "holding", "address": 5, "mask": 255, "field": "state", "enum": {"67": "C", "66": "B"}},
        {"kind": "discrete", "address": 3, "field": "error"},
    ]
    m = mapload.load(d)
    c = Charger()
    # the discrete input at 3 reads 1 like the holding register at 3
    fill(m, {0: 0xFFFE, 1: 0xFFFF, 2: 0xFFFF, 3: 0x0001, 4: 0x0002, 5: 0x2043})
    poll(m, c)
    assert c.get(F_POWER) == -2
    assert c.get(F_I1) == -1
    assert c.get(F_TOTAL_WH) == 65.538
    assert c.get(F_STATE) == "C" and c.get(F_CHARGING) is True
    assert c.get(F_ERROR) == 1


def case_point_encode_round_trips():
    m = mapload.load_file(MAPS + "sim.json")
    for p in m.points:
        if p.enum is not None:
            continue
        for v in (0, 1, 6, 16.1, 230.4, 7360, 123456):
            try:
                raw = encode(p, v)
            except ValueError:
                continue
            regs = [0, 0]
            store(p, raw, regs, 0)
            got = regmap.value(p, regmap.raw(p, regs, 0))
            assert abs(got - v) <= p.scale / 2 + 1e-9, (p.index, v, got)


# ---- limits


def case_encode_limit():
    m = mapload.load(small())
    assert m.encode_limit(0) == (0, None)
    assert m.encode_limit(5.99) == (0, None)
    assert m.encode_limit(6) == (60, None)
    assert m.encode_limit(6.1) == (61, None)
    assert m.encode_limit(10.19) == (101, None)
    assert m.encode_limit(16) == (160, None)
    assert m.encode_limit(40) == (160, None)
    assert decode_limit(m, 61) == 6.1 and decode_limit(m, 160) == 16 and decode_limit(m, 0) == 0
    for bad in (-1, float("nan"), "6", None, True):
        try:
            m.encode_limit(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def case_watchdog_feed_register():
    d = small()
    d["writes"]["watchdog"] = {"address": 257, "value": 30, "timeout_ms": 30000, "feed": "register",
                               "feed_address": 6000, "feed_value": 1}
    m = mapload.load(d)
    assert (m.feed_write.address, m.feed_write.value) == (6000, 1)
    d["writes"]["watchdog"]["feed"] = "any"
    refused(d, 'writes.watchdog.feed: "register" for feed_address')


def case_unchanged_registers_decode_without_allocating():
    try:
        import micropython
    except ImportError:
        return  # CPython: nothing to measure
    m = mapload.load_file(MAPS + "sim.json")
    c = Charger()
    fill(m, {0: 5, 1: 1610, 4: 2304, 7: 0, 8: 7360, 11: 0x1234, 12: 1})
    poll(m, c)
    blocks = m.blocks
    decode = m.decode
    micropython.heap_lock()
    try:
        for b in blocks:
            decode(b, b.regs, c)
    finally:
        micropython.heap_unlock()
