"""1000 mutated SHIP transcripts replayed under MicroPython (host_tests/mpy/ship_replay.py):
each ends in a clean close from the gateway; then a sample over real TLS to the gateway
process, after which a good peer still connects."""

import asyncio
import os
import random
import re

import certs
from support import mpyrun
from support.gateway_proc import Gateway
from support.paths import HOST_TESTS, MPY_SCRIPTS
from test_ws_codec import frame as ws_frame
from testcem.identity import Identity
from testcem.ship import ShipPeer
from testcem.tls import client_context

HELLO = b'\x01{"connectionHello":[{"phase":"ready"},{"waiting":60000}]}'
ANNOUNCE = (b'\x01{"messageProtocolHandshake":[{"handshakeType":"announceMax"},'
            b'{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF8"]}]}]}')
SELECT = ANNOUNCE.replace(b"announceMax", b"select")
PIN = b'\x01{"connectionPinState":[{"pinState":"none"}]}'
AMR = b'\x01{"accessMethodsRequest":[]}'
AM = b'\x01{"accessMethods":[{"id":"Replay-CEM"}]}'
DATA = (b'\x02{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":['
        b'{"header":[{"specificationVersion":"1.3.0"},{"msgCounter":1},{"cmdClassifier":"read"}]},'
        b'{"payload":[{"cmd":[[{"nodeManagementDetailedDiscoveryData":[]}]]}]}]}}]}')
CLOSE = b'\x03{"connectionClose":[{"phase":"announce"},{"maxTime":500},{"reason":"unspecific"}]}'
MESSAGES = [b"\x00\x00", HELLO, ANNOUNCE, SELECT, PIN, AMR, AM, DATA, DATA * 1]
# a peer pairing by PIN (the gateway in pin mode requires 12345678): wrong, malformed, right
PIN_INPUT = b'\x01{"connectionPinInput":[{"pin":"12345678"}]}'
PIN_MESSAGES = [b"\x00\x00", HELLO, ANNOUNCE, SELECT, PIN,
                b'\x01{"connectionPinInput":[{"pin":"00000000"}]}', b'\x01{"connectionPinInput":[{"pin":7}]}',
                PIN_INPUT, AMR, AM, b'\x01{"keyMaterialStateXY":[]}', DATA]


def frame(opcode, data, fin=True, rng=None):
    return ws_frame(opcode, data, fin, bytes(rng.getrandbits(8) for _ in range(4)))


def transcript(rng, messages=MESSAGES):
    """A client byte stream: the SHIP handshake and data, mutated at message, frame or byte level."""
    msgs = list(messages)
    op = rng.randrange(6)
    if op == 0:
        del msgs[rng.randrange(len(msgs))]
    elif op == 1:
        i = rng.randrange(len(msgs))
        msgs.insert(i, msgs[rng.randrange(len(msgs))])
    elif op == 2:
        i, j = rng.randrange(len(msgs)), rng.randrange(len(msgs))
        msgs[i], msgs[j] = msgs[j], msgs[i]
    elif op == 3:
        i = rng.randrange(len(msgs))
        m = bytearray(msgs[i])
        for _ in range(rng.randint(1, 4)):
            if m:
                m[rng.randrange(len(m))] = rng.randrange(256)
        msgs[i] = bytes(m)
    elif op == 4:
        msgs.insert(rng.randrange(len(msgs)), bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 60))))
    else:
        msgs.append(CLOSE)
    out = bytearray()
    for m in msgs:
        if len(m) > 200 and rng.random() < 0.5:
            # fragmented, with a ping in between
            parts = [m[i : i + 100] for i in range(0, len(m), 100)]
            for k, p in enumerate(parts):
                out += frame(2 if k == 0 else 0, p, fin=k == len(parts) - 1, rng=rng)
                if k == 0:
                    out += frame(9, b"p", rng=rng)
        else:
            out += frame(2, m, rng=rng)
    if rng.random() < 0.3:
        # byte-level damage to the stream itself (lengths, masks, opcodes)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(out))
            if rng.random() < 0.5:
                out[i] = rng.randrange(256)
            else:
                del out[i:]
                break
    return bytes(out)


