# EVCS station-side data (lib/usecases/evcs.py); runs under CPython and MicroPython. The emitted
# data is checked by rendering it and parsing the bytes back into plain values.
from charger import Charger
from compat import ticks_add
from eejson.dialect import build
from eejson.writer import Writer
from spine.datagram import E_OK, E_REJECTED
from usecases.evcs import Evcs, utc_seconds, utc_text
from spine.table import Table

_W = Writer(8192)


def rows_plain(function, rows):
    n = _W.render(Table(function, rows).emitter())
    return build(bytes(_W.buf[:n]))


def sn(n, s=0):
    return {"number": n, "scale": s}


class Clock:
    def __init__(self, t=None):
        self.t = t

    def __call__(self):
        return self.t


def bills(e):
    t = rows_plain("billListData", e.bill_rows())
    return t.get("billData", []) if isinstance(t, dict) else []  # no bill: {} ([] to the builder)


def session(e, ch, clock, wh, start, end, t0=0, t1=3600000):
    clock.t = start
    e.session_started(t0)
    ch.update(session_wh=wh)
    clock.t = end
    return e.session_ended(t1)


def grid_self(g, s):
    return [{"positionId": 1, "positionType": "gridElectricEnergy", "value": [{"valuePercentage": g}]},
            {"positionId": 2, "positionType": "selfProducedElectricEnergy", "value": [{"valuePercentage": s}]}]


def case_descriptions_and_constraints():
    e = Evcs(Charger(), Clock(), max_bills=3)
    d = rows_plain("billDescriptionListData", e.description_rows())["billDescriptionData"]
    assert d == [{"billId": i, "billWriteable": True, "supportedBillType": ["chargingSummary"]} for i in (1, 2, 3)]
    c = rows_plain("billConstraintsListData", e.constraints_rows())["billConstraintsData"]
    assert c == [{"billId": i, "positionCountMin": 0, "positionCountMax": 2} for i in (1, 2, 3)]
    assert bills(e) == []


def case_bill_added_on_session_end():
    ch = Charger()
    clock = Clock()
    e = Evcs(ch, clock)
    assert session(e, ch, clock, 12345, "2026-03-01T18:00:00Z", "2026-03-01T21:30:00Z")
    assert bills(e) == [{
        "billId": 1, "billType": "chargingSummary",
        "total": {"timePeriod": {"startTime": "2026-03-01T18:00:00Z", "endTime": "2026-03-01T21:30:00Z"},
                  "value": [{"value": sn(12345), "unit": "Wh"}]},
        "position": grid_self(sn(100), sn(0))}]


def case_end_without_start_adds_nothing():
    e = Evcs(Charger(), Clock("2026-03-01T18:00:00Z"))
    assert not e.session_ended(0)
    assert bills(e) == []


def case_unsynced_clock():
    ch = Charger()
    clock = Clock()
    e = Evcs(ch, clock)
    # never synced: no times at all
    assert session(e, ch, clock, 1000.5, None, None)
    assert "timePeriod" not in bills(e)[0]["total"]
    assert bills(e)[0]["total"]["value"] == [{"value": sn(10005, -1), "unit": "Wh"}]
    # synced during the session: the start is placed from the elapsed ticks (across a wrap)
    assert session(e, ch, clock, 2000, None, "2026-01-01T00:30:00Z",
                   t0=ticks_add(0, -1000), t1=ticks_add(0, 2 * 3600000 - 1000))
    tp = bills(e)[1]["total"]["timePeriod"]
    assert tp == {"startTime": "2025-12-31T22:30:00Z", "endTime": "2026-01-01T00:30:00Z"}


def case_energy_from_total_counter():
    ch = Charger()
    clock = Clock()
    e = Evcs(ch, clock)
    ch.update(total_wh=100000)
    e.session_started(0)
    ch.update(total_wh=107000)
    assert e.session_ended(1000)
    assert bills(e)[0]["total"]["value"] == [{"value": sn(7000), "unit": "Wh"}]


def case_ids_cycle_oldest_gives_way():
    ch = Charger()
    clock = Clock()
    e = Evcs(ch, clock, max_bills=3)
    for k in range(5):
        session(e, ch, clock, 1000 * (k + 1), None, None)
    got = bills(e)
    assert [(b["billId"], b["total"]["value"][0]["value"]["number"]) for b in got] == [(1, 4000), (2, 5000), (3, 3000)]


