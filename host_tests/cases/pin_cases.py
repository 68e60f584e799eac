# SHIP PIN verification: the policy (ship/pin.py) and the PIN phase of the connection core, both
# roles. Plain functions with asserts: CPython (test_ship_pin.py) and MicroPython (test_cases_mpy).
from cases.shipstub import NullSpine, deliver
from ship import connection as C
from ship import messages as M
from ship import pin as P

T = C.Timers(cmi=10000, hello=60000)
OUR_ID = "Demo-EVSE-234567890"
SECRET = "12345678"

HELLO_READY = b'\x01{"connectionHello":[{"phase":"ready"},{"waiting":60000}]}'
ANNOUNCE = (b'\x01{"messageProtocolHandshake":[{"handshakeType":"announceMax"},'
            b'{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF8"]}]}]}')
ANNOUNCE_11 = (b'\x01{"messageProtocolHandshake":[{"handshakeType":"announceMax"},'
               b'{"version":[{"major":1},{"minor":1}]},{"formats":[{"format":["JSON-UTF8"]}]}]}')
SELECT = (b'\x01{"messageProtocolHandshake":[{"handshakeType":"select"},'
          b'{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF8"]}]}]}')
PIN_NONE = b'\x01{"connectionPinState":[{"pinState":"none"}]}'
PIN_REQ_OK = b'\x01{"connectionPinState":[{"pinState":"required"},{"inputPermission":"ok"}]}'
PIN_REQ_BUSY = b'\x01{"connectionPinState":[{"pinState":"required"},{"inputPermission":"busy"}]}'
PIN_OPT_OK = b'\x01{"connectionPinState":[{"pinState":"optional"},{"inputPermission":"ok"}]}'
PIN_OK = b'\x01{"connectionPinState":[{"pinState":"pinOk"}]}'
PIN_ERR = b'\x01{"connectionPinError":[{"error":1}]}'
AMR = b'\x01{"accessMethodsRequest":[]}'
AM_PEER = b'\x01{"accessMethods":[{"id":"Demo-ControlBox-123456789"}]}'


def pin_input(pin):
    return b'\x01{"connectionPinInput":[{"pin":"%s"}]}' % pin.encode()


def sent(conn):
    return [a[1] for a in conn.out if a[0] == "send"]


def closes(conn):
    return [a for a in conn.out if a[0] == "close"]


def acts(conn, kind):
    return [a for a in conn.out if a[0] == kind]


class Urandom:
    def __init__(self, seq):
        self.seq = list(seq)

    def __call__(self, n):
        out = self.seq[:n]
        self.seq = self.seq[n:]
        return bytes(out)


def policy(mode="required", tries=3, lock_ms=1000):
    return P.PinPolicy(mode, SECRET, P.PinGuard(tries, lock_ms))


def server(pol, trusted=False, now=0):
    c = C.ShipConnection(True, OUR_ID, trusted, NullSpine(), now, T, pin=pol)
    c.start(now)
    for m in (M.CMI, HELLO_READY, ANNOUNCE, SELECT):
        deliver(c, m)
    return c


# ---- the policy ---------------------------------------------------------------------------


def case_valid_pin():
    assert P.valid_pin("12345678") and P.valid_pin("1234567890123456")
    for bad in ("1234567", "12345678901234567", "1234567a", "", None, 12345678, " 2345678"):
        assert not P.valid_pin(bad), bad


def case_generate_uses_only_unbiased_bytes():
    # bytes 250..255 are skipped: they would favour 0..5
    pin = P.generate(Urandom([255, 250, 1, 12, 23, 34, 45, 56, 67, 78, 89, 249]))
    assert pin == "12345678", pin
    assert P.valid_pin(P.generate(Urandom(list(range(200)))))


def case_equal_constant_shape():
    assert P.equal(SECRET, "12345678")
    for bad in ("12345679", "1234567", "123456780", "", None, 12345678, ["12345678"], "1" * 10000):
        assert not P.equal(SECRET, bad), bad


def case_policy_modes():
    assert not P.PinPolicy().wants_pin(False)
    assert policy("optional").wants_pin(False) and not policy("optional").wants_pin(True)
    for bad in (("bogus", SECRET), ("required", None), ("required", "123")):
        try:
            P.PinPolicy(bad[0], bad[1])
        except ValueError:
            continue
        raise AssertionError(bad)


def case_guard_locks_after_tries_and_doubles():
    g = P.PinGuard(3, 1000)
    assert g.check(SECRET, "0", 0) == P.PIN_WRONG
    assert g.check(SECRET, "0", 1) == P.PIN_WRONG
    assert not g.locked(2)
    assert g.check(SECRET, "0", 2) == P.PIN_WRONG
    assert g.locked(3) and g.dirty
    # locked: even the right PIN is refused
    assert g.check(SECRET, SECRET, 500) == P.PIN_LOCKED
    assert not g.locked(1002)
    for t in (1003, 1004, 1005):
        g.check(SECRET, "0", t)
    assert g.locked(2004) and not g.locked(3005)  # second lock: 2 s
    assert g.check(SECRET, SECRET, 3006) == P.PIN_OK
    assert g.level == 0 and g.fails == 0


