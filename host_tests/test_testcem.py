"""The test CEM (tools/testcem) against itself and against the wire captures.

Only 127.0.0.1, ports chosen by the OS, every wait bounded. The test CEM is an independent SHIP
implementation used by the end-to-end tests of the gateway; it must not import the firmware's lib/.
"""

import asyncio
import glob
import json
import os
import re
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

from testcem import dialect
from testcem.identity import Identity, normalize_ski, point_of_public_key, ski_of_cert
from testcem.ship import ShipPeer
from testcem.shipmsg import (CLOSE_NORMAL, CLOSE_REJECTED, ShipError, ShipMessage, access_methods_msg,
                             access_methods_request_msg, data_message, encode, hello_msg, pin_state_msg,
                             protocol_handshake_msg)
from testcem.shipserver import ShipServer

from support.bounded import runner
from support.paths import CAPTURES, ROOT

CAPTURE_FILES = sorted(glob.glob(os.path.join(CAPTURES, "*.json")))
HOST = "127.0.0.1"


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


run = runner(15.0)


@pytest.fixture(scope="module")
def ids():
    return {"srv": Identity.generate(common_name="srv"), "cli": Identity.generate(common_name="cli"),
            "other": Identity.generate(common_name="other")}


# ------------------------------------------------------------------------------------------------
# independence

def test_testcem_does_not_import_firmware_lib():
    # import every test CEM module with lib/ and native/ on the path and check nothing was
    # loaded from either
    code = ("import sys; sys.path[:0] = [%r, %r, %r]\n"
            "import testcem.cli, testcem.ship, testcem.shipmsg, testcem.shipserver, testcem.ws, testcem.dialect\n"
            "import testcem.identity, testcem.tls, testcem.spine, testcem.spinemsg, testcem.spinemodel\n"
            "import testcem.ucbase, testcem.ucevmon, testcem.ucevctl, testcem.ucgrid, testcem.ucdata\n"
            "import testcem.ucrun, testcem.usecases\n"
            "ours = (%r, %r)\n"
            "bad = [n for n, m in list(sys.modules.items()) if (getattr(m, '__file__', None) or '').startswith(ours)]\n"
            "print(bad); sys.exit(1 if bad else 0)\n") % (
        os.path.join(ROOT, "lib"), os.path.join(ROOT, "native"), os.path.join(ROOT, "tools"),
        os.path.join(ROOT, "lib") + os.sep, os.path.join(ROOT, "native") + os.sep)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_identity_files_compatible_with_gw_certs(tmp_path):
    certs = pytest.importorskip("certs")   # tools/certs.py (gw certs)
    cert_der, key_der = certs.create()
    (tmp_path / "cert.der").write_bytes(cert_der)
    (tmp_path / "key.der").write_bytes(key_der)
    ident, created = Identity.load_or_create(str(tmp_path))
    assert not created and ident.ski == certs.ski_hex(cert_der) == ident.ski_extension


# ------------------------------------------------------------------------------------------------
# dialect

def _capture_text(path):
    with open(path, "rb") as f:
        raw = f.read()
    # the files end with one newline that is not part of the wire message
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1, path
    return raw[:-1].decode("utf-8")


@pytest.mark.skipif(not CAPTURE_FILES, reason="captures not available")
@pytest.mark.parametrize("path", CAPTURE_FILES, ids=os.path.basename)
def test_capture_round_trips_byte_for_byte(path):
    text = _capture_text(path)
    plain = dialect.message_to_plain(dialect.loads(text))
    assert dialect.dumps_compact(dialect.message_to_eebus(plain)) == text
    if "data" in plain:
        # the SHIP data envelope: payload is NOT array-wrapped; decoding gives a plain datagram
        assert text.startswith('{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[')
        dg = plain["data"]["payload"]["datagram"]
        assert set(dg) == {"header", "payload"}
        # data_message rebuilds the same bytes from the plain datagram
        assert data_message({"datagram": dg}) == b"\x02" + text.encode()
        assert ShipMessage(b"\x02" + text.encode()).datagram == dg
    else:
        assert list(plain) == ["datagram"]
        assert dialect.dumps_compact(dialect.to_eebus(plain["datagram"])) == text[len('{"datagram":'):-1]


