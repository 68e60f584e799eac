# WebSocket client on lib/ws/stream.py against the test's echo server (argv[1] = port): sends a
# small and a 10 KB message and checks the echoes (the 10 KB one comes back fragmented); then
# answers a server ping that arrives while another task streams a message, with the reader
# under constant cancellation; then closes with 1000 and waits for the server's close.
# argv[2] "handshake": against a raw server, report what connect() and the first read give.
import sys
import asyncio
import hashlib
import binascii
import time

from ws.stream import WsConnection, WsClosed
from ws.upgrade import UpgradeError

PORT = int(sys.argv[1])
MODE = sys.argv[2] if len(sys.argv) > 2 else "echo"


class Sink:
    def __init__(self):
        self.h = None
        self.n = 0
        self.frames = 0
        self.max_chunk = 0
        self.msgs = []

    def ws_begin(self):
        self.h = hashlib.sha1()
        self.n = 0

    def ws_data(self, buf, off, n):
        self.h.update(memoryview(buf)[off : off + n])
        self.n += n
        if n > self.max_chunk:
            self.max_chunk = n

    def ws_end(self):
        self.msgs.append((self.n, binascii.hexlify(self.h.digest()).decode()))


async def recv(ws, sink):
    while not sink.msgs:
        await asyncio.wait_for_ms(ws.read_some(sink), 3000)
    return sink.msgs.pop(0)


def digest(b):
    return (len(b), binascii.hexlify(hashlib.sha1(b).digest()).decode())


async def reader(ws, sink, stats):
    # Timers cancel read_some all the time (1 ms here): nothing may be lost. Stopped by a
    # flag: MicroPython's wait_for swallows an outer cancel when the inner call just finished.
    while not stats[1]:
        try:
            await asyncio.wait_for_ms(ws.read_some(sink), 1)
        except asyncio.TimeoutError:
            stats[0] += 1


async def main():
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    ws = WsConnection(r, w, True)
    await ws.connect("127.0.0.1:%d" % PORT, "/ship/", 3000)
    print("OPEN")
    sink = Sink()
    small = b"\x00hello"
    await ws.send_binary(small)
    assert await recv(ws, sink) == digest(small)

    big = bytes((i * 31 + 7) & 0xFF for i in range(10240))
    await ws.begin(len(big))
    for i in range(0, len(big), 1500):
        await ws.write(big[i : i + 1500])
    await ws.end()
    got = await recv(ws, sink)
    assert got == digest(big), got
    print("ECHO", got[0], "max_chunk", sink.max_chunk)

    # a producer that renders into the tx part itself (room/advance, as the SPINE writer
    # does), in rooms of varying size: masked as the client must
    await ws.begin(len(big))
    off = 0
    step = 0
    while off < len(big):
        t = ws.room()
        k = min(ws.tx_end - t, len(big) - off, 1 + (step * 397) % 1100)
        ws.buf[t : t + k] = big[off : off + k]
        await ws.advance(k)
        off += k
        step += 1
    await ws.end()
    got = await recv(ws, sink)
    assert got == digest(big), got
    print("INTO", got[0], "steps", step)

    # The server pings while a slow message is being streamed by another task: the pong
    # must wait for the end of that frame, and the reader keeps getting cancelled.
    stats = [0, False]
    task = asyncio.create_task(reader(ws, sink, stats))
    await ws.send_binary(b"pinged?")
    await ws.begin(len(big))
    for i in range(0, len(big), 1024):
        await ws.write(big[i : i + 1024])
        await asyncio.sleep_ms(15)
    await ws.end()
    for _ in range(300):
        if len(sink.msgs) >= 2:
            break
        await asyncio.sleep_ms(10)
    stats[1] = True
    await asyncio.wait_for_ms(task, 1000)
    assert sink.msgs == [digest(b"pong-ok"), digest(big)], sink.msgs
    sink.msgs = []
    print("CONCURRENT ok cancels", stats[0])

    await ws.close(1000, "done", wait_ms=3000)
    print("CLOSED", ws.close_code, ws.close_reason)


async def handshake():
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    ws = WsConnection(r, w, True)
    t0 = time.ticks_ms()
    try:
        await ws.connect("127.0.0.1", "/ship/", 300)
    except UpgradeError as e:
        print("REFUSED", e.status, e.reason)
        print("ELAPSED", time.ticks_diff(time.ticks_ms(), t0))
        return
    sink = Sink()
    try:
        while True:
            await asyncio.wait_for_ms(ws.read_some(sink), 3000)
    except WsClosed as e:
        for m in sink.msgs:
            print("MSG", m)
        print("CLOSED", e.code, e.reason)


asyncio.run(main() if MODE == "echo" else handshake())
