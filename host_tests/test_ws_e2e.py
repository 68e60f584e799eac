"""lib/ws/stream.py under MicroPython over real loopback sockets (plain TCP), against the CPython
`websockets` library in both roles and against hand-made bad frames."""

import asyncio
import base64
import hashlib
import os
import re
import socket
import struct
import threading
import time

import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support import mpyrun
from support.paths import MPY_SCRIPTS
from test_ws_codec import frame

KEY = b"\x01\x02\x03\x04"
T = 5  # seconds; bound for every wait
ACCEPT_MS = 400  # the echo server's upgrade timeout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The MicroPython echo server; its output is read by a thread (mpyrun.wait_line selects on
    the pipe, and misses lines that were already pulled into the file object's buffer)."""

    def __init__(self):
        self.port = free_port()
        self.proc = mpyrun.start(
            os.path.join(MPY_SCRIPTS, "ws_echo_server.py"), args=[str(self.port), str(ACCEPT_MS)]
        )
        self.lines = []
        self.seen = 0
        self.cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()
        self.expect(r"^READY")

    def _pump(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def expect(self, pattern):
        rx = re.compile(pattern)
        deadline = time.monotonic() + T
        with self.cond:
            while True:
                while self.seen < len(self.lines):
                    line = self.lines[self.seen]
                    self.seen += 1
                    m = line is not None and rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.lines and self.lines[-1] is None):
                    raise AssertionError("no line matching %r in %r" % (pattern, self.output()[-3000:]))
                self.cond.wait(left)

    def output(self):
        return "".join(x for x in self.lines if x)

    def uri(self, name):
        return "ws://127.0.0.1:%d/e2e/%s" % (self.port, name)


@pytest.fixture(scope="module")
def server():
    srv = Server()
    yield srv
    mpyrun.stop(srv.proc)
    assert "Traceback" not in srv.output(), srv.output()


def ws_connect(uri, **kw):
    kw.setdefault("subprotocols", ["ship"])
    return connect(uri, ping_interval=None, open_timeout=T, close_timeout=T, **kw)


def arun(coro):
    return asyncio.run(asyncio.wait_for(coro, 3 * T))


def test_echo_small_and_10k(server):
    async def go():
        async with ws_connect(server.uri("echo")) as ws:
            assert ws.subprotocol == "ship"
            for msg in (b"\x01", b"\x02" + b"small" * 20, os.urandom(10240), b""):
                await ws.send(msg)
                assert await asyncio.wait_for(ws.recv(), T) == msg

    arun(go())
    server.expect(r"^MSG /e2e/echo 10240 ")
    server.expect(r"^CLOSED /e2e/echo 1000")


def test_echo_rendered_into_the_tx_part(server):
    # the server puts each echo straight into its tx part (room/advance) in rooms of varying
    # size, across the 1 KB buffer's flushes
    async def go():
        async with ws_connect(server.uri("into")) as ws:
            for msg in (b"\x01", b"\x02" + b"small" * 20, os.urandom(1024), os.urandom(10240)):
                await ws.send(msg)
                assert await asyncio.wait_for(ws.recv(), T) == msg

    arun(go())
    server.expect(r"^MSG /e2e/into 10240 ")
    server.expect(r"^CLOSED /e2e/into 1000")


@pytest.mark.parametrize("what", [b"over", b"short"])
def test_a_producer_off_its_announced_length_ends_the_connection(server, what):
    # more bytes than begin() announced, or none while some are due (its output shrank, and
    # it would never end): no frame is finished, the connection is dropped
    async def go():
        async with ws_connect(server.uri("into")) as ws:
            await ws.send(what)
            with pytest.raises(ConnectionClosed) as ei:
                await asyncio.wait_for(ws.recv(), T)
            return ei.value.rcvd

    assert arun(go()) is None  # no close frame: TCP just dropped
    m = server.expect(r"^ABORTED (.*)")
    assert ("more" if what == b"over" else "fewer") in m.group(1)


@pytest.mark.parametrize("protocols", [None, ["chat"], ["SHIP"]])
def test_refused_without_ship(server, protocols):
    async def go():
        with pytest.raises(InvalidStatus) as ei:
            async with ws_connect(server.uri("refused"), subprotocols=protocols):
                pass
        return ei.value.response.status_code

    assert arun(go()) == 400
    server.expect(r"^REFUSED 400 subprotocol")


