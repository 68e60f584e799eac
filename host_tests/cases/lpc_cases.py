# LPC/LPP controllable-system logic (lib/usecases/lpc.py) on top of the charger model; runs under
# both runtimes. One case per transition of the state machine (spine.md 12.9), named with the
# requirement of the LPC test specification that decides it. Every case starts just before
# the tick wrap-around, so that each timer crosses it.
import os

from charger import Charger, OBLIGATION, SRC_FAILSAFE, SRC_LPC, UNIT_W
from compat import ticks_add
from eejson.dialect import build
from eejson.writer import Writer
from usecases import lpc
from usecases.lpc import (
    AUTONOMOUS, CH_KEYS, CH_LIMIT, CH_STATE, CONTROLLED, FAILSAFE, INIT, LIMITED, PowerLimit,
)
from usecases.lpc import JsonStore
from spine.table import emit_list, entries, item_name
from support.paths import CAPTURES

T0 = ticks_add(0, -150000)  # 150 s before the wrap
S = 1000
H = 3600


def t(s):
    return ticks_add(T0, int(s * S))


def mk(fs_w=4140, **kw):
    m = Charger(hw_min=6, hw_max=16, phases=3, nominal_v=230)
    p = PowerLimit(m, t(0), failsafe_w=fs_w, **kw)
    return m, p


def lim(w=None, active=None, end=None, **extra):
    e = {"limitId": 0}
    if active is not None:
        e["isLimitActive"] = active
    if end is not None:
        e["timePeriod"] = {"endTime": end}
    if w is not None:
        e["value"] = {"number": w, "scale": 0}
    e.update(extra)
    return e


def write(p, e, now, delete=False):
    """The lead's two-phase write of one limit entry; returns the result code."""
    err, desc = p.check_limit(e, delete, now)
    if err:
        assert isinstance(desc, str) and desc
        p.reject_limit(now)
    else:
        assert p.apply_limit(e, delete, now)
    return err


def keys(p, w=None, dur=None, now=0):
    le = None if w is None else {"keyId": 0, "value": {"scaledNumber": {"number": w, "scale": 0}}}
    de = None if dur is None else {"keyId": 1, "value": {"duration": dur}}
    err, desc = p.check_keys(le, de, now)
    if not err:
        assert p.apply_keys(le, de, now)
    return err, desc


def watts(m):
    # the most the station may draw under the model's decision (3 phases, nominal voltage)
    return m.setpoint() * 3 * 230


def rowdict(row):
    d = {}
    for i in range(0, len(row), 2):
        v = row[i + 1]
        if v is None:
            continue
        if isinstance(v, tuple):
            v = {"number": v[0], "scale": v[1]}
        elif isinstance(v, list):
            v = rowdict(v)
        d[row[i]] = v
    return d


def capture(name):
    with open(CAPTURES + "/" + name, "rb") as f:
        return f.read().strip()


def cmd_element(data):
    # the one CmdType of a captured data message, as sent
    return data[data.index(b'"cmd":[[') + 8 : data.rindex(b"]]}]}]}}]}")]


def wire(function, rows):
    w = Writer(1024)

    def emit(w):
        w.plain_begin()
        w.member(function)
        emit_list(w, item_name(function), rows)
        w.plain_end()

    n = w.render(emit)
    return bytes(w.buf[:n])


def limited(p, w=5000, now=1, end=None):
    p.heartbeat(t(now))
    assert write(p, lim(w, True, end), t(now)) == 0
    assert p.state == LIMITED and p.tick(t(now)) == CH_STATE


class MemStore:
    def __init__(self, d=None, fail=False):
        self.d = d
        self.fail = fail
        self.saves = 0

    def load(self):
        if self.fail:
            raise OSError(5)
        return self.d

    def save(self, values):
        if self.fail:
            raise OSError(28)
        self.saves += 1
        if self.d is None:
            self.d = {}
        self.d.update(values)


# ---- init


def case_init_runs_on_the_failsafe_limit_017():
    m, p = mk()
    assert p.state == INIT and p.limit_w == 4140
    assert m.in_failsafe(SRC_LPC) and m.effective()[1] == SRC_FAILSAFE
    assert watts(m) <= 4140 and m.setpoint() == 6
    # the limit is deactivated after a (re)start, value 0 as eebus-go starts (009/2)
    assert rowdict(p.limit_data(0, t(0))) == {"limitId": 0, "isLimitChangeable": True, "isLimitActive": False,
                                              "value": {"number": 0, "scale": 0}}


