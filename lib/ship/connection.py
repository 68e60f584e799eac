# The SHIP connection state machine (ship.md sections 6-8), sans-IO: it is fed whole control
# messages and streamed data messages, told the time, and answers with actions the adapter
# carries out (send bytes, close the WebSocket with a code). No sockets, no clock, no asyncio.
from compat import const, ticks_diff, ticks_add
from ship import messages as M
from ship import datamsg
from ship import pin as P

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

# states
CMI = const(0)
HELLO = const(1)
PROTO = const(2)  # protocol handshake
PIN = const(3)
DATA = const(4)  # access methods exchanged or under way; SPINE flows
CLOSING = const(5)  # connectionClose announced or confirmed
CLOSED = const(6)

STATE_NAMES = ("cmi", "hello", "protocol", "pin", "data", "closing", "closed")

# hello sub-states of our own side
_H_READY = const(0)
_H_PENDING = const(1)

# protocol handshake sub-states
_P_WAIT_ANNOUNCE = const(0)  # server
_P_WAIT_CONFIRM = const(1)  # server
_P_WAIT_SELECT = const(2)  # client

# WebSocket close codes (ship.md 8.2)
CLOSE_NORMAL = const(4001)
CLOSE_REJECTED = const(4452)
CLOSE_USER = const(4500)

_CTRL_CAP = const(1024)  # a control message must be shorter (the WebSocket rx part's size)
_UNKNOWN_NAME = const(40)  # how much of an unknown message's name is kept for the log

# `waiting` is an unsigned 32-bit number of milliseconds in the SHIP schema: a larger one is a
# protocol error. A legal value reaches ticks arithmetic only up to _WAIT_CAP: ticks_add
# takes less than half the ticks period (2**29 ms on the ESP32), and a peer that waits
# longer than our own hello timer needs no prolongation anyway.
_WAIT_MAX = const(0xFFFFFFFF)
_WAIT_CAP = const(3600000)


class Timers:
    # Defaults are the SHIP values; tests shorten them.
    # idle/pong: liveness after the handshake, as ship-go does (ping after 50 s of silence,
    # drop when nothing comes back within another 10 s)
    # send: the write deadline of the WebSocket (ship-go's write wait); a peer that does not
    # take our bytes within it is dropped
    def __init__(self, cmi=10000, hello=60000, prolong_threshold=30000, prolong_min=1000, close=500, idle=50000,
                 pong=10000, send=10000):
        self.send = send
        self.idle = idle
        self.pong = pong
        self.cmi = cmi
        self.hello = hello
        self.prolong_threshold = prolong_threshold
        self.prolong_min = prolong_min
        self.close = close


class Gather:
    # A control message gathered by copy into a buffer of its own, for the core on its own (as
    # in tests). The node has the WebSocket keep it in its rx part instead (ws.stream keep()),
    # through the same interface: keep_reset(); keep(buf, off, n), False once the message
    # would not be shorter than the buffer; the message in buf[kept_at:kept_end].
    def __init__(self, size=_CTRL_CAP):
        self.buf = bytearray(size)
        self.kept_at = 0
        self.kept_end = 0

    def keep_reset(self):
        self.kept_end = 0

    def keep(self, buf, off, n):
        e = self.kept_end
        if e + n >= len(self.buf):
            return False
        # through a view: a slice of the bytearray would copy up to 1 KB on the heap
        self.buf[e : e + n] = memoryview(buf)[off : off + n]
        self.kept_end = e + n
        return True


