# Charger model and limit arbitration (lib/charger.py); runs under both runtimes.
import sys

from charger import (
    Charger, F_APPLIED, F_FAILSAFE, F_HW_MAX, F_I1, F_I2, F_LIMIT, F_LINK, F_PHASES, F_POWER,
    F_REQUESTS, F_STATE, F_U1, F_U2, F_U3, OBLIGATION, RECOMMENDATION, SRC_CEVC, SRC_ECHONET,
    SRC_FAILSAFE, SRC_LOCAL, SRC_LPC, SRC_OPEV, SRC_OSCEV, UNIT_A, UNIT_W,
)
from compat import ticks_add
from support.paths import TOOLS

if TOOLS not in sys.path:
    sys.path.append(TOOLS)  # chargerkit: model calls only the tests make
from chargerkit import silent, supervise, unsubscribe  # noqa: E402

H = 3600000  # ms


class Events:
    def __init__(self, m):
        self.masks = []
        m.subscribe(self.on)

    def on(self, mask):
        self.masks.append(mask)

    def any(self, bit):
        return any(m & (1 << bit) for m in self.masks)

    def clear(self):
        self.masks = []


def _lpc(m, now=0, fs_w=4140, fs_ms=2 * H, timeout=120000):
    m.failsafe(SRC_LPC, fs_w, UNIT_W, fs_ms)
    supervise(m, SRC_LPC, timeout, now)
    m.alive(SRC_LPC, now)


# ---- the state and its events


def case_unlimited_by_default():
    m = Charger(hw_min=6, hw_max=16)
    assert m.effective() == (None, None, False)
    assert m.setpoint() == 16


def case_events_name_what_changed():
    m = Charger()
    ev = Events(m)
    m.update(i1=10.5)
    assert ev.masks == [1 << F_I1]
    m.update(i1=10.5)  # unchanged: no event at all
    assert ev.masks == [1 << F_I1]
    ev.clear()
    # the poller sets many fields per cycle and gets one event with all of them
    m.set(F_I1, 11.0)
    m.set(F_I2, 11.0)
    assert m.set(F_POWER, 5000)
    assert not m.set(F_POWER, 5000)
    m.set(F_STATE, "C")
    assert ev.masks == []
    m.flush()
    assert ev.masks == [(1 << F_I1) | (1 << F_I2) | (1 << F_POWER) | (1 << F_STATE)]
    assert m.get(F_STATE) == "C" and m.get(F_POWER) == 5000


def case_limit_change_is_an_event():
    m = Charger()
    ev = Events(m)
    m.request(SRC_OPEV, OBLIGATION, 10, UNIT_A, 0)
    assert ev.masks == [(1 << F_LIMIT) | (1 << F_REQUESTS)]
    ev.clear()
    m.request(SRC_OPEV, OBLIGATION, 10, UNIT_A, 10)  # same limit again: the request event only
    assert ev.masks == [1 << F_REQUESTS]


def case_subscriber_may_request_inside_callback():
    m = Charger()
    seen = []

    def cb(mask):
        seen.append(mask)
        if mask & (1 << F_STATE):
            m.request(SRC_LOCAL, OBLIGATION, 8, UNIT_A, 0)

    m.subscribe(cb)
    m.update(state="B")
    assert m.effective()[1] == SRC_LOCAL
    assert len(seen) == 2 and seen[1] & (1 << F_LIMIT)
    unsubscribe(m, cb)
    m.update(state="C")
    assert len(seen) == 2


def case_request_validation():
    m = Charger()
    for args in (
        (SRC_OPEV, OBLIGATION, -1, UNIT_A),
        (SRC_LPC, OBLIGATION, -5, UNIT_W),
        (SRC_FAILSAFE, OBLIGATION, 10, UNIT_A),
        (SRC_OPEV, 0, 10, UNIT_A),
        (SRC_OPEV, OBLIGATION, 10, 7),
        (SRC_OPEV, OBLIGATION, (1, 2, 3, 4), UNIT_A),
        (SRC_OPEV, OBLIGATION, float("nan"), UNIT_A),
    ):
        try:
            m.request(args[0], args[1], args[2], args[3], 0)
        except ValueError:
            continue
        raise AssertionError(args)
    assert m.request_of(SRC_OPEV) is None and m.effective()[0] is None


