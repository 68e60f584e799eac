# The bridge's decisions without I/O (lib/controller/bridge.py): the poll schedule, link supervision and
# back-off (Schedule), and the order of transactions the Bridge picks, with a master that only
# records what it was asked to start. Runs under both runtimes.
from controller.bridge import Bridge, Schedule
from compat import ticks_add
from charger import F_LINK, OBLIGATION, SRC_LOCAL, UNIT_A, Charger
from controller import mapload
from modbus.pdu import ModbusException, ModbusTimeout

MAP = {
    "name": "t", "document": "test", "link": {"kind": "rtu", "unit": 1},
    "poll_ms": 1000,
    "points": [
        {"kind": "input", "address": 0, "field": "state", "enum": {"0": "A", "1": "B", "2": "C"}},
        {"kind": "input", "address": 20, "field": "hw_max", "interval_ms": 5000},
    ],
    "writes": {
        "limit": {"kind": "holding", "address": 100, "scale": 0.1, "min": 6, "max": 32},
        "failsafe": {"kind": "holding", "address": 101, "amps": 6},
        "watchdog": {"kind": "holding", "address": 102, "value": 3000, "timeout_ms": 3000},
    },
}


def case_blocks_due_on_their_intervals():
    s = Schedule([1000, 5000])
    s.start(0)
    assert s.due(0) in (0, 1)
    i = s.due(0)
    s.polled(i, 10)
    j = s.due(10)
    assert j == 1 - i
    s.polled(j, 20)
    assert s.due(20) == -1
    assert s.next_in(20) == 980
    assert s.due(1000) == 0
    s.polled(0, 1005)
    # the cadence follows the due times, not the transaction's end
    assert s.next_in(1005) == 995
    assert s.due(5000) == 0  # due since 2000: the most overdue goes first
    s.polled(0, 5000)
    assert s.due(5000) == 1


def case_most_overdue_first_and_late_start_over():
    s = Schedule([100, 1000])
    s.start(0)
    s.polled(0, 0)
    s.polled(1, 0)
    # both due at 1000; block 0 was due at 100, more overdue
    assert s.due(1000) == 0
    s.polled(0, 1000)  # 900 ms late: starts over from now
    assert s.next_in(1000) == 0  # block 1 is due
    s.polled(1, 1000)
    assert s.next_in(1000) == 100


def case_ticks_wrap():
    s = Schedule([1000])
    now = 0x3FFFFF00  # just before the 30-bit tick wrap
    s.start(now)
    s.polled(0, now)
    assert s.due(ticks_add(now, 500)) == -1
    assert s.due(ticks_add(now, 1000)) == 0


def case_link_down_after_fail_limit_and_backoff():
    s = Schedule([1000], fail_limit=3)
    assert s.success() is True and s.up
    assert s.success() is False
    assert s.failure(0) is False
    assert s.failure(0) is False
    assert s.failure(0) is True and not s.up
    delays = []
    now = 0
    for _ in range(6):
        d = s.retry_in(now)
        delays.append(d)
        now += d
        assert s.retry_in(now) == 0
        assert s.failure(now) is False
    assert delays == [1000, 2000, 5000, 10000, 10000, 10000]
    assert s.success() is True and s.up and s.fails == 0
    # down again: the back-off starts over
    for _ in range(3):
        s.failure(now)
    assert s.retry_in(now) == 1000


def case_answer_between_failures_resets_the_count():
    s = Schedule([1000], fail_limit=2)
    s.success()
    s.failure(0)
    s.success()
    assert s.failure(0) is False and s.up


class FakeMaster:
    poll_ms = 1

    def __init__(self):
        self.started = []
        self._busy = False

    def start(self, unit, fc, addr, count=1, data=None, out=None, out_off=0):
        assert not self._busy
        self.started.append((fc, addr, data if fc in (5, 6) else count))
        self._busy = True
        self.out = out

    def busy(self):
        return self._busy

    def finish(self):
        self._busy = False

    def abort(self):
        self._busy = False

    def stats(self):
        return {}


def _step(br, fm, now, err=None, regs=None):
    """One transaction: the bridge picks it, it 'completes' (or fails with err)."""
    if not fm.busy():
        w = br._next(now)
        if w >= 0:
            return None
    op = fm.started[-1]
    if op[1] == 20:
        regs = [16]  # hw_max: the station's 16 A
    if regs is not None and fm.out is not None:
        for i in range(len(regs)):
            fm.out[i] = regs[i]
    fm.finish()
    br._done(err, now)
    return op


