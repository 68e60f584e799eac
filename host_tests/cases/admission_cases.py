# Admission control (lib/ship/admission.py) scenarios; runs under CPython and MicroPython.
from ship import admission as A


def _used(a):
    return sum(1 for s in a._st if s != A.FREE)


def new(preauth=2, sessions=2, reserve=1):
    return A.Admission(preauth, sessions, reserve, tls_ms=10000, cmi_ms=10000, hello_ms=60000, grace_ms=2000)


def case_free_slots_first_then_reserve_then_refuse_young_unknowns():
    a = new()
    got = [a.arrive(0) for _ in range(3)]
    assert [g[0] for g in got] == [0, 1, 2] and all(g[2] == -1 for g in got)
    # all three are young and showed no certificate yet: a fourth is closed without a word
    assert a.arrive(100)[0] == -1
    assert a.stats["refused"] == 1 and _used(a) == 3


def case_strangers_hold_at_most_preauth_slots_newest_wins():
    a = new()
    s0, g0, _ = a.arrive(0)
    s1, g1, _ = a.arrive(5)
    s2, g2, _ = a.arrive(10)
    assert s2 == 2  # the reserve slot
    assert a.claim(s0, g0, False) == -1 and a.claim(s1, g1, False) == -1
    # a third stranger: the oldest one goes (it may be the genuine peer being paired)
    assert a.claim(s2, g2, False) == s0
    assert a._st[s0] == A.FREE and a.stats["evicted"] == 1
    # so a slot is free for the next one, which turns out trusted
    s3, g3, v = a.arrive(20)
    assert s3 == s0 and v == -1
    assert a.claim(s3, g3, True) == -1
    assert a.promote(s3, g3) and a.live == 1 and _used(a) == 2


def case_oldest_untrusted_evicted_for_a_newcomer():
    a = new()
    s0, g0, _ = a.arrive(0)
    s1, g1, _ = a.arrive(5)
    s2, g2, _ = a.arrive(10)
    assert a.claim(s0, g0, False) == -1
    assert a.claim(s1, g1, False) == -1
    assert a.claim(s2, g2, True) == -1  # a trusted claim is never evicted
    s3, g3, v = a.arrive(20)
    assert v == s0 and s3 == s0 and g3 != g0
    s4, g4, v = a.arrive(30)
    assert v == s1
    # the late leave() of an evicted holder frees nothing
    a.leave(s0, g0)
    assert a._st[s0] == A.TLS
    # now every slot is a young unknown or a trusted claim: refused
    assert a.arrive(40)[0] == -1


def case_unknown_evicted_only_after_grace():
    a = new()
    for _ in range(3):
        a.arrive(0)
    assert a.arrive(1999)[0] == -1
    s, g, v = a.arrive(2000)
    assert v == 0 and s == 0


def case_trusted_claims_never_evicted():
    a = new(preauth=1, reserve=1)
    s0, g0, _ = a.arrive(0)
    s1, g1, _ = a.arrive(0)
    assert a.claim(s0, g0, True) == -1 and a.claim(s1, g1, True) == -1
    assert a.arrive(100000)[0] == -1


def case_stage_deadlines_expire():
    a = new()
    s0, g0, _ = a.arrive(0)
    s1, g1, _ = a.arrive(0)
    a.claim(s0, g0, False)
    a.claim(s1, g1, False)
    a.stage(s1, g1, A.CMI, 500)
    a.stage(s1, g1, A.HELLO, 1000)
    assert a.expire(9999) == -1
    assert a.expire(10000) == s0 and a.expire(10000) == -1
    assert a.expire(60999) == -1
    assert a.expire(61000) == s1
    assert _used(a) == 0 and a.stats["expired"] == 2


def case_sessions_bounded_but_replacement_allowed():
    a = new(sessions=1)
    s0, g0, _ = a.arrive(0)
    assert a.promote(s0, g0)
    s1, g1, _ = a.arrive(0)
    assert not a.promote(s1, g1)  # another trusted peer: no session left
    assert a.stats["sessions_refused"] == 1 and _used(a) == 0
    s2, g2, _ = a.arrive(0)
    assert a.promote(s2, g2, replacing=True)  # the same SKI again: the double-connection rule decides
    assert a.live == 2
    a.end_session()
    a.end_session()
    a.end_session()
    assert a.live == 0


def case_generations_wrap_and_stale_calls_ignored():
    a = new(preauth=1, reserve=0)
    s, g, _ = a.arrive(0)
    a.leave(s, g)
    a.leave(s, g)
    assert _used(a) == 0
    assert a.claim(s, g, True) == -2
    a.stage(s, g, A.HELLO, 0)
    assert a._st[s] == A.FREE
    a._gen[0] = 0x3FFFFFFF
    s, g, _ = a.arrive(0)
    assert g == 0


def case_ticks_wrap():
    from compat import ticks_add

    a = new()
    near = ticks_add(0, -100)  # 100 ms before the ticks counter wraps
    s, g, _ = a.arrive(near)
    assert a.expire(ticks_add(near, 9999)) == -1
    assert a.expire(ticks_add(near, 10000)) == s


# ---- buffer sets (admission.lend, admission.pool_sets) ------------------------------------------


def case_pool_sets_count_sessions_dial_and_the_strangers_share():
    # the trusted sessions, our dial when there is a CEM to dial, one set for strangers; the
    # pre-auth slots add nothing (a connection in its TLS handshake holds no set)
    assert A.STRANGER_SETS == 1
    assert A.pool_sets({"max_sessions": 2, "admission": {"preauth": 2}, "cem": None}) == 3
    assert A.pool_sets({"max_sessions": 2, "admission": {"preauth": 8}, "cem": None}) == 3
    assert A.pool_sets({"max_sessions": 4, "admission": {"preauth": 3}, "cem": {"host": "x"}}) == 6
    assert A.pool_sets({"max_sessions": 2, "cem": None, "cem_browse": True}) == 4
    assert A.pool_sets({}) == 3
    assert A.pool_sets({"max_sessions": 2, "admission": {"preauth": 2, "stranger_sets": 2}}) == 4


def case_lend_trusted_takes_any_free_set_else_a_strangers():
    assert A.lend(True, 1, 1, 0, 1) == 1
    assert A.lend(True, 1, 0, 3, 1) == 1  # other trusted waiters do not hold it back
    assert A.lend(True, 0, 1, 0, 1) == 0  # every set lent, one to a stranger: it goes
    assert A.lend(True, 0, 0, 0, 1) == -1  # every set lent to trusted peers: nothing to take


def case_lend_strangers_keep_to_their_share():
    assert A.lend(False, 2, 0, 0, 1) == 1
    assert A.lend(False, 0, 0, 0, 1) == -1  # the rest is the trusted peers'
    # the share is full: the newest stranger takes it over from the oldest
    assert A.lend(False, 2, 1, 0, 1) == 0
    # a set a trusted connection waits for is not a stranger's
    assert A.lend(False, 1, 0, 1, 1) == -1
    assert A.lend(False, 2, 0, 1, 1) == 1
    # a share of 0: strangers get none, and none is reclaimed for them
    assert A.lend(False, 3, 0, 0, 0) == -1
    assert A.lend(False, 3, 2, 0, 2) == 0 and A.lend(False, 3, 1, 0, 2) == 1