# ---- obligations, recommendations, hardware bounds


def case_strictest_obligation_wins():
    m = Charger(hw_max=16)
    m.request(SRC_LOCAL, OBLIGATION, 14, UNIT_A, 0)
    m.request(SRC_OPEV, OBLIGATION, 10, UNIT_A, 0)
    m.request(SRC_ECHONET, OBLIGATION, 12, UNIT_A, 0)
    assert m.effective() == ((10, 10, 10), SRC_OPEV, False)
    m.withdraw(SRC_OPEV, 0)
    assert m.effective() == ((12, 12, 12), SRC_ECHONET, False)
    m.withdraw(SRC_ECHONET, 0)
    m.withdraw(SRC_LOCAL, 0)
    assert m.effective() == (None, None, False)


def case_per_phase_limits_and_one_controller_current():
    m = Charger(hw_max=16)
    m.request(SRC_OPEV, OBLIGATION, (10, 8, None), UNIT_A, 0)
    assert m.effective() == ((10, 8, 16), SRC_OPEV, False)
    assert m.setpoint() == 8
    assert m.request_of(SRC_OPEV) == (OBLIGATION, (10, 8, None), UNIT_A, None)
    # a one-phase station: the CEM writes phase a only
    m.request(SRC_OPEV, OBLIGATION, [7.5], UNIT_A, 0)
    assert m.effective() == ((7.5, 16, 16), SRC_OPEV, False)
    assert m.setpoint() == 7.5


def case_recommendation_inside_obligation():
    m = Charger(hw_max=16)
    m.request(SRC_OPEV, OBLIGATION, 10, UNIT_A, 0)
    m.request(SRC_OSCEV, RECOMMENDATION, 8, UNIT_A, 0)
    assert m.effective() == ((8, 8, 8), SRC_OSCEV, False)
    m.request(SRC_OSCEV, RECOMMENDATION, 12, UNIT_A, 0)  # never above the obligation
    assert m.effective() == ((10, 10, 10), SRC_OPEV, False)
    m.withdraw(SRC_OPEV, 0)
    assert m.effective() == ((12, 12, 12), SRC_OSCEV, False)
    m.request(SRC_OSCEV, RECOMMENDATION, 20, UNIT_A, 0)  # nor above the hardware
    assert m.effective() == (None, None, False)
    # a tie is reported as the obligation: that is what binds
    m.request(SRC_OSCEV, RECOMMENDATION, 9, UNIT_A, 0)
    m.request(SRC_OPEV, OBLIGATION, 9, UNIT_A, 0)
    assert m.effective()[1] == SRC_OPEV


def case_recommendations_combine_by_lowest():
    m = Charger(hw_max=32, phases=3)
    m.request(SRC_OPEV, OBLIGATION, 16, UNIT_A, 0)
    m.request(SRC_OSCEV, RECOMMENDATION, 12, UNIT_A, 0)
    m.request(SRC_CEVC, RECOMMENDATION, 6900, UNIT_W, 10)  # 10 A on 3 phases, later but lower
    assert m.effective() == ((10, 10, 10), SRC_CEVC, False)
    m.request(SRC_CEVC, RECOMMENDATION, 11040, UNIT_W, 20)  # 16 A: the older 12 A still holds
    assert m.effective() == ((12, 12, 12), SRC_OSCEV, False)


def case_hw_max_caps_and_follows_the_controller():
    m = Charger(hw_min=6, hw_max=16, resolution=1)
    m.request(SRC_OPEV, OBLIGATION, 20, UNIT_A, 0)
    assert m.effective() == (None, None, False) and m.setpoint() == 16
    ev = Events(m)
    m.update(hw_max=13.5)  # derated; whole amps only
    assert m.setpoint() == 13 and ev.any(F_LIMIT) and ev.any(F_HW_MAX)
    m.update(hw_max=None)  # unknown again: the configured one
    assert m.setpoint() == 16


# ---- below the minimum


