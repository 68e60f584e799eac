"""Modbus master end to end: lib/modbus under the MicroPython unix port against pymodbus
devices on 127.0.0.1, over Modbus TCP, RTU framing over TCP, and RTU on a pty pair (the real
serial path: termios raw mode on a tty), with a fault proxy in front of each device.

Topology, all in this process except the MicroPython client:

    micropython host_tests/mpy/modbus_client.py
        |  TCP to the proxy, or the tty of pty pair A
    FaultProxy  (thread; drops, corrupts, delays or splits the next reply on request)
        |  TCP to pymodbus, or the master side of pty pair B
    pymodbus 3.x device (ModbusTcpServer / ModbusSerialServer, unit 1, own asyncio loop in a thread)

The client asks the proxy for each fault over a control port, so the faults land on exactly
the request that follows. Sim and FaultProxy are reused by host_tests/bench/bench_modbus.py.
"""

import asyncio
import logging
import os
import re
import select
import socket
import threading
import time
import tty

from support import mpyrun
from support.paths import MPY_SCRIPTS, TOOLS
import pytest

CLIENT = os.path.join(MPY_SCRIPTS, "modbus_client.py")
UNIT = 1
BAUD = 19200

HR = [100 + i for i in range(100)]
IR = [1000 + i for i in range(100)]
CO = [True, False, True, True] + [False] * 60
DI = [False, True] * 32


# -- the device -----------------------------------------------------------------------------------


def _context():
    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext

    # data blocks start at 1 for protocol address 0 (pymodbus 3.x)
    dev = ModbusDeviceContext(
        hr=ModbusSequentialDataBlock(1, list(HR)),
        ir=ModbusSequentialDataBlock(1, list(IR)),
        co=ModbusSequentialDataBlock(1, list(CO)),
        di=ModbusSequentialDataBlock(1, list(DI)),
    )
    return ModbusServerContext(devices={UNIT: dev}, single=False)


class Sim:
    """pymodbus devices in a thread with their own event loop. Each server has its own
    datastore (pymodbus copies the context into each server's simulator core)."""

    def __init__(self):
        # the 3.x datastore classes warn that v4 drops them; unknown units log a KeyError
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers = {}
        self.ports = {}
        self.pty = None

    def start(self, kinds=("tcp", "rtutcp", "serial")):
        self.thread.start()
        for kind in kinds:
            self._call(self._start(kind))
        return self

    def _call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self, kind):
        from pymodbus.framer import FramerType
        from pymodbus.server import ModbusSerialServer, ModbusTcpServer

        if kind == "serial":
            # pair A: the MicroPython side opens its tty; pair B: pymodbus opens its tty; the
            # proxy copies between the two master ends
            a_master, a_slave = os.openpty()
            b_master, b_slave = os.openpty()
            for fd in (a_slave, b_slave):
                tty.setraw(fd)
            self.pty = (a_master, a_slave, b_master, b_slave)
            self.ports["serial"] = os.ttyname(a_slave)
            srv = ModbusSerialServer(_context(), framer=FramerType.RTU, port=os.ttyname(b_slave), baudrate=BAUD)
        else:
            framer = FramerType.SOCKET if kind == "tcp" else FramerType.RTU
            srv = ModbusTcpServer(_context(), framer=framer, address=("127.0.0.1", 0))
        await srv.serve_forever(background=True)
        if kind != "serial":
            self.ports[kind] = srv.transport.sockets[0].getsockname()[1]
        self.servers[kind] = srv

    def values(self, kind, fc, addr, count):
        """The device's datastore as a Modbus read with function code fc would return it."""

        async def get():
            return await self.servers[kind].async_getValues(UNIT, fc, addr, count)

        return [int(v) for v in self._call(get())]

    def set_values(self, kind, fc, addr, values):
        async def put():
            await self.servers[kind].async_setValues(UNIT, fc, addr, values)

        self._call(put())

    def proxy(self, kind):
        if kind == "serial":
            return FaultProxy(fds=(self.pty[0], self.pty[2])).start()
        return FaultProxy(upstream=self.ports[kind]).start()

    def stop(self):
        async def down():
            for srv in self.servers.values():
                await srv.shutdown()

        try:
            self._call(down())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            if self.pty:
                for fd in self.pty:
                    os.close(fd)


# -- the fault proxy ------------------------------------------------------------------------------


