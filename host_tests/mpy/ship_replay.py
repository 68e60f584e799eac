# Replays mutated SHIP client transcripts through the gateway's real node, WebSocket adapter
# and SHIP core under MicroPython, over in-memory streams (no TLS, so 1000 runs take seconds).
# Usage: micropython ship_replay.py CORPUS_FILE CERT_DIR [pin]
# pin: the gateway requires the SHIP PIN 12345678 from its (untrusted) peers, 3 tries per 50 ms
# Corpus: per transcript a line "<chunk size> <hex of the client byte stream>".
# Each run must end with the gateway sending a WebSocket close frame with a valid code, the
# node must hold no peer afterwards, and the live heap must come back to where it was.
import asyncio
import binascii
import gc
import sys
import time

import log
from cases.shipstub import NullSpine
from ship import connection as C
from ship import pin as P
from ship.node import ShipNode
from ship.trust import TrustStore
from ws.codec import Decoder, close_code_valid

log.level = -1  # quiet
_CONCURRENT = 16


class FakeReader:
    # hands out the transcript in chunks, then blocks like a silent peer
    def __init__(self, data, chunk):
        self.data = data
        self.pos = 0
        self.chunk = chunk

    async def readinto(self, mv):
        if self.pos >= len(self.data):
            await asyncio.sleep(3600)
        n = min(self.chunk, len(mv), len(self.data) - self.pos)
        mv[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


class FakeWriter:
    def __init__(self):
        self.out = bytearray()
        self.closed = False

    def write(self, b):
        self.out.extend(b)

    async def drain(self):
        pass

    def close(self):
        self.closed = True

    async def wait_closed(self):
        pass

    def get_extra_info(self, k):
        return ("127.0.0.1", 1)


class Frames:
    # collects the gateway's frames as the CEM would see them
    def __init__(self):
        self.msgs = 0
        self.close = None

    def ws_begin(self):
        pass

    def ws_data(self, b, o, n):
        pass

    def ws_end(self):
        self.msgs += 1


def gateway_close_code(out):
    d = Decoder(True, 1 << 20)
    f = Frames()
    off = 0
    n = len(out)
    while off < n:
        used = d.feed(out, off, n - off, f)
        off += used
        if d.control == 8:  # a close frame (RFC 6455 5.5.1)
            return d.close_code or 1005
        if used == 0:
            break
    return None


async def replay(node, data, chunk, codes, ski):
    from ws.stream import WsConnection

    w = FakeWriter()
    ws = WsConnection(FakeReader(data, chunk), w, False)
    run = asyncio.create_task(node._run(ws, ski, "replay", False))
    # an established session is ended by us, like a gateway shutting down
    for _ in range(40):
        await asyncio.sleep_ms(25)
        if run.done():
            break
        for lst in node.peers.values():
            for p in lst:
                if p.conn and p.conn.state == C.DATA:
                    p.close()
    try:
        await asyncio.wait_for_ms(run, 2000)
    except asyncio.TimeoutError:
        for lst in node.peers.values():
            for p in lst:
                print("STUCK", p.conn.state, p.rx_error, p.conn.ms_to_deadline(time.ticks_ms()), p.conn.close_reason)
        raise
    code = gateway_close_code(w.out)
    if code is None or not close_code_valid(code):
        raise AssertionError("no clean close: %r, %r" % (code, bytes(w.out[-40:])))
    codes[code] = codes.get(code, 0) + 1


async def main(corpus, cert_dir, pin_mode=False):
    cert = open(cert_dir + "/cert.der", "rb").read()
    key = open(cert_dir + "/key.der", "rb").read()
    trust = TrustStore(cert_dir + "/replay-trust.json")
    # one peer per concurrent slot: a shared SKI would make them double connections
    skis = ["%040x" % (i + 1) for i in range(_CONCURRENT)]
    for ski in skis:
        if pin_mode:
            trust.remove(ski)
        elif not trust.is_trusted(ski):
            trust.add(ski)
    cfg = {
        "host": "127.0.0.1", "port": 0, "path": "/ship/", "max_message": 16384, "cem": None,
        "ship_id": "Replay-GW-1", "timers": C.Timers(cmi=40, hello=60, prolong_threshold=20, close=30),
    }
    pol = P.PinPolicy("required", "12345678", P.PinGuard(3, 50)) if pin_mode else None
    node = ShipNode(cfg, cert, key, "cd" * 20, trust, lambda peer: NullSpine(), pol, cert_dir + "/replay-pin.json")
    codes = {}
    done = 0
    before = None
    with open(corpus) as f:
        while True:
            batch = []
            for line in f:
                chunk, hexdata = line.split()
                batch.append((int(chunk), binascii.unhexlify(hexdata)))
                if len(batch) == _CONCURRENT:
                    break
            if not batch:
                break
            await asyncio.gather(*[replay(node, batch[k][1], batch[k][0], codes, skis[k]) for k in range(len(batch))])
            done += len(batch)
            if pin_mode:
                for ski in skis:  # a right PIN trusted it: untrusted again for the next run
                    trust.remove(ski)
            if before is None:
                # after the first batch: lazily created one-time state is in place
                batch = None
                gc.collect()
                before = gc.mem_alloc()
    assert not node.peers, node.peers
    batch = None
    gc.collect()
    after = gc.mem_alloc()
    print("REPLAY", done, "codes", sorted(codes.items()))
    print("HEAP before", before)
    print("HEAP after", after)


asyncio.run(main(sys.argv[1], sys.argv[2], len(sys.argv) > 3 and sys.argv[3] == "pin"))
