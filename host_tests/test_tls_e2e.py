"""SHIP TLS end to end: lib/ship/tlsctx.py under MicroPython against CPython ssl peers.

Server role: host_tests/mpy/tls_server.py (one server_context, two listeners: the handler
calls take_peer_ski() itself / uses tlsctx.handshake()). CPython clients probe TLS versions,
cipher suites, client certificates. After every refused client a good client must still be
served. Client role: host_tests/mpy/tls_client.py against a CPython server that requires a
client certificate.

Findings pinned here (MicroPython unix wheel, mbedTLS 3.6.6, OpenSSL 3.0 peer):
- a default CPython client (TLS 1.3 allowed) lands on TLS 1.2: 1.3 is not compiled in;
- TLS 1.0/1.1 are refused with alert 70 (mbedTLS 3.x has no code for them); a 1.3-only client
  gets alert 40;
- only the two SHIP suites are accepted; RSA, AES-256 and SHA-1 suites get alert 40;
- a refused certificate (forged SKI, RSA, P-384, no SKI extension) gets alert 49 and the
  server sees OSError(-12288, MBEDTLS_ERR_X509_FATAL_ERROR);
- a client without a certificate completes the handshake (CERT_OPTIONAL): the server must drop it;
- the ECDHE group is always secp256r1: the server refuses offers without it (its own
  certificate is P-256; X25519 is not compiled in) and prefers it otherwise;
- the verify callback runs in the task doing the connection's first I/O: asyncio.wait_for_ms()
  moves that I/O, and so the recorded SKI, into a task of its own.
"""

import os
import queue
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings

import pytest

import certs
from support import mpyrun
from support.paths import MPY_SCRIPTS

SERVER = os.path.join(MPY_SCRIPTS, "tls_server.py")
CLIENT = os.path.join(MPY_SCRIPTS, "tls_client.py")
TIMEOUT = 5.0
SERVER_TIMEOUT_MS = 1500  # the server's first-read timeout: silent clients are dropped after it

GCM = "ECDHE-ECDSA-AES128-GCM-SHA256"
CBC = "ECDHE-ECDSA-AES128-SHA256"
MBED = {GCM: "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", CBC: "TLS-ECDHE-ECDSA-WITH-AES-128-CBC-SHA256"}


class Peer:
    """A certificate and key as DER and PEM files, plus the SKI recomputed by tools/certs.py."""

    def __init__(self, tmp, name, pair):
        self.der, self.key_der = pair
        self.cert_path = str(tmp / (name + ".der"))
        self.key_path = str(tmp / (name + ".key.der"))
        with open(self.cert_path, "wb") as f:
            f.write(self.der)
        with open(self.key_path, "wb") as f:
            f.write(self.key_der)
        cert_pem, key_pem = certs.to_pem(self.der, self.key_der)
        self.pem = str(tmp / (name + ".pem"))
        with open(self.pem, "wb") as f:
            f.write(cert_pem + key_pem)
        try:
            self.ski = certs.ski_hex(self.der)
        except ValueError:
            self.ski = None


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pki")
    good = Peer(tmp, "client", certs.create(cn="Test-CEM"))
    return {
        "server": Peer(tmp, "server", certs.create(cn="Test-EVSE")),
        "client": good,
        "forged": Peer(tmp, "forged", certs.forged_cert(bytes.fromhex(good.ski))),
        "rsa": Peer(tmp, "rsa", certs.rsa_cert()),
        "noski": Peer(tmp, "noski", certs.cert_without_ski()),
        "p384": Peer(tmp, "p384", certs.p384_cert()),
    }


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The MicroPython server process and its log, read by a thread.

    (mpyrun.wait_line() selects on the pipe and then reads through a buffered text wrapper, so a
    second line that arrived in the same chunk stays invisible to select(); a reader thread and
    a queue do not have that problem.)
    """

    def __init__(self, proc, port_take, port_helper):
        self.proc = proc
        self.ports = {"take": port_take, "helper": port_helper}
        self.log = []
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, pattern):
        """Next server log line matching pattern (lines before it are skipped)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError("no server line matching %r; log:\n%s" % (pattern, "".join(self.log[-30:])))
            self.log.append(line)
            m = rx.search(line)
            if m:
                return m