class FaultProxy:
    """Copies bytes between the master (client end) and the device, and applies armed faults,
    one per request, to the next requests:

    noreply  the request is swallowed: the device never hears it
    close    the client connection is closed instead (TCP)
    corrupt  the last byte of the reply is inverted (RTU: the CRC)
    garbage  three bytes of noise go out in front of the reply
    late     the reply is held for LATE_S (past the master's timeout)
    tid      the reply's MBAP transaction id is changed
    split    the reply goes out one byte at a time, 2 ms apart

    A reply is assembled (quiet for 8 ms) only when a fault needs it; otherwise bytes pass at
    once. Faults are armed with a line "name count" on the control port (answered "ok")."""

    LATE_S = 0.45
    REQUEST_FAULTS = ("noreply", "close")
    REPLY_FAULTS = ("corrupt", "garbage", "late", "tid", "split")

    def __init__(self, upstream=None, fds=None):
        self.upstream_port = upstream
        self.fds = fds
        self.armed = []
        self.events = []
        self.lock = threading.Lock()
        self.ctl = socket.socket()
        self.ctl.bind(("127.0.0.1", 0))
        self.ctl.listen(4)
        self.ctl_port = self.ctl.getsockname()[1]
        self.listener = None
        if fds is None:
            self.listener = socket.socket()
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(("127.0.0.1", 0))
            self.listener.listen(4)
            self.port = self.listener.getsockname()[1]
        self.client = self.device = None
        self.socks = []
        if fds is not None:
            self.client, self.device = fds
        self.wake_r, self.wake_w = os.pipe()
        self.stopped = False
        self.req_fault = None
        self.reply_fault = None
        self.asm = b""
        self.asm_until = 0.0
        self.out = []  # (time due, bytes), sent in order
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopped = True
        os.write(self.wake_w, b"x")
        self.thread.join(5)
        for s in [self.ctl, self.listener] + self.socks:
            if s is not None:
                s.close()
        os.close(self.wake_r)
        os.close(self.wake_w)

    def arm(self, name, count=1):
        assert name in self.REQUEST_FAULTS + self.REPLY_FAULTS, name
        with self.lock:
            self.armed += [name] * count

    # the loop

    def _run(self):
        while not self.stopped:
            rl = [self.wake_r, self.ctl]
            if self.listener is not None:
                rl.append(self.listener)
            if self.client is not None:
                rl += [self.client, self.device]
            now = time.monotonic()
            due = [t for t, _ in self.out[:1]] + ([self.asm_until] if self.asm else [])
            timeout = max(0.0, min(due) - now) if due else 0.2
            ready, _, _ = select.select(rl, [], [], timeout)
            now = time.monotonic()
            for r in ready:
                if r == self.ctl:
                    self._control()
                elif r == self.listener:
                    self._accept()
                elif r == self.client:
                    data = self._read(self.client)
                    if data:
                        self._from_client(data, now)
                elif r == self.device:
                    data = self._read(self.device)
                    if data:
                        self._from_device(data, now)
            self._tick(time.monotonic())

    def _read(self, fd):
        try:
            data = os.read(fd if isinstance(fd, int) else fd.fileno(), 4096)
        except OSError:
            data = b""
        if not data:
            self._drop_client()
        return data

    def _write(self, fd, data):
        try:
            os.write(fd if isinstance(fd, int) else fd.fileno(), data)
        except OSError:
            self._drop_client()

    def _control(self):
        c, _ = self.ctl.accept()
        with c:
            c.settimeout(2)
            line = b""
            while not line.endswith(b"\n"):
                chunk = c.recv(64)
                if not chunk:
                    return
                line += chunk
            name, count = line.decode().split()
            self.arm(name, int(count))
            c.sendall(b"ok\n")

    def _accept(self):
        c, _ = self.listener.accept()
        self._drop_client()
        d = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        d.setblocking(True)
        self.client, self.device = c, d
        self.socks += [c, d]

    def _drop_client(self):
        if self.fds is not None or self.client is None:
            return
        for s in (self.client, self.device):
            try:
                s.close()
            except OSError:
                pass
        self.client = self.device = None
        self.asm = b""
        self.reply_fault = None
        self.out = []

    def _from_client(self, data, now):
        # one chunk is one request: the master hands each frame to a single write(), which
        # a TCP segment or the pty carries whole
        with self.lock:
            self.req_fault = self.armed.pop(0) if self.armed else None
        if self.req_fault:
            self.events.append(self.req_fault)
        if self.req_fault in self.REPLY_FAULTS:
            self.reply_fault = self.req_fault
        if self.req_fault == "noreply":
            return
        if self.req_fault == "close":
            self._drop_client()
            return
        self._write(self.device, data)

    def _from_device(self, data, now):
        if self.reply_fault:
            self.asm += data
            self.asm_until = now + 0.008
            return
        self._send(data, now)

    def _send(self, data, due):
        if self.out and self.out[-1][0] > due:
            due = self.out[-1][0]  # keep the order behind a held reply
        self.out.append((due, data))

    def _tick(self, now):
        if self.asm and now >= self.asm_until:
            reply, fault = bytearray(self.asm), self.reply_fault
            self.asm = b""
            self.reply_fault = None
            if fault == "corrupt":
                reply[-1] ^= 0xFF
                self._send(bytes(reply), now)
            elif fault == "garbage":
                self._send(b"\x00\xff\x55" + bytes(reply), now)
            elif fault == "late":
                self._send(bytes(reply), now + self.LATE_S)
            elif fault == "tid":
                reply[1] ^= 0x5A
                self._send(bytes(reply), now)
            elif fault == "split":
                for i in range(len(reply)):
                    self._send(bytes(reply[i : i + 1]), now + 0.002 * i)
        while self.out and self.out[0][0] <= now and self.client is not None:
            _, data = self.out.pop(0)
            self._write(self.client, data)


