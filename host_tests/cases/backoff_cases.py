# Client dial back-off (ship.md 9.3/9.4); runs under both runtimes.
from ship.backoff import DialBackoff


def _hi(lo, hi):
    return hi


def _lo(lo, hi):
    return lo


def case_ranges_grow_and_repeat():
    b = DialBackoff(_hi)
    seen = []
    for _ in range(5):
        seen.append(b.next_delay())
        b.outcome(False, False)
    assert seen == [3000, 10000, 20000, 20000, 20000]


def case_data_exchange_resets():
    b = DialBackoff(_hi)
    b.outcome(False, False)
    b.outcome(False, False)
    b.outcome(True, False)
    assert b.next_delay() == 3000


def case_denial_does_not_reset():
    # a hello rejected by the CEM (trust denied) counts as a failure like any other
    b = DialBackoff(_lo)
    for _ in range(3):
        b.outcome(False, False)
    assert b.next_delay() == 10000


def case_pending_peer_retried_after_minutes():
    b = DialBackoff(_lo)
    b.outcome(False, True)
    assert b.next_delay() >= 180000
    b.outcome(False, False)
    assert b.next_delay() < 180000
