# SHIP TLS client under test (MicroPython): client_context + asyncio.open_connection, sends one
# line and prints the server's SKI and its reply.
# argv: cert.der key.der port mode [expected_ski]
#   mode "take":    write + drain in this task, then tlsctx.take_peer_ski()
#   mode "wrapped": write + drain under asyncio.wait_for_ms, then take_peer_ski() (the pitfall:
#                   the handshake ran in wait_for's own task, so this task has no SKI)
#   mode "expect":  tlsctx.handshake(<write + drain>, ..., expect=expected_ski)
#   mode "expect-take": tlsctx.expect_peer_ski(expected_ski), write + drain, take_peer_ski()
import sys
import asyncio

from ship import tlsctx

_TIMEOUT_MS = 5000


def _load(path):
    with open(path, "rb") as f:
        return f.read()


async def _send(writer, data):
    writer.write(data)
    await writer.drain()


async def _main(cert, key, port, mode, expect):
    ctx = tlsctx.client_context(cert, key)
    reader, writer = await asyncio.wait_for_ms(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="ship-peer"), _TIMEOUT_MS
    )
    line = b"hello from micropython\n"
    try:
        if mode == "take":
            await _send(writer, line)
            ski = tlsctx.take_peer_ski()
        elif mode == "wrapped":
            await asyncio.wait_for_ms(_send(writer, line), _TIMEOUT_MS)
            ski = tlsctx.take_peer_ski()
            tlsctx._prune()
        else:
            try:
                if mode == "expect":
                    _, ski = await tlsctx.handshake(_send(writer, line), _TIMEOUT_MS, expect=expect)
                else:  # expect-take
                    tlsctx.expect_peer_ski(expect)
                    try:
                        await _send(writer, line)
                    finally:
                        ski = tlsctx.take_peer_ski()
            except OSError as e:
                print("REFUSED", e.args[0])
                return
        print("CIPHER", *writer.s.cipher())
        print("SKI", ski)
        line = await asyncio.wait_for_ms(reader.readline(), _TIMEOUT_MS)
        print("REPLY", line.decode().strip())
    finally:
        writer.close()
        await writer.wait_closed()
        print("PENDING", len(tlsctx._pending), len(tlsctx._expect))


# The whole run is bounded; _main's own awaits run in its task, as a connection handler's would.
asyncio.run(
    asyncio.wait_for_ms(
        _main(
            _load(sys.argv[1]),
            _load(sys.argv[2]),
            int(sys.argv[3]),
            sys.argv[4],
            sys.argv[5] if len(sys.argv) > 5 else None,
        ),
        3 * _TIMEOUT_MS,
    )
)
