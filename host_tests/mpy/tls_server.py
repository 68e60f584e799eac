# SHIP TLS server under test (MicroPython), one server_context shared by two listeners:
# - port_take: the handler awaits the first readline itself (a watchdog task cancels it after
#   timeout_ms) and then calls tlsctx.take_peer_ski() for its own task;
# - port_helper: the handler runs the first readline through tlsctx.handshake(..., timeout_ms).
# Per connection: read a line; without a peer SKI drop the connection, otherwise answer
# "SKI <hex>" and "CIPHER <suite> <version>". Every outcome is logged on stdout for the test.
# argv: cert.der key.der port_take port_helper timeout_ms
import sys
import asyncio

from ship import tlsctx

_TIMEOUT_MS = int(sys.argv[5])


def _load(path):
    with open(path, "rb") as f:
        return f.read()


async def _answer(writer, line, ski):
    if not line:
        print("EOF", ski)
    elif ski is None:
        print("NOCERT")
    else:
        suite, version = writer.s.cipher()
        writer.write(b"SKI %s\nCIPHER %s %s\n" % (ski, suite, version))
        await writer.drain()
        print("OK", ski, suite, version)


async def _close(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except Exception:
        pass
    print("PENDING", len(tlsctx._pending), len(tlsctx._expect))


async def _cancel_after(task, ms):
    await asyncio.sleep_ms(ms)
    task.cancel()


async def _handle_take(reader, writer):
    wd = asyncio.create_task(_cancel_after(asyncio.current_task(), _TIMEOUT_MS))
    try:
        line = await reader.readline()
        wd.cancel()
        await _answer(writer, line, tlsctx.take_peer_ski())
    except asyncio.CancelledError:  # the watchdog fired
        tlsctx.take_peer_ski()
        print("FAIL timeout")
    except Exception as e:
        wd.cancel()
        tlsctx.take_peer_ski()
        print("FAIL", repr(e))
    await _close(writer)


async def _handle_helper(reader, writer):
    try:
        line, ski = await tlsctx.handshake(reader.readline(), _TIMEOUT_MS)
        await _answer(writer, line, ski)
    except Exception as e:
        print("FAIL", repr(e))
    await _close(writer)


async def _main(cert, key, port_take, port_helper):
    ctx = tlsctx.server_context(cert, key)
    await asyncio.start_server(_handle_take, "127.0.0.1", port_take, ssl=ctx)
    await asyncio.start_server(_handle_helper, "127.0.0.1", port_helper, ssl=ctx)
    print("READY", port_take, port_helper)
    while True:
        await asyncio.sleep(3600)


asyncio.run(_main(_load(sys.argv[1]), _load(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