def test_fragmented_10k_reassembled(server):
    msg = os.urandom(10240)

    async def go():
        async with ws_connect(server.uri("frag")) as ws:
            await ws.send([msg[i : i + 1024] for i in range(0, len(msg), 1024)])
            assert await asyncio.wait_for(ws.recv(), T) == msg

    arun(go())
    m = server.expect(r"^MSG /e2e/frag (\d+) (\d+)")
    # Reassembled by the sink from chunks no larger than the 1 KB receive buffer.
    assert int(m.group(1)) == 10240 and int(m.group(2)) <= 1024


def test_pings_answered_both_ways(server):
    async def go():
        async with ws_connect(server.uri("ping")) as ws:
            for payload in (b"", b"abc", os.urandom(125)):
                waiter = await ws.ping(payload)
                await asyncio.wait_for(waiter, T)
            # Server-initiated: websockets answers, the server reports the pong.
            await ws.send(b"ping")
            assert await asyncio.wait_for(ws.recv(), T) == b"pongs:1"

    arun(go())


def test_close_initiated_by_client(server):
    async def go():
        async with ws_connect(server.uri("close-client")) as ws:
            await ws.close(4500, "User close")
            return ws.close_code, ws.close_reason

    # The server echoes the code.
    assert arun(go()) == (4500, "")
    server.expect(r"^CLOSED /e2e/close-client 4500 User close")


def test_close_initiated_by_server(server):
    async def go():
        async with ws_connect(server.uri("close-server")) as ws:
            await ws.send(b"close:4001")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), T)
            return ws.close_code, ws.close_reason

    assert arun(go()) == (4001, "bye")
    server.expect(r"^CLOSED /e2e/close-server local 4001")


# --- raw sockets: bad frames get the right close code, then TCP is dropped


def raw_request(path):
    return (
        b"GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ship\r\n\r\n"
        % (path.encode(), base64.b64encode(os.urandom(16)))
    )


def raw_open(port, path="/e2e/raw"):
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    s.sendall(raw_request(path))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101 ") and b"Sec-WebSocket-Protocol: ship" in head
    return s, rest


def read_to_eof(s, rest):
    data = rest
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk


def parse_frames(data):
    out = []
    while data:
        b0, b1 = data[0], data[1]
        assert not b1 & 0x80, "server frames are unmasked"
        n, i = b1 & 0x7F, 2
        if n == 126:
            n, i = struct.unpack(">H", data[2:4])[0], 4
        elif n == 127:
            n, i = struct.unpack(">Q", data[2:10])[0], 10
        out.append((b0, data[i : i + n]))
        data = data[i + n :]
    return out


BAD = [
    ("text", frame(1, b"hi", key=KEY), 1003),
    ("unmasked", frame(2, b"hi"), 1002),
    ("too-long", frame(2, key=KEY, length=16385), 1009),
    ("too-long-fragments", frame(2, b"a" * 9000, fin=False, key=KEY) + frame(0, key=KEY, length=8000), 1009),
    ("len64-top-bit", b"\x82\xff\x80" + bytes(7) + KEY, 1002),
    ("rsv", frame(2, b"x", key=KEY, rsv=0x40), 1002),
    ("opcode", frame(5, b"x", key=KEY), 1002),
    ("continuation", frame(0, b"x", key=KEY), 1002),
    ("close-code", frame(8, b"\x03\xed", key=KEY), 1002),
    ("close-1-byte", frame(8, b"\x03", key=KEY), 1002),
    ("close-reason", frame(8, b"\x03\xe8\xff", key=KEY), 1007),
]


@pytest.mark.parametrize("name,data,code", BAD, ids=[b[0] for b in BAD])
def test_bad_frames_closed_with_code(server, name, data, code):
    s, rest = raw_open(server.port, "/e2e/bad-" + name)
    with s:
        # A good message first: the connection works until the bad frame.
        s.sendall(frame(2, b"ok", key=KEY))
        while len(rest) < 4:
            rest += s.recv(4096)
        assert rest[:4] == b"\x82\x02ok"
        s.sendall(data)
        frames = parse_frames(read_to_eof(s, rest[4:]))
    assert len(frames) == 1 and frames[0][0] == 0x88, frames
    assert struct.unpack(">H", frames[0][1][:2])[0] == code
    server.expect(r"^CLOSED /e2e/bad-%s %d " % (name, code))