def case_init_write_before_heartbeat_not_evaluated_036():
    m, p = mk()
    err, desc = p.check_limit(lim(5000, True), False, t(5))
    assert err == 7 and "036" in desc
    p.reject_limit(t(5))  # not evaluated: no transition either
    assert p.state == INIT and m.in_failsafe(SRC_LPC)
    assert not p.apply_limit(lim(5000, True), False, t(5))
    assert p.state == INIT and not p.active


def case_init_heartbeat_older_than_60s_does_not_count_036():
    m, p = mk()
    p.heartbeat(t(1))
    assert p.check_limit(lim(5000, True), False, t(60.9))[0] == 0
    assert p.check_limit(lim(5000, True), False, t(61))[0] == 7
    p.heartbeat(t(62))
    assert write(p, lim(5000, True), t(62)) == 0 and p.state == LIMITED


def case_init_heartbeat_active_limit_limited_020():
    m, p = mk()
    p.heartbeat(t(2))
    assert write(p, lim(6900, True), t(3)) == 0
    assert p.state == LIMITED and p.active and p.limit_w == 6900
    assert not m.in_failsafe(SRC_LPC)
    assert m.request_of(SRC_LPC) == (OBLIGATION, 6900, UNIT_W, None)
    assert m.effective()[1] == SRC_LPC and m.setpoint() == 10 and watts(m) <= 6900
    assert p.tick(t(3)) & CH_STATE


def case_init_heartbeat_deactivated_limit_controlled_021():
    m, p = mk()
    p.heartbeat(t(2))
    assert write(p, lim(6900, False), t(3)) == 0
    assert p.state == CONTROLLED and p.limit_w is None
    assert not m.in_failsafe(SRC_LPC) and m.request_of(SRC_LPC) is None
    assert m.effective() == (None, None, False) and m.setpoint() == 16
    assert p.value == 6900 and not p.active


def case_init_heartbeat_rejected_limit_controlled_018():
    m, p = mk()
    p.heartbeat(t(2))
    err, desc = p.check_limit(lim(-1, True), False, t(3))
    assert err == 7 and "035/1" in desc
    p.reject_limit(t(3))
    assert p.state == CONTROLLED and not m.in_failsafe(SRC_LPC) and m.request_of(SRC_LPC) is None
    assert p.value == 0  # the refused write changed nothing


def case_init_no_heartbeat_for_120s_autonomous_022_1():
    m, p = mk()
    assert p.tick(t(119.9)) == 0 and p.state == INIT
    assert p.tick(t(120)) == CH_STATE
    assert p.state == AUTONOMOUS and not m.in_failsafe(SRC_LPC) and m.setpoint() == 16


def case_init_heartbeat_without_limit_for_120s_autonomous_022_1():
    m, p = mk()
    for s in range(10, 120, 10):
        p.heartbeat(t(s))
    p.tick(t(119))
    assert p.state == INIT
    p.heartbeat(t(120))  # time runs out first, whatever arrives at that moment
    assert p.state == AUTONOMOUS


# ---- limited


def case_limited_deactivation_controlled_026():
    m, p = mk()
    limited(p)
    assert write(p, lim(active=False), t(10)) == 0
    assert p.state == CONTROLLED and m.request_of(SRC_LPC) is None and m.setpoint() == 16


def case_limited_duration_expiry_controlled_025_008():
    m, p = mk()
    limited(p, 5000, 1, "PT30S")
    assert m.request_of(SRC_LPC)[3] == 30000  # the model expires it too
    p.heartbeat(t(20))
    assert p.tick(t(30.9)) == 0
    assert p.tick(t(31)) == CH_LIMIT | CH_STATE
    assert p.state == CONTROLLED and not p.active
    assert "timePeriod" not in rowdict(p.limit_data(0, t(31)))  # 008/1: duration removed
    assert m.request_of(SRC_LPC) is None and m.setpoint() == 16


def case_limited_no_heartbeat_120s_failsafe_029():
    m, p = mk()
    limited(p, 9000, 1)
    p.heartbeat(t(50))
    assert p.tick(t(169.9)) == 0
    assert p.tick(t(170)) == CH_LIMIT | CH_STATE
    assert p.state == FAILSAFE and not p.active  # deactivated in failsafe (009/3)
    assert m.in_failsafe(SRC_LPC) and m.effective()[1] == SRC_FAILSAFE and watts(m) <= 4140
    assert m.request_of(SRC_LPC) is None  # the stale limit is gone