def case_below_minimum_pauses():
    m = Charger(hw_min=6, hw_max=16)
    m.request(SRC_OPEV, OBLIGATION, 5, UNIT_A, 0)
    assert m.effective() == ((5, 5, 5), SRC_OPEV, True)
    assert m.setpoint() == 0
    m.request(SRC_OPEV, OBLIGATION, 6, UNIT_A, 0)  # exactly the minimum charges
    assert m.effective() == ((6, 6, 6), SRC_OPEV, False) and m.setpoint() == 6
    m.request(SRC_OPEV, OBLIGATION, 0, UNIT_A, 0)  # evcc's pause
    assert m.effective()[2] and m.setpoint() == 0
    m.withdraw(SRC_OPEV, 0)
    m.request(SRC_LPC, OBLIGATION, 1000, UNIT_W, 0)  # 1.4 A on 3 phases
    assert m.effective() == ((1.4, 1.4, 1.4), SRC_LPC, True)
    # one phase below the minimum pauses all: one control-pilot signal for all phases
    m.withdraw(SRC_LPC, 0)
    m.request(SRC_OPEV, OBLIGATION, (16, 3, 16), UNIT_A, 0)
    assert m.effective() == ((16, 3, 16), SRC_OPEV, True)


def case_recommendation_below_minimum_pauses_too():
    m = Charger(hw_min=6)
    m.request(SRC_OSCEV, RECOMMENDATION, 2, UNIT_A, 0)
    assert m.effective() == ((2, 2, 2), SRC_OSCEV, True)


def case_minimum_change_pauses():
    m = Charger(hw_min=6, hw_max=16)
    m.request(SRC_OPEV, OBLIGATION, 7, UNIT_A, 0)
    assert not m.effective()[2]
    ev = Events(m)
    m.update(hw_min=8)
    assert m.effective()[2] and ev.any(F_LIMIT)


# ---- W to A


def case_w_to_a_three_phases_nominal():
    m = Charger(hw_max=32, phases=3)
    m.request(SRC_LPC, OBLIGATION, 6900, UNIT_W, 0)  # 6900 / (3 * 230) = 10 A
    assert m.effective() == ((10, 10, 10), SRC_LPC, False)
    m.request(SRC_LPC, OBLIGATION, 4200, UNIT_W, 0)  # 6.087 A, rounded down to 0.1 A
    assert m.effective()[0] == (6.0, 6.0, 6.0)
    m.request(SRC_LPC, OBLIGATION, 5000, UNIT_W, 0)  # 7.246 A
    assert m.effective()[0] == (7.2, 7.2, 7.2)


def case_w_to_a_one_phase():
    m = Charger(hw_max=32, phases=3)
    m.update(phases=1)  # the EV draws on one phase
    m.request(SRC_LPC, OBLIGATION, 2300, UNIT_W, 0)
    assert m.effective() == ((10, 10, 10), SRC_LPC, False)
    m.request(SRC_LPC, OBLIGATION, 3000, UNIT_W, 0)  # 13.04 A
    assert m.effective()[0] == (13.0, 13.0, 13.0)
    ev = Events(m)
    m.update(phases=3)  # switched to three phases: a third of the current
    assert m.effective()[0] == (4.3, 4.3, 4.3) and m.effective()[2]
    assert ev.any(F_LIMIT)
    m.update(phases=0)  # not charging / unknown: the station's configured phases
    assert m.effective()[0] == (4.3, 4.3, 4.3)


def case_w_to_a_measured_voltage():
    m = Charger(hw_max=32, phases=3)
    m.request(SRC_LPC, OBLIGATION, 6480, UNIT_W, 0)
    m.update(u1=240.0, u2=240.0, u3=240.0)
    assert m.effective()[0] == (9, 9, 9)  # 6480 / 720
    m.update(u1=239.2, u2=239.9, u3=239.5)  # each rounded up to 240 V: never more than asked
    assert m.effective()[0] == (9, 9, 9)
    m.update(u1=0.0, u2=400.0, u3=216.0)  # only the plausible one counts
    assert m.effective()[0] == (10, 10, 10)
    m.update(u1=None, u2=None, u3=999.0)  # none plausible: nominal
    assert m.effective()[0] == (9.3, 9.3, 9.3)  # 6480 / 690 = 9.39


