# CEVC station-side data (lib/usecases/cevc.py); runs under CPython and MicroPython. The emitted
# data is checked by rendering it and parsing the bytes back into plain values.
from compat import ticks_add
from charger import F_SESSION_WH, RECOMMENDATION, SRC_CEVC, UNIT_W, Charger
from eejson.dialect import build
from eejson.writer import Writer
from spine.datagram import E_OK, E_REJECTED
from usecases.cevc import Cevc
from spine.table import Table

H = 3600000
M = 60000
_W = Writer(8192)


def plain(emit):
    n = _W.render(emit)
    return build(bytes(_W.buf[:n]))


def rows_plain(function, rows):
    return plain(Table(function, rows).emitter())


def sn(n, s=0):
    return {"number": n, "scale": s}


def eebus_write(slots, start="PT0S"):
    """timeSeriesListData as eebus-go's WritePowerLimits builds it (public_scen2.go), as the
    tree builder hands it over: slots [(seconds, W)]."""
    out = []
    t = 0
    for i, (d, w) in enumerate(slots):
        tp = {"startTime": "PT%dS" % t}
        if i == len(slots) - 1:
            tp["endTime"] = "PT%dS" % (t + d)
        out.append({"timeSeriesSlotId": i, "timePeriod": tp, "maxValue": sn(w)})
        t += d
    return {"timeSeriesData": [{"timeSeriesId": 2, "timePeriod": {"startTime": start, "endTime": "PT%dS" % t},
                                "timeSeriesSlot": out}]}


def model():
    return Charger(hw_min=6, hw_max=32, phases=3)


def rec(ch):
    r = ch.request_of(SRC_CEVC)
    return None if r is None else (r[0], r[1], r[2])


def series(c, now, tsid):
    for e in rows_plain("timeSeriesListData", c.series_rows(now))["timeSeriesData"]:
        if e["timeSeriesId"] == tsid:
            return e
    return None


# ---- descriptions and constraints


def case_descriptions():
    c = Cevc(model(), 0)
    d = rows_plain("timeSeriesDescriptionListData", c.description_rows())["timeSeriesDescriptionData"]
    assert [(e["timeSeriesId"], e["timeSeriesType"], e["timeSeriesWriteable"], e["updateRequired"], e["unit"])
            for e in d] == [
        (1, "singleDemand", False, False, "Wh"), (2, "constraints", True, True, "W"), (3, "plan", False, False, "W")]


def case_constraints_only_for_the_written_series():
    # eebus-go takes the first constraints entry whatever its id: only series 2's is there
    c = Cevc(model(), 0, slots_max=12)
    d = rows_plain("timeSeriesConstraintsListData", c.constraints_rows())["timeSeriesConstraintsData"]
    assert d == [{"timeSeriesId": 2, "slotCountMin": 1, "slotCountMax": 12, "slotDurationMin": "PT1M",
                  "slotDurationMax": "P7D", "slotDurationStepSize": "PT1M", "latestTimeSeriesEndTime": "P7D",
                  "slotValueMin": sn(0)}]


# ---- power limits: the recommendation follows the plan


def case_eebus_write_parsed_from_the_wire():
    wire = (b'{"timeSeriesListData":[{"timeSeriesData":[[{"timeSeriesId":2},{"timePeriod":[{"startTime":"PT0S"},'
            b'{"endTime":"PT2H"}]},{"timeSeriesSlot":[[{"timeSeriesSlotId":0},{"timePeriod":[{"startTime":"PT0S"}]},'
            b'{"maxValue":[{"number":42},{"scale":2}]}],[{"timeSeriesSlotId":1},{"timePeriod":[{"startTime":"PT1H"},'
            b'{"endTime":"PT2H"}]},{"maxValue":[{"number":11000},{"scale":0}]}]]}]]}]}')
    tree = build(wire)["timeSeriesListData"]
    ch = model()
    c = Cevc(ch, 1000)
    assert c.write_series(tree, False, 1000) == (E_OK, None)
    assert rec(ch) == (RECOMMENDATION, 4200, UNIT_W)
    assert ch.request_of(SRC_CEVC)[3] == 2 * H