def case_limited_rejected_write_stays_024():
    m, p = mk()
    limited(p, 5000)
    assert write(p, lim(-5, True), t(5)) == 7
    assert p.state == LIMITED and p.value == 5000 and m.request_of(SRC_LPC)[1] == 5000


def case_limited_new_value_replaces_the_request():
    m, p = mk()
    limited(p, 5000)
    assert write(p, lim(8000), t(5)) == 0  # partial: value only, stays active
    assert p.state == LIMITED and m.request_of(SRC_LPC)[1] == 8000 and watts(m) <= 8000


def case_limited_writes_need_no_fresh_heartbeat():
    # the 60 s rule is for init/failsafe/autonomous; here the 120 s supervision rules
    m, p = mk()
    limited(p, 5000)
    assert write(p, lim(3000), t(100)) == 0 and m.request_of(SRC_LPC)[1] == 3000


# ---- unlimited/controlled


def _controlled():
    m, p = mk()
    p.heartbeat(t(1))
    write(p, lim(active=False), t(1))
    assert p.state == CONTROLLED and p.tick(t(1)) == CH_STATE
    return m, p


def case_controlled_active_limit_limited_027():
    m, p = _controlled()
    assert write(p, lim(4600, True), t(10)) == 0
    assert p.state == LIMITED and m.request_of(SRC_LPC)[1] == 4600


def case_controlled_no_heartbeat_120s_failsafe_028():
    m, p = _controlled()
    assert p.tick(t(121)) == CH_STATE
    assert p.state == FAILSAFE and m.in_failsafe(SRC_LPC) and watts(m) <= 4140


def case_controlled_rejected_write_stays_023():
    m, p = _controlled()
    assert write(p, lim(5, True, end="2026-11-21T19:55:33Z"), t(10)) == 7  # absolute time
    assert p.state == CONTROLLED and not p.active


def case_controlled_heartbeats_keep_it():
    m, p = _controlled()
    for s in range(50, 1000, 50):
        p.heartbeat(t(s))
        assert p.tick(t(s)) == 0
    assert p.state == CONTROLLED


# ---- failsafe


def _failsafe(**kw):
    m, p = mk(**kw)
    p.heartbeat(t(1))
    write(p, lim(6000, True), t(1))
    p.tick(t(121))
    assert p.state == FAILSAFE and p.tick(t(121)) == 0
    return m, p


def case_failsafe_write_before_heartbeat_not_evaluated_036():
    m, p = _failsafe()
    assert p.check_limit(lim(6000, True), False, t(130)) == (7, lpc._R_HEARTBEAT)
    p.reject_limit(t(130))
    assert p.state == FAILSAFE and m.in_failsafe(SRC_LPC)


def case_failsafe_heartbeat_active_limit_limited_032():
    m, p = _failsafe()
    p.heartbeat(t(200))
    assert write(p, lim(7000, True), t(201)) == 0
    assert p.state == LIMITED and not m.in_failsafe(SRC_LPC) and m.request_of(SRC_LPC)[1] == 7000


def case_failsafe_heartbeat_deactivated_controlled_033():
    m, p = _failsafe()
    p.heartbeat(t(200))
    assert write(p, lim(active=False), t(201)) == 0
    assert p.state == CONTROLLED and not m.in_failsafe(SRC_LPC) and m.setpoint() == 16


def case_failsafe_heartbeat_unappliable_limit_controlled_031():
    m, p = _failsafe()
    p.heartbeat(t(200))
    assert write(p, lim(-100, True), t(201)) == 7
    assert p.state == CONTROLLED and not m.in_failsafe(SRC_LPC)


def case_failsafe_lasts_its_duration_then_autonomous_012_022_3():
    m, p = _failsafe()  # entered at 121 s, 2 h
    for s in range(200, 2 * H + 121, 3000):
        assert p.tick(t(s)) == 0
    assert p.state == FAILSAFE and m.in_failsafe(SRC_LPC)
    assert p.tick(t(2 * H + 120.9)) == 0
    assert p.tick(t(2 * H + 121)) == CH_STATE
    assert p.state == AUTONOMOUS and not m.in_failsafe(SRC_LPC) and m.setpoint() == 16