def _noisy_run(m, watts, seconds, seed=1):
    """A fixed W obligation, the phase voltages 230 V +- 2 V (the simulator's noise) polled
    every second, every pending write taken: (writes, worst setpoint * sum(U) / watts)."""
    m.request(SRC_LPC, OBLIGATION, watts, UNIT_W, 0)
    m.link(True)
    x = seed
    writes = 0
    worst = 0
    for k in range(seconds):
        t = 1000 * k
        for f in (F_U1, F_U2, F_U3):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF  # an LCG: the same noise on both runtimes
            m.set(f, 228 + (x % 41) / 10)
        m.flush()
        a = m.pending_write(t)
        if a is not None:
            m.written(a, t)
            writes += 1
        u = m.get(F_U1) + m.get(F_U2) + m.get(F_U3)
        r = m.setpoint() * u / watts
        if r > worst:
            worst = r
        if k > 2:  # the controller's value too, once the first write is in
            r = m.applied() * u / watts
            if r > worst:
                worst = r
    return writes, worst


def case_w_limit_setpoint_settles_under_voltage_noise():
    # 5000 W on 3 phases: 7.1 or 7.2 A depending on a volt or two; before the hysteresis the
    # setpoint flapped with the noise (dozens of writes in 8 minutes)
    m = Charger(hw_max=16, phases=3)
    writes, worst = _noisy_run(m, 5000, 480)
    assert writes <= 3, writes
    assert worst <= 1, worst  # never above the limit
    # a real drop of the grid voltage still gives the amps back
    m.update(u1=220.0, u2=220.0, u3=220.0)
    assert m.setpoint() == 7.5  # 5000 / 660 = 7.57
    # and a rise takes them at once
    m.update(u1=231.5, u2=231.5, u3=231.5)
    assert m.setpoint() == 7.1  # 5000 / 696 = 7.18


def case_w_to_a_nominal_voltage_and_resolution_configurable():
    m = Charger(hw_max=32, phases=1, nominal_v=220, resolution=1)
    m.request(SRC_LPC, OBLIGATION, 3000, UNIT_W, 0)  # 13.6 A
    assert m.effective() == ((13, 13, 13), SRC_LPC, False)
    m.request(SRC_OPEV, OBLIGATION, 12.9, UNIT_A, 0)
    assert m.effective() == ((12, 12, 12), SRC_OPEV, False)


def case_w_and_a_limits_compete():
    m = Charger(hw_max=32, phases=3)
    m.request(SRC_LPC, OBLIGATION, 11040, UNIT_W, 0)  # 16 A
    m.request(SRC_OPEV, OBLIGATION, (20, 14, 20), UNIT_A, 0)
    assert m.effective() == ((16, 14, 16), SRC_OPEV, False)
    m.request(SRC_LPC, OBLIGATION, 8280, UNIT_W, 0)  # 12 A
    assert m.effective() == ((12, 12, 12), SRC_LPC, False)


# ---- expiry


def case_timed_limit_expires():
    m = Charger()
    ev = Events(m)
    m.request(SRC_LPC, OBLIGATION, 4140, UNIT_W, 1000, expires_ms=5000)
    assert m.effective()[1] == SRC_LPC
    m.tick(5999)
    assert m.effective()[1] == SRC_LPC
    ev.clear()
    m.tick(6000)
    assert m.effective() == (None, None, False)
    assert m.request_of(SRC_LPC) is None
    assert ev.masks == [(1 << F_LIMIT) | (1 << F_REQUESTS)]


def case_limit_without_duration_never_expires():
    m = Charger()
    m.request(SRC_LPC, OBLIGATION, 4140, UNIT_W, 0)
    t = 0
    for _ in range(200):  # 200 hours, across the tick wrap-around
        t = ticks_add(t, H)
        m.tick(t)
    assert m.effective()[1] == SRC_LPC


def case_expiry_counts_down_across_wrap():
    m = Charger()
    t = ticks_add(0, -30 * 60000)  # half an hour before the tick counter wraps
    m.request(SRC_CEVC, RECOMMENDATION, 6900, UNIT_W, t, expires_ms=7 * 24 * H)
    for _ in range(7 * 24 - 1):
        t = ticks_add(t, H)
        m.tick(t)
        assert m.effective()[1] == SRC_CEVC
    assert m.request_of(SRC_CEVC)[3] == H
    t = ticks_add(t, H)
    m.tick(t)
    assert m.effective()[1] is None


