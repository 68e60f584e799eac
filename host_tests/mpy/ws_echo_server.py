# WebSocket echo server on lib/ws/stream.py for the end-to-end tests: argv[1] is the port,
# argv[2] the upgrade timeout in ms.
# Every message is echoed, except commands: b"close:<code>" closes with that code, b"ping"
# sends a ping and reports b"pongs:<n>" once its pong is in. Echoes of messages above 1 KB go
# out through begin()/write()/end() in odd-sized pieces. On /e2e/into every echo is put straight
# into the tx part (room()/advance(), as the SPINE writer sends) in rooms of varying size, and
# b"over"/b"short" make a producer that puts more/fewer bytes than it announced.
import sys
import asyncio
import gc

from ws.stream import WsConnection, WsClosed
from ws.upgrade import UpgradeError

PORT = int(sys.argv[1])
ACCEPT_MS = int(sys.argv[2])
MAX = 16384


class Sink:
    def __init__(self):
        self.buf = bytearray(MAX)
        self.mv = memoryview(self.buf)
        self.n = 0
        self.max_chunk = 0
        self.msgs = []

    def ws_begin(self):
        self.n = 0
        self.max_chunk = 0

    def ws_data(self, buf, off, n):
        self.mv[self.n : self.n + n] = memoryview(buf)[off : off + n]
        self.n += n
        if n > self.max_chunk:
            self.max_chunk = n

    def ws_end(self):
        self.msgs.append((bytes(self.mv[: self.n]), self.max_chunk))


async def serve_one(ws, path, sink):
    pings = -1
    while True:
        await ws.read_some(sink)
        if pings >= 0 and ws.pongs > pings:
            await ws.send_binary(b"pongs:%d" % ws.pongs)
            pings = -1
        while sink.msgs:
            m, chunk = sink.msgs.pop(0)
            print("MSG", path, len(m), chunk)
            if m.startswith(b"close:"):
                code = int(m[6:])
                await ws.close(code, "bye")
                print("CLOSED", path, "local", code)
                return
            if path == "/e2e/into":
                if not await echo_into(ws, m):
                    return
            elif m == b"ping":
                pings = ws.pongs
                await ws.ping(b"srv")
            elif len(m) > 1024:
                await ws.begin(len(m))
                mv = memoryview(m)
                for i in range(0, len(m), 700):
                    await ws.write(mv[i : i + 700])
                await ws.end()
            else:
                await ws.send_binary(m)


async def echo_into(ws, m):
    n = len(m)
    await ws.begin(n)
    if m in (b"over", b"short"):
        try:
            await ws.advance(n + 1 if m == b"over" else 0)
        except ValueError as e:
            print("ABORTED", e)
            return False
    off = 0
    step = 0
    while off < n:
        t = ws.room()
        k = min(ws.tx_end - t, n - off, 1 + (step * 397) % 1100)
        ws.buf[t : t + k] = m[off : off + k]
        await ws.advance(k)
        off += k
        step += 1
    await ws.end()
    return True


async def handle(r, w):
    ws = WsConnection(r, w, False, max_message=MAX)
    try:
        path = await ws.accept(ACCEPT_MS)
    except UpgradeError as e:
        print("REFUSED", e.status, e.reason)
        return
    print("OPEN", path)
    try:
        await serve_one(ws, path, Sink())
    except WsClosed as e:
        print("CLOSED", path, e.code, e.reason)
    finally:
        await ws.close()
    gc.collect()
    print("HEAP", path, gc.mem_alloc())


async def main():
    await asyncio.start_server(handle, "127.0.0.1", PORT)
    print("READY", PORT)
    while True:
        await asyncio.sleep(3600)


asyncio.run(main())