def case_failsafe_heartbeat_back_without_limit_120s_autonomous_022_2():
    m, p = _failsafe()
    p.heartbeat(t(500))
    p.heartbeat(t(550))  # the 120 s count from the heartbeat's return, not the latest
    assert p.tick(t(619.9)) == 0 and p.state == FAILSAFE
    assert p.tick(t(620)) == CH_STATE and p.state == AUTONOMOUS


def case_failsafe_refuses_failsafe_value_writes_037():
    m, p = _failsafe()
    p.heartbeat(t(200))
    err, desc = keys(p, 3000, "PT3H", t(201))
    assert err == 7 and "037" in desc and p.failsafe_w == 4140 and p.failsafe_s == 2 * H


def case_failsafe_entered_late_tick_counts_from_the_loss():
    # one step far past the loss: failsafe started at the loss, so it ends at loss + 2 h
    m, p = mk()
    limited(p, 5000, 0)
    p.tick(t(120 + 2 * H - 1))  # the heartbeat at 0 was lost at 120 s
    assert p.state == FAILSAFE
    p.tick(t(120 + 2 * H))
    assert p.state == AUTONOMOUS


# ---- unlimited/autonomous


def _autonomous():
    m, p = mk()
    p.tick(t(120))
    assert p.state == AUTONOMOUS
    return m, p


def case_autonomous_heartbeat_active_limit_limited_032():
    m, p = _autonomous()
    assert write(p, lim(5000, True), t(130)) == 7  # no heartbeat yet (036)
    assert p.state == AUTONOMOUS
    p.heartbeat(t(131))
    assert write(p, lim(5000, True), t(131)) == 0 and p.state == LIMITED


def case_autonomous_heartbeat_deactivated_controlled_033():
    m, p = _autonomous()
    p.heartbeat(t(131))
    assert write(p, lim(active=False), t(132)) == 0 and p.state == CONTROLLED


def case_autonomous_heartbeat_unappliable_controlled_031():
    m, p = _autonomous()
    p.heartbeat(t(131))
    assert write(p, lim(active="yes"), t(132)) == 7 and p.state == CONTROLLED


def case_autonomous_stays_without_guard():
    m, p = _autonomous()
    for s in range(200, 5000, 500):
        p.heartbeat(t(s))
        assert p.tick(t(s + 1)) == 0
    assert p.state == AUTONOMOUS and m.setpoint() == 16


# ---- durations, the delete filter and values


def case_limit_without_time_period_never_expires():
    m, p = mk()
    limited(p, 5000, 0)
    s = 0
    while s < 2 * 86400:  # two days, heartbeats every 50 s
        s += 50
        p.heartbeat(t(s))
        assert p.tick(t(s)) == 0
    assert p.state == LIMITED and m.request_of(SRC_LPC) == (OBLIGATION, 5000, UNIT_W, None)


def case_end_time_is_relative_and_counts_down():
    m, p = mk()
    limited(p, 100, 1, "PT1H2M3S")
    assert rowdict(p.limit_data(0, t(1)))["timePeriod"] == {"endTime": "PT1H2M3S"}
    assert rowdict(p.limit_data(0, t(4)))["timePeriod"] == {"endTime": "PT1H2M"}
    assert rowdict(p.limit_data(0, t(4.5)))["timePeriod"] == {"endTime": "PT1H2M"}  # 3719.5 s: rounded up
    assert rowdict(p.limit_data(0, t(5.5)))["timePeriod"] == {"endTime": "PT1H1M59S"}


def case_delete_filter_removes_the_duration():
    m, p = mk()
    limited(p, 5000, 1, "PT10M")
    assert write(p, {"limitId": 0}, t(5), delete=True) == 0
    assert p.state == LIMITED and "timePeriod" not in rowdict(p.limit_data(0, t(5)))
    assert m.request_of(SRC_LPC)[3] is None
    for s in range(50, 1200, 50):
        p.heartbeat(t(s))
        p.tick(t(s))
    assert p.state == LIMITED


def case_delete_filter_then_new_period_in_one_write():
    m, p = mk()
    limited(p, 5000, 1, "PT10M")
    assert write(p, lim(end="PT1M"), t(5), delete=True) == 0
    assert rowdict(p.limit_data(0, t(5)))["timePeriod"] == {"endTime": "PT1M"}
    assert p.tick(t(65)) & CH_LIMIT and p.state == CONTROLLED


