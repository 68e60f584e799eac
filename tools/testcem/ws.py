"""TLS + WebSocket transport of the test CEM's SHIP peer (the ``WsPeer`` base of ``ShipPeer``).

TLS (client role: ``connect``, SKI checks before any WebSocket byte), the WebSocket upgrade in both roles,
the read pump that feeds the sans-I/O protocol of the ``websockets`` package (frames, masking, continuation
reassembly, automatic pong, close handshake), sending SHIP messages in binary frames (fragmented on
request), pings and the pong timeout, WebSocket close and connection drop. Complete SHIP messages go to
``self._deliver`` (ship.py); the state this class uses is set up by ``ShipPeer.__init__``.

Nothing from the firmware's lib/ is used.
"""

import asyncio
import os
import ssl
import time

from websockets.client import ClientProtocol
from websockets.frames import BINARY, CLOSE, CONT, PING, PONG, TEXT, Frame
from websockets.http11 import Request, Response
from websockets.protocol import OPEN
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from . import tls
from .identity import normalize_ski, ski_extension_of_cert, ski_of_cert
from .shipmsg import CLOSE_NORMAL, ShipError, ShipMessage

__all__ = ["WsPeer"]


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


class WsPeer:
    """TLS + WebSocket half of a SHIP connection (see ``ShipPeer`` for the parameters and attributes)."""

    @property
    def closed(self):
        return self._closed.is_set()

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

    async def connect(self, host, port, *, expected_ski=None, check_ski_extension=True, timeout=None,
                      ssl_context=None, server_hostname=None, sock=None):
        """TLS connect (client role). Computes ``peer_ski`` from the server certificate's public key and,
        before any WebSocket byte is sent, compares it with ``expected_ski`` and (``check_ski_extension``)
        with the certificate's SKI extension. Mismatch -> connection closed, ShipError(phase="tls").
        ``sock``: a socket already connected to host:port (TLS runs over it; the connect-time bench
        times TCP and TLS apart)."""
        self.phase = "tls"
        self.host, self.port = host, port
        ctx = ssl_context or tls.client_context(self.identity)
        where = {"sock": sock} if sock is not None else {"host": host, "port": port}
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(ssl=ctx, server_hostname=server_hostname or host,
                                        ssl_handshake_timeout=timeout or self.timeout, **where),
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

    async def send_raw(self, data, *, text=False, fragment=None, gap=None):
        """Send one SHIP message as given (type byte + payload) in a binary frame (``text=True``: text
        frame, negative tests). ``fragment=n`` splits it into frames of n bytes (first + continuations);
        ``gap=s`` sends each of them s seconds after the one before (a message arriving in pieces)."""
        data = bytes(data)
        if fragment and len(data) > fragment:
            if not self._open():
                raise self._error("cannot send: connection is not open")
            self.transcript.append(("send", data))
            self._emit("send", ShipMessage(data, text))
            parts = [data[i:i + fragment] for i in range(0, len(data), fragment)]
            (self.ws.send_text if text else self.ws.send_binary)(parts[0], fin=False)
            for i, p in enumerate(parts[1:], 1):
                if gap:
                    self._flush()
                    await self._drain()
                    await asyncio.sleep(gap)
                self.ws.send_continuation(p, fin=i == len(parts) - 1)
            for i, p in enumerate(parts):
                self.ws_events.append(("send", ("TEXT" if text else "BINARY") if i == 0 else "CONT",
                                       i == len(parts) - 1, len(p)))
            self._flush()
        else:
            self._send_now(data, text)
        await self._drain()

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

    def _closed_error(self, what):
        if self.close_code is not None:
            text = "peer closed the connection (close %d%s) while waiting for %s" % (
                self.close_code, " " + self.close_reason if self.close_reason else "", what)
        else:
            text = "connection dropped without a close frame while waiting for %s%s" % (
                what, " (%s)" % self.conn_error if self.conn_error else "")
        return self._error(text)

    async def wait_closed(self, timeout=None):
        """Wait until the connection is closed; returns (close_code, close_reason)."""
        await self._wait_event(self._closed, timeout, "the connection to close")
        return self.close_code, self.close_reason

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