def case_renewed_request_restarts_expiry():
    m = Charger()
    m.request(SRC_ECHONET, OBLIGATION, 8, UNIT_A, 0, expires_ms=1000)
    m.request(SRC_ECHONET, OBLIGATION, 8, UNIT_A, 900, expires_ms=1000)
    m.tick(1800)
    assert m.effective()[1] == SRC_ECHONET
    m.request(SRC_ECHONET, OBLIGATION, 8, UNIT_A, 1850)  # no duration any more
    m.tick(100000)
    assert m.effective()[1] == SRC_ECHONET
    m.request(SRC_ECHONET, OBLIGATION, 8, UNIT_A, 100000, expires_ms=0)  # zero: gone at once
    assert m.effective()[1] is None


def case_time_going_backwards_is_ignored():
    m = Charger()
    m.request(SRC_OPEV, OBLIGATION, 8, UNIT_A, 10000, expires_ms=1000)
    m.tick(5000)
    m.tick(10500)
    assert m.effective()[1] == SRC_OPEV
    m.tick(11000)
    assert m.effective()[1] is None


# ---- failsafe


def case_failsafe_in_when_silent_and_out_with_heartbeat_and_limit():
    m = Charger(hw_max=32, phases=3)
    ev = Events(m)
    _lpc(m)
    m.request(SRC_LPC, OBLIGATION, 6900, UNIT_W, 0)
    m.alive(SRC_LPC, 60000)
    m.tick(179999)
    assert not m.in_failsafe(SRC_LPC) and m.effective() == ((10, 10, 10), SRC_LPC, False)
    ev.clear()
    m.tick(180000)  # 120 s without a heartbeat
    assert m.in_failsafe(SRC_LPC) and silent(m, SRC_LPC)
    assert m.effective() == ((6, 6, 6), SRC_FAILSAFE, False)
    assert m.request_of(SRC_LPC) is None  # the stale limit is dropped
    assert ev.any(F_FAILSAFE) and ev.any(F_LIMIT) and ev.any(F_REQUESTS)
    # a limit without a heartbeat does not end it
    assert not m.request(SRC_LPC, OBLIGATION, 6900, UNIT_W, 200000)
    assert not m.withdraw(SRC_LPC, 200000)
    assert m.in_failsafe(SRC_LPC) and m.effective()[1] == SRC_FAILSAFE
    # a heartbeat alone neither
    m.alive(SRC_LPC, 210000)
    assert m.in_failsafe(SRC_LPC) and not silent(m, SRC_LPC)
    ev.clear()
    assert m.request(SRC_LPC, OBLIGATION, 6900, UNIT_W, 220000)
    assert not m.in_failsafe(SRC_LPC) and ev.any(F_FAILSAFE)
    assert m.effective() == ((10, 10, 10), SRC_LPC, False)
    # and supervision goes on from the last heartbeat
    m.tick(329999)
    assert not m.in_failsafe(SRC_LPC)
    m.tick(330000)
    assert m.in_failsafe(SRC_LPC)


def case_failsafe_out_by_deactivated_limit():
    m = Charger(hw_max=32)
    _lpc(m)
    m.tick(120000)
    assert m.in_failsafe(SRC_LPC)
    m.alive(SRC_LPC, 130000)
    assert m.withdraw(SRC_LPC, 131000)
    assert not m.in_failsafe(SRC_LPC) and m.effective() == (None, None, False)


def case_failsafe_lasts_its_duration_then_lapses():
    m = Charger(hw_max=32)
    ev = Events(m)
    _lpc(m, fs_ms=2 * H)
    m.tick(120000)
    assert m.in_failsafe(SRC_LPC)
    t = 120000
    for _ in range(119):
        t += 60000
        m.tick(t)
        assert m.in_failsafe(SRC_LPC)
    ev.clear()
    m.tick(120000 + 2 * H)
    assert not m.in_failsafe(SRC_LPC) and ev.any(F_FAILSAFE)
    assert m.effective() == (None, None, False)  # unlimited/autonomous
    # still silent: no new failsafe until the source is heard again
    m.tick(120000 + 3 * H)
    assert not m.in_failsafe(SRC_LPC) and silent(m, SRC_LPC)
    t = 120000 + 3 * H
    m.alive(SRC_LPC, t)
    m.tick(t + 119999)
    assert not m.in_failsafe(SRC_LPC)
    m.tick(t + 120000)
    assert m.in_failsafe(SRC_LPC)


