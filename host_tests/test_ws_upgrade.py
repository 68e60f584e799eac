"""lib/ws/upgrade.py under CPython, checked against the websockets library's own handshake code."""

import base64
import hashlib

import pytest
from websockets.client import ClientProtocol
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from ws.upgrade import (
    UpgradeError,
    accept_key,
    accept_response,
    error_response,
    new_key,
    parse_request,
    parse_response,
    request,
)

# Captured from websockets 17.4's asyncio client (subprotocols=["ship"]).
CAPTURED = (
    b"GET /ship/ HTTP/1.1\r\nHost: 127.0.0.1:33851\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: uXPgw9ji9MFHaWoN6Zm8eQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    b"Sec-WebSocket-Protocol: ship\r\nUser-Agent: Python/3.11 websockets/17.4\r\n\r\n"
)

GOOD = {
    "Host": "gw.local:4712",
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Protocol": "ship",
}


def head(line="GET /ship/ HTTP/1.1", **changes):
    h = dict(GOOD)
    for k, v in changes.items():
        k = k.replace("_", "-")
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    return (line + "\r\n" + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n").encode()


def in_buf(data, size=2048):
    # As the adapter's fixed head buffer would hold it.
    data = data[:size]
    buf = bytearray(size)
    buf[: len(data)] = data
    return buf, len(data)


def parse(data, size=2048):
    return parse_request(*in_buf(data, size))


def status_of(data, size=2048):
    with pytest.raises(UpgradeError) as ei:
        parse(data, size)
    return ei.value.status


def test_rfc_accept_value():
    # RFC 6455 section 1.3.
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_captured_websockets_request():
    path, key, hl = parse(CAPTURED)
    assert (path, key, hl) == ("/ship/", "uXPgw9ji9MFHaWoN6Zm8eQ==", len(CAPTURED))


def test_generated_request_and_response_accepted_by_websockets():
    c = ClientProtocol(parse_uri("ws://127.0.0.1:4712/ship/?x=1"), subprotocols=["other", "ship"])
    c.send_request(c.connect())
    req = c.data_to_send()[0]
    # Frames pipelined behind the head are left to the caller.
    path, key, hl = parse(req + b"\x82\x80abcd")
    assert path == "/ship/?x=1" and hl == len(req)
    c.receive_data(accept_response(key))
    assert c.handshake_exc is None and c.state.name == "OPEN"
    (resp,) = c.events_received()
    assert resp.status_code == 101 and resp.headers["Sec-WebSocket-Protocol"] == "ship"


def test_incomplete_head_returns_none():
    assert parse(head()[:-2]) is None
    assert parse(b"") is None


@pytest.mark.parametrize(
    "data,status",
    [
        (head(Sec_WebSocket_Protocol=None), 400),
        (head(Sec_WebSocket_Protocol="chat, superchat"), 400),
        (head(Sec_WebSocket_Protocol="SHIP"), 400),
        (head(Sec_WebSocket_Protocol="shipx"), 400),
        (head(Sec_WebSocket_Version="8"), 426),
        (head(Sec_WebSocket_Version=None), 400),
        (head(Sec_WebSocket_Key=None), 400),
        (head(Sec_WebSocket_Key="dGhlIHNhbXBsZSBub25jZQ"), 400),
        (head(Sec_WebSocket_Key="!!!!!!!!!!!!!!!!!!!!!!=="), 400),
        (head(Sec_WebSocket_Key=base64.b64encode(b"x" * 15).decode()), 400),
        (head(Upgrade=None), 400),
        (head(Upgrade="h2c"), 400),
        (head(Connection="keep-alive"), 400),
        (head("POST /ship/ HTTP/1.1"), 405),
        (head("GET /ship/ HTTP/1.0"), 400),
        (head("GET /ship/"), 400),
        (head().replace(b"Upgrade: websocket", b"Upgrade websocket"), 400),
        (b"GET / HTTP/1.1\r\nX: \xff\xfe\r\n\r\n", 400),
    ],
)
def test_rejections(data, status):
    assert status_of(data) == status


def test_oversized_head():
    big = head(X_Padding="a" * 3000)
    assert status_of(big) == 431
    # The same request fits when the buffer is large enough.
    assert parse(big, size=4096)[0] == "/ship/"


def test_header_names_case_insensitive_and_lists():
    data = (
        b"GET /ship/ HTTP/1.1\r\nhost: x\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
        b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n"
        b"sec-websocket-protocol: chat\r\nSec-WebSocket-Protocol: ship, other\r\n\r\n"
    )
    assert parse(data)[:2] == ("/ship/", "dGhlIHNhbXBsZSBub25jZQ==")


def test_error_responses():
    r = error_response(426).decode()
    assert r.startswith("HTTP/1.1 426 ") and "Sec-WebSocket-Version: 13\r\n" in r and r.endswith("\r\n\r\n")
    assert error_response(400).startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Allow: GET\r\n" in error_response(405)


# --- client side


def test_client_request_accepted_by_websockets_server():
    key = new_key()
    assert len(base64.b64decode(key)) == 16 and new_key() != key
    s = ServerProtocol(subprotocols=["ship"])
    s.receive_data(request("127.0.0.1:4712", "/ship/", key))
    (req,) = s.events_received()
    resp = s.accept(req)
    assert resp.status_code == 101 and resp.headers["Sec-WebSocket-Protocol"] == "ship"
    s.send_response(resp)
    raw = b"".join(s.data_to_send())
    buf, n = in_buf(raw + b"\x82\x01x")
    assert parse_response(buf, n, key) == len(raw)
    assert parse_response(*in_buf(raw[:-1]), key) is None


def _response(key, **changes):
    h = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": accept_key(key),
        "Sec-WebSocket-Protocol": "ship",
    }
    line = changes.pop("line", "HTTP/1.1 101 Switching Protocols")
    for k, v in changes.items():
        k = k.replace("_", "-")
        if v is None:
            h.pop(k)
        else:
            h[k] = v
    return (line + "\r\n" + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n").encode()


@pytest.mark.parametrize(
    "changes,status",
    [
        ({"line": "HTTP/1.1 400 Bad Request"}, 400),
        ({"line": "HTTP/1.1 200 OK"}, 200),
        ({"line": "garbage"}, 0),
        ({"Sec_WebSocket_Protocol": None}, 101),
        ({"Sec_WebSocket_Protocol": "ship, other"}, 101),
        ({"Sec_WebSocket_Protocol": "SHIP"}, 101),
        ({"Sec_WebSocket_Accept": accept_key("x")}, 101),
        ({"Upgrade": None}, 101),
        ({"Connection": "close"}, 101),
        ({"Sec_WebSocket_Extensions": "permessage-deflate"}, 101),
    ],
)
def test_client_rejects_bad_responses(changes, status):
    key = new_key()
    with pytest.raises(UpgradeError) as ei:
        parse_response(*in_buf(_response(key, **changes)), key)
    assert ei.value.status == status


def test_accept_key_matches_definition():
    key = new_key()
    want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    assert accept_key(key) == want.decode()
