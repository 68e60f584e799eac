"""Async SHIP peer ("test CEM") for CPython: TLS 1.2 + WebSocket (subprotocol ``ship``) + SHIP handshake.

Independent implementation for testing the gateway firmware: nothing from the firmware's lib/ is used.
WebSocket framing comes from the sans-I/O layer of the ``websockets`` package (frames, masking,
continuation reassembly, automatic pong, close handshake); TCP/TLS and all SHIP logic are here.

Client role::

    ident = Identity.generate()
    peer = ShipPeer(ident, ship_id="TestCEM-1")
    await peer.dial("127.0.0.1", DEFAULT_PORT, expected_ski=gw_ski)      # connect + upgrade + handshake
    # or step by step, each optional:
    await peer.connect(host, port, expected_ski=...)              # TLS only, SKI checked before upgrade
    await peer.upgrade()                                          # WebSocket upgrade, subprotocol "ship"
    await peer.cmi(); await peer.hello(); await peer.protocol_handshake(); await peer.pin()
    await peer.access_methods()
    await peer.send_datagram({"datagram": {...}})
    msg = await peer.recv_datagram(timeout=5)
    await peer.close()                                            # connectionClose announce/confirm, WS 4001

Server role::

    async with ShipServer(ident, trusted={cem_ski}, hello_timeout=1.0) as srv:   # 127.0.0.1, port 0
        port = srv.port
        peer = await srv.accept(timeout=10)          # a ShipPeer after a completed handshake

Every wait is bounded (``timeout`` arguments, defaults on the peer). Failures raise ``ShipError`` with
``close_code`` (the WebSocket close code received from the peer, e.g. 4452 for trust denied).
"""

import asyncio
import collections
import os
import ssl
import time

from websockets.client import ClientProtocol
from websockets.frames import BINARY, CLOSE, CONT, PING, PONG, TEXT, Frame
from websockets.http11 import Request, Response
from websockets.protocol import OPEN
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from . import dialect, tls
from .identity import Identity, normalize_ski, ski_extension_of_cert, ski_of_cert

__all__ = [
    "ShipError", "ShipMessage", "ShipPeer", "ShipServer", "Identity",
    "CMI", "hello_msg", "protocol_handshake_msg", "protocol_handshake_error_msg", "pin_state_msg",
    "access_methods_request_msg", "access_methods_msg", "connection_close_msg", "encode",
    "data_message", "DEFAULT_PORT", "CLOSE_NORMAL", "CLOSE_REJECTED", "CLOSE_USER",
]

CMI = b"\x00\x00"
# the gateway's SHIP port (lib/gateway/config.py SHIP_PORT; this package must not import lib/,
# so host_tests/test_newcomer.py checks that the two agree)
DEFAULT_PORT = 4712
TYPE_INIT, TYPE_CONTROL, TYPE_DATA, TYPE_END = 0, 1, 2, 3
CLOSE_NORMAL = 4001     # "close"
CLOSE_REJECTED = 4452   # "Node rejected by application"
CLOSE_USER = 4500       # "User close"
CMI_TIMEOUT = 10.0
HELLO_PROLONG_MIN_MS = 1000


class ShipError(Exception):
    """A SHIP/TLS/WebSocket failure.

    Attributes: ``close_code`` / ``close_reason`` (WebSocket close frame received from the peer, None when
    none was received), ``phase`` (step name: tls, upgrade, cmi, hello, protocol, pin, access, data, close),
    ``timeout`` (True when a wait timed out), ``peer`` (the ShipPeer, when known), ``detail``,
    ``local`` (True when WE aborted, e.g. hello timeout or untrusted SKI; ``close_code`` is then the code
    we sent).
    """

    def __init__(self, message, *, close_code=None, close_reason=None, phase=None, timeout=False,
                 peer=None, detail=None, local=False):
        super().__init__(message)
        self.local = local
        self.close_code = close_code
        self.close_reason = close_reason
        self.phase = phase
        self.timeout = timeout
        self.peer = peer
        self.detail = detail

    def __str__(self):
        s = super().__str__()
        if self.close_code is not None and "close %d" % self.close_code not in s:
            s += " (close %d%s)" % (self.close_code, " " + self.close_reason if self.close_reason else "")
        return s


# ---------------------------------------------------------------------------------------------------
# messages (dialect dicts, schema order)

def hello_msg(phase, waiting=None, prolongation_request=None):
    items = [{"phase": phase}]
    if waiting is not None:
        items.append({"waiting": int(waiting)})
    if prolongation_request is not None:
        items.append({"prolongationRequest": bool(prolongation_request)})
    return {"connectionHello": items}