def case_guard_state_survives_reboot():
    g = P.PinGuard(2, 1000)
    g.check(SECRET, "x", 0)
    g.check(SECRET, "x", 1)
    doc = g.state()
    assert doc["locked"] is True and doc["total"] == 2
    # a reboot: the clock starts again, the lock runs again in full
    g2 = P.PinGuard(2, 1000)
    g2.load(doc, 50)
    assert g2.locked(1049) and not g2.locked(1051)
    # half-way counts survive too
    g3 = P.PinGuard(3, 1000)
    g3.check(SECRET, "x", 0)
    g4 = P.PinGuard(3, 1000)
    g4.load(g3.state(), 0)
    g4.check(SECRET, "x", 1)
    g4.check(SECRET, "x", 2)
    assert g4.locked(3)


def case_guard_load_ignores_garbage():
    for doc in (None, [], "x", {"fails": -1, "level": "a", "total": 2.5, "locked": 1}, {"fails": 10 ** 9}):
        g = P.PinGuard(3, 1000)
        g.load(doc, 0)
        assert g.fails == 0 and g.level == 0 and not g.locked(0)


def case_lock_is_capped():
    g = P.PinGuard(1, 10 ** 9)
    for i in range(20):
        g.check(SECRET, "x", 0)
        g._until = None
    g.check(SECRET, "x", 0)
    assert 0 < g.ms_left(0) <= 86400000


# ---- the connection, gateway as server ------------------------------------------------------


def case_none_mode_untrusted_peer_held_pending():
    c = C.ShipConnection(True, OUR_ID, False, NullSpine(), 0, T, pin=P.PinPolicy())
    c.start(0)
    deliver(c, M.CMI)
    assert acts(c, "pending") and not c.awaiting_pin


def case_required_right_pin_trusts_and_enters_data():
    c = server(policy())
    assert c.awaiting_pin and c.state == C.PIN
    assert sent(c)[-1] == PIN_REQ_OK, sent(c)
    assert acts(c, "pin_wait")
    deliver(c, PIN_NONE)
    assert c.state == C.PIN
    deliver(c, pin_input(SECRET))
    assert acts(c, "pin_ok")
    assert c.state == C.DATA and not c.awaiting_pin
    assert sent(c)[-2:] == [PIN_OK, AMR], sent(c)[-2:]
    deliver(c, AMR)
    deliver(c, AM_PEER)
    assert not closes(c)


def case_required_input_before_peer_state():
    c = server(policy())
    deliver(c, pin_input(SECRET))
    assert c.state == C.PIN
    deliver(c, PIN_NONE)
    assert c.state == C.DATA


def case_optional_mode_announces_optional():
    c = server(policy("optional"))
    assert sent(c)[-1] == PIN_OPT_OK


def case_trusted_peer_gets_none_in_required_mode():
    c = server(policy(), trusted=True)
    assert sent(c)[-1] == PIN_NONE and not c.awaiting_pin
    deliver(c, PIN_NONE)
    assert c.state == C.DATA


def case_wrong_pin_error_then_right_pin():
    c = server(policy(tries=3))
    deliver(c, PIN_NONE)
    deliver(c, pin_input("87654321"))
    assert sent(c)[-1] == PIN_ERR
    assert acts(c, "pin_wrong") == [("pin_wrong", False)]
    assert c.state == C.PIN and not closes(c)
    deliver(c, pin_input(SECRET))
    assert c.state == C.DATA


def case_too_many_wrong_pins_close_4452_and_lock_next_connection():
    pol = policy(tries=2, lock_ms=5000)
    c = server(pol)
    deliver(c, pin_input("1"))
    deliver(c, pin_input("2"))
    assert closes(c)[0][1] == C.CLOSE_REJECTED
    assert acts(c, "pin_wrong")[-1] == ("pin_wrong", True)
    # the next connection (same policy, other peer): input busy, even the right PIN refused
    c2 = server(pol, now=100)
    assert sent(c2)[-1] == PIN_REQ_BUSY
    c2.now = 200
    deliver(c2, pin_input(SECRET))
    assert sent(c2)[-1] == PIN_ERR and closes(c2)[0][1] == C.CLOSE_REJECTED
    # after the lock: the right PIN works
    c3 = server(pol, now=6000)
    assert sent(c3)[-1] == PIN_REQ_OK
    c3.now = 6001
    deliver(c3, PIN_NONE)
    deliver(c3, pin_input(SECRET))
    assert c3.state == C.DATA


def case_pin_timeout_rejects():
    c = server(policy())
    deliver(c, PIN_NONE)
    c.tick(59999)
    assert not closes(c)
    c.tick(60000)
    assert closes(c)[0][1] == C.CLOSE_REJECTED