def test_reference_pair_from_ship_go():
    eebus = ('{"datagram":[{"header":[{"specificationVersion":"1.2.0"},{"addressSource":[{"device":"d:_i:3210_EVSE"},'
             '{"entity":[1,1]},{"feature":6}]},{"addressDestination":[{"device":"d:_i:3210_HEMS"},{"entity":[1]},'
             '{"feature":1}]},{"msgCounter":194},{"msgCounterReference":4890},{"cmdClassifier":"reply"}]},'
             '{"payload":[{"cmd":[[{"deviceClassificationManufacturerData":[{"deviceName":""},{"deviceCode":""},'
             '{"brandName":""},{"powerSource":"mains3Phase"}]}]]}]}]}')
    plain = ('{"datagram":{"header":{"specificationVersion":"1.2.0","addressSource":{"device":"d:_i:3210_EVSE",'
             '"entity":[1,1],"feature":6},"addressDestination":{"device":"d:_i:3210_HEMS","entity":[1],"feature":1},'
             '"msgCounter":194,"msgCounterReference":4890,"cmdClassifier":"reply"},"payload":{"cmd":'
             '[{"deviceClassificationManufacturerData":{"deviceName":"","deviceCode":"","brandName":"",'
             '"powerSource":"mains3Phase"}}]}}}')
    assert dialect.dumps_compact(dialect.message_to_plain(json.loads(eebus))) == plain
    assert dialect.dumps_compact(dialect.message_to_eebus(json.loads(plain))) == eebus


def test_dialect_rules_and_ambiguity():
    assert dialect.to_eebus({"a": 1, "b": 2}) == [{"a": 1}, {"b": 2}]
    assert dialect.to_eebus({}) == []
    assert dialect.to_eebus([{"x": 1}, {"x": 2}]) == [[{"x": 1}], [{"x": 2}]]
    assert dialect.to_eebus({"l": [1, 2], "e": []}) == [{"l": [1, 2]}, {"e": []}]
    # [] is ambiguous (empty object or empty list): kept as [] so it re-encodes to the same bytes
    assert dialect.to_plain([]) == []
    assert dialect.to_plain([[]]) == [{}]
    assert dialect.to_eebus(dialect.to_plain([[]])) == [[]]
    # structural, not byte replacement: strings with dialect-looking content survive
    tricky = {"deviceName": "a},{b [{\"x\":1}] []"}
    assert dialect.to_plain(dialect.to_eebus(tricky)) == tricky
    with pytest.raises(dialect.DialectError):
        dialect.to_plain([{"a": 1}, 2])            # mixed
    with pytest.raises(dialect.DialectError):
        dialect.to_plain([{"a": 1}, {"a": 2}])     # repeated key in an object array
    with pytest.raises(dialect.DialectError):
        dialect.to_plain([{"a": 1, "b": 2}])       # plain object inside an array


def test_lenient_reading():
    spaced = b'{ "connectionHello" : [ { "phase" : "ready" } , { "waiting" : 60000 } ] }\x00\x00'
    m = ShipMessage(b"\x01" + spaced)
    assert m.name == "connectionHello" and m.body == {"phase": "ready", "waiting": 60000}
    # strict (array-wrapped) payload form decodes to the same plain datagram
    dg = {"header": {"msgCounter": 5}, "payload": {"cmd": [{"resultData": {"errorNumber": 0}}]}}
    a = ShipMessage(data_message({"datagram": dg}))
    b = ShipMessage(data_message({"datagram": dg}, payload_wrapped=True))
    assert b.raw.startswith(b'\x02{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":[{"datagram":[')
    assert a.datagram == b.datagram == dg


_keys = st.text(alphabet="abcdefgXYZ_", min_size=1, max_size=6)
_scalars = st.one_of(st.integers(-2**40, 2**40), st.booleans(), st.text(max_size=8), st.none())