def corpus(n, seed, messages=MESSAGES):
    rng = random.Random(seed)
    return [(rng.choice((1, 7, 64, 1024)), transcript(rng, messages)) for _ in range(n)]


def test_1000_mutated_transcripts_end_in_clean_close(tmp_path):
    cert, key = certs.create(cn="replay")
    (tmp_path / "cert.der").write_bytes(cert)
    (tmp_path / "key.der").write_bytes(key)
    path = tmp_path / "corpus.txt"
    with open(path, "w") as f:
        for chunk, data in corpus(1000, seed=20261121):
            f.write("%d %s\n" % (chunk, data.hex()))
    script = os.path.join(MPY_SCRIPTS, "ship_replay.py")
    r = mpyrun.run(script, args=(str(path), str(tmp_path)), timeout=300, extra_path=(HOST_TESTS,)).check()
    m = re.search(r"REPLAY (\d+) codes (.*)", r.stdout)
    assert m and int(m.group(1)) == 1000, r.stdout[-2000:]
    heap = r.heap()
    # the node keeps nothing per connection once it has ended
    assert heap["after"] - heap["before"] < 1024, heap
    print(m.group(0))


def test_mutated_pin_transcripts_end_in_clean_close(tmp_path):
    # the PIN phase of untrusted peers: right, wrong and malformed PINs, the attempt lock and
    # unknown control messages, mutated; every run ends in a clean close and leaks nothing
    cert, key = certs.create(cn="replay")
    (tmp_path / "cert.der").write_bytes(cert)
    (tmp_path / "key.der").write_bytes(key)
    path = tmp_path / "corpus.txt"
    with open(path, "w") as f:
        for chunk, data in corpus(400, seed=20260606, messages=PIN_MESSAGES):
            f.write("%d %s\n" % (chunk, data.hex()))
    script = os.path.join(MPY_SCRIPTS, "ship_replay.py")
    r = mpyrun.run(script, args=(str(path), str(tmp_path), "pin"), timeout=300,
                   extra_path=(HOST_TESTS,)).check()
    m = re.search(r"REPLAY (\d+) codes (.*)", r.stdout)
    assert m and int(m.group(1)) == 400, r.stdout[-2000:]
    # some runs paired (the gateway ended an established session: 4001) and some were refused
    assert "4452" in m.group(2) and "4001" in m.group(2), m.group(0)
    heap = r.heap()
    assert heap["after"] - heap["before"] < 1024, heap
    print(m.group(0))


def test_mutated_transcripts_over_tls_then_good_peer(tmp_path):
    cem = Identity.generate(common_name="Replay")
    gw = Gateway(tmp_path / "gw",
                 ship={"timers_ms": {"cmi": 300, "hello": 400, "close": 100, "idle": 200, "pong": 200}})
    gw.trust(cem.ski)
    gw.start()
    try:
        ctx = client_context(cem)

        async def one(data):
            r, w = await asyncio.open_connection("127.0.0.1", gw.port, ssl=ctx, server_hostname="gw")
            try:
                w.write(
                    b"GET /ship/ HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                    b"Sec-WebSocket-Protocol: ship\r\n\r\n" + data
                )
                await w.drain()
                # the gateway ends every such session by itself, within its timers
                got = b""
                while True:
                    chunk = await asyncio.wait_for(r.read(65536), 5)
                    if not chunk:
                        break
                    got += chunk
                return got
            finally:
                w.close()

        async def go():
            for _, data in corpus(30, seed=7):
                got = await one(data)
                assert got.startswith(b"HTTP/1.1 101")
            p = ShipPeer(cem, ship_id="Good-CEM", timeout=8)
            await p.dial("127.0.0.1", gw.port, expected_ski=gw.ski)
            assert p.handshake_complete
            await p.close()

        asyncio.run(asyncio.wait_for(go(), 120))
        assert gw.alive()
    finally:
        gw.stop()
