# A control frame the reader queues while a writer drains (lib/ws/stream.py _drain_ctl), under
# MicroPython: argv[1] "close" (a protocol error, answered with close 1002) or "ping" (answered
# with a pong). A server connection is accepted from an in-memory upgrade request; a task sends
# a message and waits in the writer's drain, held by the test; the reader then gets the peer's
# frame and queues its answer (a close waits for the role). Once the drain is released, prints "WROTE <hex of every byte
# written after the upgrade response>".
import asyncio
import binascii
import sys

from ws.stream import WsClosed, WsConnection, _Discard

REQUEST = (
    b"GET /ship/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: ship\r\n\r\n"
)
UNMASKED = b"\x82\x02ab"  # a client frame without a mask: 1002
PING = b"\x89\x82\x01\x02\x03\x04" + bytes((ord("h") ^ 1, ord("i") ^ 2))  # masked ping "hi"


class Reader:
    def __init__(self):
        self.chunks = [REQUEST]
        self.more = asyncio.Event()

    async def readinto(self, mv):
        while not self.chunks:
            self.more.clear()
            await self.more.wait()
        c = self.chunks.pop(0)
        mv[: len(c)] = c
        return len(c)


class Writer:
    out_buf = b""  # MicroPython's Stream without unsent bytes: _drain awaits drain() itself

    def __init__(self):
        self.data = bytearray()
        self.gate = asyncio.Event()
        self.gate.set()
        self.draining = asyncio.Event()

    def write(self, b):
        self.data += b

    async def drain(self):
        self.draining.set()
        await self.gate.wait()

    def close(self):
        pass

    async def wait_closed(self):
        pass


async def read(ws):
    try:
        await ws.read_some(_Discard())  # the frames here carry no data
    except WsClosed:
        pass


async def main(what):
    r, w = Reader(), Writer()
    ws = WsConnection(r, w, False)
    await ws.accept(1000)
    mark = len(w.data)
    w.gate.clear()
    w.draining.clear()
    send = asyncio.create_task(ws.send_binary(b"x" * 10))
    await w.draining.wait()  # the writer is past its frame, in the drain
    r.chunks.append(UNMASKED if what == "close" else PING)
    r.more.set()
    rd = asyncio.create_task(read(ws))
    await asyncio.sleep_ms(20)  # the reader has the frame and has queued its answer
    w.gate.set()
    await send
    await rd
    print("WROTE", binascii.hexlify(bytes(w.data[mark:])).decode())


asyncio.run(main(sys.argv[1]))
