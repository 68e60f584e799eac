# SHIP connection core scenarios. Plain functions with asserts, no pytest: the same file runs
# under CPython (test_ship_core.py) and under the MicroPython unix port (test_cases_mpy.py).
from ship import connection as C
from ship import messages as M

T = C.Timers(cmi=10000, hello=60000)
OUR_ID = "Demo-EVSE-234567890"

HELLO_READY = b'\x01{"connectionHello":[{"phase":"ready"},{"waiting":60000}]}'
HELLO_PENDING = b'\x01{"connectionHello":[{"phase":"pending"},{"waiting":60000}]}'
ANNOUNCE = (b'\x01{"messageProtocolHandshake":[{"handshakeType":"announceMax"},'
            b'{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF8"]}]}]}')
SELECT = (b'\x01{"messageProtocolHandshake":[{"handshakeType":"select"},'
          b'{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF8"]}]}]}')
PIN = b'\x01{"connectionPinState":[{"pinState":"none"}]}'
AMR = b'\x01{"accessMethodsRequest":[]}'
AM_OURS = b'\x01{"accessMethods":[{"id":"Demo-EVSE-234567890"}]}'
AM_PEER = b'\x01{"accessMethods":[{"id":"Demo-ControlBox-123456789"}]}'
DATAGRAM = (b'{"datagram":[{"header":[{"specificationVersion":"1.3.0"},{"msgCounter":1},{"cmdClassifier":"read"}]},'
            b'{"payload":[{"cmd":[[{"nodeManagementDetailedDiscoveryData":[]}]]}]}]}')


class Spine:
    def __init__(self):
        self.msgs = []
        self.cur = None
        self.aborted = 0

    def spine_begin(self):
        self.cur = bytearray()

    def spine_data(self, buf, off, n):
        self.cur.extend(buf[off : off + n])

    def spine_end(self):
        self.msgs.append(bytes(self.cur))
        self.cur = None

    def spine_abort(self, why):
        self.aborted += 1
        self.cur = None


def deliver(conn, msg, chunk=0):
    buf = bytearray(msg)
    conn.ws_begin()
    if chunk <= 0:
        chunk = len(buf) or 1
    off = 0
    while off < len(buf):
        n = min(chunk, len(buf) - off)
        conn.ws_data(buf, off, n)
        off += n
    conn.ws_end()


def sent(conn):
    out = [a[1] for a in conn.out if a[0] == "send"]
    return out


def closes(conn):
    return [a for a in conn.out if a[0] == "close"]


def new(server=True, trusted=True, timers=T, now=0):
    sp = Spine()
    c = C.ShipConnection(server, OUR_ID, trusted, sp, now, timers)
    c.start(now)
    return c, sp


def server_to_data(chunk=0):
    c, sp = new(True, True)
    deliver(c, M.CMI, chunk)
    deliver(c, HELLO_READY, chunk)
    deliver(c, ANNOUNCE, chunk)
    deliver(c, SELECT, chunk)
    deliver(c, PIN, chunk)
    deliver(c, AMR, chunk)
    deliver(c, AM_PEER, chunk)
    return c, sp


def case_server_handshake_matches_capture():
    # the order and bytes of host_tests/vectors/eebus-captures/00_ship_handshake_evse_side.txt
    c, sp = server_to_data()
    assert c.state == C.DATA
    assert sent(c) == [M.CMI, HELLO_READY, SELECT, PIN, AMR, AM_OURS], sent(c)
    assert c.peer_id == "Demo-ControlBox-123456789"
    assert ("ready",) in c.out
    assert not closes(c)


def case_handshake_split_into_single_bytes():
    c, sp = server_to_data(chunk=1)
    assert c.state == C.DATA and not closes(c)


def case_client_handshake():
    c, sp = new(server=False)
    assert sent(c) == [M.CMI]
    deliver(c, M.CMI)
    deliver(c, HELLO_READY)
    deliver(c, SELECT)
    deliver(c, PIN)
    deliver(c, AMR)
    deliver(c, AM_PEER)
    assert sent(c) == [M.CMI, HELLO_READY, ANNOUNCE, SELECT, PIN, AMR, AM_OURS], sent(c)
    assert c.state == C.DATA


def case_untrusted_pending_then_hello_timeout_4452():
    c, sp = new(trusted=False)
    deliver(c, M.CMI)
    assert sent(c) == [M.CMI, HELLO_PENDING]
    assert ("pending",) in c.out
    deliver(c, HELLO_READY)
    c.tick(59999)
    assert not closes(c)
    c.tick(60000)
    assert sent(c)[-1] == M.HELLO_ABORTED
    assert closes(c)[0][1] == C.CLOSE_REJECTED