def case_partial_write_without_period_keeps_the_running_one():
    m, p = mk()
    limited(p, 5000, 1, "PT10M")
    write(p, lim(4000), t(61))
    assert rowdict(p.limit_data(0, t(61)))["timePeriod"] == {"endTime": "PT9M"}


def case_zero_duration_is_expired_at_once_008():
    m, p = mk()
    p.heartbeat(t(1))
    assert write(p, lim(5000, True, "PT0S"), t(1)) == 0
    assert p.state == CONTROLLED and not p.active


def case_value_checks():
    m, p = mk()
    limited(p, 5000)
    bad = [
        lim(active=1), lim(active="true"), {"value": {"number": "5"}}, {"value": {"number": 5, "scale": 99}},
        {"value": {"number": True}}, {"value": 5}, {"timePeriod": "PT1H"}, {"timePeriod": {"endTime": "bogus"}},
        {"timePeriod": {"endTime": "-PT1H"}}, {"timePeriod": {"startTime": "PT1H", "endTime": "PT2H"}},
        {"value": {"number": -1, "scale": 3}}, [1, 2], "x", 5, None, {"value": {"number": 1.5}},
    ]
    for e in bad:
        assert p.check_limit(e, False, t(2))[0] == 7, e
        assert not p.apply_limit(e, False, t(2))
    assert p.state == LIMITED and p.value == 5000 and m.request_of(SRC_LPC)[1] == 5000
    ok = [{}, [], {"timePeriod": []}, {"timePeriod": {"startTime": "PT0S"}}, {"value": []}, {"other": 1}]
    for e in ok:
        assert write(p, e, t(3)) == 0, e
    assert p.value == 5000 and p.active


def case_scaled_numbers_and_partial_scale_rt_03():
    m, p = mk()
    p.heartbeat(t(1))
    write(p, {"isLimitActive": True, "value": {"number": 105, "scale": -1}}, t(1))
    assert p.value == 10.5 and rowdict(p.limit_data(0, t(1)))["value"] == {"number": 105, "scale": -1}
    write(p, {"value": {"number": 110}}, t(2))  # number without scale keeps ours (-1)
    assert p.value == 11
    write(p, {"value": {"number": 42, "scale": 2}}, t(3))
    assert p.value == 4200 and m.request_of(SRC_LPC)[1] == 4200
    write(p, {"value": {"scale": 1}}, t(4))  # scale without number keeps ours (4200, 0)
    assert p.value == 42000


def case_too_large_limit_is_altered_035_4():
    m, p = mk()
    p.heartbeat(t(1))
    assert write(p, lim(2 ** 40, True), t(1)) == 0
    assert p.value == 1000000 and rowdict(p.limit_data(0, t(1)))["value"] == {"number": 1000000, "scale": 0}
    assert write(p, lim(end="P30D"), t(2)) == 0  # stored as 7 days: ms stay small ints
    assert rowdict(p.limit_data(0, t(2)))["timePeriod"] == {"endTime": "PT168H"}


# ---- wire shapes against the captures


def case_rows_match_captures_06_07_08():
    m, p = mk(fs_w=None)  # default failsafe limit 4200 W, 2 h
    assert wire("loadControlLimitDescriptionListData", (p.limit_description(0),)) == cmd_element(
        capture("06_evse_reply_loadcontrol_limitdescription.raw.json"))
    assert wire("deviceConfigurationKeyValueListData", p.key_values(0, 1)) == cmd_element(
        capture("08_evse_reply_deviceconfig_keyvaluelist.raw.json"))
    p.heartbeat(t(1))
    write(p, lim(4200, False), t(1))
    assert wire("loadControlLimitListData", (p.limit_data(0, t(1)),)) == cmd_element(
        capture("07_evse_reply_loadcontrol_limitlist.raw.json"))
    d = [rowdict(r) for r in p.key_descriptions(0, 1)]
    assert d == [
        {"keyId": 0, "keyName": "failsafeConsumptionActivePowerLimit", "valueType": "scaledNumber", "unit": "W"},
        {"keyId": 1, "keyName": "failsafeDurationMinimum", "valueType": "duration"},
    ]
    assert rowdict(p.characteristic(7)) == {
        "electricalConnectionId": 0, "parameterId": 0, "characteristicId": 7, "characteristicContext": "entity",
        "characteristicType": "powerConsumptionNominalMax", "value": {"number": 11000, "scale": 0}, "unit": "W"}