def _plain_values(depth=3):
    if depth == 0:
        return _scalars
    inner = _plain_values(depth - 1)
    obj = st.dictionaries(_keys, inner, min_size=1, max_size=4)
    return st.one_of(_scalars, obj, st.lists(_scalars, min_size=1, max_size=4),
                     st.lists(st.dictionaries(_keys, inner, min_size=1, max_size=3), min_size=1, max_size=3))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _plain_values(), min_size=1, max_size=4))
def test_plain_round_trip_property(obj):
    # without empty containers (the format's ambiguity) plain -> dialect -> plain is the identity
    enc = dialect.to_eebus(obj)
    assert dialect.to_plain(json.loads(dialect.dumps_compact(enc))) == obj
    assert dialect.to_eebus(dialect.to_plain(enc)) == enc


# ------------------------------------------------------------------------------------------------
# messages and identities

def test_control_messages_match_capture_bytes():
    lines = _read(os.path.join(CAPTURES, "00_ship_handshake_evse_side.txt")).splitlines()
    sent = [ln.split(" ", 1)[1] for ln in lines if ln.startswith(("Send {", "Recv {"))]
    ours = [encode(m)[1:].decode() for m in (
        hello_msg("ready", 60000), protocol_handshake_msg("announceMax"), protocol_handshake_msg("select"),
        pin_state_msg("none"), access_methods_request_msg(), access_methods_msg("Demo-EVSE-234567890"),
        access_methods_msg("Demo-ControlBox-123456789"))]
    for o in ours:
        assert o in sent, o
    assert encode({"connectionHello": {"phase": "pending", "waiting": 60000}}) == \
        b'\x01{"connectionHello":[{"phase":"pending"},{"waiting":60000}]}'
    assert encode({"accessMethodsRequest": {}}) == b'\x01{"accessMethodsRequest":[]}'
    assert encode({"connectionClose": {"phase": "announce", "maxTime": 500, "reason": "unspecific"}}) == \
        b'\x03{"connectionClose":[{"phase":"announce"},{"maxTime":500},{"reason":"unspecific"}]}'


def test_identity_ski(tmp_path, ids):
    ident = ids["cli"]
    from cryptography import x509
    import hashlib
    pub = x509.load_der_x509_certificate(ident.cert_der).public_key()
    point = point_of_public_key(pub)
    assert len(point) == 65 and point[0] == 4
    assert ident.ski == hashlib.sha1(point).hexdigest() == ident.ski_extension == ski_of_cert(ident.cert_der)
    ident.save(str(tmp_path))
    again, created = Identity.load_or_create(str(tmp_path))
    assert not created and again.ski == ident.ski
    forged = Identity.generate(ski_extension=ids["srv"].ski)
    assert forged.ski_extension == ids["srv"].ski != forged.ski
    assert normalize_ski(" " + ident.ski.upper()[:20] + "-" + ident.ski[20:]) == ident.ski


# ------------------------------------------------------------------------------------------------
# client against server

def _names(peer, direction):
    return [ShipMessage(b).name for d, b in peer.transcript if d == direction]