def case_untrusted_approved_goes_ready():
    c, sp = new(trusted=False)
    deliver(c, M.CMI)
    deliver(c, HELLO_READY)
    c.approve(5000)
    assert sent(c)[-1] == HELLO_READY
    assert c.state == C.PROTO
    deliver(c, ANNOUNCE)
    assert sent(c)[-1] == SELECT


def case_untrusted_denied_4452():
    c, sp = new(trusted=False)
    deliver(c, M.CMI)
    c.deny(100)
    assert sent(c)[-1] == M.HELLO_ABORTED
    assert closes(c)[0][1] == C.CLOSE_REJECTED


def case_pending_side_asks_for_prolongation():
    t = C.Timers(hello=120000)
    c, sp = new(trusted=False, timers=t)
    deliver(c, M.CMI)
    deliver(c, HELLO_READY)  # the peer waits 60 s, we wait 120 s for the user
    c.tick(29999)
    assert M.HELLO_PROLONG not in sent(c)
    c.tick(30000)
    assert sent(c)[-1] == M.HELLO_PROLONG


def case_ready_side_answers_prolongation():
    c, sp = new()
    deliver(c, M.CMI)
    c.tick(50000)
    deliver(c, b'\x01{"connectionHello":[{"phase":"pending"},{"prolongationRequest":true}]}')
    assert sent(c)[-1] == HELLO_READY
    c.now = 50000
    c.tick(100000)  # the timer restarted at the prolongation (now was 0 when delivered)
    c2, _ = new()
    deliver(c2, M.CMI)
    c2.now = 50000
    deliver(c2, b'\x01{"connectionHello":[{"phase":"pending"},{"prolongationRequest":true}]}')
    c2.tick(100000)
    assert not closes(c2)
    c2.tick(110000)
    assert closes(c2)


def case_ready_side_ignores_plain_pending():
    c, sp = new()
    deliver(c, M.CMI)
    deliver(c, HELLO_PENDING)
    assert c.state == C.HELLO and not closes(c)
    assert c.peer_pending


def case_hello_timeout_when_peer_never_ready():
    c, sp = new()
    deliver(c, M.CMI)
    c.tick(60000)
    assert sent(c)[-1] == M.HELLO_ABORTED
    assert closes(c)[0][1] == C.CLOSE_NORMAL


def case_peer_aborts_hello():
    c, sp = new()
    deliver(c, M.CMI)
    deliver(c, M.HELLO_ABORTED)
    assert closes(c)


def case_cmi_wrong_type_and_head():
    for bad in (b"\x01\x00", b"\x00\x01", b"\x00", b"\x00\x00\x00", HELLO_READY):
        c, sp = new()
        deliver(c, bad)
        assert closes(c), bad
        assert M.CMI not in sent(c)


def case_cmi_timeout():
    c, sp = new()
    c.tick(9999)
    assert not closes(c)
    c.tick(10000)
    assert closes(c)


def case_protocol_timeout_error_1():
    c, sp = new()
    deliver(c, M.CMI)
    deliver(c, HELLO_READY)
    c.tick(10000)
    assert sent(c)[-1] == b'\x01{"messageProtocolHandshakeError":[{"error":1}]}'
    assert closes(c)


def case_protocol_unexpected_error_2():
    c, sp = new()
    deliver(c, M.CMI)
    deliver(c, HELLO_READY)
    deliver(c, PIN)
    assert sent(c)[-1] == b'\x01{"messageProtocolHandshakeError":[{"error":2}]}'
    assert closes(c)


def case_protocol_mismatch_error_3():
    c, sp = new(server=False)
    deliver(c, M.CMI)
    deliver(c, HELLO_READY)
    deliver(c, SELECT.replace(b'"JSON-UTF8"', b'"JSON-UTF16"'))
    assert sent(c)[-1] == b'\x01{"messageProtocolHandshakeError":[{"error":3}]}'
    assert closes(c)


def case_peer_handshake_error_flat_form():
    c, sp = new(server=False)
    deliver(c, M.CMI)
    deliver(c, HELLO_READY)
    deliver(c, b'\x01{"error":2}')
    assert closes(c)
    assert b"Error" not in sent(c)[-1]


def case_pin_required_closes():
    c, sp = new()
    for m in (M.CMI, HELLO_READY, ANNOUNCE, SELECT):
        deliver(c, m)
    deliver(c, b'\x01{"connectionPinState":[{"pinState":"required"}]}')
    assert closes(c)
    assert AMR not in sent(c)


def case_whitespace_and_trailing_nul_accepted():
    c, sp = new()
    deliver(c, M.CMI)
    deliver(c, b'\x01{ "connectionHello" : [ {"phase" : "ready"} , {"waiting":60000} ] }\x00')
    assert c.state == C.PROTO, c.out