def case_captured_write_10_gives_notify_11():
    m, p = mk()
    data = capture("10_cb_write_loadcontrol_limitlist.raw.json")
    tree = build(b"[" + cmd_element(data) + b"]")  # function, filter, data: one dialect object
    assert tree["function"] == "loadControlLimitListData" and "partial" in tree["filter"][0]["cmdControl"]
    e = entries(tree["loadControlLimitListData"], "loadControlLimitData")
    assert len(e) == 1 and e[0]["limitId"] == 0
    p.heartbeat(t(1))
    assert write(p, e[0], t(2)) == 0 and p.state == LIMITED
    assert m.request_of(SRC_LPC) == (OBLIGATION, 100, UNIT_W, 3723000)
    assert m.paused  # 100 W is below the 6 A minimum: the model pauses rather than violates
    assert wire("loadControlLimitListData", (p.limit_data(0, t(2)),)) == cmd_element(
        capture("11_evse_notify_loadcontrol_limitlist.raw.json"))


# the guard's partial write of both failsafe values as eebus-go sends it (spine.md 12.9)
KEY_WRITE = (
    b'{"deviceConfigurationKeyValueListData":[{"deviceConfigurationKeyValueData":[[{"keyId":0},'
    b'{"value":[{"scaledNumber":[{"number":3000},{"scale":0}]}]}],[{"keyId":1},{"value":[{"duration":"PT3H"}]}]]}]}'
)


def case_captured_key_writes_from_the_wire():
    m, p = _controlled()
    e = entries(build(KEY_WRITE)["deviceConfigurationKeyValueListData"], "deviceConfigurationKeyValueData")
    assert p.check_keys(e[0], e[1], t(2)) == (0, None)
    assert p.apply_keys(e[0], e[1], t(2))
    assert p.failsafe_w == 3000 and p.failsafe_s == 3 * H


# ---- failsafe values


def case_failsafe_values_written_and_used_at_next_entry_011_013():
    m, p = _controlled()
    assert keys(p, 2760, "PT3H", t(2)) == (0, None)
    assert p.failsafe_w == 2760 and p.failsafe_s == 3 * H
    assert rowdict(p.key_values(0, 1)[1]) == {"keyId": 1, "value": {"duration": "PT3H"}, "isValueChangeable": True}
    p.tick(t(122))
    assert p.state == FAILSAFE and watts(m) <= 2760 and m.setpoint() == 0  # 4 A: below minimum, paused
    p.tick(t(121 + 3 * H - 0.5))  # the heartbeat at 1 s was lost at 121 s
    assert p.state == FAILSAFE
    p.tick(t(121 + 3 * H))
    assert p.state == AUTONOMOUS


def case_failsafe_duration_range_015():
    m, p = _controlled()
    for d in ("PT1H59M59S", "PT0S", "P1D1S", "-PT3H", "3h", "PT1H"):
        err, desc = keys(p, None, d, t(2))
        assert err == 7, d
    assert p.failsafe_s == 2 * H
    assert keys(p, None, "PT2H", t(2))[0] == 0 and keys(p, None, "P1D", t(2))[0] == 0
    assert p.failsafe_s == 86400
    assert keys(p, None, "PT2H", t(2))[0] == 0
    assert keys(p, None, "P1M", t(2))[0] == 7 and p.failsafe_s == 86400  # above our maximum (016)


def case_failsafe_duration_above_our_max_refused_then_max_016():
    store = MemStore()
    m, p = mk(failsafe_s_max=4 * H, store=store)
    p.heartbeat(t(1))
    write(p, lim(active=False), t(1))
    p.tick(t(1))
    err, desc = keys(p, None, "PT5H", t(2))
    assert err == 7 and "015/1" in desc
    assert p.failsafe_s == 4 * H and p.tick(t(2)) == CH_KEYS
    assert store.d == {"failsafe_s": 4 * H}
    assert keys(p, None, "PT4H", t(3)) == (0, None)