def test_raw_close_handshake_and_ping(server):
    s, rest = raw_open(server.port, "/e2e/raw-close")
    with s:
        s.sendall(frame(9, b"hey", key=KEY) + frame(8, b"\x0f\xa1reason", key=KEY))
        frames = parse_frames(read_to_eof(s, rest))
    # Pong with the same payload, then the close code echoed without a reason.
    assert frames == [(0x8A, b"hey"), (0x88, b"\x0f\xa1")]
    server.expect(r"^CLOSED /e2e/raw-close 4001 reason")


def test_frame_pipelined_behind_the_head(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=T)
    with s:
        s.sendall(raw_request("/e2e/pipelined") + frame(2, b"early", key=KEY))
        data = b""
        while not data.endswith(b"\x82\x05early"):
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 101 ")


def test_more_than_rx_pipelined_behind_the_head(server):
    # The head and more frame bytes than the 1 KB rx part holds, in one segment: the head read
    # stops at 1 KB, the rest is read as frames; the ping among them is answered and the echo
    # is whole.
    big = bytes(range(256)) * 6
    s = socket.create_connection(("127.0.0.1", server.port), timeout=T)
    with s:
        s.sendall(raw_request("/e2e/pipelined-big") + frame(2, big, key=KEY) + frame(9, b"hey", key=KEY))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101 ")
        while True:  # what came with the head is parsed before waiting for more
            try:
                frames = parse_frames(rest)
            except (IndexError, struct.error):
                frames = []
            if frames and len(frames[-1][1]) < (len(big) if frames[-1][0] == 0x82 else 3):
                frames = []  # the last frame is not whole yet
            if len(frames) >= 2:
                break
            chunk = s.recv(4096)
            assert chunk, (rest, frames)
            rest += chunk
    assert sorted(frames) == sorted([(0x82, big), (0x8A, b"hey")])


@pytest.mark.parametrize(
    "data,status,line",
    [
        (b"", 408, "timeout"),
        # Exactly the 1 KB the head may take (the rx part of the block): more would be unread
        # at close, and a reset could overtake the response.
        ((b"GET /x HTTP/1.1\r\nX-Pad: " + b"a" * 3000)[:1024], 431, "head too large"),
        (None, 426, "unsupported WebSocket version"),
        (b"POST / HTTP/1.1\r\n\r\n", 405, "method not GET"),
    ],
)
def test_refused_upgrades_raw(server, data, status, line):
    if data is None:
        data = raw_request("/e2e/v8").replace(b"Version: 13", b"Version: 8")
    s = socket.create_connection(("127.0.0.1", server.port), timeout=T)
    with s:
        if data:
            s.sendall(data)
        resp = read_to_eof(s, b"")
    if status == 408:
        # a stalled peer is closed without an answer: under TLS its handshake may be unfinished
        assert resp == b"", resp
    else:
        assert resp.startswith(b"HTTP/1.1 %d " % status), resp
    if status == 426:
        assert b"Sec-WebSocket-Version: 13\r\n" in resp
    server.expect(r"^REFUSED %d %s" % (status, line))


def test_still_serving_and_no_leak(server):
    heaps = []

    async def one(i):
        async with ws_connect(server.uri("again%d" % i)) as ws:
            msg = os.urandom(10240)
            await ws.send(msg)
            assert await asyncio.wait_for(ws.recv(), T) == msg

    for i in range(6):
        arun(one(i))
        heaps.append(int(server.expect(r"^HEAP /e2e/again%d (\d+)" % i).group(1)))
    assert max(heaps[1:]) - heaps[1] < 1024, heaps


# --- MicroPython as client against a websockets server


async def run_client(port, *args):
    """host_tests/mpy/ws_echo_client.py against a server on port: (exit status, output)."""
    proc = await asyncio.create_subprocess_exec(
        mpyrun.MICROPYTHON,
        os.path.join(MPY_SCRIPTS, "ws_echo_client.py"),
        str(port),
        *args,
        env=mpyrun.mpy_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 2 * T)
    return proc.returncode, out.decode()