def test_full_handshake_data_and_close(ids):
    async def main():
        async with ShipServer(ids["srv"], ship_id="Demo-EVSE-234567890", trusted=[ids["cli"].ski]) as srv:
            cli = ShipPeer(ids["cli"], ship_id="Demo-ControlBox-123456789")
            await cli.dial(HOST, srv.port, expected_ski=ids["srv"].ski)
            sp = await srv.accept(5)
            assert cli.handshake_complete and sp.handshake_complete
            assert cli.peer_ship_id == "Demo-EVSE-234567890" and sp.peer_ship_id == "Demo-ControlBox-123456789"
            assert cli.peer_ski == ids["srv"].ski and sp.peer_ski == ids["cli"].ski
            assert cli.tls_version == sp.tls_version == "TLSv1.2"
            assert cli.subprotocol == sp.subprotocol == "ship"
            assert sp.upgrade_request.path == "/ship/"
            # per direction, the server's transcript is exactly the captured EVSE-side sequence
            cap = _read(os.path.join(CAPTURES, "00_ship_handshake_evse_side.txt"))
            cap_send = [b"\x00\x00" if "ship init" in ln else b"\x01" + ln[5:].encode()
                        for ln in cap.splitlines() if ln.startswith("Send")]
            cap_recv = [b"\x00\x00" if "ship init" in ln else b"\x01" + ln[5:].encode()
                        for ln in cap.splitlines() if ln.startswith("Recv")]
            assert [b for d, b in sp.transcript if d == "send"] == cap_send
            assert [b for d, b in sp.transcript if d == "recv"] == cap_recv

            # data both ways: plain, dialect, verbatim capture text
            dg = {"header": {"specificationVersion": "1.3.0", "msgCounter": 1, "cmdClassifier": "read"},
                  "payload": {"cmd": [{"nodeManagementDetailedDiscoveryData": {}}]}}
            sent = await cli.send_datagram({"datagram": dg})
            got = await sp.recv_data(2)
            assert got.raw == sent
            assert got.datagram["payload"]["cmd"] == [{"nodeManagementDetailedDiscoveryData": []}]
            text = _capture_text(os.path.join(CAPTURES, "02_evse_reply_detaileddiscovery.raw.json"))
            await sp.send_raw(b"\x02" + text.encode(), fragment=1024)   # like a Go server: 1 KB frames
            got = await cli.recv_data(2)
            assert got.raw == b"\x02" + text.encode()
            assert [e[1] for e in cli.ws_events if e[0] == "recv"][-4:] == ["BINARY", "CONT", "CONT", "CONT"]
            await sp.send_datagram('{"datagram":[{"header":[{"msgCounter":7}]},{"payload":[{"cmd":[]}]}]}')
            assert (await cli.recv_datagram(2)) == {"header": {"msgCounter": 7}, "payload": {"cmd": []}}
            assert await cli.ping(b"abc", timeout=2) < 2
            assert sp.pings[-1] == b"abc"

            # close handshake started by the client
            assert await cli.close() is True
            assert await sp.wait_closed(2) == (CLOSE_NORMAL, "close")
            assert cli.close_code == CLOSE_NORMAL
            assert _names(sp, "recv")[-1] == "connectionClose" and _names(sp, "send")[-1] == "connectionClose"
            assert ShipMessage(sp.transcript[-1][1]).body == {"phase": "confirm"}
    run(main())


def test_server_initiated_close_and_access_methods_later(ids):
    async def main():
        async with ShipServer(ids["srv"]) as srv:
            cli = ShipPeer(ids["cli"])
            await cli.dial(HOST, srv.port)
            sp = await srv.accept(5)
            # a later accessMethodsRequest is answered automatically
            await cli.send_message(access_methods_request_msg())
            m = await cli.recv(2)
            assert m.name == "accessMethods" and m.get("id") == sp.ship_id
            assert await sp.close(max_time=300) is True
            assert await cli.wait_closed(2) == (CLOSE_NORMAL, "close")
    run(main())


def test_trust_denied_pending_then_aborted_4452(ids):
    async def main():
        async with ShipServer(ids["srv"], trusted=[ids["other"].ski], untrusted="pending",
                              hello_timeout=0.5) as srv:
            cli = ShipPeer(ids["cli"], hello_timeout=5)
            t0 = time.monotonic()
            with pytest.raises(ShipError) as ei:
                await cli.dial(HOST, srv.port)
            assert ei.value.close_code == CLOSE_REJECTED and ei.value.phase == "hello"
            assert not ei.value.local and "not trusted" in str(ei.value)
            assert 0.4 < time.monotonic() - t0 < 3
            assert [h["phase"] for h in cli.peer_hellos] == ["pending", "aborted"]
            with pytest.raises(ShipError) as es:
                await srv.accept(2)
            assert es.value.local and es.value.close_code == CLOSE_REJECTED
            assert es.value.peer.peer_ski == ids["cli"].ski
    run(main())


def test_trust_denied_immediately(ids):
    async def main():
        async with ShipServer(ids["srv"], trusted=[], untrusted="abort", hello_timeout=30) as srv:
            cli = ShipPeer(ids["cli"])
            t0 = time.monotonic()
            with pytest.raises(ShipError) as ei:
                await cli.dial(HOST, srv.port)
            assert ei.value.close_code == CLOSE_REJECTED and time.monotonic() - t0 < 3
    run(main())


