# SHIP PIN verification policy (IEC 63380-3 6.9.6; ship.md 6.4), sans-IO: which PIN state we
# announce, whether a PIN a peer typed in is right, and the attempt counter with back-off that
# makes guessing useless. No sockets, no clock, no files: the adapter passes ticks_ms and
# persists state() (load_state/save_state below) whenever .dirty is set.
#
# Wire forms (ship-go model/types.go, IEC 63380-3 Tables 36-39):
#   {"connectionPinState":[{"pinState":"required|optional|pinOk|none"},{"inputPermission":"busy|ok"}]}
#   {"connectionPinInput":[{"pin":"<text>"}]}
#   {"connectionPinError":[{"error":N}]}
from compat import const, ticks_diff, ticks_add

MODES = ("none", "optional", "required")

# check() results
PIN_OK = const(0)
PIN_WRONG = const(1)
PIN_LOCKED = const(2)

PIN_MIN = const(8)
PIN_MAX = const(16)  # PINs are compared over this fixed length; longer input is wrong
_LEVEL_MAX = const(6)  # back-off doubles at most this often: 64 x the base lock
_LOCK_CAP = const(86400000)  # never lock longer than a day, whatever the config says

# the one error value we send: the PIN did not match (the value 1 is what the only public
# PIN implementation sends; IEC 63380-3 Table 39 was not available to check it against)
ERR_WRONG = const(1)


def valid_pin(s):
    """A PIN we accept in configuration: 8..16 decimal digits."""
    if not isinstance(s, str) or not PIN_MIN <= len(s) <= PIN_MAX:
        return False
    for ch in s:
        if ch < "0" or ch > "9":
            return False
    return True


def generate(urandom, digits=8):
    """A fresh PIN of decimal digits from a byte source (os.urandom), without modulo bias."""
    out = []
    while len(out) < digits:
        for b in urandom(digits):
            if b < 250 and len(out) < digits:  # 250 = 25 * 10: uniform over 0..9
                out.append(chr(48 + b % 10))
    return "".join(out)


def equal(secret, given):
    """Constant-time PIN comparison: the time does not depend on where the first difference is
    or on the given length (both are walked over PIN_MAX characters). given may be anything a
    peer sent; only a str can match."""
    if not isinstance(given, str):
        given = ""
    n = len(given)
    diff = 0 if n == len(secret) else 1
    if n > PIN_MAX:
        diff = 1
        n = 0  # do not walk a huge string; the loop below still runs PIN_MAX times
    ls = len(secret)
    for i in range(PIN_MAX):
        a = ord(secret[i]) if i < ls else 0
        b = ord(given[i]) if i < n else 0
        diff |= a ^ b
    return diff == 0


class PinGuard:
    """Failed PIN attempts across all connections: `tries` wrong PINs in a row lock PIN input for
    lock_ms, doubling with each further lock (up to 64x); a right PIN resets it. The lock and
    the counters persist (state()/load()), so neither a reconnect nor a reboot resets them: a
    lock that was running at a reboot runs again in full from the start."""

    def __init__(self, tries=5, lock_ms=60000):
        self.tries = tries if tries > 0 else 1
        self.lock_ms = lock_ms if lock_ms > 0 else 1
        self.fails = 0
        self.level = 0
        self.total = 0  # wrong PINs since the counters were created (persisted)
        self._until = None
        self.dirty = False

    def load(self, doc, now):
        if not isinstance(doc, dict):
            return
        f = doc.get("fails")
        lv = doc.get("level")
        t = doc.get("total")
        if isinstance(f, int) and 0 <= f < 1000:
            self.fails = f
        if isinstance(lv, int) and 0 <= lv <= _LEVEL_MAX + 1:
            self.level = lv
        if isinstance(t, int) and 0 <= t < 1 << 30:
            self.total = t
        if doc.get("locked") is True and self.level > 0:
            self._until = ticks_add(now, self._lock_for(self.level - 1))

    def state(self):
        return {"fails": self.fails, "level": self.level, "total": self.total, "locked": self._until is not None}

    def _lock_for(self, level):
        ms = self.lock_ms << (level if level < _LEVEL_MAX else _LEVEL_MAX)
        return ms if ms < _LOCK_CAP else _LOCK_CAP

    def locked(self, now):
        if self._until is None:
            return False
        if ticks_diff(self._until, now) > 0:
            return True
        self._until = None
        self.fails = 0
        self.dirty = True
        return False

    def ms_left(self, now):
        return ticks_diff(self._until, now) if self.locked(now) else 0

    def check(self, secret, given, now):
        if self.locked(now):
            return PIN_LOCKED
        if secret and equal(secret, given):
            if self.fails or self.level:
                self.fails = 0
                self.level = 0
                self.dirty = True
            return PIN_OK
        self.fails += 1
        self.total += 1
        if self.fails >= self.tries:
            self._until = ticks_add(now, self._lock_for(self.level))
            if self.level <= _LEVEL_MAX:
                self.level += 1
            self.fails = 0
        self.dirty = True
        return PIN_WRONG


class PinPolicy:
    """What the gateway does about PINs. mode: "none" (default; announce none), "optional" or
    "required" (announced to a peer that is not trusted yet; it may, or must, type the PIN).
    secret: our PIN. guard: the PinGuard shared by all connections."""

    def __init__(self, mode="none", secret=None, guard=None):
        if mode not in MODES:
            raise ValueError("pin mode must be none, optional or required")
        if mode != "none" and not valid_pin(secret):
            raise ValueError("a PIN needs 8..16 digits")
        self.mode = mode
        self.secret = secret
        self.guard = guard or PinGuard()

    def wants_pin(self, trusted):
        """Whether an untrusted peer is let through hello to type the PIN."""
        return self.mode != "none" and not trusted


def load_or_make_secret(path, urandom):
    """Our PIN when the config names none: the one kept in path, or a new one, kept there."""
    doc = load_state(path)
    if isinstance(doc, dict) and valid_pin(doc.get("pin")):
        return doc["pin"]
    import jsonfile

    secret = generate(urandom)
    jsonfile.write(path, {"pin": secret})
    return secret


def load_state(path):
    import jsonfile

    return jsonfile.read(path, None)


def save_state(path, guard):
    import jsonfile

    jsonfile.write(path, guard.state())
    guard.dirty = False