def case_recommendation_follows_the_slots():
    ch = model()
    c = Cevc(ch, 0)
    assert c.write_series(eebus_write([(3600, 4200), (1800, 0), (3600, 11000)]), False, 0) == (E_OK, None)
    assert rec(ch) == (RECOMMENDATION, 4200, UNIT_W)
    assert not c.tick(30 * M)
    assert rec(ch) == (RECOMMENDATION, 4200, UNIT_W)
    assert c.tick(H)  # the first slot ended: data changed, next slot's value (pause)
    assert rec(ch) == (RECOMMENDATION, 0, UNIT_W)
    assert ch.setpoint() == 0
    assert not c.tick(H + 60000)
    assert c.tick(H + 30 * M + 5)
    assert rec(ch) == (RECOMMENDATION, 11000, UNIT_W)
    assert c.tick(3 * H)  # the series ended
    assert rec(ch) is None
    assert "timeSeriesSlot" not in series(c, 3 * H, 2)  # no slot left: the member left out


def case_read_back_relative_to_now():
    ch = model()
    c = Cevc(ch, 500)
    c.write_series(eebus_write([(3600, 4200), (3600, 22000)]), False, 500)
    e = series(c, 500 + 90 * M, 2)
    assert e["timePeriod"] == {"startTime": "PT0S", "endTime": "PT30M"}
    # the finished slot is gone, the running one from PT0S; duration given for eebus-go
    assert e["timeSeriesSlot"] == [{"timeSeriesSlotId": 1, "timePeriod": {"startTime": "PT0S", "endTime": "PT30M"},
                                    "duration": "PT30M", "maxValue": sn(22000)}]
    # our plan: the same slots, capped at the station's power
    p = series(c, 500 + 90 * M, 3)
    assert p["timeSeriesSlot"] == [{"timeSeriesSlotId": 1, "timePeriod": {"startTime": "PT0S", "endTime": "PT30M"},
                                    "duration": "PT30M", "value": sn(11000), "maxValue": sn(11000)}]


def case_series_in_the_future_waits():
    ch = model()
    c = Cevc(ch, 0)
    w = eebus_write([(600, 3000)])
    w["timeSeriesData"][0]["timeSeriesSlot"][0]["timePeriod"] = {"startTime": "PT10M", "endTime": "PT20M"}
    w["timeSeriesData"][0]["timePeriod"] = {"startTime": "PT0S", "endTime": "PT20M"}
    assert c.write_series(w, False, 0) == (E_OK, None)
    assert rec(ch) is None
    assert series(c, 0, 2)["timeSeriesSlot"][0]["timePeriod"] == {"startTime": "PT10M", "endTime": "PT20M"}
    assert c.tick(10 * M)
    assert rec(ch) == (RECOMMENDATION, 3000, UNIT_W)


def case_duration_slots_accepted():
    # slots given by duration only (Tinkerforge's shape)
    ch = model()
    c = Cevc(ch, 0)
    tree = {"timeSeriesData": {"timeSeriesId": 2, "timeSeriesSlot": [
        {"timeSeriesSlotId": 1, "duration": "PT15M", "maxValue": sn(5000)},
        {"timeSeriesSlotId": 2, "duration": "PT15M", "maxValue": sn(75, 2)}]}}
    assert c.write_series(tree, True, 0) == (E_OK, None)
    assert c.tick(15 * M)
    assert rec(ch) == (RECOMMENDATION, 7500, UNIT_W)


def case_ticks_wrap_and_long_plans():
    # eebus-go's fallback: one slot of 7 days, beyond half the ticks period; ticks wrap
    ch = model()
    start = ticks_add(0, -5000)
    c = Cevc(ch, start)
    assert c.write_series(eebus_write([(7 * 86400, 11000)]), False, start) == (E_OK, None)
    now = start
    for _ in range(7 * 24 - 1):
        now = ticks_add(now, H)
        assert not c.tick(now)
    assert rec(ch) == (RECOMMENDATION, 11000, UNIT_W)
    assert c.tick(ticks_add(now, H))
    assert rec(ch) is None


def case_rewrite_replaces_the_plan():
    ch = model()
    c = Cevc(ch, 0)
    c.write_series(eebus_write([(3600, 4200)]), False, 0)
    assert c.write_series(eebus_write([(600, 6000), (600, 2000)]), False, 30 * M) == (E_OK, None)
    assert rec(ch) == (RECOMMENDATION, 6000, UNIT_W)
    assert [s["timeSeriesSlotId"] for s in series(c, 30 * M, 2)["timeSeriesSlot"]] == [0, 1]


