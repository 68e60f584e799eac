"""SHIP end to end: the gateway under the MicroPython unix port, real TLS on 127.0.0.1, against
the independent CPython test CEM (tools/testcem)."""

import asyncio
import binascii
import os
import re
import socket
import ssl
import struct

import certs
import pytest
from support import mpyrun
from support.bounded import runner
from support.gateway_proc import FAST_TIMERS, Gateway
from support.paths import HOST_TESTS, MPY_SCRIPTS
from testcem.identity import Identity
from testcem.ship import ShipPeer
from testcem.shipmsg import CLOSE_NORMAL, CLOSE_REJECTED, ShipError
from testcem.shipserver import ShipServer
from testcem.tls import client_context
from test_ws_codec import frame as ws_frame

HOST = "127.0.0.1"
CEM_ID = "TestCEM-000000001"


run = runner(30.0)


@pytest.fixture(scope="module")
def cem():
    return Identity.generate(common_name="TestCEM")


@pytest.fixture(scope="module")
def gw(tmp_path_factory, cem):
    g = Gateway(tmp_path_factory.mktemp("gw"))
    g.trust(cem.ski)
    g.start()
    yield g
    g.stop()


def peer(identity, **kw):
    kw.setdefault("ship_id", CEM_ID)
    kw.setdefault("timeout", 8)
    return ShipPeer(identity, **kw)


async def connected(gw, identity, **kw):
    p = peer(identity, **kw)
    await p.dial(HOST, gw.port, expected_ski=gw.ski)
    return p


def crc_line(payload):
    return r"datagram %d bytes crc32 %08x" % (len(payload), binascii.crc32(payload) & 0xFFFFFFFF)


def datagram_bytes(size):
    """A compact SPINE datagram of exactly `size` bytes (wire dialect)."""
    head = (b'{"datagram":[{"header":[{"specificationVersion":"1.3.0"},{"msgCounter":7},{"cmdClassifier":"notify"}]},'
            b'{"payload":[{"cmd":[[{"deviceDiagnosisHeartbeatData":[{"heartbeatTimeout":"')
    tail = b'"}]}]]}]}]}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def good_session(gw, cem):
    async def go():
        p = await connected(gw, cem)
        await p.recv_datagram(timeout=5)
        assert await p.close()

    run(go())


# ---- handshake and data ----------------------------------------------------------------------


def test_server_handshake_to_data_exchange(gw, cem):
    async def go():
        mark = gw.mark()
        p = await connected(gw, cem)
        assert p.handshake_complete
        assert p.peer_ship_id == gw.ship_id
        assert p.tls_version == "TLSv1.2"
        assert p.cipher in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256")
        assert p.peer_ski == gw.ski
        # the gateway opens SPINE with a detailed-discovery read, as every SPINE node does
        first = await p.recv_datagram(timeout=5)
        assert first["header"]["cmdClassifier"] == "read"
        assert first["header"]["addressSource"]["device"].startswith("d:_n:Test_GW-")
        payload = datagram_bytes(300)
        await p.send_raw(b"\x02" + b'{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":' + payload + b"}]}")
        gw.wait_for(crc_line(payload), start=mark)
        assert await p.close()  # connectionClose announce -> confirm
        gw.wait_for(r"closed \(4001", start=mark)

    run(go())


def test_handshake_messages_match_capture(tmp_path, cem):
    """What the gateway sends in the handshake is byte for byte what the reference EVSE sent."""
    from support.paths import CAPTURES

    lines = open(os.path.join(CAPTURES, "00_ship_handshake_evse_side.txt")).read().splitlines()
    expected = []
    for line in lines:
        if line.startswith("Send "):
            body = line[5:]
            expected.append(b"\x00\x00" if body == "ship init" else b"\x01" + body.encode())
    # the SHIP timer values are part of the bytes (waiting 60000): no shortened timers here
    g = Gateway(tmp_path, ship={"timers_ms": {}})
    g.trust(cem.ski)
    g.start()
    try:

        async def go():
            p = await connected(g, cem, ship_id="Demo-ControlBox-123456789")
            await p.close()
            return [raw for d, raw in p.transcript if d == "recv" and raw[0] in (0, 1)]

        got = run(go())
    finally:
        g.stop()
    # the capture's EVSE had another SHIP ID
    expected = [e.replace(b"Demo-EVSE-234567890", g.ship_id.encode()) for e in expected]
    assert got == expected