def protocol_handshake_msg(handshake_type, major=1, minor=0, formats=("JSON-UTF8",)):
    return {"messageProtocolHandshake": [
        {"handshakeType": handshake_type},
        {"version": [{"major": major}, {"minor": minor}]},
        {"formats": [{"format": list(formats)}]},
    ]}


def protocol_handshake_error_msg(error):
    return {"messageProtocolHandshakeError": [{"error": int(error)}]}


def pin_state_msg(pin_state="none", input_permission=None):
    items = [{"pinState": pin_state}]
    if input_permission is not None:
        items.append({"inputPermission": input_permission})
    return {"connectionPinState": items}


def access_methods_request_msg():
    return {"accessMethodsRequest": []}


def access_methods_msg(ship_id, dns_sd_mdns=False, dns_uri=None):
    items = [{"id": ship_id}]
    if dns_sd_mdns:
        items.append({"dnsSd_mDns": []})
    if dns_uri is not None:
        items.append({"dns": [{"uri": dns_uri}]})
    return {"accessMethods": items}


def connection_close_msg(phase, max_time=None, reason=None):
    items = [{"phase": phase}]
    if max_time is not None:
        items.append({"maxTime": int(max_time)})
    if reason is not None:
        items.append({"reason": reason})
    return {"connectionClose": items}


def encode(msg, msg_type=None):
    """A message object (dialect or plain; the outer object keeps its braces) -> SHIP bytes
    (type byte + compact JSON). ``msg_type`` defaults from the top-level key (data 2, connectionClose 3,
    else 1)."""
    if msg_type is None:
        (key,) = msg.keys()
        msg_type = TYPE_DATA if key == "data" else TYPE_END if key == "connectionClose" else TYPE_CONTROL
    if not dialect.is_dialect_message(msg):
        msg = dialect.message_to_eebus(msg)
    return bytes([msg_type]) + dialect.dumps_compact(msg).encode("utf-8")


def datagram_json(datagram):
    """Datagram in any accepted form -> dialect JSON text of ``{"datagram":[...]}``.

    Accepted: plain ``{"datagram": {...}}``; plain body ``{"header": ..., "payload": ...}``; dialect
    ``{"datagram": [...]}``; str/bytes = dialect text used verbatim."""
    if isinstance(datagram, (bytes, bytearray)):
        return bytes(datagram).decode("utf-8")
    if isinstance(datagram, str):
        return datagram
    if not (isinstance(datagram, dict) and list(datagram.keys()) == ["datagram"]):
        datagram = {"datagram": datagram}
    if not isinstance(datagram["datagram"], list):
        datagram = dialect.message_to_eebus(datagram)
    return dialect.dumps_compact(datagram)


def data_message(datagram, protocol_id="ee1.0", payload_wrapped=False):
    """SHIP data message bytes exactly as ship-go frames them:
    ``[02]{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[...]}}]}``.
    ``payload_wrapped=True`` gives the strict dialect form ``{"payload":[{"datagram":[...]}]}``."""
    inner = datagram_json(datagram)
    if payload_wrapped:
        inner = "[" + inner + "]"
    text = '{"data":[{"header":[{"protocolId":%s}]},{"payload":%s}]}' % (
        dialect.dumps_compact(protocol_id), inner)
    return b"\x02" + text.encode("utf-8")