@pytest.fixture(scope="module")
def server(pki):
    # The unix port has no getsockname(): pick free ports here and retry if one got taken.
    srv = pki["server"]
    for _ in range(3):
        ports = (_free_port(), _free_port())
        if ports[0] == ports[1]:
            continue
        proc = mpyrun.start(SERVER, heapsize="256K",
                            args=[srv.cert_path, srv.key_path, *map(str, ports), str(SERVER_TIMEOUT_MS)])
        s = Server(proc, *ports)
        try:
            s.expect(r"^READY ")
        except AssertionError:
            proc.kill()
            proc.wait()
            continue
        yield s
        proc.terminate()
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        while True:
            try:
                line = s.lines.get(timeout=TIMEOUT)
            except queue.Empty:
                break
            if line is None:
                break
            s.log.append(line)
        assert "Traceback" not in "".join(s.log)
        return
    pytest.fail("MicroPython TLS server did not start")


def client_ctx(peer=None, ciphers=None, min_v=None, max_v=None, groups=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # SHIP: self-signed peers, trust by SKI
    if peer is not None:
        ctx.load_cert_chain(peer.pem)
    if ciphers:
        ctx.set_ciphers(ciphers)
    if min_v:
        ctx.minimum_version = min_v
    if max_v:
        ctx.maximum_version = max_v
    return ctx


def talk(ctx, port):
    """Handshake, send a line, read until EOF. Returns (version, cipher, reply text)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw) as s:
            version, cipher = s.version(), s.cipher()[0]
            s.sendall(b"hello\n")
            data = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except (ConnectionResetError, ssl.SSLEOFError):
                    break
                if not chunk:
                    break
                data += chunk
            return version, cipher, data.decode()


def assert_good(server, pki, kind="take", ctx=None, cipher=GCM):
    client = pki["client"]
    version, got_cipher, reply = talk(ctx or client_ctx(client), server.ports[kind])
    assert version == "TLSv1.2"
    assert got_cipher == cipher
    assert reply == "SKI %s\nCIPHER %s TLSv1.2\n" % (client.ski, MBED[cipher])
    server.expect(r"^OK %s %s TLSv1\.2$" % (client.ski, MBED[cipher]))
    server.expect(r"^PENDING 0 0$")


def assert_refused(server, pki, ctx, alert, server_error, kind="take"):
    with pytest.raises(ssl.SSLError) as ei:
        talk(ctx, server.ports[kind])
    assert alert in str(ei.value)
    server.expect(r"^FAIL .*%s" % server_error)
    server.expect(r"^PENDING 0 0$")
    # the server keeps serving after a refused client
    assert_good(server, pki, kind)


# --- server role ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["take", "helper"])
def test_good_client_default_context_gets_tls12_gcm(server, pki, kind):
    # CPython's default offer includes TLS 1.3 and both SHIP suites: the server settles on 1.2
    # and prefers GCM.
    assert_good(server, pki, kind)


def test_good_client_tls12_max_both_suites(server, pki):
    client = pki["client"]
    assert_good(server, pki, ctx=client_ctx(client, max_v=ssl.TLSVersion.TLSv1_2))
    # the mandatory CBC suite alone (SHIP 9.1)
    assert_good(server, pki, ctx=client_ctx(client, ciphers=CBC, max_v=ssl.TLSVersion.TLSv1_2), cipher=CBC)
    # server preference: GCM even when the client lists CBC first
    ctx = client_ctx(client, ciphers=CBC + ":" + GCM, max_v=ssl.TLSVersion.TLSv1_2)
    assert_good(server, pki, ctx=ctx, cipher=GCM)


def test_silent_clients_time_out(server, pki):
    # A TCP client that never sends a ClientHello, and a TLS client that completes the handshake
    # but never sends its line: both are dropped after the server's timeout, on both listeners.
    c = pki["client"]
    raws = [socket.create_connection(("127.0.0.1", server.ports[k]), timeout=TIMEOUT) for k in ("take", "helper")]
    tlss = []
    for k in ("take", "helper"):
        raw = socket.create_connection(("127.0.0.1", server.ports[k]), timeout=TIMEOUT)
        tlss.append(client_ctx(c).wrap_socket(raw))  # handshake done, nothing sent
    try:
        # the four connections end concurrently: the table is empty once the last one is gone
        for _ in range(4):
            server.expect(r"^FAIL .*(timeout|TimeoutError)")
            last = server.expect(r"^PENDING ")
        assert last.string.strip() == "PENDING 0 0"
        for s in raws:
            assert s.recv(1) == b""
        for s in tlss:
            assert s.recv(1) == b""
    finally:
        for s in raws + tlss:
            s.close()
    assert_good(server, pki)


@pytest.mark.parametrize("kind", ["take", "helper"])
def test_client_without_certificate_is_dropped(server, pki, kind):
    # CERT_OPTIONAL lets the handshake finish; the handler sees no SKI and closes.
    version, _, reply = talk(client_ctx(None), server.ports[kind])
    assert version == "TLSv1.2"
    assert reply == ""
    server.expect(r"^NOCERT$")
    server.expect(r"^PENDING 0 0$")
    assert_good(server, pki, kind)


def _tls11_ctx(peer):
    # OpenSSL 3 offers TLS 1.1 only at security level 0.
    ctx = client_ctx(peer, ciphers="DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def test_tls11_client_refused(server, pki):
    ctx = _tls11_ctx(pki["client"])
    try:
        talk(ctx, server.ports["take"])
    except ssl.SSLError as e:
        if "NO_PROTOCOLS_AVAILABLE" in str(e) or "no protocols available" in str(e):
            pytest.skip("local OpenSSL cannot offer TLS 1.1: %s" % e)
        assert "PROTOCOL_VERSION" in str(e) or "protocol version" in str(e)
    else:
        pytest.fail("TLS 1.1 handshake succeeded")
    server.expect(r"^FAIL .*MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION")
    server.expect(r"^PENDING 0 0$")
    assert_good(server, pki)


def test_tls13_only_client_refused(server, pki):
    ctx = client_ctx(pki["client"], min_v=ssl.TLSVersion.TLSv1_3)
    assert_refused(server, pki, ctx, "HANDSHAKE_FAILURE", "MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE")


@pytest.mark.parametrize(
    "ciphers",
    [
        "AES128-GCM-SHA256:AES128-SHA256:AES128-SHA",  # static RSA key exchange
        "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA256",  # RSA authentication
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-CHACHA20-POLY1305",
    ],
)
def test_non_ship_cipher_offer_refused(server, pki, ciphers):
    ctx = client_ctx(pki["client"], ciphers=ciphers, max_v=ssl.TLSVersion.TLSv1_2)
    assert_refused(server, pki, ctx, "HANDSHAKE_FAILURE", "MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE")


@pytest.mark.parametrize("kind", ["take", "helper"])
@pytest.mark.parametrize("name", ["forged", "rsa", "noski", "p384"])
def test_bad_client_certificate_refused_in_handshake(server, pki, name, kind):
    # forged: a fresh key with the good client's SKI extension copied in (SHIP-TS-SEC-01).
    # The verify callback refuses it: alert 49, and no SKI is ever recorded.
    ctx = client_ctx(pki[name])
    assert_refused(server, pki, ctx, "ACCESS_DENIED", r"-12288, 'MBEDTLS_ERR_X509_FATAL_ERROR'", kind)


def test_rsa_client_cert_with_rsa_suites_refused(server, pki):
    ctx = client_ctx(pki["rsa"], ciphers="ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256",
                     max_v=ssl.TLSVersion.TLSv1_2)
    assert_refused(server, pki, ctx, "HANDSHAKE_FAILURE", "MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE")


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
@pytest.mark.parametrize(
    "groups,ok",
    [("prime256v1", True), ("X25519:secp384r1:prime256v1", True), ("X25519", False), ("secp384r1", False)],
)
def test_ecdhe_group_is_p256(server, pki, groups, ok):
    # CPython's ssl cannot set or read the ECDHE group; openssl s_client can.
    client = pki["client"]
    p = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.ports["take"], "-tls1_2",
         "-groups", groups, "-cert", client.pem, "-key", client.pem],
        input=b"hello\n", capture_output=True, timeout=10,
    )
    out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    if ok:
        assert "Server Temp Key: ECDH, prime256v1" in out
        server.expect(r"^OK %s " % client.ski)
    else:
        assert "alert handshake failure" in out
        server.expect(r"^FAIL .*MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE")
    server.expect(r"^PENDING 0 0$")
    assert_good(server, pki)


def test_server_still_serves_at_the_end(server, pki):
    for kind in ("take", "helper"):
        assert_good(server, pki, kind)
    assert server.proc.poll() is None


def test_pending_table_is_bounded(pki, tmp_path):
    # The callback never refuses a certificate for lack of room (whoever accepts connections
    # bounds them: ship/admission.py); entries of ended tasks are pruned when one is added.
    # Driven directly, as mbedTLS would call it.
    code = """
import asyncio
from ship import tlsctx
with open(%r, "rb") as f:
    der = f.read()
SKI = %r
results = []

async def conn(i, release):
    results.append((i, tlsctx._verify(memoryview(der), 0)))
    await release.wait()

async def main():
    release = asyncio.Event()
    ts = [asyncio.create_task(conn(i, release)) for i in range(6)]
    await asyncio.sleep_ms(10)
    print("FIRST", sorted(results), len(tlsctx._pending))
    release.set()
    await asyncio.gather(*ts)
    # all six tasks ended without take_peer_ski(): the next handshake prunes them
    results.clear()
    t = asyncio.create_task(conn(9, release))
    await t
    print("AFTER", results, len(tlsctx._pending))
    print("DEPTH1", tlsctx._verify(memoryview(b"junk"), 1), "BAD", tlsctx._verify(memoryview(b"junk"), 0))
    print("NONBUF", tlsctx._verify(None, 0))
    # outside any task (blocking use) the key is None
    print("SYNC", tlsctx._verify(memoryview(der), 0), tlsctx.take_peer_ski() == SKI, tlsctx.take_peer_ski())
    # client role: an expected SKI turns any other certificate into a refusal
    async def exp(want):
        tlsctx.expect_peer_ski(want)
        return tlsctx._verify(memoryview(der), 0), tlsctx.take_peer_ski()
    print("EXPECT", await asyncio.create_task(exp("00" * 20)), await asyncio.create_task(exp(SKI)) == (0, SKI))
    print("LEFT", len(tlsctx._pending), len(tlsctx._expect))

asyncio.run(main())
""" % (pki["client"].cert_path, pki["client"].ski)
    r = mpyrun.run_code(code, tmp_path).check()
    out = r.stdout.splitlines()
    assert out[0] == "FIRST [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0)] 6"
    assert out[1] == "AFTER [(9, 0)] 1"
    assert out[2] == "DEPTH1 0 BAD -9984"
    assert out[3] == "NONBUF -9984"
    assert out[4] == "SYNC 0 True None"
    assert out[5] == "EXPECT (-9984, None) True"
    # conn 9's entry (its task ended without taking it) went at the next handshake's entry
    assert out[6] == "LEFT 0 0"


# --- client role ------------------------------------------------------------------------------


class CPythonServer:
    """One-connection ssl server that requires and pins the MicroPython client's certificate."""

    def __init__(self, server_peer, client_peer):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(server_peer.pem)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_peer.der)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(GCM + ":" + CBC)
        self.ctx = ctx
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.result = {}
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        r = self.result
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(TIMEOUT)
            with self.ctx.wrap_socket(conn, server_side=True) as s:
                r["peer_ski"] = certs.ski_hex(s.getpeercert(binary_form=True))
                r["cipher"] = s.cipher()[0]
                r["line"] = s.recv(1024)
                s.sendall(b"SERVER-OK\n")
        except Exception as e:  # reported to the test
            r["error"] = e
        finally:
            self.sock.close()

    def join(self):
        self.thread.join(2 * TIMEOUT)
        assert not self.thread.is_alive()
        return self.result