def test_pending_then_trusted_by_user(ids):
    async def main():
        async with ShipServer(ids["srv"], trusted=[], hello_timeout=5) as srv:
            cli = ShipPeer(ids["cli"])
            dial = asyncio.ensure_future(cli.dial(HOST, srv.port))
            await asyncio.sleep(0.3)
            assert not dial.done()
            srv.trust(ids["cli"].ski)
            await dial
            sp = await srv.accept(3)
            assert [h["phase"] for h in cli.peer_hellos] == ["pending", "ready"]
            assert sp.handshake_complete
            await cli.close()
    run(main())


def test_prolongation_requests(ids):
    async def main():
        # server is ready with a 1 s Wait-For-Ready timer; the client stays pending for ~1.6 s and keeps the
        # server waiting with prolongation requests (asked 0.7 s before the announced 1000 ms run out)
        async with ShipServer(ids["srv"], hello_timeout=1.0) as srv:
            cli = ShipPeer(ids["cli"], hello_phase="pending", prolong_margin=0.7, hello_timeout=5)
            dial = asyncio.ensure_future(cli.dial(HOST, srv.port))
            await asyncio.sleep(1.6)
            assert not dial.done()
            cli.grant_trust()
            await dial
            sp = await srv.accept(3)
            hellos = [ShipMessage(b).body for d, b in sp.transcript if d == "recv"
                      and ShipMessage(b).name == "connectionHello"]
            assert hellos[0] == {"phase": "pending", "waiting": 5000}
            assert sum(1 for h in hellos if h.get("prolongationRequest") is True) >= 3
            assert hellos[-1]["phase"] == "ready"
            answers = [ShipMessage(b).body for d, b in sp.transcript if d == "send"
                       and ShipMessage(b).name == "connectionHello"]
            assert all(a == {"phase": "ready", "waiting": 1000} for a in answers)
            await cli.close()
    run(main())


def test_wrong_expected_ski_stops_before_upgrade(ids):
    async def main():
        async with ShipServer(ids["srv"], timeout=1.0) as srv:
            cli = ShipPeer(ids["cli"])
            with pytest.raises(ShipError) as ei:
                await cli.connect(HOST, srv.port, expected_ski=ids["other"].ski)
            assert ei.value.phase == "tls" and "SKI mismatch" in str(ei.value)
            assert cli.peer_ski == ids["srv"].ski and cli.ws is None and cli.transcript == []
            peer = await srv.accept(3, raise_errors=False)
            assert peer.handshake_error is not None and peer.upgrade_request is None
    run(main())


def test_forged_server_certificate_rejected(ids):
    forged = Identity.generate(ski_extension=ids["other"].ski)

    async def main():
        async with ShipServer(forged, timeout=1.0) as srv:
            cli = ShipPeer(ids["cli"])
            with pytest.raises(ShipError) as ei:
                await cli.connect(HOST, srv.port, expected_ski=ids["other"].ski)
            assert "not SHA-1 of its public key" in str(ei.value)
    run(main())


def test_forged_client_certificate_rejected_by_server(ids):
    forged = Identity.generate(ski_extension=ids["other"].ski)

    async def main():
        async with ShipServer(ids["srv"], timeout=1.0) as srv:
            cli = ShipPeer(forged)
            await cli.connect(HOST, srv.port)
            with pytest.raises(ShipError):
                await cli.upgrade(timeout=2)
            peer = await srv.accept(2, raise_errors=False)
            assert peer.handshake_error.phase == "tls" and "not SHA-1" in str(peer.handshake_error)
            assert peer.peer_ski == forged.ski and peer.peer_ski_extension == ids["other"].ski
    run(main())


