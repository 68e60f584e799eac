# The pairing button (debounce + hold time) and the pairing window watch (gateway/pairing.py),
# sans-IO. Plain functions with asserts: CPython (test_pairing.py) and MicroPython.
from gateway import pairing as PB
from ship import trust as T


def feed_seq(btn, seq):
    """seq: (pressed, ms) pairs, each level fed every 10 ms for ms; returns when HOLD fired."""
    t = 0
    fired = []
    for pressed, ms in seq:
        for _ in range(ms // 10):
            if btn.feed(pressed, t) == PB.HOLD:
                fired.append(t)
            t += 10
    return fired


def case_hold_three_seconds_fires_once():
    b = PB.HoldButton(3000, 50)
    fired = feed_seq(b, [(False, 100), (True, 5000), (False, 100)])
    assert len(fired) == 1, fired
    # pressed at 100 ms; fires 3 s later (the debounce does not delay the start of the hold)
    assert 3100 <= fired[0] <= 3160, fired


def case_short_press_does_not_fire():
    b = PB.HoldButton(3000, 50)
    assert feed_seq(b, [(True, 2900), (False, 200), (True, 2900), (False, 100)]) == []


def case_bounce_does_not_restart_the_hold():
    b = PB.HoldButton(3000, 50)
    seq = [(True, 1000), (False, 20), (True, 1000), (False, 30), (True, 1500)]
    fired = feed_seq(b, seq)
    assert len(fired) == 1 and fired[0] < 3200, fired


def case_long_release_restarts_the_hold():
    b = PB.HoldButton(3000, 50)
    assert feed_seq(b, [(True, 2000), (False, 200), (True, 2000)]) == []


def case_second_hold_fires_again():
    b = PB.HoldButton(3000, 50)
    assert len(feed_seq(b, [(True, 3500), (False, 200), (True, 3500)])) == 2


def case_noise_never_fires():
    b = PB.HoldButton(3000, 50)
    seq = []
    for i in range(400):
        seq.append((i % 2 == 0, 20))
    assert feed_seq(b, seq) == []


def case_ticks_wrap():
    from compat import ticks_add

    b = PB.HoldButton(3000, 50)
    t = ticks_add(0, -1000)  # just before the wrap
    fired = 0
    for i in range(500):
        if b.feed(True, ticks_add(t, i * 10)) == PB.HOLD:
            fired += 1
    assert fired == 1


class Store:
    # what WindowWatch uses of TrustStore: window_open() and trusted
    def __init__(self):
        self.trusted = {}
        self.until = None

    def window_open(self, now):
        return self.until is not None and now < self.until


def case_window_watch_reports_open_close_and_whom():
    s = Store()
    s.trusted["a" * 40] = {}
    w = PB.WindowWatch(s)
    assert w.step(0) is None
    s.until = 1000
    assert w.step(1) == ("open",)
    assert w.step(2) is None
    s.trusted["b" * 40] = {}
    assert w.step(1000) == ("closed", ["b" * 40])
    assert w.step(1001) is None
    s.until = 3000
    assert w.step(2000) == ("open",)
    assert w.step(3000) == ("closed", [])


def case_window_watch_with_the_trust_store():
    import os

    path = "/tmp/pairing_cases_trust.json"
    try:
        os.remove(path)
    except OSError:
        pass
    t = T.TrustStore(path)
    w = PB.WindowWatch(t)
    t.open_window(0, 2)
    assert w.step(0) == ("open",)
    assert t.decide("c" * 40, 500) == T.TRUSTED
    ev = w.step(2000)
    assert ev == ("closed", ["c" * 40]), ev
    assert t.trusted["c" * 40]["by"] == "window"
    os.remove(path)


def case_window_watch_counts_a_peer_trusted_before_its_first_poll():
    # the window opens and a peer is trusted through it before the pairing task polls (a
    # handshake is quicker than the 20 ms poll): it is reported at the close all the same
    import os

    path = "/tmp/pairing_cases_trust_early.json"
    try:
        os.remove(path)
    except OSError:
        pass
    t = T.TrustStore(path)
    t.add("a" * 40)
    w = PB.WindowWatch(t)
    assert w.step(0) is None
    t.open_window(0, 2)
    assert t.decide("d" * 40, 5) == T.TRUSTED
    assert w.step(20) == ("open",)
    t.open_window(100, 2)  # extended while open: the snapshot from the opening stays
    ev = w.step(2100)
    assert ev == ("closed", ["d" * 40]), ev
    os.remove(path)
