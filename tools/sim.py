"""gw sim: a charging-station simulator (pymodbus 3.x server) driven by a register map.

The station behind the registers: an EV is plugged in or not (A -> B -> C and back), draws
min(offered current, its own maximum) on each of its phases with a little noise and always a
bit below the offer, at ~230 V; power and energy count up. The controller-state register
follows the map's enum, the limit register written by the gateway is honoured (0, or the
enable switched off: pause), and when the map has a watchdog, silence longer than its timeout
drops the offered current to the failsafe current until the limit is written again.

Everything listens on 127.0.0.1 only: the Modbus server (Modbus TCP, RTU framing over TCP, or
RTU on a serial/pty path) and an optional JSON-lines control port. Embedded in tests, the
Simulator object is the control API (same commands as methods).

Control protocol: one JSON object per line, one reply per line, {"ok": true, ...} or
{"ok": false, "error": "..."}:
    {"cmd": "plug"} / {"cmd": "unplug"}
    {"cmd": "set_ev_max", "amps": 10}
    {"cmd": "fault", "kind": "timeout", "count": 3}     no reply to the next 3 requests
    {"cmd": "fault", "kind": "corrupt", "count": 1}     RTU: bad CRC; Modbus TCP: bad MBAP header
    {"cmd": "fault", "kind": "exception", "code": 4, "count": 1}
    {"cmd": "fault", "kind": "reboot"}                  writable registers back to power-on values
    {"cmd": "state"}                                    -> {"ok": true, "state": {...}}

Faults are requests-counted and land on the requests that follow, whatever they are.
"""

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIB = os.path.join(ROOT, "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)

from charger import FIELD_NAMES  # noqa: E402
from controller import mapload, regmap  # noqa: E402
from mapcodec import decode_limit, encode, store  # noqa: E402

HOST = "127.0.0.1"
TICK_S = 0.05
NOMINAL_V = 230.0
_WRITE_FCS = (5, 6, 15, 16)
_FC_KIND = {1: "coil", 5: "coil", 15: "coil", 2: "discrete", 3: "holding", 6: "holding", 16: "holding", 4: "input"}
_KIND_FC = {"holding": 3, "input": 4, "coil": 1, "discrete": 2}


def _reverse_enum(point):
    """(letter, plugged, charging) -> the lowest code that decodes to it."""
    exact = {}
    by_letter = {}
    for code in sorted(point.enum):
        letter, plugged, charging, _ = point.enum[code]
        exact.setdefault((letter, plugged, charging), code)
        by_letter.setdefault(letter, code)
    return exact, by_letter


class Station:
    """The station's physics and its register image; no I/O. Not thread-safe by itself: the
    Simulator holds its lock around every call."""

    def __init__(self, m, hw_min=6, hw_max=16, phases=3, ev_max=16.0, seed=1, speed=1.0, total_wh=100000.0):
        self.m = m
        self.rng = random.Random(seed)
        self.speed = speed
        self.hw_min = hw_min
        self.hw_max = hw_max
        self.phases = phases
        self.ev_max = float(ev_max)
        self.plugged = False
        self.plugged_at = 0.0
        self.error = 0
        self.total_wh = float(total_wh)
        self.session_wh = 0.0
        self.currents = [0.0, 0.0, 0.0]
        self.voltages = [NOMINAL_V] * 3
        self.power = 0.0
        self.letter = "A"
        self.charging = False
        self.reverse = {p.index: _reverse_enum(p) for p in m.points if p.enum is not None}
        self.writes = []  # (fc, address, value) as the gateway wrote them, latest last
        self.write_count = 0  # registers written since start, all of them
        self.limit_writes = 0  # of them to the limit register (each a pilot change on hardware)
        self.requests = 0
        self.boots = 0
        self.power_on(time.monotonic())

    # -- writable registers

    def power_on(self, now):
        m = self.m
        lim = min(self.hw_max, m.limit_max)
        self.limit_raw = m.encode_limit(lim)[0] or 0
        self.enable = True
        self.watchdog_raw = m.watchdog.value if m.watchdog else 0
        self.failsafe_raw = m.failsafe.value if m.failsafe else 0
        self.standby_raw = None
        self.tripped = False
        self.last_fed = now
        self.session_wh = 0.0
        self.boots += 1

    def writable(self):
        """{(kind, address): raw} of the registers the gateway writes, as they stand."""
        m = self.m
        out = {("holding", m.limit.address): self.limit_raw}
        if m.enable:
            w = m.enable
            out[(regmap.KINDS[w.kind], w.address)] = m.enable_on if self.enable else m.enable_off
        if m.watchdog:
            out[("holding", m.watchdog.address)] = self.watchdog_raw
        if m.failsafe:
            out[("holding", m.failsafe.address)] = self.failsafe_raw
        if m.standby and self.standby_raw is not None:
            out[(regmap.KINDS[m.standby.kind], m.standby.address)] = self.standby_raw
        return out

    def check_write(self, fc, address, values):
        """None if the controller takes the write, else the exception code it answers with."""
        m = self.m
        kind = _FC_KIND[fc]
        for i, v in enumerate(values):
            a = address + i
            if kind == "holding" and a == m.limit.address:
                amps = decode_limit(m, v)
                if not (m.limit_min <= amps <= m.limit_max or (v == 0 and m.pause == "zero")):
                    return 3
            if m.failsafe and kind == "holding" and a == m.failsafe.address:
                amps = v * m.failsafe_scale
                if v and not m.limit_min <= amps <= m.limit_max:
                    return 3
        return None

    def on_request(self, fc, address, values, now):
        """A request reached the controller (after the fault filter): feed the watchdog and
        take writes."""
        m = self.m
        self.requests += 1
        write = fc in _WRITE_FCS
        if m.watchdog and (m.feed == "any" or (m.feed == "write" and write)):
            self.last_fed = now
        if not write:
            return
        kind = _FC_KIND[fc]
        for i, v in enumerate(values):
            a = address + i
            v = int(v)
            self.writes.append((fc, a, v))
            self.write_count += 1
            if kind == "holding" and a == m.limit.address:
                self.limit_raw = v
                self.limit_writes += 1
                self.tripped = False
            if m.enable and kind == regmap.KINDS[m.enable.kind] and a == m.enable.address:
                self.enable = v == m.enable_on
                self.tripped = False
            if m.watchdog and kind == "holding" and a == m.watchdog.address:
                self.watchdog_raw = v
                self.last_fed = now
            if m.feed_write and kind == "holding" and a == m.feed_write.address:
                self.last_fed = now
            if m.failsafe and kind == "holding" and a == m.failsafe.address:
                self.failsafe_raw = v
            if m.standby and kind == regmap.KINDS[m.standby.kind] and a == m.standby.address:
                self.standby_raw = v
        del self.writes[:-50]

    # -- physics

    def watchdog_ms(self):
        m = self.m
        if not m.watchdog or not self.watchdog_raw:
            return 0
        return self.watchdog_raw * m.watchdog_ms / m.watchdog.value

    def offered(self):
        """The current the controller offers the EV now (A): the limit, or the failsafe
        current after the watchdog fired, capped by the hardware maximum; 0 = paused."""
        m = self.m
        if self.tripped:
            a = self.failsafe_raw * m.failsafe_scale if m.failsafe else 0
        elif m.enable and not self.enable:
            a = 0
        else:
            a = decode_limit(m, self.limit_raw)
        if a < m.limit_min or a < self.hw_min:
            return 0
        return min(a, self.hw_max)

    def step(self, now, dt):
        wd = self.watchdog_ms()
        if wd and (now - self.last_fed) * 1000 > wd:
            self.tripped = True
        offer = self.offered()
        if self.error:
            self.letter, self.charging = "E", False
        elif not self.plugged:
            self.letter, self.charging = "A", False
        elif offer <= 0 or now - self.plugged_at < 0.1:
            self.letter, self.charging = "B", False
        else:
            self.letter, self.charging = "C", True
        draw = min(offer, self.ev_max) if self.charging else 0.0
        for p in range(3):
            self.voltages[p] = round(NOMINAL_V + self.rng.uniform(-2.0, 2.0), 1)
            on = self.charging and p < self.phases
            self.currents[p] = round(max(0.0, draw - self.rng.uniform(0.0, 0.2)), 2) if on else 0.0
        self.power = sum(u * i for u, i in zip(self.voltages, self.currents))
        wh = self.power * dt * self.speed / 3600.0
        self.session_wh += wh
        self.total_wh += wh

    def plug(self, now):
        if not self.plugged:
            self.plugged = True
            self.plugged_at = now
            self.session_wh = 0.0

    def unplug(self):
        self.plugged = False

    # -- the register image

    def values(self):
        """Model-field name -> the value the controller reports."""
        return {
            "i1": self.currents[0], "i2": self.currents[1], "i3": self.currents[2],
            "u1": self.voltages[0], "u2": self.voltages[1], "u3": self.voltages[2],
            "power": self.power, "session_wh": self.session_wh, "total_wh": self.total_wh,
            "error": self.error, "phases": self.phases, "hw_min": self.hw_min, "hw_max": self.hw_max,
            "ev_max": self.ev_max, "plugged": self.plugged, "charging": self.charging,
        }

    def registers(self):
        """{(kind, address): raw} of every polled point."""
        vals = self.values()
        out = {}
        for p in self.m.points:
            if p.enum is not None:
                exact, by_letter = self.reverse[p.index]
                raw = exact.get((self.letter, self.plugged, self.charging), by_letter.get(self.letter))
                if raw is None:
                    continue
            else:
                v = vals[FIELD_NAMES[p.field]]
                if isinstance(v, float) and not p.div and p.mul == 1:
                    v = int(round(v))  # integer registers report whole units
                try:
                    raw = encode(p, v)
                except ValueError:
                    raw = encode(p, 0)
            regs = [0, 0]
            store(p, raw, regs, 0)
            kind = regmap.KINDS[p.kind]
            for i in range(p.width):
                out[(kind, p.address + i)] = regs[i]
        return out

    def snapshot(self):
        m = self.m
        return {
            "map": m.name,
            "state": self.letter,
            "plugged": self.plugged,
            "charging": self.charging,
            "ev_max": self.ev_max,
            "limit_raw": self.limit_raw,
            "limit_a": decode_limit(m, self.limit_raw),
            "enable": self.enable if m.enable else None,
            "offered_a": self.offered(),
            "watchdog_raw": self.watchdog_raw,
            "watchdog_ms": self.watchdog_ms(),
            "tripped": self.tripped,
            "failsafe_raw": self.failsafe_raw,
            "standby_raw": self.standby_raw,
            "currents": list(self.currents),
            "voltages": list(self.voltages),
            "power": round(self.power, 1),
            "session_wh": round(self.session_wh, 3),
            "total_wh": round(self.total_wh, 3),
            "requests": self.requests,
            "boots": self.boots,
            "writes": [list(w) for w in self.writes[-10:]],
            "write_count": self.write_count,
            "limit_writes": self.limit_writes,
            "registers": {"%s %d" % k: v for k, v in sorted(self.registers().items())},
        }


class Simulator:
    """pymodbus server + station + control port on their own event loop (in a thread when
    embedded: start()/stop(); in the foreground for the CLI: run())."""

    FAULTS = ("timeout", "corrupt", "exception", "reboot")

    def __init__(self, map_path, port=0, framing=None, serial=None, baudrate=None, control_port=None,
                 unit=None, **station):
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        self.map_path = map_path
        self.m = mapload.load_file(map_path)
        self.unit = self.m.unit if unit is None else unit
        self.framing = framing or ("rtu" if self.m.kind == "rtu" else "tcp")
        if self.framing not in ("rtu", "tcp"):
            raise ValueError("framing: rtu or tcp")
        self.serial = serial
        self.baudrate = baudrate or self.m.baudrate
        self.want_port = port
        self.want_control = control_port
        self.port = None
        self.control_port = None
        self.station = Station(self.m, **station)
        self.lock = threading.Lock()
        self.faults = []  # [kind, count, code]
        self.fault_log = []
        self._sub = None  # (fc, code): the reply to send instead of the one pymodbus builds
        self.loop = None
        self.thread = None
        self.server = None
        self.ctl = None
        self._task = None
        self._dirty = True
        self._loop_thread = None

    # -- control API (thread-safe)

    def plug(self):
        with self.lock:
            self.station.plug(time.monotonic())
        return self._settled()

    def unplug(self):
        with self.lock:
            self.station.unplug()
        return self._settled()

    def set_ev_max(self, amps):
        if not isinstance(amps, (int, float)) or isinstance(amps, bool) or not 0 <= amps <= 80:
            raise ValueError("amps: 0..80")
        with self.lock:
            self.station.ev_max = float(amps)
        return self._settled()

    def fault(self, kind, count=1, code=4):
        if kind not in self.FAULTS:
            raise ValueError("fault kind: one of " + ", ".join(self.FAULTS))
        if not isinstance(count, int) or not 1 <= count <= 1000:
            raise ValueError("count: 1..1000")
        if not isinstance(code, int) or not 1 <= code <= 255:
            raise ValueError("code: 1..255")
        with self.lock:
            if kind == "reboot":
                self.station.power_on(time.monotonic())
                self.fault_log.append("reboot")
                self._dirty = True
            else:
                self.faults.append([kind, count, code])
        return self._settled()

    def state(self):
        with self.lock:
            s = self.station.snapshot()
            s["faults_pending"] = [list(f) for f in self.faults]
            s["faults_done"] = list(self.fault_log[-20:])
            return s

    def wait_state(self, cond, timeout=3.0, poll=0.02):
        """The first state() cond accepts within timeout seconds; AssertionError (with the
        last state) when none does: for the tests, which wait on what a gateway wrote."""
        end = time.monotonic() + timeout
        while True:
            s = self.state()
            if cond(s):
                return s
            if time.monotonic() >= end:
                raise AssertionError("simulator never got there: %r" % (s,))
            time.sleep(poll)

    def _settled(self):
        # the next tick has put the change into the registers (when a loop runs)
        loop = self.loop
        if loop is not None and loop.is_running() and threading.get_ident() != self._loop_thread:
            asyncio.run_coroutine_threadsafe(self._refresh(), self.loop).result(5)
        return True

    # -- pymodbus hooks (loop thread)

    def _trace_pdu(self, sending, pdu):
        if pdu is None:
            return pdu
        if sending:
            sub = self._sub
            self._sub = None
            if sub:
                from pymodbus.pdu import ExceptionResponse

                return ExceptionResponse(sub[0], sub[1], device_id=pdu.dev_id, transaction=pdu.transaction_id)
            return pdu
        fc = pdu.function_code
        with self.lock:
            f = self._take_fault()
            if f and f[0] == "timeout":
                return None  # the controller never heard it
            if f and f[0] == "exception":
                self._sub = (fc, f[2])
                return self._harmless(pdu)
            if fc in _WRITE_FCS:
                values = list((pdu.registers if fc in (6, 16) else pdu.bits) or [])
                code = self.station.check_write(fc, pdu.address, values)
                if code:
                    self._sub = (fc, code)
                    return self._harmless(pdu)
            else:
                values = ()
            self.station.on_request(fc, pdu.address, values, time.monotonic())
            if f and f[0] == "corrupt":
                self._corrupt_next = True
        return pdu

    def _harmless(self, pdu):
        # a read of the same unit in place of the request, so that nothing gets written and
        # pymodbus still answers (with the substituted exception)
        from pymodbus.pdu.register_message import ReadHoldingRegistersRequest

        return ReadHoldingRegistersRequest(dev_id=pdu.dev_id, transaction_id=pdu.transaction_id, address=0, count=1)

    def _take_fault(self):
        if not self.faults:
            return None
        f = self.faults[0]
        f[1] -= 1
        if f[1] <= 0:
            self.faults.pop(0)
        self.fault_log.append(f[0])
        return f

    _corrupt_next = False

    def _trace_packet(self, sending, data):
        if sending and self._corrupt_next:
            self._corrupt_next = False
            b = bytearray(data)
            if self.framing == "rtu":
                b[-1] ^= 0xFF  # the CRC's high byte
            else:
                b[2] ^= 0xFF  # the MBAP protocol id: the stream can no longer be framed
            return bytes(b)
        return data

    # -- the loop

    async def _refresh(self):
        with self.lock:
            regs = self.station.registers()
            if self._dirty:
                regs.update(self.station.writable())
                self._dirty = False
        for (kind, addr), v in regs.items():
            fc = _KIND_FC[kind]
            await self.server.async_setValues(self.unit, fc, addr, [bool(v)] if fc <= 2 else [v])

    async def _ticker(self):
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            with self.lock:
                self.station.step(now, now - last)
            last = now
            await self._refresh()

    def _context(self):
        from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext

        top = {k: -1 for k in _KIND_FC}
        with self.lock:
            self.station.step(time.monotonic(), 0.0)
            image = self.station.registers()
            image.update(self.station.writable())
        for p in self.m.points:
            k = regmap.KINDS[p.kind]
            top[k] = max(top[k], p.address + p.width - 1)
        for (k, a) in image:
            top[k] = max(top[k], a)
        blocks = {}
        for k, hi in top.items():
            n = hi + 1 if hi >= 0 else 1
            init = [False] * n if k in ("coil", "discrete") else [0] * n
            for (kk, a), v in image.items():
                if kk == k:
                    init[a] = bool(v) if k in ("coil", "discrete") else v
            blocks[k] = ModbusSequentialDataBlock(1, init)  # start 1 = protocol address 0
        dev = ModbusDeviceContext(hr=blocks["holding"], ir=blocks["input"], co=blocks["coil"], di=blocks["discrete"])
        return ModbusServerContext(devices={self.unit: dev}, single=False)

    async def _start(self):
        from pymodbus.framer import FramerType
        from pymodbus.server import ModbusSerialServer, ModbusTcpServer

        self._loop_thread = threading.get_ident()
        hooks = dict(trace_pdu=self._trace_pdu, trace_packet=self._trace_packet)
        ctx = self._context()
        if self.serial:
            self.server = ModbusSerialServer(ctx, framer=FramerType.RTU, port=self.serial, baudrate=self.baudrate,
                                             **hooks)
        else:
            framer = FramerType.RTU if self.framing == "rtu" else FramerType.SOCKET
            self.server = ModbusTcpServer(ctx, framer=framer, address=(HOST, self.want_port), **hooks)
        await self.server.serve_forever(background=True)
        if not self.serial:
            self.port = self.server.transport.sockets[0].getsockname()[1]
        if self.want_control is not None:
            self.ctl = await asyncio.start_server(self._control, HOST, self.want_control)
            self.control_port = self.ctl.sockets[0].getsockname()[1]
        self._task = asyncio.ensure_future(self._ticker())

    async def _stop(self):
        if self._task:
            self._task.cancel()
        if self.ctl:
            self.ctl.close()
        if self.server:
            await self.server.shutdown()

    async def _control(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                reply = await asyncio.get_running_loop().run_in_executor(None, self.command, line)
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def command(self, line):
        """One control-protocol line -> its reply (a dict)."""
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("a JSON object")
            cmd = req.get("cmd")
            if cmd == "plug":
                self.plug()
            elif cmd == "unplug":
                self.unplug()
            elif cmd == "set_ev_max":
                self.set_ev_max(req.get("amps"))
            elif cmd == "fault":
                self.fault(req.get("kind"), req.get("count", 1), req.get("code", 4))
            elif cmd == "state":
                return {"ok": True, "state": self.state()}
            else:
                raise ValueError("unknown cmd %r" % (cmd,))
            return {"ok": True}
        except (ValueError, TypeError) as e:
            return {"ok": False, "error": str(e)}

    # -- embedding

    def start(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def stop(self):
        if self.loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()
            self.loop = None

    def describe(self):
        m = self.m
        where = "serial %s at %d baud" % (self.serial, self.baudrate) if self.serial else "%s:%d" % (HOST, self.port)
        framing = "RTU" if (self.serial or self.framing == "rtu") else "Modbus TCP"
        lines = ["sim: %s (%s)" % (m.name, m.document),
                 "serving %s framing on %s, unit %d" % (framing, where, self.unit)]
        for p in m.points:
            extra = " enum" if p.enum is not None else (" scale %g" % p.scale if p.scale != 1 else "")
            lines.append("  %-8s %5d %-4s -> %s%s every %d ms" % (
                regmap.KINDS[p.kind], p.address, regmap.TYPES[p.type], FIELD_NAMES[p.field], extra, p.interval))
        lines.append("  limit    holding %d (scale %g, %g..%g A, pause %s)" % (
            m.limit.address, m.limit_scale, m.limit_min, m.limit_max, m.pause))
        for name in ("enable", "failsafe", "watchdog", "standby"):
            w = getattr(m, name)
            if w is not None:
                lines.append("  %-8s %s %d" % (name, regmap.KINDS[w.kind], w.address))
        if self.control_port:
            lines.append("control on %s:%d (JSON lines: plug, unplug, set_ev_max, fault, state)"
                         % (HOST, self.control_port))
        return "\n".join(lines)

    async def run(self):
        self.loop = asyncio.get_running_loop()
        await self._start()
        print(self.describe(), flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await self._stop()


# -- CLI ------------------------------------------------------------------------------------------


def configure(p):
    p.add_argument("--map", default=os.path.join(ROOT, "board_configs", "chargers", "sim.json"),
                   help="register map (board_configs/chargers/*.json)")
    p.add_argument("--port", type=int, default=5020, help="TCP port on 127.0.0.1 (0: any free one)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--rtu-over-tcp", action="store_true", help="RTU framing on TCP (default for RTU maps)")
    g.add_argument("--tcp", action="store_true", help="Modbus TCP framing (default for TCP maps)")
    g.add_argument("--serial", metavar="PATH", help="RTU on a tty/pty path instead of TCP (e.g. one end of "
                   "'socat pty,raw,echo=0,link=/tmp/a pty,raw,echo=0,link=/tmp/b')")
    p.add_argument("--baudrate", type=int, help="with --serial (default: the map's)")
    p.add_argument("--unit", type=int, help="unit id (default: the map's)")
    p.add_argument("--control-port", type=int, help="JSON-lines control port on 127.0.0.1 (0: any free one)")
    p.add_argument("--ev-max", type=float, default=16.0, help="the EV's own maximum current, A")
    p.add_argument("--hw-max", type=float, default=16, help="the station's hardware maximum, A")
    p.add_argument("--phases", type=int, default=3, choices=(1, 2, 3))
    p.add_argument("--plugged", action="store_true", help="start with the EV plugged in")
    p.add_argument("--speed", type=float, default=1.0, help="energy counts this many times faster")


def run(args):
    framing = "rtu" if args.rtu_over_tcp else ("tcp" if args.tcp else None)
    try:
        sim = Simulator(args.map, port=args.port, framing=framing, serial=args.serial, baudrate=args.baudrate,
                        control_port=args.control_port, unit=args.unit, ev_max=args.ev_max, hw_max=args.hw_max,
                        phases=args.phases, speed=args.speed)
    except (OSError, regmap.MapError) as e:
        print("gw sim: %s" % e, file=sys.stderr)
        return 2
    if args.plugged:
        sim.station.plug(time.monotonic())
    try:
        asyncio.run(sim.run())
    except KeyboardInterrupt:
        print("sim: stopped", flush=True)
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="sim", description=__doc__.splitlines()[0])
    configure(ap)
    sys.exit(run(ap.parse_args()))
