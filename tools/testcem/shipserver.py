"""SHIP server role of the test CEM: ``ShipServer`` listens (TLS, client certificate required, any
issuer), upgrades each connection to WebSocket and runs the SHIP handshake as a ``ShipPeer`` in the
server role; trust of unknown SKIs follows the ``untrusted`` policy. Nothing from the firmware's lib/.

    async with ShipServer(ident, trusted={cem_ski}, hello_timeout=1.0) as srv:   # 127.0.0.1, port 0
        port = srv.port
        peer = await srv.accept(timeout=10)          # a ShipPeer after a completed handshake
"""

import asyncio
import ssl

from . import tls
from .identity import normalize_ski
from .ship import ShipPeer
from .shipmsg import CLOSE_NORMAL, CMI_TIMEOUT, ShipError

__all__ = ["ShipServer"]


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
