# When our SHIP client dials a CEM again (ship.md 9.3, 9.4): ship-go's randomised ranges,
# reset only by a session that reached data exchange, never by a denial; a peer that
# answered `pending` (waiting for its user) is retried after minutes, not seconds.
from compat import const

# connectionInitiationDelayTimeRanges of ship-go, in ms; the last range repeats
_RANGES = const(((0, 3000), (3000, 10000), (10000, 20000)))
_PENDING_MIN = const(180000)
_PENDING_MAX = const(300000)


class DialBackoff:
    def __init__(self, randint):
        self._randint = randint  # random.randint, or a fixed one in tests
        self.attempt = 0
        self._pending = False

    def next_delay(self):
        """Milliseconds to wait before the next dial."""
        if self._pending:
            return self._randint(_PENDING_MIN, _PENDING_MAX)
        lo, hi = _RANGES[min(self.attempt, len(_RANGES) - 1)]
        return self._randint(lo, hi)

    def outcome(self, reached_data, peer_pending):
        """Record how a dial ended."""
        self._pending = peer_pending and not reached_data
        if reached_data:
            self.attempt = 0
        else:
            self.attempt += 1
