# Crash handling and the hardware watchdog.
#
# A crash (an exception out of the application, a task that dies, a watchdog reset) is written
# to a rotating crash log on flash and counted in a small JSON file; the board then restarts.
# The next start waits a back-off that grows with the count, and after SAFE_AFTER crashes in a
# row the safe-mode flag file is written, so the following boots leave the application out and
# the REPL free (netboot.safe_reason). A run that stays up STABLE_MS clears the count. Runs are
# measured in uptime, not wall time: the clock is not set before NTP, often not at all.
#
# The watchdog (machine.WDT) is fed by the supervisor task only while the asyncio loop runs (the
# task itself gets scheduled) and every watched task shows progress within its deadline; a port
# without machine.WDT gets the same rule in software, as a crash of the task that went silent.
#
# A soft reset (Ctrl-D at the REPL or at the gateway's console, machine.soft_reset()) does not
# stop the ESP32's watchdog: it is the IDF task watchdog, and MicroPython's machine.WDT keeps its
# user subscribed across the soft reset (a static handle in ports/esp32/machine_wdt.c) while
# the Timer that release() started to feed it is torn down with the VM. boot.py's network wait
# and the crash back-off would then run unfed and the board would reset under the user.
# early_feed() runs first thing in boot (netboot.boot) after a soft reset: WDT(timeout=...) again
# reconfigures the running watchdog (esp_task_wdt_reconfigure on current ports; it cannot
# stop it) and Timer(0) feeds it until Supervisor.run takes over, or for as long as the board
# stays at the REPL (safe mode, a config error, Ctrl-C during the back-off).
import asyncio

import jsonfile
import log
from compat import const, ticks_diff, ticks_ms

_TAG = const("sup")

SAFE_AFTER = const(5)  # crashes in a row, each within STABLE_MS of its start
STABLE_MS = const(600000)
_BACKOFF_S = const((0, 5, 15, 30, 60, 120, 300))  # start delay after the nth crash in a row
_CRASH_LOG_BYTES = const(4096)  # two files of this size
_cause_seen = False
_early = None  # the Timer feeding a watchdog that survived a soft reset (early_feed)
_DEFAULT_WD_MS = const(30000)  # config.py's default, for a boot whose board config cannot be read


