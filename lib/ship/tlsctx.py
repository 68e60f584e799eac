# TLS contexts for SHIP (ship.md 2.2) on MicroPython's tls module (mbedTLS).
#
# Findings on the unix wheel (mbedTLS 3.6.6; pinned by host_tests/test_tls_e2e.py):
# - Only TLS 1.2 is ever negotiated, and there is no minimum/maximum version API to need:
#   TLS 1.3 is not compiled in (nor on ESP32 by default); mbedTLS 3.x has no TLS 1.0/1.1 code,
#   so such clients get alert 70. A client allowing 1.3 lands on 1.2; a 1.3-only client gets
#   alert 40. SHIP 9.1 names only TLS 1.2 suites, so this is what SHIP wants.
# - _CIPHERS is the whole offer, GCM preferred (as Go servers do). RSA, AES-256, SHA-1 and PSK
#   suites are left out, so RSA-only or non-SHIP offers fail with alert 40.
# - ECDHE groups cannot be restricted: there is no Python API for them (mbedtls_ssl_conf_groups
#   is not bound), nor for signature algorithms. It is not needed either. As server, mbedTLS
#   takes the first group of its own list (secp256r1; X25519 is not compiled in) that the
#   client offers, and its TLS 1.2 server refuses clients that do not offer the curve of its
#   own certificate, so with our P-256 certificate ECDHE is always secp256r1. As client we
#   offer secp256r1, secp384r1, secp521r1 and the server chooses (Go and mbedTLS put P-256
#   first among these; a larger curve would only cost time). (Groups as seen on the unix wheel; the ESP32
#   build compiles its own curve list.) The certificate curve is what SHIP pins, and
#   cert.peer_ski refuses anything but P-256 in the verify callback.
# - verify_mode CERT_OPTIONAL requests a client certificate without a CA list and lets a client
#   without one through; the caller notices by getting no SKI. CERT_REQUIRED would need a CA
#   (MBEDTLS_ERR_SSL_CA_CHAIN_REQUIRED) and would enforce validity dates.
# - No getpeercert() on the unix wheel and no session resumption: the callback sees the peer
#   certificate on every handshake (SHIP-TS-SEC-02 comes for free).
import asyncio
import socket
import tls

from compat import const
from ship.cert import peer_ski

_CIPHERS = const(("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", "TLS-ECDHE-ECDSA-WITH-AES-128-CBC-SHA256"))

# Handshakes in flight whose SKI was not yet taken are bounded by whoever accepts connections
# (ship/admission.py: the pre-auth slots), not here: the callback never refuses a certificate
# for lack of room, so other peers' unfinished handshakes cannot keep a trusted peer out.
# Entries of tasks that ended without take_peer_ski() are pruned whenever one is added.
_PRUNE_AT = const(8)  # client role: expectations pruned past this many

# What the callback returns to refuse a certificate. It must be a negative mbedTLS code:
# mbedTLS hands the value up unchanged, and a positive one would come out of mbedtls_ssl_read()
# as a byte count (seen as MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE one read later). VERIFY_FAILED
# (-0x2700) is turned into MBEDTLS_ERR_X509_FATAL_ERROR (-0x3000) even under CERT_OPTIONAL, sends
# alert 49 (access denied) and fails the connection's read/drain with OSError(-12288).
_REJECT = const(-0x2700)

# Keyed by the asyncio task in which the handshake ran (None outside asyncio): the callback
# only gets the certificate, and the task is the one thing that tells connections apart. The
# handshake runs inside whichever read/drain first touches the socket, so wait_for() and
# wait_for_ms(), which wrap a coroutine in a task of their own, move it out of the handler's
# task and take_peer_ski() in the handler then finds nothing (fails closed). Drive the first
# I/O in the handler's task, or with handshake() below, or create the task yourself and pass
# it to take_peer_ski(task). There is no safe way to guess: a connection without certificate
# must never be credited with another connection's SKI.
_pending = {}  # task -> SKI hex of the peer's depth-0 certificate
_expect = {}  # task -> SKI hex the peer must have (client role)