def case_invalid_writes_change_nothing():
    ch = model()
    c = Cevc(ch, 0, slots_max=4)
    good = eebus_write([(3600, 4200), (3600, 5000)])
    c.write_series(good, False, 0)
    before = series(c, 0, 2)
    bad = [
        eebus_write([(600, 1000)] * 5),  # too many slots
        eebus_write([(600, -1)]),  # negative power
        eebus_write([(90, 1000)]),  # not a multiple of the step
        eebus_write([(30, 1000)]),  # shorter than the minimum
        eebus_write([(8 * 86400, 1000)]),  # beyond the horizon
        eebus_write([(600, 2000000)]),  # absurd power
        {"timeSeriesData": []},
        {"timeSeriesData": [{"timeSeriesId": 2, "timeSeriesSlot": []}]},
        {"timeSeriesData": [{"timeSeriesId": 7, "timeSeriesSlot": []}]},
        {"timeSeriesData": [{"timeSeriesId": 2, "timeSeriesSlot": [{"timeSeriesSlotId": 0, "maxValue": sn(1)}]}]},
        {"timeSeriesData": [{"timeSeriesId": 2, "timeSeriesSlot": [
            {"timeSeriesSlotId": 0, "timePeriod": {"startTime": "2026-01-01T00:00:00Z", "endTime": "PT1H"},
             "maxValue": sn(1)}]}]},
        # a gap
        {"timeSeriesData": [{"timeSeriesId": 2, "timeSeriesSlot": [
            {"timeSeriesSlotId": 0, "timePeriod": {"startTime": "PT0S", "endTime": "PT1H"}, "maxValue": sn(1)},
            {"timeSeriesSlotId": 1, "timePeriod": {"startTime": "PT2H", "endTime": "PT3H"}, "maxValue": sn(1)}]}]},
        # an id twice
        {"timeSeriesData": [{"timeSeriesId": 2, "timeSeriesSlot": [
            {"timeSeriesSlotId": 0, "timePeriod": {"startTime": "PT0S", "endTime": "PT1H"}, "maxValue": sn(1)},
            {"timeSeriesSlotId": 0, "timePeriod": {"startTime": "PT1H", "endTime": "PT2H"}, "maxValue": sn(1)}]}]},
        {"timeSeriesData": [{"timeSeriesId": 2, "timeSeriesSlot": [
            {"timeSeriesSlotId": 0, "timePeriod": {"startTime": "PT0S", "endTime": "PT1H"},
             "maxValue": {"number": 1.5}}]}]},
        None, "x", {"timeSeriesData": 3},
    ]
    for b in bad:
        err, desc = c.write_series(b, False, 0)
        assert err == E_REJECTED and isinstance(desc, str), (b, err, desc)
    # a partial write to our own series is refused; the whole write with it too
    mixed = eebus_write([(600, 1)])
    mixed["timeSeriesData"].append({"timeSeriesId": 3, "timeSeriesSlot": []})
    assert c.write_series(mixed, True, 0)[0] == E_REJECTED
    assert series(c, 0, 2) == before
    assert rec(ch) == (RECOMMENDATION, 4200, UNIT_W)
    # a full write carrying our series back is taken for series 2
    assert c.write_series(mixed, False, 0) == (E_OK, None)
    assert rec(ch) == (RECOMMENDATION, 1, UNIT_W)


# ---- demand


def case_demand_unknown_keeps_one_empty_slot():
    # eebus-go indexes the first slot of singleDemand without a length check
    c = Cevc(model(), 0)
    assert series(c, 0, 1) == {"timeSeriesId": 1, "timeSeriesSlot": [{"timeSeriesSlotId": 0}]}


def case_demand_from_user_input():
    ch = model()
    c = Cevc(ch, 0, demand_wh=20000, departure_s=8 * 3600)
    e = series(c, 2 * H, 1)
    assert e["timePeriod"] == {"startTime": "PT0S", "endTime": "PT6H"}
    assert e["timeSeriesSlot"] == [{"timeSeriesSlotId": 0, "duration": "PT6H", "minValue": sn(0),
                                    "value": sn(20000), "maxValue": sn(20000)}]
    ch.update(session_wh=5000)
    assert series(c, 2 * H, 1)["timeSeriesSlot"][0]["value"] == sn(15000)
    assert not c.tick(7 * H)
    assert c.tick(8 * H)  # departure passed: no duration any more (direct charging)
    e = series(c, 8 * H, 1)
    assert "timePeriod" not in e and "duration" not in e["timeSeriesSlot"][0]
    # demand without departure; charged more than asked: no demand left
    c.set_demand(3000, None, 8 * H)
    ch.update(session_wh=9000)
    assert series(c, 8 * H, 1)["timeSeriesSlot"][0]["value"] == sn(0)