def test_fragmented_10k_message_reassembled(gw, cem):
    async def go():
        mark = gw.mark()
        p = await connected(gw, cem)
        payload = datagram_bytes(10 * 1024)
        msg = b"\x02" + b'{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":' + payload + b"}]}"
        await p.send_raw(msg, fragment=1024)
        gw.wait_for(crc_line(payload), start=mark)
        # too big for the gateway's 16 KB message cap: closed with 1009, server lives on
        await p.send_raw(b"\x02" + b"x" * 17000, fragment=1024)
        await p.wait_closed(timeout=5)
        assert p.close_code == 1009

    run(go())
    good_session(gw, cem)


def test_pings_answered(gw, cem):
    async def go():
        p = await connected(gw, cem)
        for data in (b"", b"ship-ping", bytes(range(125))):
            rtt = await p.ping(data, timeout=3)
            assert rtt is not None
        await p.close()

    run(go())


def test_gateway_closes_on_unpairing(gw, cem, tmp_path):
    """Removing the pairing closes with connectionClose(removedConnection) and 4500."""
    other = Identity.generate(common_name="Removed")
    gw.trust(other.ski)

    async def go():
        p = await connected(gw, other)
        await p.recv_datagram(timeout=5)
        import json

        path = os.path.join(gw.data_dir, "trust.json")
        doc = json.load(open(path))
        del doc["trusted"][other.ski]
        with open(path + ".tmp", "w") as f:
            json.dump(doc, f)
        os.replace(path + ".tmp", path)
        m = await p.expect("connectionClose", timeout=5)
        assert m.get("reason") == "removedConnection"
        await p.wait_closed(timeout=5)
        return p.close_code

    assert run(go()) == 4500


# ---- trust ---------------------------------------------------------------------------------------


def test_untrusted_peer_pending_then_aborted_4452(gw):
    stranger = Identity.generate(common_name="Stranger")

    async def go():
        p = peer(stranger, hello_phase="ready")
        with pytest.raises(ShipError) as e:
            await p.dial(HOST, gw.port, expected_ski=gw.ski)
        return p, e.value

    p, err = run(go())
    assert err.close_code == CLOSE_REJECTED
    phases = [h.get("phase") for h in p.peer_hellos]
    assert phases == ["pending", "aborted"]
    gw.wait_for("pairing request from SKI %s" % stranger.ski)


def test_pending_peer_approved_by_user(gw):
    newcomer = Identity.generate(common_name="Newcomer")

    async def go():
        p = peer(newcomer, hello_phase="ready")
        task = asyncio.ensure_future(p.dial(HOST, gw.port, expected_ski=gw.ski))
        await asyncio.get_running_loop().run_in_executor(
            None, gw.wait_for, "pairing request from SKI %s" % newcomer.ski
        )
        assert os.path.exists(os.path.join(gw.data_dir, "pending.json"))
        gw.trust(newcomer.ski)  # what `gw trust add SKI` does
        await task
        assert p.handshake_complete
        await p.close()

    run(go())


def test_denied_peer_rejected(gw):
    import json

    bad = Identity.generate(common_name="Denied")
    path = os.path.join(gw.data_dir, "trust.json")
    doc = json.load(open(path))
    doc["denied"].append(bad.ski)
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f)
    os.replace(path + ".tmp", path)

    async def go():
        p = peer(bad)
        with pytest.raises(ShipError) as e:
            await p.dial(HOST, gw.port, expected_ski=gw.ski)
        return e.value

    assert run(go()).close_code == CLOSE_REJECTED


# ---- refused at TLS --------------------------------------------------------------------------------