# on_cert(task, ski) -> bool, set by the server's owner: told of each leaf certificate inside
# the handshake (admission control); False refuses it (alert 49). Must not raise.
on_cert = None


def _key():
    try:
        return asyncio.current_task()
    except RuntimeError:  # blocking wrap_socket outside an event loop
        return None


def _prune():
    # Entries of tasks that ended without take_peer_ski() (handshake failed after the callback,
    # handler crashed): drop them before refusing anyone for lack of room.
    for d in (_pending, _expect):
        for t in list(d):
            if t is not None and t.done():
                del d[t]


def _verify(cert, depth):
    # Called from inside mbedTLS with cert = a memoryview (on the C stack) of mbedTLS memory:
    # keep no reference to it. Must not raise (an exception would unwind through the C
    # handshake) and must return an int (mbedTLS gets it via mp_obj_get_int). Certificates
    # above the leaf are irrelevant: SHIP trusts by SKI, and the leaf's key is the one that
    # signs CertificateVerify.
    if depth:
        return 0
    try:
        ski = peer_ski(cert)
        key = _key()
        want = _expect.get(key)
        if want is not None and want != ski:
            return _REJECT
        if key not in _pending and _pending:
            _prune()
        if on_cert is not None and want is None and not on_cert(key, ski):
            return _REJECT
        _pending[key] = ski
        return 0
    except Exception:  # CertError, but also MemoryError: refusing is the safe side
        return _REJECT


def expect_peer_ski(ski, task=None):
    """Client role: refuse, inside the handshake, a server whose SKI is not ski (40 hex digits).

    Register before the connection's first write, from the task that does the first write and
    its drain (task defaults to the current one); bound that task's time from outside (a
    wait_for around the whole connection coroutine), not by wrapping the drain alone. The
    refusal happens at the server's Certificate message, before any application byte is sent
    (ship.md 2.2). The entry ends with take_peer_ski() for the same task, or when the task ends.
    """
    if task is None:
        task = _key()
    if task not in _expect and len(_expect) >= _PRUNE_AT:
        _prune()
    _expect[task] = ski


def take_peer_ski(task=None):
    """SKI (40 hex digits) of the peer certificate seen in task's handshake, or None.

    task defaults to the current task, which is right when the handler itself awaited the
    first read/drain. Call it once the handshake has completed (after the first successful
    read, or write + drain): the callback runs before CertificateVerify, so only a finished
    handshake proves the peer holds the key. None means the peer sent no certificate: drop
    the connection. Call it on failure paths too, so the entry does not linger.
    """
    if task is None:
        task = _key()
    _expect.pop(task, None)
    return _pending.pop(task, None)


async def handshake(aw, timeout_ms, expect=None):
    """Run aw, a coroutine doing the connection's first I/O, with a timeout and attribute the SKI.

    Returns (result of aw, peer SKI or None). aw must do all the I/O up to the end of the TLS
    handshake: on a server the first read; on a client the first write *and* its drain (the
    write alone already runs handshake steps, and with a quick peer can finish it). aw runs in
    a task of its own, which is the key the verify callback records under. With expect (client
    role: the SKI we dialled), a server with another SKI is refused inside the handshake,
    before any application byte is sent. Raises what aw raises: OSError for a failed handshake
    (-12288 when the certificate was refused), asyncio.TimeoutError.
    """
    t = asyncio.create_task(aw)
    if expect is not None:
        expect_peer_ski(expect, t)
    try:
        r = await asyncio.wait_for_ms(t, timeout_ms)
    finally:
        _expect.pop(t, None)
        ski = _pending.pop(t, None)
    return r, ski


# Nagle's algorithm off (TCP_NODELAY; the unix port lacks the names, lwIP and Linux share the
# numbers). With it on, a TLS record written while an earlier one is unacknowledged waits for
# the peer's ACK, which a peer may delay (40 ms on Linux, up to 250 ms with lwIP): the
# server's handshake flight (several records), and every SHIP message sent right after
# another (hello after CMI, a SPINE reply after its header), cost a delayed ACK each.
_NODELAY = (getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "TCP_NODELAY", 1), 1)


_ONE = bytearray(1)  # first()'s byte, copied out at once: one for every connection


