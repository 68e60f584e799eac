"""A hostile LAN peer for the gateway's SHIP port, in CPython, written from the protocols (RFC
6455, SHIP) and independent of lib/: TLS with any self-signed certificate, then as much of the
WebSocket upgrade and the SHIP handshake as an attack needs, built and read by hand.

Every coroutine here is bounded by its own timeouts; callers bound the whole run as well.
Only 127.0.0.1 is ever dialled.
"""

import asyncio
import json
import os
import socket
import ssl
import struct
import tempfile

import certs

HOST = "127.0.0.1"
UPGRADE = (
    b"GET /ship/ HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: ship\r\n\r\n"
)
CMI = b"\x00\x00"


def context(cert=None, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256",
            max_version=ssl.TLSVersion.TLSv1_2):
    """A client context presenting cert (DER pair; a fresh self-signed P-256 one by default)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = max_version
    ctx.set_ciphers(ciphers)
    if cert is not False:
        cert_pem, key_pem = certs.to_pem(*(cert or certs.create(cn="Intruder")))
        with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as f:
            f.write(cert_pem + key_pem)
        try:
            ctx.load_cert_chain(f.name)
        finally:
            os.unlink(f.name)
    return ctx


def frame(opcode, data=b"", fin=True):
    """One masked client frame."""
    key = os.urandom(4)
    n = len(data)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(data))


def ship(msg_type, body):
    """A SHIP message (type byte + JSON) in one binary frame."""
    if not isinstance(body, bytes):
        body = json.dumps(body, separators=(",", ":")).encode()
    return frame(2, bytes([msg_type]) + body)


def hello(phase, waiting=None):
    f = [{"phase": phase}]
    if waiting is not None:
        f.append({"waiting": waiting})
    return ship(1, {"connectionHello": f})


class Intruder:
    """One connection to the gateway. close() is safe at any point."""

    def __init__(self, port, cert=None, rcvbuf=None):
        self.port = port
        self.cert = cert
        self.rcvbuf = rcvbuf
        self.r = None
        self.w = None
        self.local_port = None

    async def tcp(self, timeout=5):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:
            # a small window and a small segment size: the gateway's send buffer (sized from
            # the MSS) fills after some KB instead of MB
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
        s.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(s, (HOST, self.port)), timeout)
        self.local_port = s.getsockname()[1]
        self.sock = s
        return self

    async def tls(self, timeout=8, ctx=None):
        if getattr(self, "sock", None) is None:
            await self.tcp(timeout)
        # a small reader limit for a peer that stops reading: the transport pauses early
        limit = 2048 if self.rcvbuf else 2 ** 16
        self.r, self.w = await asyncio.wait_for(
            asyncio.open_connection(sock=self.sock, ssl=ctx or context(self.cert), server_hostname="gw", limit=limit),
            timeout,
        )
        return self

    async def upgrade(self, timeout=8):
        if self.w is None:
            await self.tls(timeout)
        self.w.write(UPGRADE)
        await self.w.drain()
        head = await asyncio.wait_for(self.r.readuntil(b"\r\n\r\n"), timeout)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError("upgrade refused: %r" % head[:40])
        return self

    async def read_frame(self, timeout=8):
        """(opcode, payload) of the next server frame (unmasked)."""
        h = await asyncio.wait_for(self.r.readexactly(2), timeout)
        n = h[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await asyncio.wait_for(self.r.readexactly(2), timeout))[0]
        elif n == 127:
            n = struct.unpack("!Q", await asyncio.wait_for(self.r.readexactly(8), timeout))[0]
        data = await asyncio.wait_for(self.r.readexactly(n), timeout) if n else b""
        return h[0] & 0x0F, data

    async def read_ship(self, timeout=8):
        """The next SHIP message as (type, parsed JSON or raw bytes); ('close', code) on a close
        frame; pings are skipped."""
        while True:
            op, data = await self.read_frame(timeout)
            if op == 8:
                return "close", struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
            if op != 2 or not data:
                continue
            if data[0] == 0:
                return 0, data
            try:
                return data[0], json.loads(data[1:].rstrip(b"\x00"))
            except ValueError:
                return data[0], data[1:]

    async def cmi(self, timeout=8):
        if self.w is None:
            await self.upgrade(timeout)
        self.w.write(frame(2, CMI))
        await self.w.drain()
        t, _ = await self.read_ship(timeout)
        if t != 0:
            raise ConnectionError("no CMI from the gateway")
        return self

    async def pending(self, timeout=8):
        """Up to the gateway's hello, answered as a peer that waits: held pending."""
        await self.cmi(timeout)
        t, m = await self.read_ship(timeout)
        phase = m["connectionHello"][0]["phase"] if t == 1 else None
        self.w.write(hello("pending", 60000))
        await self.w.drain()
        return phase

    async def data_exchange(self, ship_id="Intruder-1", timeout=8):
        """The whole SHIP handshake as a peer the gateway trusts (our certificate must be)."""
        await self.cmi(timeout)
        t, m = await self.read_ship(timeout)
        if t != 1 or m["connectionHello"][0]["phase"] != "ready":
            raise ConnectionError("not trusted: %r" % (m,))
        self.send(hello("ready", 60000))
        proto = [{"version": [{"major": 1}, {"minor": 0}]}, {"formats": [{"format": ["JSON-UTF8"]}]}]
        self.send(ship(1, {"messageProtocolHandshake": [{"handshakeType": "announceMax"}] + proto}))
        await self.w.drain()
        want = ("messageProtocolHandshake", "connectionPinState")
        for name in want:
            t, m = await self.read_ship(timeout)
            if t != 1 or name not in m:
                raise ConnectionError("expected %s, got %r" % (name, m))
            if name == "messageProtocolHandshake":
                self.send(ship(1, {"messageProtocolHandshake": [{"handshakeType": "select"}] + proto}))
        self.send(ship(1, {"connectionPinState": [{"pinState": "none"}]}))
        self.send(ship(1, {"accessMethods": [{"id": ship_id}]}))
        await self.w.drain()
        return self

    def send(self, data):
        self.w.write(data)

    async def closed_within(self, timeout):
        """True when the gateway ends the connection (close frame or EOF) within timeout,
        reading (and dropping) whatever comes before."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        try:
            while True:
                left = end - loop.time()
                if left <= 0:
                    return False
                data = await asyncio.wait_for(self.r.read(4096), left)
                if not data:
                    return True
        except asyncio.TimeoutError:
            return False
        except (ConnectionError, ssl.SSLError, OSError):
            return True

    def close(self):
        try:
            if self.w is not None:
                self.w.transport.abort()
            elif getattr(self, "sock", None) is not None:
                self.sock.close()
        except Exception:
            pass


async def flood_pings_without_reading(port, cert=None, seconds=3.0, intruder=None):
    """Through CMI (or on intruder as it is), then pings until the gateway stops taking them;
    never reads. Returns the Intruder (still open), how many pings went out, and whether the
    gateway stopped taking them (its own sends to us blocked)."""
    a = intruder
    if a is None:
        a = Intruder(port, cert, rcvbuf=2048)
        await a.cmi()
    ping = frame(9, b"p" * 125)
    sent = 0
    blocked = False
    a.w.transport.pause_reading()  # never read again
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        a.w.write(ping * 16)
        sent += 16
        try:
            await asyncio.wait_for(a.w.drain(), 0.5)
        except asyncio.TimeoutError:
            blocked = True  # the gateway no longer reads either: its send to us is stuck
            break
    return a, sent, blocked