# ---- incentives


def incentive_descriptions():
    # eebus-go's WriteIncentiveTableDescriptions with two tiers of its own
    tiers = []
    for tid in (0, 1):
        tiers.append({
            "tierDescription": {"tierId": tid, "tierType": "dynamicCost"},
            "boundaryDescription": [{"boundaryId": tid, "boundaryType": "powerBoundary", "boundaryUnit": "W"}],
            "incentiveDescription": [{"incentiveId": tid, "incentiveType": "absoluteCost", "currency": "EUR"}],
        })
    return {"incentiveTableDescription": [{
        "tariffDescription": {"tariffId": 0, "tariffWriteable": True, "updateRequired": True,
                              "scopeType": "simpleIncentiveTable"},
        "tier": tiers,
    }]}


def incentive_data(prices, tier=0):
    slots = []
    t = 0
    for i, (d, price) in enumerate(prices):
        ti = {"startTime": {"relative": "PT%dS" % t}}
        if i == len(prices) - 1:
            ti["endTime"] = {"relative": "PT%dS" % (t + d)}
        slots.append({"timeInterval": ti, "tier": [{"tier": {"tierId": tier},
                                                    "boundary": [{"boundaryId": tier, "lowerBoundaryValue": sn(0)}],
                                                    "incentive": [{"incentiveId": tier, "value": price}]}]})
        t += d
    return {"incentiveTable": [{"tariff": {"tariffId": 0}, "incentiveSlot": slots}]}


def case_incentive_constraints_and_default_description():
    c = Cevc(model(), 0, slots_max=24)
    assert plain(c.incentive_constraints_emit()) == {"incentiveTableConstraints": [{
        "tariff": {"tariffId": 0},
        "tariffConstraints": {"maxTariffCount": 1, "maxTiersPerTariff": 3, "maxBoundariesPerTier": 4,
                              "maxIncentivesPerTier": 3},
        "incentiveSlotConstraints": {"slotCountMin": 1, "slotCountMax": 24}}]}
    d = plain(c.incentive_description_emit())["incentiveTableDescription"]
    assert d == [{"tariffDescription": {"tariffId": 0, "tariffWriteable": True, "updateRequired": True,
                                        "scopeType": "simpleIncentiveTable"},
                  "tier": [{"tierDescription": {"tierId": 0, "tierType": "dynamicCost"},
                            "boundaryDescription": [{"boundaryId": 0, "boundaryType": "powerBoundary",
                                                     "boundaryUnit": "W"}],
                            "incentiveDescription": [{"incentiveId": 0, "incentiveType": "absoluteCost",
                                                      "currency": "EUR"}]}]}]
    assert plain(c.incentive_data_emit()) == {"incentiveTable": [{"tariff": {"tariffId": 0}}]}


def case_incentives_stored_and_read_back():
    c = Cevc(model(), 0)
    assert c.write_incentive_description(incentive_descriptions(), False, 0) == (E_OK, None)
    d = plain(c.incentive_description_emit())["incentiveTableDescription"][0]
    assert [t["tierDescription"]["tierId"] for t in d["tier"]] == [0, 1]
    data = incentive_data([(3600, sn(30, -2)), (3600, sn(-5, -2))], tier=1)
    assert c.write_incentive_data(data, False, 0) == (E_OK, None)
    got = plain(c.incentive_data_emit(30 * M))["incentiveTable"][0]
    assert got["tariff"] == {"tariffId": 0}
    assert got["incentiveSlot"] == [
        {"timeInterval": {"startTime": {"relative": "PT0S"}, "endTime": {"relative": "PT30M"}},
         "tier": [{"tier": {"tierId": 1}, "boundary": [{"boundaryId": 1, "lowerBoundaryValue": sn(0)}],
                   "incentive": [{"incentiveId": 1, "value": sn(30, -2)}]}]},
        {"timeInterval": {"startTime": {"relative": "PT30M"}, "endTime": {"relative": "PT1H30M"}},
         "tier": [{"tier": {"tierId": 1}, "boundary": [{"boundaryId": 1, "lowerBoundaryValue": sn(0)}],
                   "incentive": [{"incentiveId": 1, "value": sn(-5, -2)}]}]}]
    assert c.tick(H)  # the first incentive slot ended
    assert len(plain(c.incentive_data_emit(H))["incentiveTable"][0]["incentiveSlot"]) == 1