class _TlsStream(asyncio.StreamReader):
    # Reads wait on the TCP socket underneath, not on the TLS socket. The unix port's poll()
    # steps through objects without a file descriptor (a TLS socket is one) in 1 ms sleeps,
    # even for a zero timeout, so while a reader waited on one, every task switch of the whole
    # gateway cost 1 ms (about 4 ms per SHIP message). A read that finds no record waits for
    # TCP bytes, which is right after the handshake; inside the server's handshake mbedTLS
    # could want to write instead (a full send buffer for its first flight, which no socket
    # has), and then the connection's TLS deadline ends it. Writes stay with Stream.
    _peek = -1  # the byte first() read, which the next readinto() returns

    def __init__(self, t, sock, e):
        super().__init__(t, e)
        self._sock = sock
        self._more = False  # the last read filled the buffer: mbedTLS may hold the record's rest

    def first(self):
        """Server: run the TLS handshake to its end, in the caller's task (the verify callback
        tells connections apart by it), and wait for the peer's first application byte, which
        the next readinto() returns. mbedTLS does not tell when its handshake is done; a byte of
        application data is the proof (a SHIP client sends its upgrade request at once). So the
        peer's certificate is judged before anything of the connection needs a buffer of its
        own. Returns 0 when the peer closed first; raises OSError as a read does."""
        n = yield from self.readinto(_ONE)
        if n:
            self._peek = _ONE[0]
        return n

    def readinto(self, buf):  # awaited like Stream.readinto (a generator, as there)
        if self._peek >= 0:
            buf[0] = self._peek
            self._peek = -1
            return 1
        if self._more:
            yield from asyncio.core.sleep_ms(0)  # the others' turn first, as Stream gives it
        else:
            yield asyncio.core._io_queue.queue_read(self._sock)
        while True:
            r = self.s.readinto(buf)
            if r is not None:
                self._more = r == len(buf)
                return r
            yield asyncio.core._io_queue.queue_read(self._sock)


def wrap_socket(s, ctx, server_side, server_hostname, e):
    """A TLS stream over s, a connected TCP socket (an accepted one; e: the stream's extra
    info, {"peername": addr}). Nagle is turned off on s first: a TLS socket has no setsockopt.
    The handshake runs in the first read/drain, as with asyncio's ssl=, or in first()."""
    try:
        s.setsockopt(*_NODELAY)
    except (OSError, TypeError, AttributeError):
        pass  # a port without TCP options: correct, only slower
    t = ctx.wrap_socket(s, server_side=server_side, server_hostname=server_hostname, do_handshake_on_connect=False)
    t.setblocking(False)
    return _TlsStream(t, s, e)


def wrap(raw, ctx, server_side, server_hostname=None):
    """A TLS stream over raw, a connected asyncio stream (open_connection's without ssl=)."""
    return wrap_socket(raw.s, ctx, server_side, server_hostname, raw.e)


def _context(protocol, cert_der, key_der):
    ctx = tls.SSLContext(protocol)
    ctx.load_cert_chain(cert_der, key_der)
    ctx.set_ciphers(_CIPHERS)
    ctx.verify_mode = tls.CERT_OPTIONAL
    ctx.verify_callback = _verify
    return ctx


def server_context(cert_der, key_der):
    """Server context: requests any client certificate, records its SKI per asyncio task.

    Create it once at start-up and reuse it for every connection (mbedTLS config, DRBG and the
    parsed certificate are ~6 KB; re-creating them fragments the heap).
    """
    return _context(tls.PROTOCOL_TLS_SERVER, cert_der, key_der)


def client_context(cert_der, key_der):
    """Client context: sends our certificate, records the server's SKI; no chain validation.

    Use with server_hostname=... (any name; the mismatch is ignored under CERT_OPTIONAL). The
    handshake runs inside the first write() and the drain() after it, in the task that calls
    them. To refuse a wrong server before any application byte leaves, call
    expect_peer_ski(ski) in that task first (or pass expect= to handshake()).
    """
    return _context(tls.PROTOCOL_TLS_CLIENT, cert_der, key_der)