def case_failsafe_heartbeat_during_duration_keeps_it():
    # heartbeats alone keep failsafe for its minimum duration (the LPC layer ends it earlier
    # by its own rules through end_failsafe)
    m = Charger(hw_max=32)
    _lpc(m, fs_ms=10 * 60000)
    m.tick(120000)
    t = 120000
    while t < 120000 + 10 * 60000 - 30000:
        t += 30000
        m.alive(SRC_LPC, t)
        assert m.in_failsafe(SRC_LPC)
    m.tick(120000 + 10 * 60000)
    assert not m.in_failsafe(SRC_LPC) and not silent(m, SRC_LPC)
    m.end_failsafe(SRC_LPC, t)  # no-op outside failsafe


def case_failsafe_is_an_obligation_among_others():
    m = Charger(hw_max=32, phases=3)
    m.request(SRC_LOCAL, OBLIGATION, 8, UNIT_A, 0)
    _lpc(m, fs_w=11040)  # 16 A
    m.tick(120000)
    assert m.in_failsafe(SRC_LPC) and m.effective() == ((8, 8, 8), SRC_LOCAL, False)
    m.failsafe(SRC_LPC, 4140, UNIT_W, 2 * H)  # changed while in force: applies at once
    assert m.effective() == ((6, 6, 6), SRC_FAILSAFE, False)
    m.failsafe(SRC_LPC, 3000, UNIT_W, 2 * H)  # 4.3 A: below the minimum, pause
    assert m.effective() == ((4.3, 4.3, 4.3), SRC_FAILSAFE, True)
    m.request(SRC_OSCEV, RECOMMENDATION, 10, UNIT_A, 120000)
    assert m.effective()[1] == SRC_FAILSAFE


def case_failsafe_only_touches_its_source():
    m = Charger(hw_max=32)
    _lpc(m)
    m.request(SRC_OPEV, OBLIGATION, 10, UNIT_A, 0)
    m.tick(120000)
    assert m.request_of(SRC_OPEV) is not None and not m.in_failsafe(SRC_OPEV)
    assert m.effective() == ((6, 6, 6), SRC_FAILSAFE, False)
    assert m.request(SRC_OPEV, OBLIGATION, 5, UNIT_A, 120000)
    assert m.effective() == ((5, 5, 5), SRC_OPEV, True)


def case_failsafe_in_a_and_without_a_limit():
    m = Charger(hw_max=32)
    supervise(m, SRC_OPEV, 4000, 0)  # OPEV: a CEM heartbeat of PT4S
    m.request(SRC_OPEV, OBLIGATION, 10, UNIT_A, 0)
    m.tick(4000)
    assert m.in_failsafe(SRC_OPEV) and m.effective() == (None, None, False)
    m.alive(SRC_OPEV, 5000)
    m.request(SRC_OPEV, OBLIGATION, 10, UNIT_A, 5000)
    m.failsafe(SRC_OPEV, 6, UNIT_A, None)  # until the CEM speaks again
    m.tick(9000)
    assert m.effective() == ((6, 6, 6), SRC_FAILSAFE, False)
    m.tick(9000 + 48 * H)
    assert m.in_failsafe(SRC_OPEV)


def case_explicit_failsafe_for_lpc_init():
    # the LPC layer's init state: consumption up to the failsafe limit from boot
    m = Charger(hw_max=32)
    m.failsafe(SRC_LPC, 4140, UNIT_W, 2 * H)
    m.enter_failsafe(SRC_LPC, 0)
    assert m.in_failsafe(SRC_LPC) and m.effective()[1] == SRC_FAILSAFE
    supervise(m, SRC_LPC, 120000, 0)
    assert not m.request(SRC_LPC, OBLIGATION, 6900, UNIT_W, 1000)
    m.end_failsafe(SRC_LPC, 120000)  # e.g. no heartbeat for 120 s: unlimited/autonomous
    assert not m.in_failsafe(SRC_LPC) and m.effective()[1] is None