def case_failsafe_limit_checks_038():
    m, p = _controlled()
    for le in ({"keyId": 0, "value": {"scaledNumber": {"number": -1, "scale": 0}}},
               {"keyId": 0, "value": {"duration": "PT2H"}}, {"keyId": 0, "value": 5}, 7,
               {"keyId": 0, "value": {"scaledNumber": {"number": "1"}}}):
        assert p.check_keys(le, None, t(2))[0] == 7
        assert not p.apply_keys(le, None, t(2))
    assert p.check_keys(None, {"keyId": 1, "value": {"scaledNumber": {"number": 1}}}, t(2))[0] == 7
    # one bad part refuses the whole write
    err, desc = p.check_keys({"keyId": 0, "value": {"scaledNumber": {"number": 100}}},
                             {"keyId": 1, "value": {"duration": "PT1H"}}, t(2))
    assert err == 7 and p.failsafe_w == 4140
    # only isValueChangeable (our flag) or nothing: accepted, nothing changes
    assert keys(p, None, None, t(2)) == (0, None)
    assert p.check_keys({"keyId": 0, "isValueChangeable": False}, None, t(2)) == (0, None)


def case_failsafe_values_in_init_taken_after_heartbeat():
    # deviation from LPC-TS-037 (lpc.py _keys_gated): eebus-go's guard writes its failsafe
    # values before the first limit and never retries; after its heartbeat they count
    m, p = mk()
    assert keys(p, 5000, None, t(0.5))[0] == 7  # no heartbeat yet: not evaluated (036)
    p.heartbeat(t(1))
    assert keys(p, 5000, "PT3H", t(2)) == (0, None)
    assert p.failsafe_w == 5000 and p.failsafe_s == 3 * H and p.state == INIT
    assert m.in_failsafe(SRC_LPC) and watts(m) <= 5000 and watts(m) > 4140  # the new limit rules init


def case_failsafe_values_refused_in_failsafe_csfs():
    # kept: in failsafe nothing is evaluated before heartbeat + limit (COM_PT_CSFS_001/003)
    m, p = mk()
    limited(p, 9000, 1)
    p.tick(t(121))
    assert p.state == FAILSAFE
    p.heartbeat(t(122))
    assert keys(p, 3000, None, t(123))[0] == 7 and p.failsafe_w == 4140


def case_failsafe_values_in_autonomous_after_heartbeat():
    m, p = mk()
    p.tick(t(121))
    assert p.state == AUTONOMOUS
    assert keys(p, 3000, None, t(122))[0] == 7
    p.heartbeat(t(123))
    assert keys(p, 3000, None, t(124)) == (0, None) and p.failsafe_w == 3000


def case_init_paired_skips_init_until_a_guard_was_seen():
    # usecases.lpc_init "paired": no guard ever, no 4.2 kW hold after boot
    store = MemStore({})
    m, p = mk(store=store, init="paired")
    assert p.state == AUTONOMOUS and not m.in_failsafe(SRC_LPC) and m.setpoint() == 16
    p.heartbeat(t(1))
    assert store.d == {"guard_paired": True}
    assert write(p, lim(5000, True), t(2)) == 0 and p.state == LIMITED
    # the next start: a guard exists, the specification's init applies (LPC-TS-017)
    m2 = Charger()
    p2 = PowerLimit(m2, t(0), failsafe_w=4140, store=store, init="paired")
    assert p2.state == INIT and m2.in_failsafe(SRC_LPC)
    # "always" (the default) keeps init and writes nothing
    store3 = MemStore()
    m3, p3 = mk(store=store3)
    p3.heartbeat(t(1))
    assert p3.state == INIT and m3.in_failsafe(SRC_LPC) and store3.saves == 0


# ---- persistence (LPC-TS-044, 019)


def case_written_failsafe_values_persist_044():
    store = MemStore()
    m, p = _controlled_with(store)
    keys(p, 3300, "PT6H", t(2))
    assert store.d == {"lpc_failsafe_w": 3300, "failsafe_s": 6 * H} and store.saves == 1
    keys(p, 3300, "PT6H", t(3))  # unchanged: no flash write
    assert store.saves == 1
    m2 = Charger()
    p2 = PowerLimit(m2, t(0), store=store)
    assert p2.failsafe_w == 3300 and p2.failsafe_s == 6 * H
    assert m2.in_failsafe(SRC_LPC) and m2.effective()[0] == (4.7, 4.7, 4.7)  # 3300 W / 690 V, rounded down


def _controlled_with(store):
    m = Charger()
    p = PowerLimit(m, t(0), failsafe_w=4140, store=store)
    p.heartbeat(t(1))
    write(p, lim(active=False), t(1))
    return m, p


