"""Async SHIP peer ("test CEM") for CPython: the SHIP state machine (CMI, hello with pending/trust and
prolongation, protocol handshake, PIN, access methods, connectionClose) and the inbox of received messages.

Independent implementation for testing the gateway firmware: nothing from the firmware's lib/ is used.
TLS and WebSocket are the ``WsPeer`` base (ws.py), the messages shipmsg.py, the server role shipserver.py.

Client role::

    ident = Identity.generate()
    peer = ShipPeer(ident, ship_id="TestCEM-1")
    await peer.dial("127.0.0.1", 4712, expected_ski=gw_ski)      # connect + upgrade + handshake
    # or step by step, each optional:
    await peer.connect(host, port, expected_ski=...)              # TLS only, SKI checked before upgrade
    await peer.upgrade()                                          # WebSocket upgrade, subprotocol "ship"
    await peer.cmi(); await peer.hello(); await peer.protocol_handshake(); await peer.pin()
    await peer.access_methods()
    await peer.send_datagram({"datagram": {...}})
    msg = await peer.recv_datagram(timeout=5)
    await peer.close()                                            # connectionClose announce/confirm, WS 4001

Server role (shipserver.py)::

    async with ShipServer(ident, trusted={cem_ski}, hello_timeout=1.0) as srv:   # 127.0.0.1, port 0
        port = srv.port
        peer = await srv.accept(timeout=10)          # a ShipPeer after a completed handshake

Every wait is bounded (``timeout`` arguments, defaults on the peer). Failures raise ``ShipError`` with
``close_code`` (the WebSocket close code received from the peer, e.g. 4452 for trust denied).
"""

import asyncio
import collections
import time

from .shipmsg import (CLOSE_NORMAL, CLOSE_REJECTED, CMI, CMI_TIMEOUT, HELLO_PROLONG_MIN_MS, TYPE_CONTROL,
                      TYPE_INIT, ShipError, ShipMessage, access_methods_msg, access_methods_request_msg,
                      connection_close_msg, data_message, encode, hello_msg, pin_state_msg, pin_input_msg,
                      pin_error_msg,
                      protocol_handshake_error_msg, protocol_handshake_msg)
from .ws import WsPeer, _Closed

__all__ = ["ShipPeer"]