def case_broker_writes_cost_and_split():
    ch = Charger()
    clock = Clock()
    e = Evcs(ch, clock)
    session(e, ch, clock, 20000, "2026-03-01T18:00:00Z", "2026-03-01T21:00:00Z")
    session(e, ch, clock, 5000, "2026-03-02T18:00:00Z", "2026-03-02T19:00:00Z")
    # a partial write as a tree: only bill 2
    tree = {"billData": {
        "billId": 2,
        "total": {"cost": [{"costType": "absolutePrice", "cost": sn(123, -2), "currency": "EUR"}]},
        "position": [
            {"positionId": 1, "value": {"valuePercentage": sn(40)}, "cost": {"costPercentage": sn(70)}},
            {"positionId": 2, "value": [{"valuePercentage": sn(60)}], "cost": [{"costPercentage": sn(30)}]}]}}
    assert e.write_bills(tree, True) == (E_OK, None)
    b1, b2 = bills(e)
    assert b1["position"] == grid_self(sn(100), sn(0)) and "cost" not in b1["total"]
    assert b2["total"]["cost"] == [{"costType": "absolutePrice", "currency": "EUR", "cost": sn(123, -2)}]
    assert b2["total"]["value"] == [{"value": sn(5000), "unit": "Wh"}]
    assert b2["position"] == [
        {"positionId": 1, "positionType": "gridElectricEnergy",
         "value": [{"valuePercentage": sn(40)}], "cost": [{"costPercentage": sn(70)}]},
        {"positionId": 2, "positionType": "selfProducedElectricEnergy",
         "value": [{"valuePercentage": sn(60)}], "cost": [{"costPercentage": sn(30)}]}]


def case_broker_full_write_keeps_our_measurements():
    ch = Charger()
    clock = Clock()
    e = Evcs(ch, clock)
    session(e, ch, clock, 20000, "2026-03-01T18:00:00Z", "2026-03-01T21:00:00Z")
    echo = bills(e)[0]
    echo["total"]["value"] = [{"value": sn(1), "unit": "Wh"}]  # ignored: the energy is ours
    echo["total"]["cost"] = [{"costType": "absolutePrice", "cost": sn(500, -2), "currency": "EUR"}]
    assert e.write_bills({"billData": [echo]}, False) == (E_OK, None)
    got = bills(e)[0]
    assert got["total"]["value"] == [{"value": sn(20000), "unit": "Wh"}]
    assert got["total"]["cost"][0]["cost"] == sn(500, -2)


def case_invalid_bill_writes_change_nothing():
    ch = Charger()
    clock = Clock()
    e = Evcs(ch, clock)
    session(e, ch, clock, 20000, None, None)
    before = bills(e)
    bad = [
        {"billData": [{"billId": 2}]},  # no such bill: writes add none
        {"billData": [{"billId": 1, "billType": "other"}]},
        {"billData": [{"billId": 1, "position": grid_self(sn(50), sn(40))}]},  # not 100 %
        {"billData": [{"billId": 1, "position": grid_self(sn(150), sn(-50))}]},
        {"billData": [{"billId": 1, "position": [{"positionId": 3}]}]},
        {"billData": [{"billId": 1, "position": [{"positionId": 1, "positionType": "selfProducedElectricEnergy"}]}]},
        {"billData": [{"billId": 1, "total": {"cost": [{"costType": "bitcoin", "cost": sn(1)}]}}]},
        {"billData": [{"billId": 1, "total": {"cost": [{"costType": "absolutePrice"}]}}]},
        {"billData": [{"billId": 1, "total": {"cost": [{"cost": sn(1)}] * 5}}]},
        {"billData": [{"billId": 1, "total": {"cost": [{"cost": sn(1)}]}},
                      {"billId": 1, "total": {"cost": [{"cost": sn(2)}]}}]},  # twice
        # the first bill's change is fine, the second entry is not: nothing applies
        {"billData": [{"billId": 1, "total": {"cost": [{"cost": sn(1)}]}}, {"billId": 9}]},
        {"billData": []}, None, [], {"billData": "x"},
    ]
    for b in bad:
        err, desc = e.write_bills(b, True)
        assert err == E_REJECTED and isinstance(desc, str), b
    assert bills(e) == before


def case_utc_text_roundtrip():
    for t in ("1970-01-01T00:00:00Z", "2000-02-29T12:34:56Z", "2026-12-31T23:59:59Z", "2100-03-01T00:00:00Z"):
        assert utc_text(utc_seconds(t)) == t
    assert utc_seconds("2026-01-01T00:00:00Z") == 1767225600
    assert utc_seconds("2026-13-01T00:00:00Z") is None
    assert utc_seconds("2026-01-01 00:00:00") is None
