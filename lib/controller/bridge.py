# The charger bridge: one asyncio task that keeps the charger model (charger.py) and the
# controller behind a register map (controller/regmap.py) in step over a Modbus master
# (modbus/master.py). It polls the map's blocks on their own intervals, decodes them into the
# model, writes the effective limit when arbitration changes it, supervises the link (down
# after fail_limit failed transactions in a row, then retries with back-off 1, 2, 5, 10 s),
# sets the controller up after every (re)connect and after a detected reboot (init writes,
# then the limit again), and feeds the controller's watchdog as the map says.
#
# The decisions that need no I/O live in Schedule (which block is due, the link state and the
# back-off) so that a case file can drive them with made-up times. Bridge is the thin I/O
# part: it picks the next transaction synchronously (_next), runs it through the master's
# stepper inline in run(), and books the outcome synchronously (_done). Awaiting a helper
# coroutine per transaction would allocate a coroutine object each time; the inline stepper
# plus the preallocated asyncio.sleep_ms() keep a steady-state poll cycle free of allocation
# beyond what the master and decode already need.
#
# Idle waits are cut into slices of at most slice_ms (20 ms), and each slice asks the model
# for a pending write: a limit request reaches the controller within a slice plus one
# transaction, far inside one poll interval. An Event woken from a model subscriber would
# need wait_for() for the timeout, which allocates a task and a coroutine per wait.
import asyncio
from array import array

import log
from compat import const, ticks_add, ticks_diff, ticks_ms
from modbus import pdu

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

_BACKOFF_MS = const((1000, 2000, 5000, 10000))

_OP_NONE = const(0)
_OP_POLL = const(1)  # read a block
_OP_LIMIT = const(2)  # write the limit (and then the enable)
_OP_ENABLE = const(3)
_OP_INIT = const(4)  # one of the map's init writes (connecting, or after a reboot)
_OP_PROBE = const(5)  # read the first block to finish connecting
_OP_FEED = const(6)  # the watchdog's feed register, or the limit again ("write" feed)
_OP_VERIFY = const(7)  # read the limit register back: a rebooted controller forgot it

_SLICE_MS = const(20)
_VERIFY_MS = const(5000)


class Schedule:
    """Sans-IO: per-block due times, link state and reconnect back-off. Times are ms ticks."""

    def __init__(self, intervals, fail_limit=3, backoff=_BACKOFF_MS):
        self.intervals = tuple(intervals)
        self._next = [0] * len(self.intervals)
        self.fail_limit = fail_limit
        self.backoff = tuple(backoff)
        self.up = False
        self.fails = 0  # failed transactions in a row
        self.tries = 0  # failed connection attempts since the link went down
        self._retry_at = None  # when to try connecting next; None: now

    def start(self, now):
        """Every block due now (after connecting: the model must learn everything again)."""
        n = self._next
        for i in range(len(n)):
            n[i] = now

    def due(self, now):
        """Index of the most overdue block, or -1."""
        best = -1
        late = -1
        n = self._next
        for i in range(len(n)):
            d = ticks_diff(now, n[i])
            if d >= 0 and d > late:
                late = d
                best = i
        return best

    def polled(self, i, now):
        """Block i was read (or its read failed: it is not retried at once either). The next
        read is one interval after the due time, so the cadence does not drift with the
        transaction time; a block already more than an interval late starts over from now."""
        iv = self.intervals[i]
        t = ticks_add(self._next[i], iv)
        if ticks_diff(t, now) <= 0:
            t = ticks_add(now, iv)
        self._next[i] = t

    def next_in(self, now):
        """ms until the next block is due (0: one is due)."""
        best = None
        for t in self._next:
            d = ticks_diff(t, now)
            if best is None or d < best:
                best = d
        return 0 if best is None or best < 0 else best

    def success(self):
        """A transaction got an answer (an exception response too). True if the link just came up."""
        self.fails = 0
        if self.up:
            return False
        self.up = True
        self.tries = 0
        self._retry_at = None
        return True

    def failure(self, now):
        """A transaction failed after the master's retries. True if the link just went down."""
        self.fails += 1
        if self.up:
            if self.fails < self.fail_limit:
                return False
            self.up = False
            self.tries = 0
            went = True
        else:
            went = False
        b = self.backoff
        self._retry_at = ticks_add(now, b[self.tries if self.tries < len(b) else len(b) - 1])
        self.tries += 1
        return went

    def retry_in(self, now):
        """While down: ms until the next connection attempt (0: now)."""
        t = self._retry_at
        if t is None:
            return 0
        d = ticks_diff(t, now)
        return d if d > 0 else 0