def case_data_streamed_in_chunks():
    c, sp = server_to_data()
    msg = M.DATA_PREFIX + DATAGRAM + M.DATA_SUFFIX
    for chunk in (0, 1, 3, 7, 64):
        deliver(c, msg, chunk)
    assert sp.msgs == [DATAGRAM] * 5
    # the strict dialect form with an array-wrapped payload is accepted as well
    deliver(c, b'\x02{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":[' + DATAGRAM + b"]}]}")
    assert sp.msgs[-1] == b"[" + DATAGRAM + b"]"


def case_data_before_access_methods_answer():
    # SHIP-IG-02: data flows once our accessMethodsRequest is out, before the peer's answer
    c, sp = new()
    for m in (M.CMI, HELLO_READY, ANNOUNCE, SELECT, PIN):
        deliver(c, m)
    deliver(c, M.DATA_PREFIX + DATAGRAM + M.DATA_SUFFIX)
    assert sp.msgs == [DATAGRAM]
    deliver(c, AMR)
    assert sent(c)[-1] == AM_OURS
    deliver(c, AM_PEER)
    assert c.peer_id and not closes(c)


def case_access_methods_timeout():
    c, sp = new()
    for m in (M.CMI, HELLO_READY, ANNOUNCE, SELECT, PIN):
        deliver(c, m)
    c.tick(10000)
    assert closes(c)


def case_access_methods_id_change_refused():
    c, sp = server_to_data()
    deliver(c, b'\x01{"accessMethods":[{"id":"other"}]}')
    assert closes(c)


def case_dns_as_string_accepted():
    c, sp = new()
    for m in (M.CMI, HELLO_READY, ANNOUNCE, SELECT, PIN):
        deliver(c, m)
    deliver(c, b'\x01{"accessMethods":[{"id":"SMA-HEM"},{"dns":"sma.local"}]}')
    assert c.peer_id == "SMA-HEM" and not closes(c)


def case_malformed_data_dropped_connection_stays():
    c, sp = server_to_data()
    for bad in (
        b'\x02{"data":[{"header":[{"protocolId":"ee2.0"}]},{"payload":{"datagram":[]}}]}',
        b'\x02{"data":[{"header":[{"protocolId":"ee1.0"}]}]}',
        b'\x02{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[',
        b'\x02{"data":[{"payload":7}]}',
        b"\x02]]]]",
        b"\x02" + b"[" * 40,
    ):
        deliver(c, bad)
        assert not closes(c), bad
    assert c.stats_dropped == 6
    deliver(c, M.DATA_PREFIX + DATAGRAM + M.DATA_SUFFIX)
    assert sp.msgs[-1] == DATAGRAM


def case_data_before_handshake_rejected():
    c, sp = new()
    deliver(c, M.CMI)
    deliver(c, M.DATA_PREFIX + DATAGRAM + M.DATA_SUFFIX)
    assert closes(c)
    assert not sp.msgs


def case_unknown_type_discarded_in_data():
    c, sp = server_to_data()
    deliver(c, b"\x07hello")
    assert not closes(c)


def case_message_without_value():
    c, sp = server_to_data()
    deliver(c, b"\x01")
    assert closes(c)


def case_peer_announces_close():
    c, sp = server_to_data()
    deliver(c, b'\x03{"connectionClose":[{"phase":"announce"},{"maxTime":500},{"reason":"unspecific"}]}')
    assert sent(c)[-1] == M.CLOSE_CONFIRM
    c.tick(499)
    assert not closes(c)
    c.tick(500)
    assert closes(c)[0][1] == C.CLOSE_NORMAL


def case_we_announce_close():
    c, sp = server_to_data()
    c.close(1000, "removedConnection", C.CLOSE_USER)
    assert sent(c)[-1] == (b'\x03{"connectionClose":[{"phase":"announce"},{"maxTime":500},'
                           b'{"reason":"removedConnection"}]}')
    deliver(c, M.CLOSE_CONFIRM)
    assert closes(c)[0][1] == C.CLOSE_USER


def case_we_announce_close_peer_silent():
    c, sp = server_to_data()
    c.close(1000)
    c.tick(1499)
    assert not closes(c)
    c.tick(1500)
    assert closes(c)


def case_control_message_too_long():
    c, sp = new()
    deliver(c, M.CMI)
    deliver(c, b'\x01{"connectionHello":[{"phase":"' + b"x" * 2000 + b'"}]}')
    assert closes(c)


def case_garbage_json_in_hello():
    for bad in (b"\x01{", b"\x01[]", b"\x01{}", b'\x01{"a":1,"b":2}', b'\x01{"connectionHello":5}',
                b'\x01{"connectionHello":[{"phase":"ready"},{"waiting":-1}]}', b"\x01\xff\xfe"):
        c, sp = new()
        deliver(c, M.CMI)
        deliver(c, bad)
        assert closes(c), bad