class ShipMessage:
    """One received (or sent) SHIP message.

    ``raw``: the whole WebSocket message (type byte included); ``type``: first byte (None if empty);
    ``value``: bytes after the type byte; ``eebus``: parsed dialect JSON (types 1-3) or None;
    ``plain``: plain JSON of the whole message or None; ``name``: top-level key (``"cmi"`` for type 0,
    ``"unknown"`` / ``"invalid"`` otherwise); ``body``: plain value of the top-level key;
    ``error``: parse error text; ``text_frame``: True if it arrived in a WebSocket text frame.
    """

    def __init__(self, raw, text_frame=False):
        self.raw = bytes(raw)
        self.text_frame = text_frame
        self.type = self.raw[0] if self.raw else None
        self.value = self.raw[1:]
        self.eebus = None
        self.plain = None
        self.error = None
        self.name = "invalid"
        if self.type == TYPE_INIT:
            self.name = "cmi"
        elif self.type in (TYPE_CONTROL, TYPE_DATA, TYPE_END):
            try:
                self.eebus = dialect.loads(self.value)
                self.plain = dialect.message_to_plain(self.eebus)
                if len(self.plain) != 1:
                    raise ValueError("%d top-level keys" % len(self.plain))
                (self.name,) = self.plain.keys()
            except (ValueError, UnicodeDecodeError) as e:
                self.error = "%s: %s" % (type(e).__name__, e)
                self.name = "invalid"
        elif self.raw:
            self.name = "unknown"

    @property
    def body(self):
        if self.plain is None:
            return None
        return self.plain.get(self.name)

    def get(self, key, default=None):
        b = self.body
        return b.get(key, default) if isinstance(b, dict) else default

    @property
    def datagram(self):
        """Plain datagram body ``{"header": {...}, "payload": {...}}`` of a data message, else None."""
        if self.name != "data" or not isinstance(self.body, dict):
            return None
        p = self.body.get("payload")
        return p.get("datagram") if isinstance(p, dict) else None

    @property
    def json_text(self):
        try:
            return self.value.decode("utf-8")
        except UnicodeDecodeError:
            return repr(self.value)

    def describe(self):
        if self.type == TYPE_INIT:
            return "[00] CMI %s" % self.value.hex()
        if self.type is None:
            return "(empty message)"
        tag = "[%02x]" % self.type
        if self.type in (TYPE_CONTROL, TYPE_DATA, TYPE_END):
            extra = " (text frame!)" if self.text_frame else ""
            if self.error:
                return "%s %s%s: %s | %s" % (tag, self.name, extra, self.error, self.json_text[:200])
            return "%s %s%s %s" % (tag, self.name, extra, self.json_text)
        return "%s unknown type %s" % (tag, self.value[:64].hex())

    def __repr__(self):
        return "ShipMessage(%s)" % self.describe()[:300]


class _Closed:
    pass


def _proto_mixin(base):
    class P(base):
        auto_pong = True

        def recv_frame(self, frame):
            if frame.opcode is PING and not self.auto_pong:
                self.events.append(frame)
                return
            super().recv_frame(frame)
    P.__name__ = base.__name__
    return P


_Client = _proto_mixin(ClientProtocol)
_Server = _proto_mixin(ServerProtocol)


# ---------------------------------------------------------------------------------------------------