def case_bad_or_missing_store_uses_preconfigured_019():
    for d in (None, {}, {"lpc_failsafe_w": -5, "failsafe_s": 60}, {"lpc_failsafe_w": "x", "failsafe_s": 10 ** 9},
              {"lpc_failsafe_w": True, "failsafe_s": True}, [1]):
        p = PowerLimit(Charger(), t(0), failsafe_w=4140, store=MemStore(d))
        assert p.failsafe_w == 4140 and p.failsafe_s == 7200 and p.store_error is None
    p = PowerLimit(Charger(), t(0), failsafe_w=4140, store=MemStore(fail=True))
    assert p.failsafe_w == 4140 and p.store_error
    p.heartbeat(t(1))
    write(p, lim(active=False), t(1))
    assert keys(p, 2000, None, t(2)) == (0, None) and p.failsafe_w == 2000  # in force in RAM


def case_json_store_round_trip_and_merge():
    d = os.getenv("TMPDIR") or "/tmp"
    path = d + "/lpc_store_%d.json" % os.getpid() if hasattr(os, "getpid") else d + "/lpc_store_case.json"
    try:
        os.remove(path)
    except OSError:
        pass
    s = JsonStore(path)
    assert s.load() is None
    s.save({"lpc_failsafe_w": 3000})
    s.save({"failsafe_s": 10800})
    assert s.load() == {"lpc_failsafe_w": 3000, "failsafe_s": 10800}
    p = PowerLimit(Charger(), t(0), store=s)
    assert p.failsafe_w == 3000 and p.failsafe_s == 10800
    with open(path, "w") as f:
        f.write('{"lpc_failsafe_w": 30')  # torn by hand: the store reports nothing
    assert s.load() is None
    os.remove(path)


# ---- LPP


def case_lpp_mirrors_lpc_and_leaves_the_charger_alone():
    m = Charger()
    c = PowerLimit(m, t(0), failsafe_w=4140)
    p = PowerLimit(m, t(0), produce=True, failsafe_w=3000, duration_from=c)
    assert rowdict(p.limit_description(1))["limitDirection"] == "produce"
    assert [rowdict(r)["keyName"] for r in p.key_descriptions(2, None)] == ["failsafeProductionActivePowerLimit"]
    assert len(p.key_values(2, None)) == 1
    assert rowdict(p.characteristic(1))["characteristicType"] == "powerProductionNominalMax"
    assert p.state == INIT and p.limit_w == 3000
    p.heartbeat(t(1))
    c.heartbeat(t(1))
    assert write(p, lim(2000, True), t(2)) == 0
    assert p.state == LIMITED and p.limit_w == 2000
    assert m.request_of(SRC_LPC) is None and m.in_failsafe(SRC_LPC)  # LPC's own init still rules
    write(c, lim(active=False), t(2))
    # the duration data point is LPC's (LPP-TS-041): a write through LPP lands there
    assert p.check_keys(None, {"keyId": 1, "value": {"duration": "PT4H"}}, t(3)) == (0, None)
    p.apply_keys(None, {"keyId": 1, "value": {"duration": "PT4H"}}, t(3))
    assert c.failsafe_s == 4 * H and p.failsafe_s == 4 * H
    p.tick(t(122))
    assert p.state == FAILSAFE and p.limit_w == 3000 and m.request_of(SRC_LPC) is None
    p.tick(t(122 + 4 * H))
    assert p.state == AUTONOMOUS and p.limit_w is None


# ---- time


def case_timers_cross_the_tick_wrap():
    # T0 is 150 s before the wrap: the limit is written before it and expires after it
    m, p = mk()
    p.heartbeat(t(100))
    write(p, lim(5000, True, "PT100S"), t(100))
    p.heartbeat(t(160))
    assert p.tick(t(199)) == CH_STATE and p.state == LIMITED
    assert p.tick(t(200)) == CH_LIMIT | CH_STATE and p.state == CONTROLLED
    assert p.tick(ticks_add(t(200), -5000)) == 0  # time never runs backwards


def case_tick_allocates_nothing():
    try:
        import micropython
    except ImportError:
        return  # CPython: nothing to check
    m, p = mk()
    limited(p, 5000, 1, "PT1H")
    s = 2
    p.tick(t(s))
    micropython.heap_lock()
    try:
        for _ in range(100):
            s += 1
            r = p.tick(t(s))
    finally:
        micropython.heap_unlock()
    assert r == 0 and p.state == LIMITED