def case_incentive_data_against_default_description():
    # eebus-go may write data (tier/boundary/incentive 0) without writing a description first
    c = Cevc(model(), 0)
    assert c.write_incentive_data(incentive_data([(7 * 86400, sn(30, -2))]), False, 0) == (E_OK, None)


def case_invalid_incentives_change_nothing():
    c = Cevc(model(), 0, slots_max=3)
    c.write_incentive_data(incentive_data([(3600, sn(30, -2))]), False, 0)
    desc = plain(c.incentive_description_emit())
    data = plain(c.incentive_data_emit(0))
    bad_data = [
        incentive_data([(600, sn(1))] * 4),  # too many slots
        incentive_data([(600, sn(1))], tier=5),  # unknown tier
        incentive_data([(600, {"number": "x"})]),
        {"incentiveTable": [{"tariff": {"tariffId": 3},
                             "incentiveSlot": incentive_data([(600, sn(1))])["incentiveTable"][0]["incentiveSlot"]}]},
        {"incentiveTable": [{"incentiveSlot": [{"timeInterval": {"startTime": {"dateTime": "2026-01-01T00:00:00Z"}},
                                                "tier": []}]}]},
        {"incentiveTable": []}, None, {"incentiveTable": [{}, {}]},
    ]
    for b in bad_data:
        err, _ = c.write_incentive_data(b, False, 0)
        assert err == E_REJECTED, b
    t = incentive_descriptions()
    t["incentiveTableDescription"][0]["tier"] *= 2  # repeated tier ids, and 4 tiers
    bad_desc = [
        t,
        {"incentiveTableDescription": [{"tier": []}]},
        {"incentiveTableDescription": [{"tariffDescription": {"tariffId": 9},
                                        "tier": incentive_descriptions()["incentiveTableDescription"][0]["tier"]}]},
        5,
    ]
    for b in bad_desc:
        err, _ = c.write_incentive_description(b, False, 0)
        assert err == E_REJECTED, b
    assert plain(c.incentive_description_emit()) == desc
    assert plain(c.incentive_data_emit(0)) == data


# ---- unplug


def case_reset_on_unplug():
    ch = model()
    c = Cevc(ch, 0, demand_wh=10000)
    c.write_series(eebus_write([(3600, 4200)]), False, 0)
    c.write_incentive_description(incentive_descriptions(), False, 0)
    c.write_incentive_data(incentive_data([(3600, sn(30, -2))]), False, 0)
    assert rec(ch) is not None
    c.reset(10 * M)
    assert rec(ch) is None
    assert "timeSeriesSlot" not in series(c, 10 * M, 2)
    assert series(c, 10 * M, 1) == {"timeSeriesId": 1, "timeSeriesSlot": [{"timeSeriesSlotId": 0}]}
    assert plain(c.incentive_data_emit(10 * M)) == {"incentiveTable": [{"tariff": {"tariffId": 0}}]}
    assert len(plain(c.incentive_description_emit())["incentiveTableDescription"][0]["tier"]) == 1
    assert not c.tick(20 * M)
    # the next EV starts clean
    assert c.write_series(eebus_write([(600, 2000)]), False, 20 * M) == (E_OK, None)
    assert rec(ch) == (RECOMMENDATION, 2000, UNIT_W)


def case_session_energy_unknown():
    ch = model()
    assert ch.get(F_SESSION_WH) is None
    c = Cevc(ch, 0, demand_wh=1000)
    assert series(c, 0, 1)["timeSeriesSlot"][0]["value"] == sn(1000)


def case_no_slots_left_is_no_slot_member_on_the_wire():
    # no written series yet: the constraint and plan series have no slot; a zero-entry list is
    # the member left out ("timeSeriesSlot":[] reads as an object to eebus-go, which then drops
    # the whole message)
    ch = model()
    c = Cevc(ch, 500)
    n = _W.render(Table("timeSeriesListData", c.series_rows(500)).emitter())
    wire = bytes(_W.buf[:n])
    assert b'"timeSeriesSlot":[]' not in wire, wire
    assert b'[{"timeSeriesId":2}]' in wire and b'[{"timeSeriesId":3}]' in wire, wire