def case_unsupervised_source_never_fails_safe():
    m = Charger()
    m.failsafe(SRC_LPC, 4140, UNIT_W, 2 * H)
    supervise(m, SRC_LPC, 120000, 0)
    supervise(m, SRC_LPC, 0, 1000)
    m.tick(10 * H)
    assert not m.in_failsafe(SRC_LPC) and not silent(m, SRC_LPC)


# ---- controller writes


def case_writes_on_change_with_minimum_interval():
    m = Charger(hw_max=16, write_interval_ms=1000)
    assert m.pending_write(0) is None  # link down until the first poll
    m.link(True)
    assert m.pending_write(0) == 16
    ev = Events(m)
    m.written(16, 10)
    assert ev.any(F_APPLIED) and m.applied() == 16
    assert m.pending_write(20) is None
    m.request(SRC_OPEV, OBLIGATION, 10, UNIT_A, 200)
    assert m.pending_write(500) is None  # 1 s after the last write at 10
    assert m.pending_write(1010) == 10
    m.written(10, 1020)
    m.request(SRC_OPEV, OBLIGATION, 10, UNIT_A, 1500)  # same value: nothing to write
    assert m.pending_write(5000) is None
    m.request(SRC_OPEV, OBLIGATION, 5, UNIT_A, 5000)
    assert m.pending_write(5000) == 0  # pause
    m.written(0, 5000)
    m.request(SRC_OPEV, OBLIGATION, 4, UNIT_A, 7000)  # still paused: no new write
    assert m.pending_write(7000) is None


def case_failed_write_is_asked_again():
    m = Charger(hw_max=16)
    m.link(True)
    assert m.pending_write(0) == 16
    assert m.pending_write(100) == 16  # the bridge did not confirm
    m.written(16, 200)
    assert m.pending_write(300) is None


def case_link_recovery_forces_a_rewrite():
    m = Charger(hw_max=16)
    m.link(True)
    m.written(m.pending_write(0), 0)
    m.request(SRC_OPEV, OBLIGATION, 8, UNIT_A, 5000)
    m.written(m.pending_write(5000), 5000)
    ev = Events(m)
    m.link(False)
    assert ev.any(F_LINK) and m.get(F_LINK) is False
    assert m.pending_write(5100) is None and m.applied() is None
    m.link(True)
    assert m.pending_write(5200) == 8  # same value, inside the interval: written again at once


def case_fractional_write_confirmed():
    m = Charger(hw_max=16)
    m.link(True)
    m.request(SRC_ECHONET, OBLIGATION, 10.1, UNIT_A, 0)
    v = m.pending_write(0)
    assert v == 10.1
    m.written(v, 0)
    assert m.pending_write(5000) is None and m.applied() == 10.1


# ---- memory


def case_steady_state_allocates_nothing():
    if sys.implementation.name != "micropython":
        return
    import micropython

    m = Charger(hw_max=32, phases=3)
    ev = Events(m)
    _lpc(m)
    m.request(SRC_LPC, OBLIGATION, 6900, UNIT_W, 0)
    m.request(SRC_OPEV, OBLIGATION, (10, 10, 10), UNIT_A, 0, expires_ms=10 * H)
    m.link(True)
    m.written(m.pending_write(0), 0)
    i = 9.87
    u = 229.6
    p = 6800
    m.set(F_I1, i)
    m.set(F_U1, u)
    m.set(F_U2, u)
    m.set(F_U3, u)
    m.set(F_POWER, p)
    m.set(F_PHASES, 3)
    m.flush()
    m.tick(1)
    n = len(ev.masks)
    t = 1
    micropython.heap_lock()
    try:
        for _ in range(100):
            t += 1000
            m.set(F_I1, i)
            m.set(F_U1, u)
            m.set(F_U2, u)
            m.set(F_U3, u)
            m.set(F_POWER, p)
            m.set(F_PHASES, 3)
            m.set(F_LINK, True)
            m.flush()
            m.tick(t)
            m.alive(SRC_LPC, t)
            assert m.pending_write(t) is None
    finally:
        micropython.heap_unlock()
    assert len(ev.masks) == n and m.effective()[1] == SRC_OPEV