def case_user_approval_during_pin_phase():
    c = server(policy())
    deliver(c, PIN_NONE)
    c.approve(10)
    assert sent(c)[-2:] == [PIN_OK, AMR] and c.state == C.DATA


def case_user_denial_during_pin_phase():
    c = server(policy())
    c.deny(10)
    assert closes(c)[0][1] == C.CLOSE_REJECTED


def case_malformed_pin_inputs_count_as_wrong():
    for body in (b'{"connectionPinInput":[{"pin":12345678}]}', b'{"connectionPinInput":[]}',
                 b'{"connectionPinInput":[{"pin":null}]}', b'{"connectionPinInput":[{"pin":["12345678"]}]}',
                 b'{"connectionPinInput":[{"pin":"' + b"9" * 900 + b'"}]}'):
        c = server(policy(tries=5))
        deliver(c, b"\x01" + body)
        assert sent(c)[-1] == PIN_ERR, body
        assert c.state == C.PIN and c.awaiting_pin


def case_pin_input_when_not_asked_closes():
    c = server(policy(), trusted=True)
    deliver(c, pin_input(SECRET))
    assert closes(c)


def case_bad_pin_state_closes():
    c = server(policy())
    deliver(c, b'\x01{"connectionPinState":[{"pinState":"maybe"}]}')
    assert closes(c)


def case_pinok_without_our_pin_closes():
    c = server(policy(), trusted=True)
    deliver(c, PIN_OK)
    assert closes(c)


# ---- the connection, gateway as client -----------------------------------------------------


def client(peer_pin):
    c = C.ShipConnection(False, OUR_ID, True, NullSpine(), 0, T, peer_pin=peer_pin)
    c.start(0)
    for m in (M.CMI, HELLO_READY, SELECT):
        deliver(c, m)
    assert c.state == C.PIN
    return c


def case_client_types_pin_for_cem():
    c = client(SECRET)
    deliver(c, PIN_REQ_OK)
    assert sent(c)[-1] == pin_input(SECRET)
    deliver(c, PIN_OK)
    assert c.state == C.DATA and sent(c)[-1] == AMR


def case_client_waits_while_cem_busy():
    c = client(SECRET)
    deliver(c, PIN_REQ_BUSY)
    assert pin_input(SECRET) not in sent(c)
    deliver(c, PIN_REQ_OK)
    assert sent(c)[-1] == pin_input(SECRET)


def case_client_wrong_pin_closes():
    c = client("00000000")
    deliver(c, PIN_REQ_OK)
    deliver(c, PIN_ERR)
    assert closes(c) and "rejected our PIN" in closes(c)[0][2]


def case_client_without_pin_required_closes_optional_goes_on():
    c = client(None)
    deliver(c, PIN_REQ_OK)
    assert closes(c) and "ship.cem.pin" in closes(c)[0][2]
    c = client(None)
    deliver(c, PIN_OPT_OK)
    assert c.state == C.DATA


# ---- SHIP 1.1 peers and unknown control messages ------------------------------------------------


def case_announce_11_answered_with_select_10():
    c = C.ShipConnection(True, OUR_ID, True, NullSpine(), 0, T)
    c.start(0)
    for m in (M.CMI, HELLO_READY, ANNOUNCE_11):
        deliver(c, m)
    assert sent(c)[-1] == SELECT
    deliver(c, SELECT)
    assert c.state == C.PIN and not closes(c)


def case_unknown_control_ignored_in_pin_and_data():
    c = C.ShipConnection(True, OUR_ID, True, NullSpine(), 0, T)
    c.start(0)
    for m in (M.CMI, HELLO_READY, ANNOUNCE, SELECT):
        deliver(c, m)
    deliver(c, b'\x01{"commissioningRequest":[]}')
    for m in (PIN_NONE, AMR, AM_PEER):
        deliver(c, m)
    for i in range(50):
        deliver(c, b'\x01{"keyMaterialState":[{"x":%d}]}' % i)
    assert c.state == C.DATA and not closes(c)
    assert c.unknown_ctrl == 51
    names = [a[1] for a in acts(c, "unknown")]
    assert names[0] == "commissioningRequest" and names[-1] == "keyMaterialState"


def case_unknown_control_name_bounded():
    c = server(policy(), trusted=True)
    deliver(c, b'\x01{"' + b"x" * 500 + b'":[]}')
    assert len(acts(c, "unknown")[0][1]) == 40 and not closes(c)


def case_unknown_control_in_protocol_handshake_still_error_2():
    # SHIP-TS-PROT-03 stays: the protocol handshake tolerates nothing unexpected
    c = C.ShipConnection(True, OUR_ID, True, NullSpine(), 0, T)
    c.start(0)
    deliver(c, M.CMI)
    deliver(c, HELLO_READY)
    deliver(c, b'\x01{"commissioningRequest":[]}')
    assert closes(c)
