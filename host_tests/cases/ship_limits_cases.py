# Numbers and lists from peers stay bounded: SHIP hello `waiting`, the pending pairing list,
# trust store edits of two writers. Runs under CPython and MicroPython.
import json
import os

from cases.shipstub import NullSpine, deliver
from ship import connection as C
from ship import messages as M
from ship import trust as T

_DIR = "/tmp" if os.getenv("TMPDIR") is None else os.getenv("TMPDIR")


def _in_hello(trusted, now=0):
    c = C.ShipConnection(True, "Test-GW-1", trusted, NullSpine(), now)
    c.start(now)
    deliver(c, M.CMI)
    del c.out[:]
    return c


def _hello(phase, waiting):
    return b'\x01{"connectionHello":[{"phase":"%s"},{"waiting":%s}]}' % (phase, waiting)


def _closes(c):
    return [a for a in c.out if a[0] == "close"]


def case_waiting_above_unsigned_int_is_a_protocol_error():
    for w in (b"4611686018427387904", b"4294967296", b"-1", b"1e12", b'"60000"', b"null"):
        for trusted in (False, True):
            c = _in_hello(trusted)
            deliver(c, _hello(b"pending" if not trusted else b"ready", w))
            if w == b"null":
                continue  # no waiting at all is judged by phase (see the ship core cases)
            assert c.state == C.CLOSED, (w, trusted)
            assert ("send", M.HELLO_ABORTED) in c.out
            assert _closes(c)[0][2] == "bad waiting"


def case_largest_waiting_accepted_and_no_prolongation_needed():
    c = _in_hello(False, now=1000)
    deliver(c, _hello(b"ready", b"4294967295"))
    assert c.state == C.HELLO  # pending on our side, the peer waits "forever": fine
    assert c._prolong_at is None
    c.tick(1000 + 59999)
    assert c.state == C.HELLO
    c.tick(1000 + 60000)  # our own hello timer still ends it
    assert c.state == C.CLOSED and c.close_code == C.CLOSE_REJECTED


def case_waiting_near_our_timer_schedules_prolongation():
    c = _in_hello(False)
    deliver(c, _hello(b"ready", b"40000"))
    assert c._prolong_at == 20000
    assert c.ms_to_deadline(0) == 20000


def case_close_maxtime_out_of_range_uses_default():
    c = _in_hello(True)
    deliver(c, _hello(b"ready", b"60000"))
    for m in (
        b'\x01{"messageProtocolHandshake":[{"handshakeType":"announceMax"},{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF8"]}]}]}',
        b'\x01{"messageProtocolHandshake":[{"handshakeType":"select"},{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF8"]}]}]}',
        b'\x01{"connectionPinState":[{"pinState":"none"}]}',
    ):
        deliver(c, m)
    assert c.state == C.DATA
    deliver(c, b'\x03{"connectionClose":[{"phase":"announce"},{"maxTime":99999999999999999999}]}')
    assert c.state == C.CLOSING
    assert c.ms_to_deadline(c.now) <= 500


def _path(name):
    p = _DIR + "/limits_case_" + name + ".json"
    for q in (p, p + ".lock"):
        try:
            os.remove(q)
        except OSError:
            try:
                os.rmdir(q)
            except OSError:
                pass
    return p


def case_pending_list_oldest_yields_and_counts():
    s = T.TrustStore(_path("pending"))
    skis = ["%040x" % i for i in range(1, 12)]
    for k in skis:
        assert s.decide(k, 0, "a") == T.PENDING
    assert len(s.pending) == 8
    assert skis[-1] in s.pending and skis[0] not in s.pending
    assert s.dropped == 3
    s.forget_pending(skis[5])
    assert s.decide("%040x" % 99, 0) == T.PENDING
    assert s.dropped == 3 and len(s.pending) == 8


def case_edits_apply_to_the_file_as_it_is():
    p = _path("merge")
    a = T.TrustStore(p)
    b = T.TrustStore(p)  # another writer with its own (stale) copy
    a.add("aa" * 20)
    b.add("bb" * 20)  # must not drop aa
    a.deny("cc" * 20)  # must not drop bb
    b.remove("aa" * 20)
    with open(p) as f:
        doc = json.load(f)
    assert sorted(doc["trusted"]) == ["bb" * 20]
    assert doc["denied"] == ["cc" * 20]
    left = [n for n in os.listdir(_DIR) if n.startswith("limits_case_merge.json.")]
    assert not left, left


def case_unreadable_store_is_not_overwritten():
    p = _path("broken")
    with open(p, "w") as f:
        f.write("{not json")
    s = T.TrustStore(p)
    assert s.error
    try:
        s.add("aa" * 20)
        raise AssertionError("wrote over an unreadable store")
    except OSError:
        pass
    with open(p) as f:
        assert f.read() == "{not json"