class ShipPeer:
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
    """

    def __init__(self, identity, *, ship_id="TestCEM-000000001", role="client", timeout=CMI_TIMEOUT,
                 hello_timeout=60.0, waiting=None, hello_phase=None, prolong=True, prolong_margin=30.0,
                 max_size=4 * 1024 * 1024, ping_interval=None, ping_timeout=None, auto_answer=True,
                 expected_ship_id=None, log=None, access_answer_delay=0.0, auto_pong=True):
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

    # ------------------------------------------------------------------ helpers

    def __repr__(self):
        return "ShipPeer(%s %s:%s, phase=%s, peer_ski=%s)" % (self.role, self.host, self.port, self.phase,
                                                             self.peer_ski)

    @property
    def closed(self):
        return self._closed.is_set()

    @property
    def handshake_complete(self):
        return "access" in self.steps

    def _emit(self, direction, what):
        if self.log is not None:
            try:
                self.log(direction, what)
            except Exception:  # noqa: BLE001 - a broken logger must not break the peer
                pass

    def _error(self, message, **kw):
        kw.setdefault("phase", self.phase)
        kw.setdefault("close_code", self.close_code)
        kw.setdefault("close_reason", self.close_reason)
        return ShipError(message, peer=self, **kw)

    def _step_done(self, step):
        if step not in self.steps:
            self.steps.append(step)

    def _spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self._aux_tasks.add(t)
        t.add_done_callback(self._aux_tasks.discard)
        return t

    def _tls_info(self, writer):
        so = writer.get_extra_info("ssl_object")
        self.tls_version = so.version() if so else None
        self.cipher = so.cipher()[0] if so and so.cipher() else None
        der = so.getpeercert(binary_form=True) if so else None
        self.peer_cert_der = der
        if der:
            self.peer_ski = ski_of_cert(der)
            self.peer_ski_extension = ski_extension_of_cert(der)
        peer = writer.get_extra_info("peername")
        if peer and self.host is None:
            self.host, self.port = peer[0], peer[1]

    # ------------------------------------------------------------------ TLS (client role)

    async def connect(self, host, port, *, expected_ski=None, check_ski_extension=True, timeout=None,
                      ssl_context=None, server_hostname=None):
        """TLS connect (client role). Computes ``peer_ski`` from the server certificate's public key and,
        before any WebSocket byte is sent, compares it with ``expected_ski`` and (``check_ski_extension``)
        with the certificate's SKI extension. Mismatch -> connection closed, ShipError(phase="tls")."""
        self.phase = "tls"
        self.host, self.port = host, port
        ctx = ssl_context or tls.client_context(self.identity)
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=ctx, server_hostname=server_hostname or host,
                                        ssl_handshake_timeout=timeout or self.timeout),
                timeout or self.timeout)
        except asyncio.TimeoutError:
            raise self._error("TLS connect to %s:%s timed out" % (host, port), timeout=True) from None
        except (OSError, ssl.SSLError) as e:
            raise self._error("TLS connect to %s:%s failed: %s" % (host, port, e), detail=e) from None
        self._tls_info(self.writer)
        problem = None
        if not self.peer_cert_der:
            problem = "server presented no certificate"
        elif check_ski_extension and self.peer_ski_extension is None:
            problem = "server certificate has no SubjectKeyIdentifier extension (SKI %s)" % self.peer_ski
        elif check_ski_extension and self.peer_ski_extension != self.peer_ski:
            problem = ("server certificate SKI extension %s is not SHA-1 of its public key %s"
                       % (self.peer_ski_extension, self.peer_ski))
        elif expected_ski is not None and normalize_ski(expected_ski) != self.peer_ski:
            problem = "SKI mismatch: expected %s, server presented %s" % (normalize_ski(expected_ski),
                                                                          self.peer_ski)
        if problem:
            await self.drop()
            raise self._error(problem)
        self._step_done("tls")
        self._emit("info", "TLS %s %s, peer SKI %s" % (self.tls_version, self.cipher, self.peer_ski))
        return self.peer_ski

    # ------------------------------------------------------------------ WebSocket

    def _start_pump(self):
        if self._pump_task is None:
            self._pump_task = asyncio.ensure_future(self._pump())

    async def upgrade(self, path="/ship/", *, subprotocols=("ship",), require_subprotocol="ship",
                      headers=None, timeout=None):
        """WebSocket upgrade (client role): GET ``path`` with ``Sec-WebSocket-Protocol`` (``subprotocols``,
        None = header omitted), extra ``headers`` dict. Checks status 101 and that the server selected
        ``require_subprotocol`` (None = no check). Returns the websockets Response."""
        self.phase = "upgrade"
        if self.role != "client":
            raise ValueError("upgrade() is the client side; the server side is accept_upgrade()")
        host = self.host if ":" not in str(self.host) else "[%s]" % self.host
        uri = parse_uri("wss://%s:%s%s" % (host, self.port, path))
        self.ws = _Client(uri, subprotocols=list(subprotocols) if subprotocols else None,
                          max_size=self.max_size)
        self.ws.auto_pong = self.auto_pong
        req = self.ws.connect()
        for k, v in (headers or {}).items():
            req.headers[k] = v
        self.upgrade_request = req
        self.ws.send_request(req)
        self._flush()
        self._start_pump()
        await self._wait_event(self._http_event, timeout, "the WebSocket upgrade response")
        resp = self.upgrade_response
        if self.ws.handshake_exc is not None or resp is None or resp.status_code != 101:
            status = resp.status_code if resp is not None else None
            await self.drop()
            raise self._error("WebSocket upgrade rejected (HTTP %s): %s" % (status, self.ws.handshake_exc),
                              detail=resp)
        self.subprotocol = self.ws.subprotocol
        if require_subprotocol is not None and self.subprotocol != require_subprotocol:
            await self.abort(1002, "subprotocol")
            raise self._error("server selected subprotocol %r, expected %r" % (self.subprotocol,
                                                                               require_subprotocol))
        self._step_done("upgrade")
        self._start_pinger()
        return resp

    async def accept_upgrade(self, *, subprotocols=("ship",), echo_subprotocol=True, status=101,
                             timeout=None):
        """WebSocket upgrade (server role): wait for the request, answer it. The client must offer one of
        ``subprotocols`` (else HTTP 400, like ship-go). ``echo_subprotocol=False`` omits the header,
        a str sends that value instead (negative tests); ``status`` != 101 rejects with that status."""
        self.phase = "upgrade"
        sp = list(subprotocols) if subprotocols else None
        self.ws = _Server(subprotocols=sp, max_size=self.max_size)
        self.ws.auto_pong = self.auto_pong
        self._start_pump()
        await self._wait_event(self._http_event, timeout, "the WebSocket upgrade request")
        req = self.upgrade_request
        if req is None:
            await self.drop()
            if self.ws.handshake_exc is not None:
                raise self._error("invalid WebSocket upgrade request: %s" % (self.ws.handshake_exc,))
            raise self._closed_error("the WebSocket upgrade request")
        if status != 101:
            resp = self.ws.reject(status, "rejected by test CEM\n")
        else:
            resp = self.ws.accept(req)
            if resp.status_code == 101 and echo_subprotocol is not True:
                if "Sec-WebSocket-Protocol" in resp.headers:
                    del resp.headers["Sec-WebSocket-Protocol"]
                if isinstance(echo_subprotocol, str):
                    resp.headers["Sec-WebSocket-Protocol"] = echo_subprotocol
        self.upgrade_response = resp
        self.ws.send_response(resp)
        self._flush()
        if resp.status_code != 101:
            await self.drop(graceful=True)
            raise self._error("WebSocket upgrade refused with HTTP %d (%s)" % (
                resp.status_code, self.ws.handshake_exc or "by request"), detail=req)
        self.subprotocol = self.ws.subprotocol
        self._step_done("upgrade")
        self._start_pinger()
        return req

    def _flush(self):
        if self.ws is None or self.writer is None:
            return
        for chunk in self.ws.data_to_send():
            if self._eof_written:
                continue
            if chunk:
                self.writer.write(chunk)
            else:
                self._eof_written = True
                self.writer.close()  # TLS cannot half-close: close the transport

    async def _pump(self):
        try:
            while True:
                try:
                    data = await self.reader.read(65536)
                except (OSError, ssl.SSLError) as e:
                    self.conn_error = e
                    data = b""
                if not data:
                    if not self.ws.reader.eof:
                        self.ws.receive_eof()
                    self._flush()
                    self._process_events()
                    break
                self.ws.receive_data(data)
                self._flush()
                self._process_events()
        except asyncio.CancelledError:
            pass
        finally:
            self._finish()

    def _finish(self):
        if self.ws is not None and self.ws.close_rcvd is not None and self.close_code is None:
            self.close_code = self.ws.close_rcvd.code
            self.close_reason = self.ws.close_rcvd.reason
        self._closed.set()
        self._http_event.set()
        self._inbox.append(_Closed)
        self._wakeup.set()
        if self.writer is not None and not self.writer.is_closing():
            self.writer.close()
        if self._ping_task is not None:
            self._ping_task.cancel()

    def _process_events(self):
        for ev in self.ws.events_received():
            if isinstance(ev, Request):
                self.upgrade_request = ev
                self._http_event.set()
            elif isinstance(ev, Response):
                self.upgrade_response = ev
                self._http_event.set()
            elif isinstance(ev, Frame):
                self._on_frame(ev)
        if self.ws.handshake_exc is not None:
            self._http_event.set()

    def _on_frame(self, fr):
        self.ws_events.append(("recv", fr.opcode.name, fr.fin, len(fr.data)))
        if fr.opcode in (TEXT, BINARY):
            if fr.fin:
                self._deliver(bytes(fr.data), fr.opcode is TEXT)
            else:
                self._frag = [fr.opcode is TEXT, bytearray(fr.data)]
        elif fr.opcode is CONT:
            if self._frag is not None:
                self._frag[1] += fr.data
                if fr.fin:
                    text, buf = self._frag
                    self._frag = None
                    self._deliver(bytes(buf), text)
        elif fr.opcode is PING:
            self.pings.append(bytes(fr.data))
            self._emit("recv", "WebSocket ping %s" % bytes(fr.data).hex())
        elif fr.opcode is PONG:
            self.pongs.append(bytes(fr.data))
            self._last_pong = time.monotonic()
            self._wakeup.set()
        elif fr.opcode is CLOSE:
            cr = self.ws.close_rcvd
            self.close_code = cr.code if cr else None
            self.close_reason = cr.reason if cr else None
            self._emit("recv", "WebSocket close %s %s" % (self.close_code, self.close_reason or ""))
            self._wakeup.set()

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

    def _start_pinger(self):
        if self.ping_interval and self._ping_task is None:
            self._ping_task = asyncio.ensure_future(self._pinger())

    async def _pinger(self):
        # a ping every ping_interval; drop when a ping stays unanswered (no pong since) for ping_timeout
        tick = min(self.ping_interval, self.ping_timeout or self.ping_interval) / 2.0
        next_ping = time.monotonic() + self.ping_interval
        unanswered_since = None
        try:
            while self._open():
                await asyncio.sleep(tick)
                now = time.monotonic()
                if unanswered_since is not None and self._last_pong is not None \
                        and self._last_pong >= unanswered_since:
                    unanswered_since = None
                if self.ping_timeout and unanswered_since is not None \
                        and now - unanswered_since >= self.ping_timeout:
                    self._emit("info", "no pong within %.1f s: dropping the connection" % self.ping_timeout)
                    self.conn_error = TimeoutError("pong timeout")
                    await self.drop()
                    break
                if now >= next_ping and self._open():
                    next_ping = now + self.ping_interval
                    self.send_ping(os.urandom(4))
                    if unanswered_since is None:
                        unanswered_since = now
        except asyncio.CancelledError:
            pass

    def _open(self):
        return self.ws is not None and self.ws.state is OPEN and not self._closed.is_set()

    async def _wait_event(self, event, timeout, what):
        t = self.timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(event.wait(), t)
        except asyncio.TimeoutError:
            raise self._error("timeout (%.1f s) waiting for %s" % (t, what), timeout=True) from None

    # ------------------------------------------------------------------ sending

    def _send_now(self, data, text=False):
        if not self._open():
            raise self._error("cannot send: connection is not open")
        self.transcript.append(("send", bytes(data)))
        self._emit("send", ShipMessage(data, text))
        if text:
            self.ws.send_text(data)
        else:
            self.ws.send_binary(data)
        self.ws_events.append(("send", "TEXT" if text else "BINARY", True, len(data)))
        self._flush()

    async def _drain(self):
        try:
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except (asyncio.TimeoutError, OSError, ssl.SSLError) as e:
            raise self._error("write failed: %r" % (e,)) from None

    async def send_raw(self, data, *, text=False, fragment=None):
        """Send one SHIP message as given (type byte + payload) in a binary frame (``text=True``: text
        frame, negative tests). ``fragment=n`` splits it into frames of n bytes (first + continuations)."""
        data = bytes(data)
        if fragment and len(data) > fragment:
            if not self._open():
                raise self._error("cannot send: connection is not open")
            self.transcript.append(("send", data))
            self._emit("send", ShipMessage(data, text))
            parts = [data[i:i + fragment] for i in range(0, len(data), fragment)]
            (self.ws.send_text if text else self.ws.send_binary)(parts[0], fin=False)
            for i, p in enumerate(parts[1:], 1):
                self.ws.send_continuation(p, fin=i == len(parts) - 1)
            for i, p in enumerate(parts):
                self.ws_events.append(("send", ("TEXT" if text else "BINARY") if i == 0 else "CONT",
                                       i == len(parts) - 1, len(p)))
            self._flush()
        else:
            self._send_now(data, text)
        await self._drain()

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

    def send_ping(self, data=b""):
        """Send a WebSocket ping (no wait); received pongs are collected in ``pongs``."""
        self.ws.send_ping(bytes(data))
        self.ws_events.append(("send", "PING", True, len(data)))
        self._flush()

    async def ping(self, data=None, timeout=None):
        """Send a ping and wait for the pong with the same payload; returns the round-trip seconds."""
        data = os.urandom(4) if data is None else bytes(data)
        start = time.monotonic()
        n = len(self.pongs)
        self.send_ping(data)
        deadline = start + (self.timeout if timeout is None else timeout)
        while True:
            if data in self.pongs[n:]:
                return time.monotonic() - start
            if self._closed.is_set():
                raise self._error("connection closed while waiting for a pong")
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._error("no pong within %.1f s" % (deadline - start), timeout=True)
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), left)
            except asyncio.TimeoutError:
                pass

    def write_raw(self, data):
        """Write raw bytes to the TLS stream (no WebSocket framing at all)."""
        self.writer.write(bytes(data))

    # ------------------------------------------------------------------ receiving

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

    def _closed_error(self, what):
        if self.close_code is not None:
            text = "peer closed the connection (close %d%s) while waiting for %s" % (
                self.close_code, " " + self.close_reason if self.close_reason else "", what)
        else:
            text = "connection dropped without a close frame while waiting for %s%s" % (
                what, " (%s)" % self.conn_error if self.conn_error else "")
        return self._error(text)

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

    async def wait_closed(self, timeout=None):
        """Wait until the connection is closed; returns (close_code, close_reason)."""
        await self._wait_event(self._closed, timeout, "the connection to close")
        return self.close_code, self.close_reason

    # ------------------------------------------------------------------ SHIP handshake steps

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
            await self.send_message(protocol_handshake_msg("announceMax"))
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

    async def pin(self, timeout=None, pin_state="none"):
        """Send our PIN state (none) and require the peer's ``connectionPinState`` none."""
        self.phase = "pin"
        await self.send_message(pin_state_msg(pin_state))
        m = await self._next(timeout, "the peer's connectionPinState")
        if m.name != "connectionPinState":
            await self._fail("expected connectionPinState, got %s" % m.describe()[:200])
        if m.get("pinState") != "none":
            await self._fail("peer requires a PIN (pinState %r): not supported" % (m.get("pinState"),))
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

    # ------------------------------------------------------------------ closing

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

    async def abort(self, code=CLOSE_NORMAL, reason="", *, timeout=None):
        """WebSocket close frame ``code`` (no SHIP connectionClose), then wait (bounded) for the close."""
        if self.ws is not None and self.ws.state is OPEN and not self._closed.is_set():
            self.ws.send_close(code, reason)
            self.close_sent = (code, reason)
            self.ws_events.append(("send", "CLOSE", True, code))
            self._emit("send", "WebSocket close %d %s" % (code, reason))
            self._flush()
        if self._pump_task is not None:
            try:
                await asyncio.wait_for(self._closed.wait(), 2.0 if timeout is None else timeout)
            except asyncio.TimeoutError:
                pass
        await self.drop()

    async def drop(self, graceful=True):
        """Close the TCP/TLS connection without any WebSocket close (``graceful=False``: abort the
        transport, no TLS close_notify)."""
        if self.writer is not None:
            if graceful:
                self.writer.close()
            else:
                self.writer.transport.abort()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), 1.0)
            except (asyncio.TimeoutError, OSError, ssl.SSLError):
                self.writer.transport.abort()
        if self._pump_task is not None:
            try:
                await asyncio.wait_for(self._closed.wait(), 1.0)
            except asyncio.TimeoutError:
                self._pump_task.cancel()
        else:
            self._finish()
        for t in list(self._aux_tasks):
            if t is not asyncio.current_task():
                t.cancel()
        if self._ping_task is not None and self._ping_task is not asyncio.current_task():
            self._ping_task.cancel()
        if self.phase in ("data", "close", "closing"):
            self.phase = "closed"

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.drop()


