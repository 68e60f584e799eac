# WsConnection.keep (a message kept whole in the rx part, as SHIP's control messages are) under
# MicroPython: argv[1] is a file of cases, one a line: "<read sizes, comma separated> <hex of the
# client's byte stream>" (an upgrade request, then masked frames). The stream is accepted and
# read to its end in reads of those sizes (cycled); some reads are cancelled (a size given as 0:
# that read stalls and the read_some is timed out; the next read goes on). Messages whose first byte is 1 are kept
# (the rest of them, as ShipConnection does), any other is copied. Per case one line:
# "CASE <i> <per message: K<sha1 of the kept bytes> | TOOLONG | D<sha1 of the message>>".
import asyncio
import binascii
import hashlib
import sys

from ws.stream import WsClosed, WsConnection


class FakeReader:
    def __init__(self, data, sizes):
        self.data = data
        self.pos = 0
        self.sizes = sizes
        self.k = 0
        self.stalls = False  # from the first frame on

    async def readinto(self, mv):
        size = self.sizes[self.k % len(self.sizes)]
        self.k += 1
        if size == 0 and self.stalls:
            await asyncio.sleep_ms(1000)  # cancelled by the driver's timeout
        if self.pos >= len(self.data):
            return 0
        n = min(size or 7, len(mv), len(self.data) - self.pos)
        mv[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


class FakeWriter:
    def write(self, b):
        pass

    async def drain(self):
        pass

    def close(self):
        pass

    async def wait_closed(self):
        pass


def h(b):
    return binascii.hexlify(hashlib.sha1(b).digest()).decode()


class Sink:
    def __init__(self, ws):
        self.ws = ws
        self.out = []
        self.kind = -1
        self.copy = None
        self.failed = False

    def ws_begin(self):
        self.kind = -1
        self.copy = bytearray()
        self.failed = False
        self.ws.keep_reset()

    def ws_data(self, buf, off, n):
        if self.kind < 0:
            self.kind = buf[off]
            self.copy.append(buf[off])
            off += 1
            n -= 1
        if self.kind == 1:
            if not self.failed and n and not self.ws.keep(buf, off, n):
                self.failed = True
                self.ws.keep_reset()
        else:
            self.copy.extend(memoryview(buf)[off : off + n])

    def ws_end(self):
        ws = self.ws
        if self.kind == 1:
            if self.failed:
                self.out.append("TOOLONG")
            elif ws.kept_at < 0:
                self.out.append("K" + h(b""))
            else:
                self.out.append("K" + h(ws.buf[ws.kept_at : ws.kept_end]))
            ws.keep_reset()
        else:
            self.out.append("D" + h(self.copy))


async def one(sizes, data):
    r = FakeReader(data, sizes)
    ws = WsConnection(r, FakeWriter(), False, max_message=8192)
    ws.send_ms = 100
    await ws.accept(1000)
    r.stalls = True
    sink = Sink(ws)
    while True:
        try:
            await asyncio.wait_for_ms(ws.read_some(sink), 20)
        except asyncio.TimeoutError:
            pass
        except WsClosed:
            break
    return sink.out


async def main():
    with open(sys.argv[1]) as f:
        lines = f.read().split("\n")
    i = 0
    for line in lines:
        if not line:
            continue
        sizes, hexdata = line.split(" ")
        out = await one([int(x) for x in sizes.split(",")], binascii.unhexlify(hexdata))
        print("CASE", i, " ".join(out))
        i += 1
    print("DONE", i)


asyncio.run(main())