class ShipConnection:
    """One SHIP connection.

    server: True when we were dialed.
    ship_id: our SHIP ID (sent in accessMethods).
    trusted: whether the peer's SKI is trusted; an untrusted peer is held in hello
    `pending` until approve() or deny() or the hello timer.
    spine: receives spine_begin(), spine_data(buf, off, n), spine_end() for each datagram,
    and spine_abort(reason) when a data message turns out malformed midway.
    Actions accumulate in .out: ("send", bytes), ("close", code, reason), ("pending",) when
    an untrusted peer waits for approval, ("ready",) when SPINE may flow, ("pin_wait",) when an
    untrusted peer is asked for our PIN, ("pin_ok",) when it typed it (the adapter trusts it),
    ("pin_wrong", locked) after a wrong PIN, ("unknown", name) for an ignored control message.
    The adapter drains the list after every call and sets .now (ticks_ms) before feeding
    WebSocket data.
    pin: a ship.pin.PinPolicy (None: announce none, as SHIP 1.0 nodes without PIN do);
    peer_pin: the PIN we type when the peer asks for one (client role, ship.cem.pin).
    ctrl: what control messages are gathered in (the interface of Gather: the node passes its
    WebSocket adapter, which keeps them in its rx part); None: a Gather of their own.
    """

    # Set on the instance only when they change (rarely, or at the end): a connection's table
    # has 23 entries in 23 slots once closed (184 B 32-bit; 26 in 29 slots, 232 B, before).
    peer_pending = False  # the peer answered hello with pending (client back-off)
    close_reason = ""
    stats_dropped = 0  # data messages dropped as malformed
    unknown_ctrl = 0  # control messages of unknown name, ignored (SHIP 1.1 and later)
    _peer_pin = None
    # an untrusted peer let through hello to type our PIN: until it has, it stays untrusted
    awaiting_pin = False
    _pin_local = True  # our PIN requirement is met (or there is none)
    _pin_peer = False  # the peer's is: it announced none/optional, or said pinOk
    _pin_sent = False

    def __init__(self, server, ship_id, trusted, spine, now, timers=None, pin=None, peer_pin=None,
                 ctrl=None):
        self.server = server
        self.state = CMI
        self.out = []
        self.peer_id = None
        self.close_code = 0
        self._t = timers or Timers()  # the node passes its own; None: the SHIP values
        self._spine = spine
        self._my_id = ship_id
        self._trusted = trusted
        self._ctrl = Gather() if ctrl is None else ctrl
        self._mtype = -1
        self._skip = False
        self._scan = datamsg.DataScanner(spine)
        self._deadline = None
        self._prolong_at = None
        self._hello = _H_READY
        self._peer_ready = False
        self._sub = 0
        self._got_access = False
        self._pin = pin
        if peer_pin is not None:
            self._peer_pin = peer_pin
        self.now = now

    # ---- inputs -------------------------------------------------------------------------

    def start(self, now):
        self.now = now
        if not self.server:
            self._send(M.CMI)
        self._arm(now, self._t.cmi)

    def approve(self, now):
        """The user trusted the pending peer."""
        if self.state == HELLO and self._hello == _H_PENDING:
            self._trusted = True
            self._hello = _H_READY
            self._prolong_at = None
            self._send(M.hello(b"ready", self._t.hello))
            self._arm(now, self._t.hello)
            if self._peer_ready:
                self._hello_done(now)
        elif self.awaiting_pin:
            # trusted by the user (console, button, host tool) while the PIN was awaited
            self._trusted = True
            self.awaiting_pin = False
            if self.state == PIN and not self._pin_local:
                self._pin_local = True
                self._send(M.PIN_OK)
                self._pin_check_done(now)

    def deny(self, now, why="trust denied"):
        if (self.state == HELLO or self.awaiting_pin) and not self._trusted:
            self._reject(why)

    def close(self, now, reason="unspecific", code=CLOSE_NORMAL):
        """Close on our initiative: announce in data exchange, plain WebSocket close before."""
        if self.state == DATA:
            self._send(M.close_announce(self._t.close, reason))
            self.state = CLOSING
            self.close_code = code
            self._arm(now, self._t.close)
        elif self.state < DATA:
            self._fail(code, "closed locally")

    def abort(self, code, why):
        """End now, without the SHIP close handshake (an unresponsive peer)."""
        self._fail(code, why)

    def ws_closed(self, code):
        if self.state != CLOSED:
            self.state = CLOSED
            if not self.close_code:
                self.close_code = code
                self.close_reason = "peer closed"

    def tick(self, now):
        self.now = now
        if self.state == CLOSED:
            return
        if self._prolong_at is not None and ticks_diff(now, self._prolong_at) >= 0:
            self._prolong_at = None
            self._send(M.HELLO_PROLONG)
        if self._deadline is None or ticks_diff(now, self._deadline) < 0:
            return
        self._deadline = None
        st = self.state
        if st == HELLO:
            if self._trusted:
                self._send(M.HELLO_ABORTED)
                self._fail(CLOSE_NORMAL, "hello timeout: peer never ready")
            else:
                self._reject("hello timeout: not trusted")
        elif st == PROTO:
            self._send(M.proto_error(M.ERR_TIMEOUT))
            self._fail(CLOSE_NORMAL, "protocol handshake timeout")
        elif st == CLOSING:
            self._fail(self.close_code or CLOSE_NORMAL, "closed")
        elif st == DATA:
            self._fail(CLOSE_NORMAL, "no accessMethods from peer")
        elif st == PIN and not self._pin_local:
            self._reject("PIN not entered in time")
        else:
            self._fail(CLOSE_NORMAL, "%s timeout" % STATE_NAMES[st])

    def ms_to_deadline(self, now):
        """Milliseconds until tick() has something to do, or None."""
        best = None
        for t in (self._deadline, self._prolong_at):
            if t is not None:
                d = ticks_diff(t, now)
                if best is None or d < best:
                    best = d
        return None if best is None else max(0, best)

    # WebSocket message sink: one message arrives as ws_begin, ws_data..., ws_end.

    def ws_begin(self):
        self._mtype = -1
        self._ctrl.keep_reset()
        self._skip = False

    def ws_data(self, buf, off, n):
        if self._skip or n <= 0 or self.state == CLOSED:
            return
        if self._mtype < 0:
            self._mtype = buf[off]
            off += 1
            n -= 1
            if self._mtype == M.TYPE_DATA:
                if self.state != DATA and self.state != CLOSING:
                    self._unexpected("data before the handshake completed")
                    self._skip = True
                    return
                self._scan.reset()
            if n == 0:
                return
        if self._mtype == M.TYPE_DATA:
            try:
                self._scan.feed(buf, off, n)
            except datamsg.DataError as e:
                self._drop_data(e)
            return
        if not self._ctrl.keep(buf, off, n):
            self._skip = True
            self._ctrl.keep_reset()
            self._fail(CLOSE_NORMAL, "control message too long")

    def ws_end(self):
        now = self.now
        g = self._ctrl
        if self._skip or self.state == CLOSED:
            g.keep_reset()
            return
        t = self._mtype
        if t == M.TYPE_DATA:
            try:
                self._scan.finish()
            except datamsg.DataError as e:
                self._drop_data(e)
            return
        # read where it was gathered (the WebSocket's rx part: valid until the next read), then
        # let go of it
        at = g.kept_at
        n = g.kept_end - at
        msg = None
        if n and (t == M.TYPE_CONTROL or t == M.TYPE_END):
            msg = M.parse_control(g.buf, at, n)
        cmi = n == 1 and g.buf[at] == 0
        g.keep_reset()
        if t < 0 or (n == 0 and t != M.TYPE_INIT):
            # SHIP-TS-MSG-01: a message is a type byte plus at least one octet
            self._unexpected("message without value")
            return
        if t == M.TYPE_INIT:
            self._on_cmi(now, cmi)
        elif t == M.TYPE_CONTROL or t == M.TYPE_END:
            if msg is None:
                self._unexpected("malformed control message")
            elif t == M.TYPE_END:
                self._on_end(msg[0], msg[1], now)
            else:
                self._on_control(msg[0], msg[1], now)
        elif self.state != DATA:
            self._unexpected("unknown message type %d" % t)
        # SHIP-TS-MSG-02: an unknown type in data exchange is discarded

    # ---- state handlers -----------------------------------------------------------------

    def _on_cmi(self, now, valid):
        # valid: the message's value is the one octet 0
        if self.state != CMI or not valid:
            self._fail(CLOSE_NORMAL, "invalid CMI")
            return
        if self.server:
            self._send(M.CMI)
        self.state = HELLO
        if self._trusted or (self._pin is not None and self._pin.wants_pin(False)):
            # a peer that is to type our PIN passes hello; it stays untrusted until it has
            self.awaiting_pin = not self._trusted
            self._hello = _H_READY
            self._send(M.hello(b"ready", self._t.hello))
        else:
            self._hello = _H_PENDING
            self._send(M.hello(b"pending", self._t.hello))
            self.out.append(("pending",))
        self._arm(now, self._t.hello)

    def _on_control(self, name, f, now):
        st = self.state
        if st == HELLO and name == "connectionHello":
            self._on_hello(f, now)
        elif st == PROTO:
            self._on_proto(name, f, now)
        elif st == PIN and name == "connectionPinState":
            self._on_pin_state(f, now)
        elif st == PIN and name == "connectionPinInput":
            self._on_pin_input(f, now)
        elif st == PIN and name == "connectionPinError":
            e = f.get("error")  # the peer's value, bounded for the log line
            self._fail(CLOSE_NORMAL, "peer rejected our PIN (error %.20s)" % (e if isinstance(e, str) else repr(e),))
        elif st in (DATA, CLOSING) and name == "accessMethodsRequest":
            self._send(M.access_methods(self._my_id))
        elif st in (DATA, CLOSING) and name == "accessMethods":
            pid = f.get("id")
            if not isinstance(pid, str) or not pid:
                self._fail(CLOSE_NORMAL, "accessMethods without id")
                return
            if self.peer_id is not None and self.peer_id != pid:
                self._fail(CLOSE_NORMAL, "SHIP id changed")
                return
            self.peer_id = pid
            if not self._got_access:
                self._got_access = True
                if self.state == DATA:
                    self._deadline = None
        elif st == HELLO and name == "messageProtocolHandshakeError":
            self._fail(CLOSE_NORMAL, "peer sent handshake error")
        elif st >= PIN and name not in M.KNOWN_CONTROL:
            # a message of a later SHIP version (1.1 commissioning, key material) or a vendor's:
            # ignored and counted, never a reason to end the connection
            self.unknown_ctrl += 1
            self.out.append(("unknown", name[:_UNKNOWN_NAME]))
        else:
            self._unexpected("unexpected %s in %s" % (name, STATE_NAMES[st]))

    # ---- PIN verification (IEC 63380-3 6.9.6; ship.md 6.4) --------------------------------

    def _pin_begin(self, now):
        # once per connection (the protocol handshake's end): _pin_peer and _pin_sent are
        # still False, _pin_local True (the class's)
        self.state = PIN
        if self.awaiting_pin and not self._trusted:
            self._pin_local = False
            pol = self._pin
            busy = pol.guard.locked(now)
            self._send(M.pin_state(pol.mode.encode(), b"busy" if busy else b"ok"))
            self.out.append(("pin_wait",))
            # the user types the PIN at the peer: as long as a pending hello may last
            self._arm(now, self._t.hello)
        else:
            self._send(M.PIN_NONE)
            self._arm(now, self._t.cmi)

    def _on_pin_state(self, f, now):
        ps = f.get("pinState")
        if ps == "none":
            self._pin_peer = True
        elif ps == "pinOk":
            if not self._pin_sent:
                self._unexpected("pinOk without a PIN from us")
                return
            self._pin_peer = True
        elif ps == "required" or ps == "optional":
            if self._pin_sent:
                return  # a repeated state while our PIN is being checked
            if self._peer_pin is None:
                if ps == "required":
                    self._fail(CLOSE_NORMAL, "peer requires a PIN (none configured: ship.cem.pin)")
                    return
                self._pin_peer = True  # optional: we go on without one
            elif f.get("inputPermission") != "busy":
                self._pin_sent = True
                self._send(M.pin_input(self._peer_pin))
            # busy: the peer locked PIN input; it announces ok again, or the timer ends it
        else:
            self._unexpected("bad pinState")
            return
        self._pin_check_done(now)

    def _on_pin_input(self, f, now):
        if self._pin_local:
            self._unexpected("PIN input not asked for")
            return
        pol = self._pin
        r = pol.guard.check(pol.secret, f.get("pin"), now)
        if r == P.PIN_OK:
            self._pin_local = True
            self._trusted = True
            self.awaiting_pin = False
            self._send(M.PIN_OK)
            self.out.append(("pin_ok",))
            self._pin_check_done(now)
            return
        self._send(M.pin_error(P.ERR_WRONG))
        locked = pol.guard.locked(now)
        self.out.append(("pin_wrong", locked))
        if r == P.PIN_LOCKED:
            self._reject("PIN input locked (back-off)")
        elif locked:
            self._reject("too many wrong PINs")

    def _pin_check_done(self, now):
        # both sides' PIN checks done: data exchange
        if self._pin_local and self._pin_peer and self.state == PIN:
            self.state = DATA
            self._send(M.ACCESS_REQUEST)
            # data may flow from here on (SHIP-IG-02/03); the peer's accessMethods is awaited
            # in parallel within the CMI timeout
            self._arm(now, self._t.cmi)
            self.out.append(("ready",))

    def _on_hello(self, f, now):
        phase = f.get("phase")
        waiting = f.get("waiting")
        # (true/false pass as 1/0 ms, which are below prolong_min: aborted too)
        if waiting is not None and (not isinstance(waiting, int) or waiting < 0 or waiting > _WAIT_MAX):
            self._unexpected("bad waiting")
            return
        if phase == "aborted":
            self._fail(CLOSE_NORMAL, "peer aborted the hello")
            return
        if phase == "ready":
            if self._hello == _H_PENDING:
                # ship-go aborts a peer that says ready without waiting while it is pending
                if waiting is None:
                    self._unexpected("ready without waiting")
                    return
                self._schedule_prolong(now, waiting)
            self._peer_ready = True
            if self._hello == _H_READY:
                self._hello_done(now)
        elif phase == "pending":
            self.peer_pending = True
            if f.get("prolongationRequest") is True:
                if self._hello == _H_READY:
                    self._arm(now, self._t.hello)
                    self._send(M.hello(b"ready", self._t.hello))
                else:
                    self._send(M.hello(b"pending", self._t.hello))
            elif self._hello == _H_PENDING and waiting is not None:
                self._schedule_prolong(now, waiting)
            # SHIP-TS-HELLO-04: a ready side ignores pending without prolongationRequest
        else:
            self._unexpected("bad hello phase")

    def _schedule_prolong(self, now, waiting):
        if waiting > _WAIT_CAP:
            waiting = _WAIT_CAP
        if waiting < self._t.prolong_min:
            self._send(M.HELLO_ABORTED)
            self._fail(CLOSE_NORMAL, "peer waiting time too short")
            return
        # ask for more time before the peer gives up, if our own wait lasts longer than its
        delay = waiting - self._t.prolong_threshold
        if delay < waiting // 2:
            delay = waiting // 2
        at = ticks_add(now, delay)
        if self._deadline is not None and ticks_diff(self._deadline, ticks_add(now, waiting)) > 0:
            self._prolong_at = at
        else:
            self._prolong_at = None

    def _hello_done(self, now):
        self.state = PROTO
        self._prolong_at = None
        if self.server:
            self._sub = _P_WAIT_ANNOUNCE
        else:
            self._sub = _P_WAIT_SELECT
            self._send(M.PROTO_ANNOUNCE)
        self._arm(now, self._t.cmi)

    def _on_proto(self, name, f, now):
        if name == "messageProtocolHandshakeError":
            self._fail(CLOSE_NORMAL, "peer sent handshake error %s" % f.get("error"))
            return
        if name != "messageProtocolHandshake":
            self._unexpected("unexpected %s in protocol handshake" % name)
            return
        kind = f.get("handshakeType")
        sub = self._sub
        if sub == _P_WAIT_ANNOUNCE:
            if kind != "announceMax":
                self._unexpected("expected announceMax")
            elif not _offers_v1_json(f, False):
                self._mismatch()
            else:
                self._send(M.PROTO_SELECT)
                self._sub = _P_WAIT_CONFIRM
                self._arm(now, self._t.cmi)
        else:
            if kind != "select":
                self._unexpected("expected select")
            elif not _offers_v1_json(f, True):
                self._mismatch()
            else:
                if sub == _P_WAIT_SELECT:
                    self._send(M.PROTO_SELECT)
                self._pin_begin(now)

    def _on_end(self, name, f, now):
        if name != "connectionClose":
            self._unexpected("unexpected end message")
            return
        phase = f.get("phase")
        if phase == "announce":
            self._send(M.CLOSE_CONFIRM)
            self.state = CLOSING
            self.close_code = CLOSE_NORMAL
            self.close_reason = "peer announced close"
            # give the peer the time it asked for to close first
            mt = f.get("maxTime")
            wait = mt if isinstance(mt, int) and 0 <= mt <= 10000 else self._t.close
            self._arm(now, wait)
        elif phase == "confirm" and self.state == CLOSING:
            self._fail(self.close_code or CLOSE_NORMAL, "close confirmed")
        else:
            self._unexpected("unexpected connectionClose")

    # ---- helpers ------------------------------------------------------------------------

    def _drop_data(self, err):
        # a broken data message is dropped; the connection stays (ship.md 12.4)
        self.stats_dropped += 1
        self._skip = True
        self._spine.spine_abort(str(err))

    def _mismatch(self):
        self._send(M.proto_error(M.ERR_MISMATCH))
        self._fail(CLOSE_NORMAL, "protocol selection mismatch")

    def _unexpected(self, why):
        st = self.state
        if st == PROTO:
            self._send(M.proto_error(M.ERR_UNEXPECTED))
        elif st == HELLO:
            self._send(M.HELLO_ABORTED)
        self._fail(CLOSE_NORMAL, why)

    def _reject(self, why):
        if self.state == HELLO:
            self._send(M.HELLO_ABORTED)
        # past hello (an untrusted peer in the PIN phase): the WebSocket close 4452 says it
        self._fail(CLOSE_REJECTED, why)

    def _fail(self, code, why):
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self._deadline = None
        self._prolong_at = None
        self.close_code = code
        if not self.close_reason:
            self.close_reason = why
        self.out.append(("close", code, why))

    def _send(self, data):
        self.out.append(("send", data))

    def _arm(self, now, ms):
        self._deadline = ticks_add(now, ms)


def _offers_v1_json(f, exact):
    v = M.fields(f.get("version"))
    fm = M.fields(f.get("formats"))
    if v is None or fm is None:
        return False
    fmts = fm.get("format")
    if not isinstance(fmts, list) or "JSON-UTF8" not in fmts:
        return False
    major = v.get("major")
    minor = v.get("minor")
    if not isinstance(major, int) or not isinstance(minor, int):
        return False
    if exact:
        # a select names exactly version 1.0 and the one format
        return major == 1 and minor == 0 and len(fmts) == 1
    # announceMax: the peer's highest version. We speak 1.0, so 1.0 is the highest version both
    # support whenever the peer's is 1.0 or later (a SHIP 1.1 peer is answered with select 1.0,
    # as IEC 63380-3 has the server select the highest common version)
    return major >= 1
