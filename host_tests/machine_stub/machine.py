# Stand-in for the ESP32 machine module (host tests only): reset causes, reset(), Pin, WDT,
# Timer; every call is recorded in module attributes.
import os

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

cause = int(os.getenv("MACHINE_STUB_CAUSE") or PWRON_RESET)
levels = {}  # pin id -> level its value() reads (default 1: released, pulled up)
pins = []  # every Pin made: (id, mode, pull)
resets = 0
wdts = []  # every WDT made
timers = []


class ResetCalled(BaseException):
    # BaseException: the application's own `except Exception` must not swallow the reset
    pass


def reset_cause():
    return cause


def reset():
    global resets
    resets += 1
    print("MACHINE reset")
    raise ResetCalled()


def soft_reset():
    reset()


def unique_id():
    return b"\x24\x0a\xc4\x00\x00\x01"


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        self._out = value
        pins.append((id, mode, pull))

    def value(self, v=None):
        if v is None:
            return levels.get(self.id, 1) if self._out is None else self._out
        self._out = v

    def on(self):
        self._out = 1

    def off(self):
        self._out = 0

    def __repr__(self):
        return "Pin(%d)" % self.id


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        wdts.append(self)

    def feed(self):
        self.feeds += 1


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kw):
        self.id = id
        self.callback = None
        self.period = None
        timers.append(self)
        if kw:
            self.init(**kw)

    def init(self, period=-1, mode=PERIODIC, callback=None, **kw):
        self.period = period
        self.mode = mode
        self.callback = callback

    def deinit(self):
        self.callback = None

    def fire(self):
        # what the hardware timer would do; tests call it
        if self.callback:
            self.callback(self)