def test_client_without_certificate_is_refused(ids):
    async def main():
        async with ShipServer(ids["srv"], timeout=1.0) as srv:
            cli = ShipPeer(None)
            with pytest.raises(ShipError) as ei:
                await cli.connect(HOST, srv.port, timeout=2)
                await cli.upgrade(timeout=2)   # TLS 1.2: the server's alert may arrive only now
            assert ei.value.phase in ("tls", "upgrade")
            peer = await srv.accept(2, raise_errors=False)
            assert peer.handshake_error.phase == "tls" and "PEER_DID_NOT_RETURN_A_CERTIFICATE" in str(
                peer.handshake_error)
    run(main())


def test_upgrade_without_subprotocol_rejected(ids):
    async def main():
        async with ShipServer(ids["srv"], timeout=1.0) as srv:
            cli = ShipPeer(ids["cli"])
            await cli.connect(HOST, srv.port)
            with pytest.raises(ShipError) as ei:
                await cli.upgrade(subprotocols=None)
            assert ei.value.phase == "upgrade" and "HTTP 400" in str(ei.value)
            peer = await srv.accept(2, raise_errors=False)
            assert peer.handshake_error.phase == "upgrade"
    run(main())


def test_low_level_steps_and_cmi_timeout(ids):
    async def main():
        async with ShipServer(ids["srv"], timeout=0.5) as srv:
            cli = ShipPeer(ids["cli"])
            await cli.connect(HOST, srv.port)
            await cli.upgrade()
            # no CMI: the server gives up after its CMI timeout and closes the WebSocket
            code, _ = await cli.wait_closed(3)
            assert code == CLOSE_NORMAL
            peer = await srv.accept(2, raise_errors=False)
            assert peer.handshake_error.timeout and peer.handshake_error.phase == "cmi"
    run(main())


def test_invalid_cmi_and_protocol_errors(ids):
    async def main():
        async with ShipServer(ids["srv"], timeout=1.0) as srv:
            # CmiHead 1 is rejected
            cli = ShipPeer(ids["cli"])
            await cli.connect(HOST, srv.port)
            await cli.upgrade()
            await cli.send_raw(b"\x00\x01")
            await cli.wait_closed(2)
            assert "invalid CMI" in str((await srv.accept(2, raise_errors=False)).handshake_error)

            # protocol handshake offering only JSON-UTF16: error 3, then close
            cli = ShipPeer(ids["cli"])
            await cli.connect(HOST, srv.port)
            await cli.upgrade()
            await cli.cmi()
            await cli.hello()
            await cli.send_message(protocol_handshake_msg("announceMax", formats=["JSON-UTF16"]))
            m = await cli.recv(2)
            assert m.raw == b'\x01{"messageProtocolHandshakeError":[{"error":3}]}'
            assert (await cli.wait_closed(2))[0] == CLOSE_NORMAL
            await srv.accept(2, raise_errors=False)

            # our client sees a server error as ShipError with the error number
            srv2 = ShipServer(ids["srv"], auto_handshake=False, timeout=1.0)
            await srv2.start()
            try:
                cli = ShipPeer(ids["cli"])
                dial = asyncio.ensure_future(cli.dial(HOST, srv2.port, timeout=2))
                sp = await srv2.accept(2)
                await sp.cmi()
                await sp.hello()
                await sp.expect("messageProtocolHandshake")
                await sp.send_message({"messageProtocolHandshakeError": {"error": 2}})
                await sp.abort(CLOSE_NORMAL, "close")
                with pytest.raises(ShipError) as ei:
                    await dial
                assert ei.value.phase == "protocol" and ei.value.detail == 2
            finally:
                await srv2.close()
    run(main())


def test_data_during_access_methods_is_kept(ids):
    async def main():
        # the server sends SPINE data before answering our accessMethodsRequest (delayed answer)
        srv = ShipServer(ids["srv"], auto_handshake=False, timeout=2.0)
        await srv.start()
        try:
            cli = ShipPeer(ids["cli"])
            dial = asyncio.ensure_future(cli.dial(HOST, srv.port))
            sp = await srv.accept(2)
            for step in (sp.cmi, sp.hello, sp.protocol_handshake, sp.pin):
                await step()
            await sp.send_message(access_methods_request_msg())
            await sp.expect("accessMethodsRequest")
            await sp.send_datagram({"header": {"msgCounter": 1}, "payload": {"cmd": []}})
            await sp.expect("accessMethods")       # client answered our request meanwhile
            await sp.send_message(access_methods_msg(sp.ship_id))
            await dial
            assert (await cli.recv_datagram(1))["header"] == {"msgCounter": 1}
            await cli.close()
        finally:
            await srv.close()
    run(main())


