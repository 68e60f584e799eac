# Pairing without a cable: the pairing button (BOOT, GPIO0, held 3 s) and the console's
# diag.pair() open the trust store's pairing window; the status LED blinks while it is open;
# the console and the log say when it opens and closes and whom it trusted.
# HoldButton and WindowWatch are sans-IO (cases in host_tests/cases/pairing_cases.py); run()
# is the thin asyncio adapter polling machine.Pin.
import asyncio


import log
from compat import const, ticks_diff, ticks_ms

_TAG = const("pair")
_POLL_MS = const(20)
_BLINK_MS = const(250)

HOLD = const(1)


class HoldButton:
    """Debounced button: feed(pressed, now) each poll; returns HOLD once per press, when it has
    been pressed without a break for hold_ms (a bounce shorter than debounce_ms is no break)."""

    def __init__(self, hold_ms=3000, debounce_ms=50):
        self.hold_ms = hold_ms
        self.debounce_ms = debounce_ms
        self._raw = False
        self._since = None
        self.pressed = False  # the debounced level
        self._press_at = 0
        self._fired = False

    def feed(self, pressed, now):
        pressed = bool(pressed)
        if self._since is None or pressed != self._raw:
            self._raw = pressed
            self._since = now
            return None
        if ticks_diff(now, self._since) < self.debounce_ms:
            return None
        if pressed != self.pressed:
            self.pressed = pressed
            if pressed:
                self._press_at = self._since
                self._fired = False
            return None
        if pressed and not self._fired and ticks_diff(now, self._press_at) >= self.hold_ms:
            self._fired = True
            return HOLD
        return None


class WindowWatch:
    """Notices the trust store's pairing window opening and closing (it closes by itself) and
    which SKIs were trusted meanwhile. step(now) returns None, ("open",) or ("closed", [skis])."""

    def __init__(self, trust):
        self.trust = trust
        self.open = False
        self._before = ()

    def step(self, now):
        is_open = self.trust.window_open(now)
        if is_open == self.open:
            return None
        self.open = is_open
        if is_open:
            # the store's snapshot from the opening, when it keeps one (a peer may have been
            # trusted through the window before this poll)
            before = getattr(self.trust, "window_before", None)
            self._before = tuple(self.trust.trusted) if before is None else before
            return ("open",)
        new = [s for s in self.trust.trusted if s not in self._before]
        self._before = ()
        return ("closed", new)


def open_window(gw, seconds, why):
    """Open (or extend) the pairing window of the running gateway for `seconds`."""
    gw.trust.open_window(ticks_ms(), seconds)
    msg = "pairing window open for %d s (%s): an unknown energy manager that connects now is trusted" % (seconds, why)
    log.warn(_TAG, msg)
    print(msg)


async def run(gw, button_pin=None, hold_ms=3000, window_s=120, led_pin=None, machine=None):
    """Poll the button, blink the LED while the window is open, report the window closing."""
    btn = None
    led = None
    if machine is None and (button_pin is not None or led_pin is not None):
        import machine
    if button_pin is not None:
        try:
            pin = machine.Pin(button_pin, machine.Pin.IN, machine.Pin.PULL_UP)
        except ValueError:  # input-only pins (GPIO34..39) have no pull-up: the board has one
            pin = machine.Pin(button_pin, machine.Pin.IN)
        btn = HoldButton(hold_ms)
    if led_pin is not None:
        led = machine.Pin(led_pin, machine.Pin.OUT)
        led.value(0)
    watch = WindowWatch(gw.trust)
    blink_at = ticks_ms()
    lit = 0
    while True:
        now = ticks_ms()
        if btn is not None and btn.feed(pin.value() == 0, now) == HOLD:  # active low (BOOT)
            open_window(gw, window_s, "button held %d s" % (hold_ms // 1000))
        ev = watch.step(now)
        if ev is not None and ev[0] == "closed":
            who = ", ".join(ev[1]) if ev[1] else "nobody"
            msg = "pairing window closed; trusted meanwhile: %s" % who
            log.warn(_TAG, msg)
            print(msg)
        if led is not None:
            if watch.open and ticks_diff(now, blink_at) >= _BLINK_MS:
                blink_at = now
                lit ^= 1
                led.value(lit)
            elif not watch.open and lit:
                lit = 0
                led.value(0)
        await asyncio.sleep_ms(_POLL_MS)