# ---------------------------------------------------------------------------------------------------

class ShipServer:
    """SHIP server role: TLS listener (client certificate required, any issuer), WebSocket upgrade
    requiring subprotocol ``ship``, then (``auto_handshake``) the SHIP handshake per connection.

    Parameters:
      identity          our Identity
      trusted           iterable of trusted SKIs (None = trust every SKI)
      untrusted         policy for an unknown SKI: "pending" (pending+waiting, hold up to hello_timeout
                        for ``trust()``, then aborted + close 4452), "abort" (pending, then aborted +
                        4452 at once, like ship-go without AllowWaitingForTrust), "abort-only"
                        (aborted + 4452 without pending)
      hello_timeout     seconds (our Wait-For-Ready / pending timer)
      auto_upgrade      do the WebSocket upgrade (else ``accept`` returns right after TLS)
      auto_handshake    run the SHIP handshake (else ``accept`` returns after the upgrade)
      client_certs      see tls.server_context ("any", "optional-any", "pinned", "none"); ``pinned`` DERs
      check_ski_extension  refuse a client certificate whose SKI extension is missing or differs from
                        SHA-1 of its public key (SHIP-TS-SEC-01), right after TLS
      peer_options      extra ShipPeer keyword arguments (ship_id, timeout, waiting, log, ...)
    """

    def __init__(self, identity, *, trusted=None, untrusted="pending", hello_timeout=60.0,
                 ship_id="TestCEM-000000001", auto_upgrade=True, auto_handshake=True, client_certs="any",
                 pinned=(), subprotocols=("ship",), timeout=CMI_TIMEOUT, log=None, check_ski_extension=True,
                 **peer_options):
        if untrusted not in ("pending", "abort", "abort-only"):
            raise ValueError("untrusted must be pending, abort or abort-only")
        self.identity = identity
        self.check_ski_extension = check_ski_extension
        self.trusted = None if trusted is None else {normalize_ski(s) for s in trusted}
        self.untrusted = untrusted
        self.hello_timeout = hello_timeout
        self.ship_id = ship_id
        self.auto_upgrade = auto_upgrade
        self.auto_handshake = auto_handshake
        self.subprotocols = subprotocols
        self.timeout = timeout
        self.log = log
        self.peer_options = peer_options
        self.ssl_context = tls.server_context(identity, client_certs=client_certs, pinned=pinned)
        self.connections = []     # every ShipPeer accepted, in order
        self.failures = []        # (peer, ShipError) of connections whose upgrade/handshake failed
        self.host = None
        self.port = None
        self._server = None
        self._ready = asyncio.Queue()
        self._tasks = set()

    def is_trusted(self, ski):
        return self.trusted is None or (ski is not None and ski in self.trusted)

    def trust(self, ski):
        """Trust a SKI; pending connections of that SKI switch to ready."""
        ski = normalize_ski(ski)
        if self.trusted is None:
            self.trusted = set()
        self.trusted.add(ski)
        for p in self.connections:
            if p.peer_ski == ski:
                p.grant_trust()

    async def start(self, host="127.0.0.1", port=0):
        self._server = await asyncio.start_server(self._handle, host, port)
        sock = self._server.sockets[0]
        self.host, self.port = sock.getsockname()[:2]
        return self

    async def _handle(self, reader, writer):
        opts = dict(ship_id=self.ship_id, role="server", timeout=self.timeout,
                    hello_timeout=self.hello_timeout, log=self.log)
        opts.update(self.peer_options)
        peer = ShipPeer(self.identity, **opts)
        peer.reader, peer.writer = reader, writer
        peer.phase = "tls"
        addr = writer.get_extra_info("peername")
        if addr:
            peer.host, peer.port = addr[0], addr[1]
        peer._is_trusted = lambda: self.is_trusted(peer.peer_ski)
        peer.untrusted_policy = self.untrusted
        self.connections.append(peer)
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            err = None
            try:
                # TLS here (not in start_server) so that handshake failures are reported, not just logged
                try:
                    await writer.start_tls(self.ssl_context, ssl_handshake_timeout=self.timeout)
                except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError) as e:
                    writer.transport.abort()
                    peer._finish()
                    raise peer._error("TLS handshake with %s failed: %s" % (peer.host, e), detail=e,
                                      timeout=isinstance(e, asyncio.TimeoutError)) from None
                peer._tls_info(writer)
                peer._step_done("tls")
                self._emit_tls(peer)
                if not peer.peer_cert_der:
                    await peer.drop()
                    raise peer._error("client presented no certificate", phase="tls")
                if self.check_ski_extension and peer.peer_ski_extension != peer.peer_ski:
                    await peer.drop()
                    raise peer._error("client certificate SKI extension %s is not SHA-1 of its public key %s"
                                      % (peer.peer_ski_extension, peer.peer_ski), phase="tls")
                if self.auto_upgrade:
                    await peer.accept_upgrade(subprotocols=self.subprotocols)
                    if self.auto_handshake:
                        await peer.handshake()
            except ShipError as e:
                err = e
                peer.handshake_error = e
                self.failures.append((peer, e))
            except Exception as e:  # noqa: BLE001 - transport trouble or a bug: report, do not leak
                err = ShipError("connection error: %r" % (e,), peer=peer, detail=e)
                peer.handshake_error = err
                self.failures.append((peer, err))
            await self._ready.put((peer, err))
            if err is None:
                await peer._closed.wait()
        finally:
            self._tasks.discard(task)

    def _emit_tls(self, peer):
        peer._emit("info", "TLS %s %s from %s, peer SKI %s" % (peer.tls_version, peer.cipher, peer.host,
                                                                  peer.peer_ski))

    async def accept(self, timeout=None, *, raise_errors=True):
        """Next connection (in arrival order) once its configured steps are done; returns the ShipPeer.
        A connection whose upgrade/handshake failed raises its ShipError (``.peer`` is the peer), unless
        ``raise_errors`` is False (then check ``peer.handshake_error``)."""
        t = self.timeout if timeout is None else timeout
        try:
            peer, err = await asyncio.wait_for(self._ready.get(), t)
        except asyncio.TimeoutError:
            raise ShipError("no connection accepted within %.1f s" % t, timeout=True, phase="accept") from None
        if err is not None and raise_errors:
            raise err
        return peer

    async def close(self):
        if self._server is not None:
            self._server.close()
        for p in list(self.connections):
            if not p.closed:
                await p.abort(CLOSE_NORMAL, "close", timeout=1.0)
        for t in list(self._tasks):
            t.cancel()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except asyncio.TimeoutError:
                pass

    async def __aenter__(self):
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc):
        await self.close()