class Bridge:
    # Set on the instance only when they change (rarely, or at the end): its attribute table
    # then has 29 entries in 29 slots (232 B 32-bit; 32 in 37 slots, 296 B, before).
    _stop = False
    reboots = 0  # readbacks that found the limit register reset
    downs = 0

    def __init__(self, map, master, model, unit=None, fail_limit=3, backoff=_BACKOFF_MS,
                 slice_ms=_SLICE_MS, verify_ms=_VERIFY_MS):
        self.map = map
        self.master = master
        self.model = model
        self.unit = map.unit if unit is None else unit
        self.sched = Schedule([b.interval for b in map.blocks], fail_limit, backoff)
        self.slice_ms = slice_ms
        self.verify_ms = verify_ms  # 0: never read the limit back
        self._init = tuple(map.init_writes())
        self._vreg = array("H", [0])  # the limit register read back
        self._w16 = array("H", [0])  # FC 16 takes a sequence: one preallocated register
        self._op = _OP_NONE
        self._arg = 0
        self._amps = 0
        self._enable = None
        self._init_j = 0  # next init write while connecting or re-initialising
        self._reinit = False  # a reboot was seen: init writes, then the limit, while up
        self._force = False  # write the setpoint even though the model thinks it is applied
        self._last_raw = None  # the limit register value last written
        self._last_ok = ticks_ms()  # last answered transaction ("any" feeds the watchdog)
        self._last_write = self._last_ok
        self._last_verify = self._last_ok
        wd = map.watchdog_ms
        self._feed_ms = wd // 2 if wd else 0
        # diagnostics
        self.polls = 0
        self.errors = 0  # failed transactions (exception responses included)
        self.writes = 0  # limit writes confirmed
        self.feeds = 0
        self.ups = 0
        self.last_error = None
        self.last_write_ms = None  # ticks of the last confirmed limit write

    # ---- diagnostics

    def link_up(self):
        return self.sched.up

    def stats(self):
        s = self.sched
        return {
            "link": "up" if s.up else "down",
            "polls": self.polls,
            "errors": self.errors,
            "fails_in_row": s.fails,
            "retries_down": s.tries,
            "writes": self.writes,
            "feeds": self.feeds,
            "reboots": self.reboots,
            "ups": self.ups,
            "downs": self.downs,
            "last_error": None if self.last_error is None else repr(self.last_error),
            "applied": self.model.applied(),
            "modbus": self.master.stats(),
        }

    def stop(self):
        self._stop = True

    # ---- the task

    async def run(self):
        m = self.master
        sleep_ms = asyncio.sleep_ms
        # the link state from the start: a controller that never answers is never "down" in
        # the model (it never was up), so the first failed attempt says so here (_done);
        # later changes are the model's F_LINK events, which gateway.app logs
        log.info("bridge", "charger link: connecting (unit %d)", self.unit)
        self.sched.start(ticks_ms())
        try:
            while not self._stop:
                # _done may have started a follow-up (the enable after the limit)
                if not m.busy():
                    w = self._next(ticks_ms())
                    if w >= 0:
                        await sleep_ms(w)
                        continue
                err = None
                try:
                    pm = m.poll_ms
                    while not m.poll():
                        await sleep_ms(pm)
                except (pdu.ModbusError, OSError) as e:
                    err = e
                self._done(err, ticks_ms())
        finally:
            m.abort()

    def _start_write(self, w, value):
        fc = w.fc
        if fc == 16:
            self._w16[0] = value
            self.master.start(self.unit, 16, w.address, 1, self._w16)
        else:
            self.master.start(self.unit, fc, w.address, 1, value)

    def _start_read(self, b):
        self.master.start(self.unit, b.fc, b.address, b.count, None, b.regs)

    def _start_init(self):
        # the next of the map's init writes; False when they are all done
        if self._init_j >= len(self._init):
            return False
        w = self._init[self._init_j]
        self._op = _OP_INIT
        self._start_write(w, w.value)
        return True

    def _next(self, now):
        """Start the next transaction (returns -1) or return ms to sleep."""
        s = self.sched
        mp = self.map
        model = self.model
        if not s.up:
            model.tick(now)
            w = s.retry_in(now)
            if w > 0:
                return w if w < self.slice_ms else self.slice_ms
            if not self._start_init():
                self._op = _OP_PROBE
                self._start_read(mp.blocks[0])
            return -1
        if self._reinit:
            if self._start_init():
                return -1
            self._reinit = False
            self._force = True
        # the limit first: it is what the user waits for
        if self._force:
            amps = model.setpoint()
            model.tick(now)
        else:
            amps = model.pending_write(now)
        if amps is not None:
            raw, en = mp.encode_limit(amps)
            self._amps = amps
            self._enable = en
            if raw is not None:
                self._op = _OP_LIMIT
                self._start_write(mp.limit, raw)
                self._arg = raw
            else:
                self._op = _OP_ENABLE
                self._start_write(mp.enable, en)
            return -1
        fm = self._feed_ms
        if fm:
            feed = mp.feed
            if feed == "any":
                if ticks_diff(now, self._last_ok) >= fm:
                    self._op = _OP_POLL
                    self._arg = 0
                    self._start_read(mp.blocks[0])
                    return -1
            elif ticks_diff(now, self._last_write) >= fm:
                if feed == "register":
                    self._op = _OP_FEED
                    self._start_write(mp.feed_write, mp.feed_write.value)
                    return -1
                if self._last_raw is not None:
                    self._op = _OP_FEED
                    self._start_write(mp.limit, self._last_raw)
                    return -1
        if self.verify_ms and self._last_raw is not None and ticks_diff(now, self._last_verify) >= self.verify_ms:
            self._op = _OP_VERIFY
            self._last_verify = now
            self.master.start(self.unit, 3, mp.limit.address, 1, None, self._vreg)
            return -1
        i = s.due(now)
        if i >= 0:
            self._op = _OP_POLL
            self._arg = i
            self._start_read(mp.blocks[i])
            return -1
        w = s.next_in(now)
        return w if w < self.slice_ms else self.slice_ms

    def _done(self, err, now):
        s = self.sched
        op = self._op
        self._op = _OP_NONE
        model = self.model
        if err is not None:
            self.errors += 1
            self.last_error = err
        if err is not None and not isinstance(err, pdu.ModbusException):
            if op == _OP_POLL:
                s.polled(self._arg, now)
            if op == _OP_INIT or op == _OP_PROBE:
                self._init_j = 0
            went = s.failure(now)
            if not went and s.tries == 1 and not self.ups:
                log.warn("bridge", "charger link down: the controller does not answer (%r); retrying after %s ms",
                         err, s.backoff)
            if went:
                self.downs += 1
                self._init_j = 0
                self._reinit = False
                self._force = False
                self.map.forget()
                model.link(False)
            return
        # answered: the controller is there (an exception response says so too)
        self._last_ok = now
        if op == _OP_INIT and not s.up:
            # connecting: the link counts as up once the whole set-up and a read went through
            self._init_j += 1
            return
        up = s.success()
        if err is not None:
            # refused: go on; asking again at once would get the same answer
            if op == _OP_POLL:
                s.polled(self._arg, now)
            elif op == _OP_INIT:
                self._init_j += 1
            elif op == _OP_LIMIT or op == _OP_ENABLE:
                self._force = False
                self._last_write = now
            if up:
                self._up(now)
            return
        if op == _OP_POLL or op == _OP_PROBE:
            i = self._arg if op == _OP_POLL else 0
            b = self.map.blocks[i]
            self.polls += 1
            s.polled(i, now)
            self.map.decode(b, b.regs, model)
            model.flush()
        elif op == _OP_INIT:
            self._init_j += 1
        elif op == _OP_LIMIT:
            self._last_raw = self._arg
            self._last_write = now
            self._last_verify = now
            if self._enable is not None:
                # the enable goes out next, started here so that no other transaction slips
                # between limit and enable; run() sees the master busy and steps it
                self._op = _OP_ENABLE
                self._start_write(self.map.enable, self._enable)
                return
            self._confirm(now)
        elif op == _OP_ENABLE:
            self._last_write = now
            self._confirm(now)
        elif op == _OP_FEED:
            self.feeds += 1
            self._last_write = now
        elif op == _OP_VERIFY:
            if self._vreg[0] != self._last_raw:
                # the controller lost what we wrote: it rebooted. Set it up again.
                self.reboots += 1
                self._reinit = True
                self._init_j = 0
        if up:
            self._up(now)

    def _confirm(self, now):
        self._force = False
        self.writes += 1
        self.last_write_ms = now
        self.model.written(self._amps, now)

    def _up(self, now):
        self.ups += 1
        self._init_j = 0
        self.sched.start(now)
        self.map.forget()
        # the model drops what it knew was applied, so pending_write asks for the limit again
        self.model.link(True)