def test_micropython_client_against_websockets_server():
    closes = []

    async def handler(ws):
        assert ws.subprotocol == "ship"
        async for m in ws:
            if m == b"pinged?":
                waiter = await ws.ping(b"from-server")
                await asyncio.wait_for(waiter, T)
                await ws.send(b"pong-ok")
            elif len(m) > 1024:
                await ws.send([m[i : i + 1024] for i in range(0, len(m), 1024)])
            else:
                await ws.send(m)
        closes.append((ws.close_code, ws.close_reason))

    async def go():
        async with serve(handler, "127.0.0.1", 0, subprotocols=["ship"], ping_interval=None) as srv:
            return await run_client(srv.sockets[0].getsockname()[1])

    rc, out = arun(go())
    assert rc == 0 and "Traceback" not in out, out
    m = re.search(r"ECHO 10240 max_chunk (\d+)", out)
    assert m and int(m.group(1)) <= 1024, out
    assert re.search(r"INTO 10240 steps \d+", out), out
    m = re.search(r"CONCURRENT ok cancels (\d+)", out)
    assert m and int(m.group(1)) > 0, out
    assert "CLOSED 1000 done" in out
    assert closes == [(1000, "done")]


def _accept_value(key):
    return base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())


@pytest.mark.parametrize(
    "reply,expect",
    [
        # 101 and the first frames in one segment: the frames behind the head are not lost.
        ("good+frames", "MSG (5, '%s')\nCLOSED 4001 bye" % hashlib.sha1(b"early").hexdigest()),
        ("silent", "REFUSED 0 timeout"),
        ("protocol", "REFUSED 101 subprotocol not ship"),
        ("status", "REFUSED 403 upgrade refused"),
    ],
)
def test_micropython_client_handshake_edge_cases(reply, expect):
    async def handler(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        key = re.search(rb"Sec-WebSocket-Key: (\S+)", head).group(1)
        proto = b"chat" if reply == "protocol" else b"ship"
        if reply == "status":
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        elif reply != "silent":
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: %s\r\n\r\n" % (_accept_value(key), proto)
                + frame(2, b"early")
                + frame(8, b"\x0f\xa1bye")
            )
        await writer.drain()
        await reader.read()  # until the client drops the connection
        writer.close()

    async def go():
        srv = await asyncio.start_server(handler, "127.0.0.1", 0)
        async with srv:
            return await run_client(srv.sockets[0].getsockname()[1], "handshake")

    rc, out = arun(go())
    assert rc == 0 and "Traceback" not in out, out
    lines = out.strip().splitlines()
    if lines[-1].startswith("ELAPSED"):
        elapsed = int(lines.pop().split()[1])
        # connect(..., 300): the watchdog, not the server, ends the wait
        assert reply != "silent" or 290 <= elapsed < 3000, elapsed
    assert "\n".join(lines) == expect


def test_websockets_version():
    # The e2e peers were written against this major version's asyncio API.
    assert websockets.__version__.split(".")[0] == "17"



@pytest.mark.parametrize("what", ["close", "ping"])
def test_control_frame_queued_during_a_writers_drain_goes_out(what):
    """The reader answers a protocol error (close 1002) or a ping while a writer holds the role
    and is already in its drain (host_tests/mpy/ws_ctl_in_drain.py): the answer follows the
    writer's frame before the role is released. Until _drain_ctl it was left behind, and under
    load a peer sending a bad frame saw the connection drop without its close frame."""
    r = mpyrun.run(os.path.join(MPY_SCRIPTS, "ws_ctl_in_drain.py"), args=(what,), timeout=60).check()
    m = re.search(r"^WROTE ([0-9a-f]*)$", r.stdout, re.M)
    assert m, r.stdout
    wrote = bytes.fromhex(m.group(1))
    assert wrote[:12] == frame(2, b"x" * 10), wrote.hex()  # the writer's frame first
    answer = wrote[12:]
    if what == "close":
        assert answer[0] == 0x88 and answer[1] == len(answer) - 2 and answer[2:4] == struct.pack("!H", 1002), answer
    else:
        assert answer == frame(10, b"hi"), answer.hex()