# ------------------------------------------------------------------------------------------------
# CLI (tools/gw cem) as an installer would run it

def _gw(*args):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "gw.py"), "cem"] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def _read_until(proc, pattern, timeout=10.0):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(pattern, line)
        if m:
            return m, lines
    raise AssertionError("no %r in output: %s" % (pattern, "".join(lines)))


def test_cli_dial_and_listen(tmp_path):
    send = tmp_path / "dg.json"
    send.write_text(json.dumps([{"datagram": {"header": {"msgCounter": 9}, "payload": {"cmd": []}}}]))
    lst = _gw("--listen", "0", "--bind", HOST, "--cert", str(tmp_path / "a"), "--wait", "3",
              "--accept-timeout", "10")
    try:
        m, out_l = _read_until(lst, r"test CEM SKI: ([0-9a-f]{40})")
        ski_l = m.group(1)
        m, more = _read_until(lst, r"listening on 127\.0\.0\.1:(\d+)")
        out_l += more
        port = m.group(1)
        dial = _gw("--host", HOST, "--port", port, "--ski", ski_l, "--cert", str(tmp_path / "b"),
                   "--wait", "0.5", "--send", str(send),
                   "--send", os.path.join(CAPTURES, "01_read_detaileddiscovery.raw.json"))
        out_d, _ = dial.communicate(timeout=15)
        assert dial.returncode == 0, out_d
        assert "handshake complete" in out_d and "closed (confirmed)" in out_d
        assert '-> [02] data {"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":' \
               '[{"header":[{"msgCounter":9}]}' in out_d
        out, _ = lst.communicate(timeout=15)
        assert lst.returncode == 0, out
        assert out.count("<- [02] data") == 2
    finally:
        lst.kill()
        lst.wait()


def test_cli_trust_denied_message(tmp_path):
    lst = _gw("--listen", "0", "--bind", HOST, "--cert", str(tmp_path / "a"), "--ski", "00" * 20,
              "--hello-timeout", "0.3", "--accept-timeout", "10")
    try:
        m, _ = _read_until(lst, r"listening on 127\.0\.0\.1:(\d+)")
        dial = _gw("--host", HOST, "--port", m.group(1), "--cert", str(tmp_path / "b"))
        out_d, _ = dial.communicate(timeout=15)
        assert dial.returncode == 1
        ski_b = re.search(r"test CEM SKI: ([0-9a-f]{40})", out_d).group(1)
        assert "peer aborted the hello: not trusted (close 4452) - trust SKI %s on the gateway" % ski_b in out_d
        out, _ = lst.communicate(timeout=15)
        assert lst.returncode == 1 and "is not trusted by the test CEM" in out
    finally:
        lst.kill()
        lst.wait()


def test_pings_and_pong_timeout(ids):
    async def main():
        # our pings are answered by the peer; a peer that ignores pings is dropped after ping_timeout
        async with ShipServer(ids["srv"]) as srv:
            cli = ShipPeer(ids["cli"], ping_interval=0.1, ping_timeout=0.5)
            await cli.dial(HOST, srv.port)
            sp = await srv.accept(2)
            await asyncio.sleep(0.5)
            assert len(sp.pings) >= 2 and len(cli.pongs) >= 1 and not cli.closed
            await cli.close()
        async with ShipServer(ids["srv"], auto_pong=False) as srv:
            cli = ShipPeer(ids["cli"], ping_interval=0.1, ping_timeout=0.3)
            await cli.dial(HOST, srv.port)
            sp = await srv.accept(2)
            await cli.wait_closed(2)
            assert sp.pings and cli.pongs == [] and "pong timeout" in str(cli.conn_error)
    run(main())