def _run_client(pki, mode, expect=None):
    c = pki["client"]
    srv = CPythonServer(pki["server"], c)
    args = [c.cert_path, c.key_path, str(srv.port), mode] + ([expect] if expect else [])
    r = mpyrun.run(CLIENT, heapsize="256K", args=args, timeout=20).check()
    return r.stdout.splitlines(), srv.join()


@pytest.mark.parametrize("mode", ["take", "expect", "expect-take"])
def test_micropython_client_gets_server_ski(pki, mode):
    expect = pki["server"].ski if mode.startswith("expect") else None
    out, srv = _run_client(pki, mode, expect)
    assert "SKI %s" % pki["server"].ski in out
    assert "CIPHER TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256 TLSv1.2" in out
    assert "REPLY SERVER-OK" in out
    assert "PENDING 0 0" in out
    assert "error" not in srv, srv
    assert srv["peer_ski"] == pki["client"].ski  # our certificate reached the server
    assert srv["line"] == b"hello from micropython\n"


@pytest.mark.parametrize("mode", ["expect", "expect-take"])
def test_micropython_client_refuses_unexpected_server_before_sending(pki, mode):
    out, srv = _run_client(pki, mode, pki["client"].ski)  # not the server's SKI
    assert "REFUSED -12288" in out
    assert "PENDING 0 0" in out
    # the handshake died at the server's Certificate: no application byte left the client
    assert "line" not in srv
    assert isinstance(srv.get("error"), (ssl.SSLError, ConnectionError, OSError))


def test_wait_for_hides_the_ski_from_the_caller(pki):
    # The pitfall tlsctx.handshake() exists for: asyncio.wait_for_ms() runs the write + drain (and
    # so the handshake) in a task of its own, and take_peer_ski() in the caller finds nothing.
    out, srv = _run_client(pki, "wrapped")
    assert "SKI None" in out
    assert "PENDING 0 0" in out