class ShipPeer(WsPeer):
    """One SHIP connection, client or server role.

    Parameters (all keyword except ``identity``):
      identity       our Identity (certificate + key); None = no client certificate (negative tests)
      ship_id        our SHIP ID sent in accessMethods
      role           "client" (we dial) or "server" (created by ShipServer)
      timeout        default bound for every wait in seconds (CMI, protocol handshake, PIN, access methods)
      hello_timeout  our Wait-For-Ready / pending timer in seconds (ship-go: 60)
      waiting        ``waiting`` value we send in hello (ms); default hello_timeout*1000
      hello_phase    "ready" | "pending" | "abort" (aborted + 4452 at once) | "pending-abort" (pending,
                     then aborted + 4452); default: client "ready", server from trust + untrusted policy
      prolong        send prolongationRequest while pending (True)
      prolong_margin seconds before the peer's waiting expires at which we ask (ship-go: 30); never
                     earlier than half the peer's waiting time
      max_size       largest incoming WebSocket message (bytes)
      ping_interval  seconds between our WebSocket pings (None = no pings)
      ping_timeout   drop the connection when no pong arrived this long after a ping (None = never)
      auto_answer    answer accessMethodsRequest and connectionClose announce automatically
      auto_pong      answer WebSocket pings (False: ignore them, to test a peer's pong timeout)
      expected_ship_id  compare with the peer's accessMethods id
      access_answer_delay  seconds to wait before answering an accessMethodsRequest (TC_SHIP_AMDATA tests)
      log            callable(direction, ShipMessage | str) for every message and event
      pin            the PIN we type when the peer announces pinState required/optional
      pin_on_busy    type it even when the peer says inputPermission busy (tests the lock)
      require_pin    server/client: the PIN we require from the peer (pinState required)
      ship_version   (major, minor) we announce as client in announceMax; (1, 1) plays a
                     SHIP 1.1 node, which accepts a select of 1.0
    """

    def __init__(self, identity, *, ship_id="TestCEM-000000001", role="client", timeout=CMI_TIMEOUT,
                 hello_timeout=60.0, waiting=None, hello_phase=None, prolong=True, prolong_margin=30.0,
                 max_size=4 * 1024 * 1024, ping_interval=None, ping_timeout=None, auto_answer=True,
                 expected_ship_id=None, log=None, access_answer_delay=0.0, auto_pong=True,
                 pin=None, pin_on_busy=False, require_pin=None, ship_version=(1, 0)):
        if role not in ("client", "server"):
            raise ValueError("role must be client or server")
        self.identity = identity
        self.ship_id = ship_id
        self.role = role
        self.timeout = timeout
        self.hello_timeout = hello_timeout
        self.waiting = int(hello_timeout * 1000) if waiting is None else int(waiting)
        self.hello_phase = hello_phase
        self.prolong = prolong
        self.prolong_margin = prolong_margin
        self.max_size = max_size
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.auto_answer = auto_answer
        self.auto_pong = auto_pong
        self.access_answer_delay = access_answer_delay
        self.expected_ship_id = expected_ship_id
        self.log = log
        self.pin_value = pin
        self.pin_on_busy = pin_on_busy
        self.require_pin = require_pin
        self.ship_version = tuple(ship_version)
        self.peer_pin_states = []      # plain bodies of every connectionPinState received
        self.pin_errors = []           # error values of connectionPinError received

        self.reader = None
        self.writer = None
        self.ws = None                 # websockets sans-I/O protocol (ClientProtocol / ServerProtocol)
        self.host = None
        self.port = None
        self.peer_cert_der = None
        self.peer_ski = None           # recomputed from the public key
        self.peer_ski_extension = None
        self.peer_ship_id = None
        self.tls_version = None
        self.cipher = None
        self.upgrade_request = None    # websockets Request (server role: what the peer sent)
        self.upgrade_response = None   # websockets Response
        self.subprotocol = None
        self.steps = []                # completed steps, in order
        self.phase = "init"
        self.transcript = []           # (direction "send"/"recv", bytes) per SHIP message
        self.ws_events = []            # (direction, opcode name, fin, length) per WebSocket frame
        self.pongs = []                # payloads of received pongs
        self.pings = []                # payloads of received pings
        self.close_code = None         # close frame received from the peer
        self.close_reason = None
        self.close_sent = None         # (code, reason) we sent
        self.conn_error = None
        self.handshake_error = None
        self.peer_hellos = []          # plain bodies of every connectionHello received
        self.access_requests_answered = 0

        self._inbox = collections.deque()
        self._deferred = collections.deque()
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()
        self._http_event = asyncio.Event()
        self._pump_task = None
        self._ping_task = None
        self._aux_tasks = set()
        self._frag = None
        self._eof_written = False
        self._trust_granted = False
        self._trust_denied = False
        self._auto_access = False
        self._last_pong = None
        self._is_trusted = None        # server role: callable() -> bool
        self.untrusted_policy = "pending"

    def __repr__(self):
        return "ShipPeer(%s %s:%s, phase=%s, peer_ski=%s)" % (self.role, self.host, self.port, self.phase,
                                                             self.peer_ski)

    @property
    def handshake_complete(self):
        return "access" in self.steps

    def _deliver(self, raw, text_frame):
        msg = ShipMessage(raw, text_frame)
        self.transcript.append(("recv", raw))
        self._emit("recv", msg)
        if self.auto_answer:
            if msg.name == "accessMethodsRequest" and self._auto_access:
                if self.access_answer_delay:
                    self._spawn(self._delayed_access_answer(self.access_answer_delay))
                else:
                    self._answer_access()
            elif msg.name == "connectionClose" and msg.get("phase") == "announce" and self._open():
                self._send_now(encode(connection_close_msg("confirm")))
                self.phase = "closing"
                max_time = msg.get("maxTime")
                self._spawn(self._close_after((max_time if isinstance(max_time, int) else 500) / 1000.0))
        self._inbox.append(msg)
        self._wakeup.set()

    def _answer_access(self):
        if self._open():
            self._send_now(encode(access_methods_msg(self.ship_id)))
            self.access_requests_answered += 1

    async def _delayed_access_answer(self, delay):
        await asyncio.sleep(delay)
        self._answer_access()

    async def _close_after(self, delay):
        try:
            await asyncio.wait_for(self._closed.wait(), delay + 0.1)
        except asyncio.TimeoutError:
            await self.abort(CLOSE_NORMAL, "close")

    async def send_message(self, msg, msg_type=None):
        """Send a message object (dialect or plain, outer braces kept), e.g. ``hello_msg("ready", 60000)``
        or ``{"connectionHello": {"phase": "ready", "waiting": 60000}}``."""
        await self.send_raw(encode(msg, msg_type))

    async def send_datagram(self, datagram, *, payload_wrapped=False, protocol_id="ee1.0"):
        """Send one SPINE datagram in a SHIP data message (ship-go framing, see ``data_message``).
        ``datagram``: plain ``{"datagram": {...}}``, plain body ``{"header":..,"payload":..}``, dialect
        ``{"datagram":[...]}`` or dialect JSON text. Returns the bytes sent."""
        data = data_message(datagram, protocol_id=protocol_id, payload_wrapped=payload_wrapped)
        await self.send_raw(data)
        return data

    async def _next(self, timeout, what, *, defer_data=False):
        """Next message from the inbox (data messages are put aside when ``defer_data``)."""
        t = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + t
        while True:
            while self._inbox:
                m = self._inbox[0]
                if m is _Closed:
                    raise self._closed_error(what)
                self._inbox.popleft()
                if defer_data and m.name == "data":
                    self._deferred.append(m)
                    continue
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._error("timeout (%.1f s) waiting for %s" % (t, what), timeout=True)
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def recv(self, timeout=None):
        """Next SHIP message (ShipMessage), deferred data messages first. ShipError on timeout or close."""
        if self._deferred:
            return self._deferred.popleft()
        return await self._next(timeout, "a SHIP message")

    async def recv_data(self, timeout=None, match=None):
        """Next data message (skipping control messages, which stay in ``transcript``) for which
        ``match(msg)`` is true (default: any)."""
        t = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + t
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._error("timeout (%.1f s) waiting for a data message" % t, timeout=True)
            m = await self.recv(left)
            if m.name == "data" and (match is None or match(m)):
                return m

    async def recv_datagram(self, timeout=None, match=None):
        """Like recv_data, returns the plain datagram body ``{"header":..,"payload":..}``;
        ``match(datagram)`` filters."""
        m = await self.recv_data(timeout, None if match is None else (lambda m: match(m.datagram)))
        return m.datagram

    async def expect(self, name, timeout=None):
        """Receive the next message and require its top-level name (e.g. "connectionHello")."""
        m = await self.recv(timeout)
        if m.name != name:
            raise self._error("expected %s, got %s" % (name, m.describe()[:200]))
        return m

    async def _fail(self, message, code=CLOSE_NORMAL, hello_abort=False, prot_error=None):
        """Abort the handshake: optional hello aborted / protocol handshake error, WS close, raise."""
        try:
            if hello_abort and self._open():
                await self.send_message(hello_msg("aborted"))
            if prot_error is not None and self._open():
                await self.send_message(protocol_handshake_error_msg(prot_error))
        except ShipError:
            pass
        await self.abort(code, "Node rejected by application" if code == CLOSE_REJECTED else "close")
        raise self._error(message, close_code=code, close_reason=None, local=True)

    async def cmi(self, timeout=None):
        """Connection mode initialisation. Client: send 00 00 and wait for 00 00. Server: wait for the
        client's CMI (type 0, head 0), answer 00 00."""
        self.phase = "cmi"
        if self.role == "client":
            await self.send_raw(CMI)
            m = await self._next(timeout, "the CMI answer")
        else:
            try:
                m = await self._next(timeout, "the client's CMI")
            except ShipError as e:
                if e.timeout:
                    await self.abort(CLOSE_NORMAL, "close")
                raise
        if m.type != TYPE_INIT or m.value != b"\x00":
            await self._fail("invalid CMI: %s" % m.describe()[:100])
        if self.role == "server":
            await self.send_raw(CMI)
        self._step_done("cmi")

    def grant_trust(self):
        """While our hello is pending: switch to ready (the user trusted the peer)."""
        self._trust_granted = True
        self._wakeup.set()

    def deny_trust(self):
        """While our hello is pending: abort now (aborted + close 4452)."""
        self._trust_denied = True
        self._wakeup.set()

    async def hello(self, phase=None, *, timeout=None, waiting=None):
        """Hello phase (ship.md 6.2). ``phase``: "ready" | "pending" | "abort"; default ``hello_phase`` or
        (server role) ready for a trusted SKI / the server's untrusted policy.

        Ready: send ready+waiting, ignore pending without prolongationRequest, answer prolongation
        requests with ready+waiting (restarting our timer), done on the peer's ready; our timer
        (``timeout``, default ``hello_timeout``) expiring -> aborted + close. Pending: send
        pending+waiting, ask for prolongation ``prolong_margin`` s before the peer's waiting runs out,
        switch to ready on ``grant_trust()``; timer expiry or ``deny_trust()`` -> aborted + close 4452.
        The peer's aborted -> ShipError with the close code that follows (e.g. 4452)."""
        self.phase = "hello"
        T = self.hello_timeout if timeout is None else timeout
        w = self.waiting if waiting is None else int(waiting)
        if phase is None:
            phase = self.default_hello_phase()
        if phase == "abort":
            await self._fail("peer not trusted (hello aborted)", CLOSE_REJECTED, hello_abort=True)
        if phase == "pending-abort":
            await self.send_message(hello_msg("pending", w))
            await self._fail("peer not trusted (pending, then aborted)", CLOSE_REJECTED, hello_abort=True)
        our_ready = phase == "ready"
        await self.send_message(hello_msg("ready" if our_ready else "pending", w))
        peer_ready = False
        loop_start = time.monotonic()
        deadline = loop_start + T
        prolong_at = None
        while not (our_ready and peer_ready):
            now = time.monotonic()
            if not our_ready and self._trust_denied:
                await self._fail("trust denied while pending", CLOSE_REJECTED, hello_abort=True)
            if not our_ready and self._trust_granted:
                our_ready = True
                prolong_at = None
                await self.send_message(hello_msg("ready", w))
                continue
            if self._inbox and self._inbox[0] is not _Closed:
                m = self._inbox.popleft()
                if m.name != "connectionHello":
                    await self._fail("unexpected message in hello phase: %s" % m.describe()[:200],
                                     hello_abort=True)
                body = m.body if isinstance(m.body, dict) else {}
                self.peer_hellos.append(body)
                ph = body.get("phase")
                pw = body.get("waiting")
                if ph == "ready":
                    peer_ready = True
                    if not our_ready:
                        if not isinstance(pw, int) or pw < HELLO_PROLONG_MIN_MS:
                            await self._fail("peer sent ready with waiting %r while we are pending" % (pw,),
                                             CLOSE_REJECTED, hello_abort=True)
                        prolong_at = self._prolong_time(pw)
                elif ph == "pending":
                    if body.get("prolongationRequest") is True:
                        if our_ready:
                            deadline = time.monotonic() + T
                            await self.send_message(hello_msg("ready", w))
                        else:
                            await self.send_message(hello_msg("pending", w))
                    elif not our_ready and isinstance(pw, int):
                        prolong_at = self._prolong_time(pw)
                    # ready side: pending without prolongationRequest is ignored (SHIP-TS-HELLO-04)
                elif ph == "aborted":
                    try:
                        await self.wait_closed(2.0)
                    except ShipError:
                        pass
                    hint = ""
                    if self.close_code == CLOSE_REJECTED:
                        hint = ": not trusted"
                    raise self._error("peer aborted the hello%s" % hint)
                else:
                    await self._fail("invalid hello phase %r" % (ph,), hello_abort=True)
                continue
            if self._inbox:  # _Closed
                raise self._closed_error("the peer's hello")
            if now >= deadline:
                await self._fail("hello timeout (%.1f s) %s" % (
                    T, "waiting for the peer's ready" if our_ready else "while pending (not trusted)"),
                    CLOSE_NORMAL if our_ready else CLOSE_REJECTED, hello_abort=True)
            if prolong_at is not None and now >= prolong_at:
                prolong_at = None
                if self.prolong:
                    await self.send_message(hello_msg("pending", None, True))
                continue
            wake = deadline if prolong_at is None else min(deadline, prolong_at)
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), max(0.0, wake - time.monotonic()))
            except asyncio.TimeoutError:
                pass
        self._step_done("hello")

    def default_hello_phase(self):
        """``hello_phase`` if set; server role: ready for a trusted SKI, else per ``untrusted_policy``."""
        if self.hello_phase:
            return self.hello_phase
        if self._is_trusted is not None and not self._is_trusted():
            return {"pending": "pending", "abort": "pending-abort", "abort-only": "abort"}[self.untrusted_policy]
        return "ready"

    def _prolong_time(self, waiting_ms):
        if not self.prolong:
            return None
        # ask prolong_margin s before the peer's waiting runs out, but not before half of it has passed
        # (a margin larger than the waiting time would otherwise make a request/answer loop)
        w = waiting_ms / 1000.0
        return time.monotonic() + max(w / 2.0, w - self.prolong_margin)

    async def protocol_handshake(self, timeout=None):
        """Client: announceMax, expect select 1.0 JSON-UTF8, echo select. Server: expect announceMax
        (major 1, JSON-UTF8 offered), send select, expect the confirming select. Errors per ship.md 6.3
        (1 timeout, 2 unexpected message, 3 selection mismatch) are sent before closing; a received
        messageProtocolHandshakeError (or the flat v0.7 form) raises ShipError with ``detail`` = error."""
        self.phase = "protocol"
        select = protocol_handshake_msg("select")
        if self.role == "client":
            major, minor = self.ship_version
            await self.send_message(protocol_handshake_msg("announceMax", major, minor))
            m = await self._prot_next(timeout, "the protocol handshake select")
            await self._check_prot(m, "select", exact=True)
            await self.send_message(select)
        else:
            m = await self._prot_next(timeout, "the protocol handshake announceMax")
            await self._check_prot(m, "announceMax", exact=False)
            await self.send_message(select)
            m = await self._prot_next(timeout, "the confirming select")
            await self._check_prot(m, "select", exact=True)
        self._step_done("protocol")

    async def _prot_next(self, timeout, what):
        try:
            m = await self._next(timeout, what)
        except ShipError as e:
            if e.timeout:
                await self._fail("protocol handshake timeout waiting for %s" % what, prot_error=1)
            raise
        if m.name == "messageProtocolHandshakeError" or (m.name == "error" and m.type == TYPE_CONTROL):
            err = m.get("error") if m.name != "error" else m.body
            try:
                await self.wait_closed(2.0)
            except ShipError:
                pass
            raise self._error("peer sent messageProtocolHandshakeError %r" % (err,), detail=err)
        if m.name != "messageProtocolHandshake":
            await self._fail("unexpected message in the protocol handshake: %s" % m.describe()[:200],
                             prot_error=2)
        return m

    async def _check_prot(self, m, want, exact):
        body = m.body if isinstance(m.body, dict) else {}
        fmts = body.get("formats")
        fmts = fmts.get("format") if isinstance(fmts, dict) else fmts
        ver = body.get("version") if isinstance(body.get("version"), dict) else {}
        if body.get("handshakeType") != want:
            await self._fail("expected handshakeType %s, got %s" % (want, m.json_text), prot_error=2)
        if exact:
            ok = ver.get("major") == 1 and ver.get("minor") == 0 and fmts == ["JSON-UTF8"]
        else:
            ok = ver.get("major") == 1 and isinstance(fmts, list) and "JSON-UTF8" in fmts
        if not ok:
            await self._fail("protocol selection mismatch: %s" % m.json_text, prot_error=3)

    async def pin(self, timeout=None, pin_state=None):
        """PIN verification (ship.md 6.4; IEC 63380-3 6.9.6). We announce ``required`` when
        ``require_pin`` is set, else ``none`` (or ``pin_state`` as given). When the peer announces
        required/optional we type ``pin`` (if any) and wait for its pinOk or connectionPinError;
        a required PIN we do not have, a connectionPinError, or a busy peer (input locked) ends
        the connection with ShipError. Unknown control messages meanwhile are ignored."""
        self.phase = "pin"
        ours = pin_state or ("required" if self.require_pin else "none")
        if ours == "required":
            await self.send_message(pin_state_msg("required", "ok"))
        else:
            await self.send_message(pin_state_msg(ours))
        need_peer_pin = ours == "required"
        peer_done = False
        sent_pin = False
        held = []
        deadline = time.monotonic() + (timeout or self.timeout) * (6 if need_peer_pin else 1)
        while need_peer_pin or not peer_done:
            m = await self._next(max(0.01, deadline - time.monotonic()), "the PIN exchange")
            if m.name == "connectionPinState":
                body = m.body if isinstance(m.body, dict) else {}
                self.peer_pin_states.append(body)
                st = body.get("pinState")
                if st == "none":
                    peer_done = True
                elif st == "pinOk":
                    if not sent_pin:
                        await self._fail("pinOk although we typed no PIN")
                    peer_done = True
                elif st in ("required", "optional"):
                    if sent_pin:
                        continue
                    busy = body.get("inputPermission") == "busy"
                    if self.pin_value is None:
                        if st == "required":
                            await self._fail("peer requires a PIN (pinState required): give --pin")
                        peer_done = True
                    elif busy and not self.pin_on_busy:
                        await self._fail("peer's PIN input is locked (inputPermission busy): wrong PINs before")
                    else:
                        sent_pin = True
                        await self.send_message(pin_input_msg(self.pin_value))
                else:
                    await self._fail("bad pinState %r" % (st,))
            elif m.name == "connectionPinError":
                self.pin_errors.append(m.get("error"))
                try:
                    await self.wait_closed(1.0)
                except ShipError:
                    pass
                raise self._error("peer rejected our PIN (connectionPinError %r)" % (m.get("error"),),
                                  detail=m.get("error"))
            elif m.name == "connectionPinInput" and need_peer_pin:
                if str(m.get("pin")) == self.require_pin:
                    await self.send_message(pin_state_msg("pinOk"))
                    need_peer_pin = False
                else:
                    await self.send_message(pin_error_msg(1))
            elif m.name in ("accessMethodsRequest", "accessMethods", "data"):
                held.append(m)  # the peer is done with PINs: kept for the next steps
            # else: unknown control messages (SHIP 1.1, vendors) are ignored
        for m in reversed(held):
            self._inbox.appendleft(m)
        self._step_done("pin")

    async def access_methods(self, timeout=None, *, request=True, answer=True):
        """Send accessMethodsRequest (``request``), answer the peer's requests with our accessMethods
        (``answer``; also later, automatically), wait for the peer's accessMethods and store
        ``peer_ship_id``. Data messages arriving meanwhile are kept for ``recv``."""
        self.phase = "access"
        self._auto_access = answer
        # requests that arrived before this step (queued in the inbox) are answered here
        if answer:
            for m in list(self._inbox):
                if m is not _Closed and m.name == "accessMethodsRequest":
                    self._answer_access()
        if request:
            await self.send_message(access_methods_request_msg())
            while True:
                m = await self._next(timeout, "the peer's accessMethods", defer_data=True)
                if m.name == "accessMethodsRequest":
                    continue  # answered by _deliver / above
                if m.name == "accessMethods":
                    sid = m.get("id")
                    self.peer_ship_id = sid
                    if self.expected_ship_id is not None and sid != self.expected_ship_id:
                        await self._fail("SHIP id mismatch: expected %r, got %r" % (self.expected_ship_id, sid))
                    break
                if m.name == "connectionClose":
                    self._deferred.append(m)
                    continue
                await self._fail("unexpected message while waiting for accessMethods: %s" % m.describe()[:200])
        self._step_done("access")
        self.phase = "data"

    async def handshake(self, timeout=None):
        """Run every SHIP step not done yet (cmi, hello, protocol, pin, access) in order."""
        try:
            if "cmi" not in self.steps:
                await self.cmi(timeout)
            if "hello" not in self.steps:
                await self.hello()
            if "protocol" not in self.steps:
                await self.protocol_handshake(timeout)
            if "pin" not in self.steps:
                await self.pin(timeout)
            if "access" not in self.steps:
                await self.access_methods(timeout)
        except ShipError as e:
            self.handshake_error = e
            raise
        return self

    async def dial(self, host, port, *, expected_ski=None, path="/ship/", timeout=None):
        """Client: connect + upgrade + complete handshake. Returns self."""
        await self.connect(host, port, expected_ski=expected_ski, timeout=timeout)
        await self.upgrade(path, timeout=timeout)
        return await self.handshake(timeout)

    async def close(self, announce=True, *, reason="unspecific", max_time=500, code=CLOSE_NORMAL,
                    timeout=None):
        """Close: (``announce``) send connectionClose announce (maxTime, reason) and wait up to maxTime
        for the confirm, then WebSocket close ``code`` (4001) and wait for the TCP close.
        Returns True when the peer confirmed (or ``announce`` is False)."""
        confirmed = not announce
        if self.phase == "closing" and self._open():
            # the peer announced and we confirmed (auto_answer): it closes; do not announce ourselves
            try:
                await asyncio.wait_for(self._closed.wait(), max_time / 1000.0)
            except asyncio.TimeoutError:
                pass
            announce, confirmed = False, True
        if announce and self._open():
            self.phase = "close"
            await self.send_message(connection_close_msg("announce", max_time, reason))
            deadline = time.monotonic() + max_time / 1000.0
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    m = await self._next(left, "connectionClose confirm")
                except ShipError:
                    break
                if m.name == "connectionClose" and m.get("phase") == "confirm":
                    confirmed = True
                    break
                if m.name == "connectionClose" and m.get("phase") == "announce":
                    continue  # both announced; confirm already sent by _deliver
                self._deferred.append(m)
        await self.abort(code, "close", timeout=timeout)
        return confirmed

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.drop()