def early_feed(machine, wd_ms=None):
    """After a soft reset: re-arm the watchdog at wd_ms and feed it from Timer(0) until the
    supervisor runs (see the top of this file). True when the timer feeds it."""
    global _early
    if _early is not None:
        return True
    if machine is None or not hasattr(machine, "WDT") or not hasattr(machine, "reset_cause"):
        return False
    if machine.reset_cause() != getattr(machine, "SOFT_RESET", -1):
        return False  # a hard reset stops the watchdog: nothing runs yet
    if wd_ms is None:
        wd_ms = _DEFAULT_WD_MS
    if not wd_ms:
        # this config runs no watchdog; one a previous config started would still run, and
        # re-arming it here would start one where there was none: a hard reset clears it
        return False
    try:
        w = machine.WDT(timeout=wd_ms)
        w.feed()
        t = machine.Timer(0)
        t.init(period=max(wd_ms // 4, 100), mode=machine.Timer.PERIODIC, callback=lambda t: w.feed())
    except (OSError, ValueError, TypeError) as e:
        print("soft reset: cannot feed the watchdog (%s): the board may reset" % e)
        return False
    _early = t
    print("soft reset: watchdog fed from Timer(0) until the gateway runs")
    return True


def _early_stop():
    global _early
    t = _early
    if t is not None:
        _early = None
        t.deinit()


class CrashState:
    """Sans-IO crash counter: count (in a row), total, the last reason; to and from a dict."""

    def __init__(self, doc=None, safe_after=None, backoff=None):
        doc = doc if isinstance(doc, dict) else {}
        c = doc.get("count")
        t = doc.get("total")
        # what a damaged or foreign file holds counts as 0
        self.count = c if isinstance(c, int) and not isinstance(c, bool) and c >= 0 else 0
        self.total = t if isinstance(t, int) and not isinstance(t, bool) and t >= 0 else 0
        self.last = doc.get("last") if isinstance(doc.get("last"), str) else None
        self.safe_after = safe_after or SAFE_AFTER
        self.backoff = backoff or _BACKOFF_S

    def crashed(self, reason):
        """Count a crash; True when it is the one that sends the board into safe mode."""
        self.count += 1
        self.total += 1
        self.last = reason[:80]
        if self.count >= self.safe_after:
            # the count starts afresh: leaving safe mode gives the application a full series
            self.count = 0
            return True
        return False

    def delay_s(self):
        """Back-off before the application starts, for the crashes counted so far."""
        b = self.backoff
        return b[self.count if self.count < len(b) else len(b) - 1]

    def stable(self):
        """The run has been up long enough: the series is over. True when that changed anything."""
        if self.count:
            self.count = 0
            return True
        return False

    def doc(self):
        return {"count": self.count, "total": self.total, "last": self.last}


class Liveness:
    """Sans-IO liveness of the watched tasks: each beats (beat) or shows progress through a
    probe (a callable whose value changes while the task works) within its max_ms."""

    def __init__(self):
        self._w = {}  # name -> [max_ms, last progress ticks, probe, last probe value]

    def watch(self, name, max_ms, now, probe=None):
        self._w[name] = [max_ms, now, probe, probe() if probe else None]

    def unwatch(self, name):
        self._w.pop(name, None)

    def beat(self, name, now):
        w = self._w.get(name)
        if w is not None:
            w[1] = now

    def stale(self, now):
        """(name, ms silent) of the first task past its deadline, or None."""
        for name in self._w:
            w = self._w[name]
            p = w[2]
            if p is not None:
                v = p()
                if v != w[3]:
                    w[3] = v
                    w[1] = now
            quiet = ticks_diff(now, w[1])
            if quiet > w[0]:
                return name, quiet
        return None

    def ages(self, now):
        return [(n, ticks_diff(now, self._w[n][1]), self._w[n][0]) for n in self._w]


class Supervisor:
    """data_dir holds crash.json and crash.log; machine is the machine module (or a stand-in),
    None where there is none; safe_flag is the file whose presence means safe mode."""

    def __init__(self, data_dir, machine=None, safe_flag="/safe"):
        self.state_path = data_dir + "/crash.json"
        self.crashlog = log.Rotating(data_dir + "/crash.log", _CRASH_LOG_BYTES, log.stamp)
        self.machine = machine
        self.safe_flag = safe_flag
        self.state = CrashState(jsonfile.read(self.state_path, None))
        self.live = Liveness()
        self.tasks = {}  # name -> running, ended, failed, cancelled
        self.wd_ms = 0
        self.wdt = None
        self.feeds = 0
        self.starving = None  # the stale task while the watchdog goes unfed
        self.started = ticks_ms()
        self.fatal = None  # (task name, exception) that ends the run
        self._fatal_ev = asyncio.Event()
        global _cause_seen
        if machine is not None and hasattr(machine, "reset_cause") and not _cause_seen:
            _cause_seen = True  # once per boot, however often main() is called from the REPL
            if machine.reset_cause() == getattr(machine, "WDT_RESET", -1):
                # the previous run hung: the watchdog reset it, no handler ran
                self.record("watchdog reset", "the watchdog reset the board (a task or the loop hung)\n")

    # ---- crash bookkeeping (also usable before asyncio runs)

    def record(self, reason, text):
        """Count and log a crash; writes the safe-mode flag when the series is long enough.
        True when the board is now in safe mode."""
        safe = self.state.crashed(reason)
        try:
            self.crashlog.write("%s crash %d (%d in all): %s\n%s" % (
                log.stamp(), self.state.count or self.state.safe_after, self.state.total, reason, text))
            self.crashlog.close()
        except OSError:
            pass
        log.error(_TAG, "crash: %s", reason)
        if safe:
            self.enter_safe("%d crashes in a row, the last: %s" % (self.state.safe_after, reason))
        self.save()
        return safe

    def save(self):
        try:
            jsonfile.write(self.state_path, self.state.doc())
        except OSError as e:
            log.error(_TAG, "cannot write %s (%s)", self.state_path, e)

    def enter_safe(self, why):
        try:
            with open(self.safe_flag, "w") as f:
                f.write(why)
        except OSError as e:
            log.error(_TAG, "cannot write %s (%s)", self.safe_flag, e)
        log.error(_TAG, "safe mode from the next start: %s", why)

    def delay_s(self):
        return self.state.delay_s()

    def sleep(self, s):
        # the back-off before a start: no watchdog runs yet, or after a soft reset early_feed
        # feeds it; Ctrl-C ends it
        import time

        time.sleep(s)

    def crash(self, e, where=None):
        """The application ended with e: log it, count it, restart the board (machine.reset)."""
        if where is None and self.fatal is not None and self.fatal[1] is e:
            where = self.fatal[0]
        reason = "%s%s: %s" % ("task %s: " % where if where else "", type(e).__name__, e)
        try:
            import io
            import sys

            s = io.StringIO()
            sys.print_exception(e, s)
            text = s.getvalue()
        except AttributeError:  # CPython
            import traceback

            text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        self.record(reason, text)
        m = self.machine
        print("restarting")
        if m is not None and hasattr(m, "reset"):
            m.reset()
        else:
            raise SystemExit(3)  # no reset here (unix port): the process ends

    # ---- tasks

    def spawn(self, name, coro, max_ms=0, probe=None):
        """Run coro as a task whose exception ends the run (and so restarts the board); with
        max_ms, the task must beat (live.beat(name)) or move probe within that, or the
        watchdog goes unfed."""
        self.tasks[name] = "running"
        if max_ms:
            self.live.watch(name, max_ms, ticks_ms(), probe)
        return asyncio.create_task(self._guard(name, coro))

    async def _guard(self, name, coro):
        try:
            await coro
            self.tasks[name] = "ended"
        except asyncio.CancelledError:
            self.tasks[name] = "cancelled"
            raise
        except Exception as e:
            self.tasks[name] = "failed"
            self.fail(name, e)
        self.live.unwatch(name)

    def fail(self, name, e):
        if self.fatal is None:
            self.fatal = (name, e)
            self._fatal_ev.set()

    async def wait_fatal(self):
        """Returns never: raises the exception that ended the run."""
        await self._fatal_ev.wait()
        raise self.fatal[1]

    # ---- the supervisor task: watchdog and stability

    def configure(self, wd_ms):
        self.wd_ms = wd_ms

    def check(self, now):
        """One watchdog round: feed when healthy. A port without a hardware watchdog fails the
        silent task once it has been stale for the watchdog time."""
        bad = self.live.stale(now)
        if bad is None:
            if self.wdt is not None:
                self.wdt.feed()
                self.feeds += 1
            if self.starving is not None:
                log.warn(_TAG, "watchdog: %s is back, feeding again", self.starving[0])
                self.starving = None
        else:
            if self.starving is None or self.starving[0] != bad[0]:
                self.starving = (bad[0], now)
                log.error(_TAG, "watchdog: %s silent for %d ms, not feeding", bad[0], bad[1])
            elif self.wdt is None and self.wd_ms and ticks_diff(now, self.starving[1]) >= self.wd_ms:
                self.fail("watchdog", RuntimeError("%s silent for %d ms" % bad))
        if self.state.count and ticks_diff(now, self.started) >= STABLE_MS:
            if self.state.stable():
                log.info(_TAG, "up %d s: crash series cleared", STABLE_MS // 1000)
                self.save()

    async def run(self):
        m = self.machine
        self.started = ticks_ms()  # stability counts from the start, after any back-off
        if self.wd_ms and m is not None and hasattr(m, "WDT"):
            # ESP32: a started WDT cannot be stopped again (see release()); this one takes over
            # from early_feed's timer after a soft reset
            self.wdt = m.WDT(timeout=self.wd_ms)
            _early_stop()
            log.info(_TAG, "watchdog %d ms", self.wd_ms)
        elif self.wd_ms:
            log.info(_TAG, "no machine.WDT: software watchdog %d ms (a silent task ends the run)", self.wd_ms)
        period = self.wd_ms // 4 if self.wd_ms else 5000
        if period > 5000:
            period = 5000
        while True:
            self.check(ticks_ms())
            await asyncio.sleep_ms(period)

    def release(self):
        """The application stopped for the REPL (Ctrl-C): keep a started watchdog fed from a
        timer, or the board resets under the user's hands."""
        w = self.wdt
        m = self.machine
        if w is None or m is None or not hasattr(m, "Timer"):
            return
        _early_stop()
        try:
            self._timer = m.Timer(0)
            self._timer.init(period=max(self.wd_ms // 4, 100), mode=m.Timer.PERIODIC, callback=lambda t: w.feed())
            print("watchdog kept fed from Timer(0) while at the REPL")
        except (OSError, ValueError, TypeError) as e:
            print("watchdog still running (%s): the board resets in %d s" % (e, self.wd_ms // 1000))