def _bridge(fail_limit=2):
    fm = FakeMaster()
    model = Charger(hw_min=6, hw_max=16, write_interval_ms=100)
    events = []
    model.subscribe(lambda mask: events.append(mask))
    br = Bridge(mapload.load(MAP), fm, model, fail_limit=fail_limit, verify_ms=2000)
    br.sched.start(0)
    return br, fm, model, events


def case_connect_sets_up_then_writes_the_limit():
    br, fm, model, events = _bridge()
    assert _step(br, fm, 0) == (6, 101, 60)  # failsafe first
    assert not model.get(F_LINK)
    assert _step(br, fm, 1) == (6, 102, 3000)  # then the watchdog
    assert not model.get(F_LINK)
    assert _step(br, fm, 2, regs=[1]) == (4, 0, 1)  # a read finishes connecting
    assert model.get(F_LINK) and br.link_up()
    assert any(m & (1 << F_LINK) for m in events)
    assert _step(br, fm, 3) == (6, 100, 160)  # the effective limit: hardware max 16 A
    assert model.applied() == 16
    # then the polls
    ops = [_step(br, fm, 4), _step(br, fm, 5)]
    assert sorted(ops) == [(4, 0, 1), (4, 20, 1)]
    assert _step(br, fm, 6) is None  # nothing due: sleep
    assert br._next(7) <= br.slice_ms


def case_request_written_before_the_next_poll():
    br, fm, model, events = _bridge()
    for t in range(6):
        _step(br, fm, t, regs=[0])
    assert _step(br, fm, 10) is None
    model.request(SRC_LOCAL, OBLIGATION, 10, UNIT_A, 200)
    assert _step(br, fm, 200) == (6, 100, 100)
    assert model.applied() == 10
    model.request(SRC_LOCAL, OBLIGATION, 3, UNIT_A, 400)  # below the minimum: pause
    assert _step(br, fm, 400) == (6, 100, 0)


def case_lost_link_reported_and_limit_rewritten_on_recovery():
    br, fm, model, events = _bridge(fail_limit=2)
    for t in range(6):
        _step(br, fm, t, regs=[0])
    model.request(SRC_LOCAL, OBLIGATION, 10, UNIT_A, 200)
    assert _step(br, fm, 200) == (6, 100, 100)
    assert model.applied() == 10
    assert _step(br, fm, 1100, err=ModbusTimeout("timeout"))[1] == 0
    assert model.get(F_LINK)
    assert _step(br, fm, 2200, err=ModbusTimeout("timeout"))[1] == 0
    assert not model.get(F_LINK) and not br.link_up()
    assert br.downs == 1 and model.applied() is None
    assert _step(br, fm, 2700) is None  # back-off: 1 s
    assert _step(br, fm, 3200, err=ModbusTimeout("timeout")) == (6, 101, 60)
    assert _step(br, fm, 4000) is None  # then 2 s
    assert _step(br, fm, 5200) == (6, 101, 60)
    assert _step(br, fm, 5201) == (6, 102, 3000)
    assert _step(br, fm, 5202, regs=[2]) == (4, 0, 1)
    assert model.get(F_LINK) and model.get(0) == "C"
    assert _step(br, fm, 5203) == (6, 100, 100)  # the limit again
    assert model.applied() == 10


def case_exception_response_keeps_the_link():
    br, fm, model, events = _bridge(fail_limit=1)
    for t in range(6):
        _step(br, fm, t, regs=[0])
    assert _step(br, fm, 1100, err=ModbusException(4)) == (4, 0, 1)
    assert br.link_up() and br.errors == 1


def case_reboot_seen_by_readback():
    br, fm, model, events = _bridge()
    for t in range(6):
        _step(br, fm, t, regs=[0])
    # at 2 s the limit register is read back: 160 as written, nothing to do
    op = None
    t = 2003
    while op != (3, 100, 1):
        op = _step(br, fm, t, regs=[160])
        t += 1
    assert br.reboots == 0
    op = None
    t = 4100
    while op != (3, 100, 1):
        op = _step(br, fm, t, regs=[7])  # the power-on value: rebooted
        t += 1
    assert br.reboots == 1
    assert _step(br, fm, t) == (6, 101, 60)
    assert _step(br, fm, t + 1) == (6, 102, 3000)
    assert _step(br, fm, t + 2) == (6, 100, 160)
