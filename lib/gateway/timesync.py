# Wall-clock time from NTP, with retries and back-off. On the device the exchange is
# gateway/sntp.py on the asyncio loop (the wait for the answer never blocks the loop; the name
# lookup does, once per server). ntptime, blocking, serves where there is no machine.RTC to set
# (the host tests' stand-in). Nothing that needs a valid
# date runs before synced() is True: SpineApp.clock_synced is this, so no heartbeat with a
# 2000 timestamp goes out (CEMs then ignore every limit, spine.md 10). TLS does not need it:
# SHIP pins SKIs under CERT_OPTIONAL, where mbedTLS ignores certificate dates.
# Where there is no ntptime (the unix port) the host's clock counts: synced once past 2024.
import asyncio
import time

import log
from compat import const, ticks_ms

_TAG = const("time")
FAST_MAX_S = const(64)  # back-off 1, 2, 4 ... s for the first `retries` failures
SLOW_S = const(300)  # then every 5 minutes
RESYNC_S = const(21600)  # after a sync: the ESP32's RTC drifts seconds a day


class Schedule:
    """Sans-IO retry schedule: result(ok) gives the seconds to the next attempt."""

    def __init__(self, retries):
        self.retries = retries
        self.synced = False  # stays True: a failed resync leaves a clock that was right
        self.fails = 0  # in a row
        self.attempts = 0
        self.syncs = 0

    def result(self, ok):
        self.attempts += 1
        if ok:
            self.synced = True
            self.syncs += 1
            self.fails = 0
            return RESYNC_S
        self.fails += 1
        if self.fails <= self.retries:
            d = 1 << (self.fails - 1)
            return d if d < FAST_MAX_S else FAST_MAX_S
        return SLOW_S


def _year():
    return time.gmtime()[0]


class TimeSync:
    """servers: NTP host names; ntptime: the module (None: import it; False: there is none);
    sntp and rtc: a gateway.sntp.Sntp and the RTC it sets (the default where machine.RTC is)."""

    def __init__(self, servers, retries, ntptime=None, sntp=None, rtc=None):
        if ntptime is None and sntp is None:
            rtc = rtc or _rtc()
            if rtc is not None:
                from gateway.sntp import Sntp

                sntp = Sntp()
            else:
                try:
                    import ntptime
                except ImportError:
                    ntptime = False
        self.sntp = sntp
        self.rtc = rtc
        self.ntp = ntptime or None
        self.servers = servers
        self.sched = Schedule(retries)
        self.last_error = None
        self.last_server = None
        self.synced_ms = None  # ticks of the last sync

    def host_clock(self):
        return self.ntp is None and self.sntp is None

    def synced(self):
        if self.host_clock():
            return _year() >= 2024
        return self.sched.synced

    def attempt(self):
        """One round over the servers (blocking: ntptime waits up to its timeout, 1 s, per
        server); True at the first that answers."""
        ntp = self.ntp
        for s in self.servers:
            ntp.host = s
            try:
                ntp.settime()
            except Exception as e:  # OSError (timeout, DNS), OverflowError, IndexError (no address)
                self.last_error = "%s: %r" % (s, e)
                continue
            self.last_server = s
            self.synced_ms = ticks_ms()
            return True
        return False

    async def attempt_async(self):
        """One round over the servers with SNTP on the loop; True at the first that answers."""
        from gateway.sntp import set_rtc

        for s in self.servers:
            try:
                t = await self.sntp.query(s)
            except Exception as e:  # OSError (timeout, DNS), SntpError, IndexError (no address)
                self.last_error = "%s: %r" % (s, e)
                continue
            set_rtc(self.rtc, t)
            self.last_server = s
            self.synced_ms = ticks_ms()
            return True
        return False

    async def astep(self):
        """attempt_async() and its bookkeeping; the seconds until the next one."""
        return self._book(await self.attempt_async())

    def step(self):
        """attempt() and its bookkeeping; returns the seconds until the next one."""
        return self._book(self.attempt())

    def _book(self, ok):
        was = self.sched.synced
        delay = self.sched.result(ok)
        if ok and not was:
            log.info(_TAG, "synced from %s: %s", self.last_server, log.stamp())
        elif not ok and self.sched.fails <= self.sched.retries + 1:
            log.warn(_TAG, "sync failed (%d): %s; next try in %d s", self.sched.fails, self.last_error, delay)
        return delay

    async def run(self):
        if self.host_clock():
            log.info(_TAG, "no ntptime: the host clock counts (%s)", "set" if self.synced() else "not set")
            return
        while True:
            if self.sntp is not None:
                await asyncio.sleep(await self.astep())
            else:
                await asyncio.sleep(self.step())


def _rtc():
    try:
        import machine

        return machine.RTC()
    except (ImportError, AttributeError):
        return None