def tls_refused(gw, ctx):
    """True when the gateway refuses the TLS handshake or drops the connection before SHIP."""
    with socket.create_connection((HOST, gw.port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="gw") as s:
                s.sendall(
                    b"GET /ship/ HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                    b"Sec-WebSocket-Protocol: ship\r\n\r\n"
                )
                data = s.recv(4096)
                return not data.startswith(b"HTTP/1.1 101")
        except (ssl.SSLError, ConnectionError, OSError):
            return True


def _ctx(cert=None, max_version=ssl.TLSVersion.TLSv1_2,
         ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = max_version
    ctx.set_ciphers(ciphers)
    if cert is not None:
        import tempfile

        cert_pem, key_pem = certs.to_pem(*cert)
        with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as f:
            f.write(cert_pem + key_pem)
        ctx.load_cert_chain(f.name)
        os.unlink(f.name)
    return ctx


def test_no_client_certificate_refused(gw, cem):
    assert tls_refused(gw, _ctx())
    gw.wait_for("no client certificate")
    good_session(gw, cem)


def test_forged_certificate_copying_trusted_ski_refused(gw, cem):
    forged = certs.forged_cert(bytes.fromhex(cem.ski))
    assert certs.ski_extension_hex(forged[0]) == cem.ski
    assert tls_refused(gw, _ctx(forged))
    good_session(gw, cem)


def test_rsa_peer_refused(gw, cem):
    assert tls_refused(gw, _ctx(certs.rsa_cert(), ciphers="ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA256"))
    good_session(gw, cem)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls11_refused(gw, cem):
    ctx = _ctx(certs.create(), ciphers="DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    assert tls_refused(gw, ctx)
    good_session(gw, cem)


# ---- bad frames and stalls ---------------------------------------------------------------------------

def frame(opcode, data=b"", fin=True, rsv=0, mask=True):
    """One client frame built by hand (the websockets library refuses to build broken ones)."""
    return ws_frame(opcode, data, fin, os.urandom(4) if mask else None, rsv)


BAD_FRAMES = [
    ("text frame", frame(1, b'{"x":1}'), 1003),
    ("unmasked client frame", frame(2, b"\x02xx", mask=False), 1002),
    ("reserved bit", frame(2, b"\x02xx", rsv=0x40), 1002),
    ("reserved opcode", frame(3, b"ab"), 1002),
    ("continuation without start", frame(0, b"ab"), 1002),
    ("fragmented ping", frame(9, b"ab", fin=False), 1002),
    ("oversized ping", frame(9, b"x" * 126), 1002),
    ("bad close code", frame(8, struct.pack("!H", 999)), 1002),
    ("close with one byte", frame(8, b"\x03"), 1002),
    ("close reason not UTF-8", frame(8, struct.pack("!H", 1000) + b"\xff\xfe"), 1007),
    ("new message inside a fragmented one", frame(2, b"\x02ab", fin=False) + frame(2, b"cd"), 1002),
]


@pytest.mark.parametrize("name,data,code", BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES])
def test_bad_frame_closed_with_code(gw, cem, name, data, code):
    assert _raw_frame_peer(gw, cem, data) == code
    good_session(gw, cem)


def _raw_frame_peer(gw, cem, header):
    async def go():
        p = await connected(gw, cem)
        await p.recv_datagram(timeout=5)
        p.write_raw(header)
        await p.wait_closed(timeout=5)
        return p.close_code

    return run(go())


def test_64bit_length_with_high_bit_refused(gw, cem):
    assert _raw_frame_peer(gw, cem, b"\x82\xff" + b"\x80" + b"\x00" * 7 + b"abcd") == 1002
    good_session(gw, cem)


def test_declared_oversized_frame_refused_before_payload(gw, cem):
    assert _raw_frame_peer(gw, cem, b"\x82\xff" + struct.pack("!Q", 1 << 30) + b"abcd") == 1009
    good_session(gw, cem)


@pytest.mark.parametrize("stop_after", ["tcp", "tls", "upgrade", "cmi", "hello"])
def test_stalled_peer_times_out(gw, cem, stop_after):
    """A peer that stops talking mid-handshake is closed by the gateway's timers."""

    async def go():
        if stop_after == "tcp":
            r, w = await asyncio.open_connection(HOST, gw.port)
            data = await asyncio.wait_for(r.read(100), 8)
            w.close()
            return data
        if stop_after == "tls":
            ctx = client_context(cem)
            r, w = await asyncio.open_connection(HOST, gw.port, ssl=ctx, server_hostname="gw")
            try:
                return await asyncio.wait_for(r.read(100), 8)
            except ConnectionError:
                return b""
            finally:
                w.close()
        p = peer(cem)
        await p.connect(HOST, gw.port, expected_ski=gw.ski)
        await p.upgrade()
        if stop_after in ("cmi", "hello"):
            await p.cmi()
        if stop_after == "hello":
            await p.hello()
        await p.wait_closed(timeout=8)
        return p.close_code

    code = run(go())
    if stop_after in ("tcp", "tls"):
        assert code == b""  # closed without a word
    else:
        assert code == CLOSE_NORMAL
    good_session(gw, cem)


def test_wrong_subprotocol_refused(gw, cem):
    async def go():
        p = peer(cem)
        await p.connect(HOST, gw.port, expected_ski=gw.ski)
        with pytest.raises(ShipError):
            await p.upgrade(subprotocols=("notship",), require_subprotocol=None)

    run(go())
    good_session(gw, cem)


# ---- gateway as client -----------------------------------------------------------------------------


def test_gateway_dials_cem(tmp_path):
    server_ident = Identity.generate(common_name="DialedCEM")

    async def go():
        srv = ShipServer(server_ident, ship_id="DialedCEM-1", timeout=8)
        await srv.start(HOST, 0)
        g = Gateway(tmp_path / "gwc", ship={"cem": {"host": HOST, "port": srv.port, "ski": server_ident.ski}})
        g.trust(server_ident.ski)
        await asyncio.get_running_loop().run_in_executor(None, g.start)
        try:
            srv.trusted = {g.ski}
            p = await srv.accept(timeout=15)
            assert p.handshake_complete
            assert p.peer_ski == g.ski
            assert p.peer_ship_id == g.ship_id
            first = await p.recv_datagram(timeout=5)
            assert first["header"]["cmdClassifier"] == "read"
            # a close announced by the CEM is confirmed by the gateway
            assert await p.close()
        finally:
            await srv.close()
            g.stop()

    run(go(), timeout=40)


# ---- liveness, pairing window, double connections ------------------------------------------------


def test_silent_peer_pinged_then_dropped(tmp_path, cem):
    """In data exchange a silent peer is pinged; one that answers stays, one that does not goes."""
    g = Gateway(tmp_path / "live", ship={"timers_ms": dict(FAST_TIMERS, idle=400, pong=400)})
    g.trust(cem.ski)
    g.start()
    try:

        async def go():
            alive = await connected(g, cem)
            await alive.recv_datagram(timeout=5)
            await asyncio.sleep(2.0)
            assert alive.pings and not alive.closed  # answered pings, still connected
            await alive.close()
            mute = await connected(g, cem, auto_pong=False)
            await mute.recv_datagram(timeout=5)
            await mute.wait_closed(timeout=5)
            return mute.close_code

        assert run(go()) == CLOSE_NORMAL
        g.wait_for("peer unresponsive")
    finally:
        g.stop()


def test_pairing_window_accepts_unknown_peer(tmp_path):
    g = Gateway(tmp_path / "window", ship={"pairing_window_s": 30})
    g.start()
    try:
        newcomer = Identity.generate(common_name="Window")

        async def go():
            p = await connected(g, newcomer)
            assert p.handshake_complete
            await p.close()

        run(go())
        import json

        doc = json.load(open(os.path.join(g.data_dir, "trust.json")))
        assert doc["trusted"][newcomer.ski]["by"] == "window"
    finally:
        g.stop()


def test_second_connection_from_same_peer_replaces_the_first(gw, cem):
    """Two incoming connections of one SKI: the newest stays, the older is closed with 1000."""

    async def go():
        first = await connected(gw, cem)
        await first.recv_datagram(timeout=5)
        second = await connected(gw, cem)
        await first.wait_closed(timeout=5)
        assert not second.closed
        await second.recv_datagram(timeout=5)
        assert await second.close()
        return first.close_code

    assert run(go()) == 1000


def test_gw_cem_tool_against_gateway(gw, tmp_path):
    """The installer's tool: dial, handshake, send a capture, print what comes back."""
    import subprocess

    from support.paths import CAPTURES, TOOLS

    certdir = tmp_path / "cemtool"
    ident = Identity.generate(common_name="Tool")
    ident.save(str(certdir))
    gw.trust(ident.ski)
    mark = gw.mark()
    capture = os.path.join(CAPTURES, "01_read_detaileddiscovery.raw.json")
    r = subprocess.run(
        [os.path.join(TOOLS, "gw"), "cem",
         "--host", HOST, "--port", str(gw.port), "--ski", gw.ski, "--cert", str(certdir),
         "--send", capture, "--wait", "1"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert ident.ski in r.stdout
    assert "nodeManagementDetailedDiscoveryData" in r.stdout  # the gateway's read, printed
    payload = open(capture, "rb").read().strip()
    start = payload.index(b'"payload":') + len(b'"payload":')
    gw.wait_for(crc_line(payload[start:-3]), start=mark)


def test_orderly_stop_closes_sessions_with_connection_close(tmp_path, cem):
    """Ctrl-C (and SIGTERM through tools/gw run, which passes it on as Ctrl-C) ends every SHIP
    session with connectionClose announce, not with the TCP connection cut, and in bounded time."""
    import signal
    import time

    g = Gateway(tmp_path / "gw")
    g.trust(cem.ski)
    g.start()
    try:
        async def go():
            p = await connected(g, cem)
            await p.recv_datagram(timeout=5)
            # Ctrl-C at a moment of the user's, not in reaction to a record of the gateway's:
            # on loopback our reading of its last message (accessMethods) can complete inside
            # its send(), and a signal pending there makes MicroPython raise KeyboardInterrupt
            # from mbedTLS's send callback (EINTR after a partial send), which leaves that TLS
            # session unusable for the goodbye. The gateway is idle by now (its SPINE start-up
            # waits for our discovery reply).
            await asyncio.sleep(0.2)
            t0 = time.monotonic()
            g.proc.send_signal(signal.SIGINT)
            m = await p.expect("connectionClose", timeout=5)
            assert m.get("phase") == "announce", m
            await p.wait_closed(timeout=5)
            return p.close_code, time.monotonic() - t0

        code, took = run(go())
        assert code == CLOSE_NORMAL and took < 3, (code, took)
        g.proc.wait(5)
        assert g.proc.returncode == 0
        g.wait_for(r"^stopped", 2)
    finally:
        g.stop()


def test_ended_connection_tasks_keep_nothing_of_it(tmp_path):
    """The node's own tasks, end to end (test_task_retention.py has compat.detached alone): once
    a connection has ended, its tasks hold none of its objects even while something still
    references them, as asyncio's pairing heap may for a while. Server and client node in one
    MicroPython process, real TLS on 127.0.0.1, a session to data exchange and its close; every
    task made meanwhile is kept (host_tests/mpy/ship_ended_tasks.py). Then a client that opens
    TCP and says nothing: its connection ends at the server's deadline with no task left
    waiting on its socket (TLS reads wait on the TCP socket underneath, tlsctx._TlsStream, so a
    connection has two entries in asyncio's IO queue). Last, a session of the client's dial loop
    (ship.cem), ended by taking the trust back: neither the dial loop, waiting for trust again,
    nor the server's accept loop keeps anything of it."""
    server, server_key = certs.create(cn="ended-server")
    client, client_key = certs.create(cn="ended-client")
    for name, data in (("server.der", server), ("server.key", server_key), ("client.der", client),
                       ("client.key", client_key)):
        (tmp_path / name).write_bytes(data)
    (tmp_path / "skis.txt").write_text("%s %s" % (certs.ski_hex(server), certs.ski_hex(client)))
    r = mpyrun.run(os.path.join(MPY_SCRIPTS, "ship_ended_tasks.py"), args=(str(tmp_path),), timeout=60,
                   extra_path=(HOST_TESTS,)).check()
    lines = re.findall(r"^TASKS (\d+) KEPT (-?\d+) LEFT (-?\d+)$", r.stdout, re.M)
    assert len(lines) == 2, r.stdout[-2000:]
    tasks, kept, left = (int(x) for x in lines[-1])  # the second session: one-time state in place
    # the tasks themselves (their frames, ~10 KB for the ~30 of one session), but no connection:
    # each holds a 32 KB stand-in for its SPINE endpoint
    assert kept < 32768, "the ended tasks of one session keep %d bytes (%d tasks)" % (kept, tasks)
    assert left < 1024, "the session left %d bytes behind" % left
    assert "SILENT ended" in r.stdout, r.stdout[-2000:]
    m = re.search(r"^DIALLOOP LEFT (-?\d+)$", r.stdout, re.M)
    assert m, r.stdout[-2000:]
    assert int(m.group(1)) < 1024, "the last session left %s bytes behind" % m.group(1)
