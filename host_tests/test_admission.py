"""Admission control (lib/ship/admission.py): the shared cases under CPython (MicroPython:
test_cases_mpy) and property tests of its invariants over random event sequences."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import admission_cases, caserun
from cases.admission_cases import _used
from ship import admission as A


@pytest.mark.parametrize("name", caserun.names(admission_cases))
def test_case(name):
    getattr(admission_cases, name)()


EVENTS = st.lists(
    st.tuples(st.sampled_from(["arrive", "claim_t", "claim_u", "cmi", "hello", "promote", "leave", "expire", "end"]),
              st.integers(0, 20), st.integers(0, 3000)),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), EVENTS)
def test_invariants(preauth, sessions, reserve, events):
    a = A.Admission(preauth, sessions, reserve, tls_ms=10000, cmi_ms=10000, hello_ms=60000, grace_ms=2000)
    held = {}  # slot -> (gen, trusted claim, arrived)
    now = 0
    for kind, pick, dt in events:
        now += dt
        if kind == "arrive":
            before = _used(a)
            s, g, v = a.arrive(now)
            if s < 0:
                # refused only when full and nothing may be reclaimed
                assert before == a.size
                assert all(c or now - t < 2000 for _, c, t in held.values() if c is not False)
                continue
            if v >= 0:
                assert v == s and held[v][1] is not True  # a trusted claim is never the victim
            held[s] = (g, None, now)
        elif held:
            s = sorted(held)[pick % len(held)]
            g, c, t = held[s]
            if kind in ("claim_t", "claim_u"):
                v = a.claim(s, g, kind == "claim_t")
                assert v != -2
                held[s] = (g, kind == "claim_t", t)
                if v >= 0:
                    assert kind == "claim_u" and v != s and held[v][1] is False
                    del held[v]
                # strangers never hold more than the pre-auth budget
                assert sum(1 for _, c, _ in held.values() if c is False) <= preauth
            elif kind in ("cmi", "hello"):
                a.stage(s, g, A.CMI if kind == "cmi" else A.HELLO, now)
            elif kind == "promote":
                live = a.live
                ok = a.promote(s, g)
                assert ok == (live < sessions)
                del held[s]
            elif kind == "leave":
                a.leave(s, g)
                del held[s]
        if kind == "expire":
            while True:
                i = a.expire(now)
                if i < 0:
                    break
                held.pop(i, None)
        if kind == "end":
            a.end_session()
        assert 0 <= a.live <= sessions
        assert _used(a) == len(held) <= a.size
        for s, (g, _, _) in held.items():
            assert a._gen[s] == g and a._st[s] != A.FREE


LENDING = st.lists(
    st.tuples(st.sampled_from(["trusted", "stranger", "poll", "leave", "evicted", "unwind"]), st.integers(0, 20)),
    max_size=100,
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4), st.integers(0, 1), st.integers(0, 2), LENDING)
def test_lending_rule(sessions, dial, share, events):
    """ShipNode._lend's use of the rule over random arrivals, polls, ends, strangers evicted by
    the admission table and evicted holders unwinding: strangers never hold more than their
    share, a stranger never takes a set a waiting trusted connection needs, a trusted connection
    is refused only when trusted peers hold every set, and once the strangers reclaimed for it
    have unwound, every trusted waiter is served."""
    size = sessions + dial + share
    assert size == A.pool_sets({"max_sessions": sessions, "cem": {"host": "x"} if dial else None,
                                "admission": {"stranger_sets": share}})
    holders = []  # [trusted, going] per lent set, oldest first
    waiters = []  # trusted flag per connection waiting for a set, oldest first

    def strangers():
        return sum(1 for t, _ in holders if not t)

    def poll(i):
        trusted = waiters[i]
        free = size - len(holders)
        wanted = sum(1 for t in waiters if t)
        r = A.lend(trusted, free, strangers(), wanted, share)
        if r > 0:
            assert free > 0
            holders.append([trusted, False])
            del waiters[i]
            if not trusted:
                assert size - len(holders) >= wanted  # what trusted waiters need is left
        elif r == 0:
            assert strangers() > 0
            if not any(h[1] for h in holders if not h[0]):  # none on its way back: the oldest goes
                for h in holders:
                    if not h[0]:
                        h[1] = True
                        break
        else:
            del waiters[i]
            if trusted:
                assert all(t for t, _ in holders) and len(holders) == size
        return r

    for kind, pick in events:
        if kind in ("trusted", "stranger"):
            waiters.append(kind == "trusted")
            poll(len(waiters) - 1)
        elif kind == "poll" and waiters:
            poll(pick % len(waiters))
        elif kind == "leave":
            stay = [h for h in holders if not h[1]]
            if stay:
                holders.remove(stay[pick % len(stay)])
        elif kind == "evicted":  # by the admission table: on its way out, its set not yet back
            stay = [h for h in holders if not h[0] and not h[1]]
            if stay:
                stay[pick % len(stay)][1] = True
        elif kind == "unwind":
            going = [h for h in holders if h[1]]
            if going:
                holders.remove(going[pick % len(going)])
        assert strangers() <= share and len(holders) <= size
    # the strangers reclaimed so far unwind; then every trusted waiter is served, in turn,
    # unless trusted peers hold every set
    while waiters:
        if not waiters[0]:
            del waiters[0]
            continue
        r = poll(0)
        if r == 0:
            holders[:] = [h for h in holders if not h[1]]
            assert poll(0) == 1