# -- tests ----------------------------------------------------------------------------------------

FAULTS = {
    "tcp": "noreply,noreply*3,tid,late,garbage,close,split",
    "rtutcp": "noreply,noreply*3,corrupt,garbage,late,split,close",
    "serial": "noreply,noreply*3,corrupt,garbage,late,split",
}


@pytest.fixture(scope="module")
def sim():
    s = Sim().start()
    yield s
    s.stop()


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _fields(text):
    return dict(kv.split("=") for kv in text.split())


@pytest.mark.parametrize("kind", ["tcp", "rtutcp", "serial"])
def test_master_end_to_end_with_faults(sim, kind):
    proxy = sim.proxy(kind)
    try:
        if kind == "serial":
            target = (sim.ports["serial"], str(BAUD))
        else:
            target = ("127.0.0.1", str(proxy.port))
        args = (kind,) + target + (str(proxy.ctl_port), FAULTS[kind])
        if kind == "tcp":
            args += (str(_closed_port()),)
        t0 = time.monotonic()
        r = mpyrun.run(CLIENT, heapsize="128K", args=args, timeout=60, extra_path=(TOOLS,))
        elapsed = time.monotonic() - t0
    finally:
        proxy.stop()
    out = r.stdout
    assert r.ok and "DONE" in out, "rc=%s\n%s\n%s" % (r.returncode, out, r.stderr[-3000:])
    assert elapsed < 20, elapsed

    def line(prefix):
        m = re.search(r"^%s (.*)$" % re.escape(prefix), out, re.M)
        assert m, "no %r line in\n%s" % (prefix, out)
        return m.group(1)

    def csv(values):
        return ",".join(str(int(v)) for v in values)

    # reads agree with the datastore as it was; writes landed in it
    assert line("READ hr 0 10") == csv(HR[:10])
    assert line("READ ir 0 5") == csv(IR[:5])
    assert line("READ co 0 8") == csv(CO[:8])
    assert line("READ di 0 8") == csv(DI[:8])
    assert sim.values(kind, 3, 0, 14) == HR[:2] + [4242] + HR[3:10] + [1, 2, 3] + HR[13:14]
    assert line("READ hr 0 14") == csv(sim.values(kind, 3, 0, 14))
    assert sim.values(kind, 1, 0, 12) == [1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0]
    assert line("READ co 0 12") == csv(sim.values(kind, 1, 0, 12))
    # an exception response is an error, and the next request works
    assert line("EXC") == "2 ILLEGAL DATA ADDRESS"
    assert line("RECOVER") == csv(HR[:2] + [4242])
    assert line("POLLS 20") == csv(sim.values(kind, 3, 0, 10))

    # every fault is survived: retried where a retry helps, reported where not, then recovery
    regs = csv(sim.values(kind, 3, 0, 4))
    faults = {}
    for m in re.finditer(r"^FAULT (\S+) (.*?) \| (.*?) \| after (\S+) \| (.*)$", out, re.M):
        faults[m.group(1)] = (m.group(2), _fields(m.group(3)), m.group(4))
    assert sorted(faults) == sorted(FAULTS[kind].split(",")), out
    for spec, (result, d, after) in faults.items():
        assert after == regs, (spec, after)
        if spec == "noreply*3":
            assert result == "ModbusTimeout" and d == {"timeouts": "3", "retried": "2", "errors": "1"}, (
                spec, result, d)
            continue
        assert result == "OK " + regs, (spec, result)
        if spec == "noreply":
            assert d == {"timeouts": "1", "retried": "1"}, (spec, d)
        elif spec == "corrupt":
            assert d == {"crc_errors": "1", "retried": "1"}, (spec, d)
        elif spec == "garbage":
            # RTU skips the noise; MBAP cannot frame it and reconnects
            want = {"discarded": "3"} if kind != "tcp" else {"bad_frames": "1", "retried": "1"}
            assert d == want, (spec, d)
        elif spec == "tid":
            assert d == {"timeouts": "1", "retried": "1", "discarded": "1"}, (spec, d)
        elif spec == "late":
            # MBAP tells the late reply by its transaction id; RTU takes it as the retry's
            # reply (same request, same answer) and drains the retry's own reply afterwards
            assert d["timeouts"] == "1" and d["retried"] == "1", (spec, d)
            assert d.get("discarded") == ("1" if kind == "tcp" else None), (spec, d)
        elif spec == "close":
            assert d == {"link_errors": "1", "retried": "1"}, (spec, d)
        elif spec == "split":
            assert d == {}, (spec, d)
    if kind == "tcp":
        assert line("DOWN") == "ModbusError link link_errors=3"
    stats = _fields(line("STATS"))
    assert stats["exceptions"] == "1" and stats["errors"] == "2", stats
