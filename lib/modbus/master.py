# Modbus master: one transaction at a time over a link from transport.py, RTU or MBAP framing
# as the link says.
#
# The core is a stepper. start() writes the request into a preallocated buffer; poll() does
# non-blocking I/O and returns True once the reply is checked and its values are in `out`,
# False while the transaction is under way, and raises when it has failed after its retries.
# A long-lived task that drives it as
#     m.start(unit, FC_READ_HOLDING, addr, n, out=regs)
#     while not m.poll():
#         await asyncio.sleep_ms(m.poll_ms)
# allocates nothing per cycle (sleep_ms is a preallocated singleton). Coroutines over the
# same stepper (read_holding & co) are host-only: tools/mbclient.py.
#
# RTU: before each request the line must have been silent for t3.5 (bytes arriving meanwhile
# are a late reply or noise and are discarded, restarting the silence); in a reply, bytes that
# cannot start it (wrong address or function code) are skipped. A reply with a bad CRC, a
# malformed one, or none within timeout_ms is retried `retries` times. Over Modbus TCP a
# reply with another transaction id (late, to an earlier attempt) is dropped, and a header
# that cannot be framed drops the connection, which the link re-opens. Exception responses
# are raised at once as ModbusException: asking again would get the same answer.
import time

from compat import const
from modbus import pdu

# The framing module of the link in use, imported by the first master that needs it
# (Master.__init__): an RTU gateway never holds modbus.tcp, a Modbus TCP one never modbus.rtu.
rtu = None
tcp = None

_IDLE = const(0)
_GAP = const(1)  # waiting for the link, and on a serial line for silence, before sending
_SEND = const(2)  # the link took part of the request
_WAIT = const(3)  # waiting for the reply

_BUF = const(262)  # an MBAP frame is at most 260 bytes, an RTU frame 256
_STAGE = const(64)
_HDR = const(7)
_MAX_RTU = const(256)
_STALE_US = const(10000000)

_FC_READ_DISCRETE = const(2)
_FC_READ_INPUT = const(4)
_FC_WRITE_COIL = const(5)
_FC_WRITE_SINGLE = const(6)
_FC_WRITE_COILS = const(15)
_FC_WRITE_MULTIPLE = const(16)

_ticks_us = time.ticks_us
_diff = time.ticks_diff
_add = time.ticks_add


class Master:
    # size: the largest frame, request or reply, this master exchanges (tx and rx buffers
    # each): any Modbus frame by default; a user that knows its requests passes less (the
    # gateway: controller.mapload.frame_size for its register map). A request whose reply
    # would not fit is refused by start(), a longer reply is a bad frame.
    def __init__(self, transport, timeout_ms=500, retries=2, poll_ms=0, size=_BUF):
        global rtu, tcp
        if transport.rtu:
            from modbus import rtu
        else:
            from modbus import tcp
        self.transport = transport
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.poll_ms = poll_ms or transport.poll_ms
        self._rtu = transport.rtu
        # (37 attributes: a 37-slot member table; one more would take 47 slots, 80 B more)
        self._tx = bytearray(size)
        self._rx = bytearray(size)
        # the link reads into the start of a buffer, and a memoryview slice would allocate:
        # continuation reads go here and are copied on
        self._stage = bytearray(_STAGE)
        self._state = _IDLE
        self._unit = 0
        self._fc = 0
        self._addr = 0
        self._count = 0
        self._value = 0
        self._out = None
        self._oo = 0
        self._n = 0
        self._off = 0
        self._got = 0
        self._need = 0
        self._tid = 0
        self._attempt = 0
        self._t0 = 0
        self._deadline = 0
        self._quiet = _ticks_us()
        # RTU has no transaction ids: after a retry (or a give-up) the device may still owe a
        # reply to an earlier attempt, which would be taken for the next request's and shift
        # every reply after it by one. So the next request waits for a whole timeout of silence
        # instead of t3.5, and whatever arrives meanwhile is drained.
        self._settle = False
        self.requests = 0  # transactions started
        self.retried = 0  # requests sent again
        self.timeouts = 0  # attempts without a (complete) reply in time
        self.crc_errors = 0
        self.bad_frames = 0  # complete replies that did not fit the request
        self.exceptions = 0  # exception responses
        self.last_exception = 0  # its code
        self.discarded = 0  # RTU: stray bytes; TCP: frames of other transactions
        self.link_errors = 0  # connection refused or lost
        self.last_link_error = 0  # its errno
        self.errors = 0  # transactions that failed, exceptions included

    # -- stepper --------------------------------------------------------------------------------

    def busy(self):
        return self._state != _IDLE

    def start(self, unit, fc, addr, count=1, data=None, out=None, out_off=0):
        if self._state != _IDLE:
            raise pdu.ModbusError("busy")
        if self._rtu:
            if not 1 <= unit <= rtu.MAX_UNIT:
                raise ValueError("unit")
        elif not 0 <= unit <= 0xFF:
            raise ValueError("unit")
        tx = self._tx
        po = 1 if self._rtu else _HDR  # where the PDU starts in a frame
        value = count
        if fc <= _FC_READ_INPUT:
            n = pdu.read_request(tx, po, fc, addr, count)
            if out is None or out_off < 0 or out_off + count > len(out):
                raise ValueError("out")
        elif fc == _FC_WRITE_SINGLE:
            n = pdu.write_single_request(tx, po, addr, data)
            value = data & 0xFFFF
            count = 1
        elif fc == _FC_WRITE_COIL:
            n = pdu.write_coil_request(tx, po, addr, data)
            value = 0xFF00 if data else 0
            count = 1
        elif fc == _FC_WRITE_MULTIPLE:
            n = pdu.write_multiple_request(tx, po, addr, data, count)
        elif fc == _FC_WRITE_COILS:
            n = pdu.write_coils_request(tx, po, addr, data, count)
        else:
            raise ValueError("function code")
        # the reply must fit: po + its PDU, + the CRC on RTU (an exception reply is shorter)
        if po + pdu.response_length(fc, count) + (2 if po == 1 else 0) > len(self._rx):
            raise ValueError("buffer")
        if self._rtu:
            tx[0] = unit
            self._n = rtu.seal(tx, 1 + n)
            self._need = rtu.expected_length(fc, count)
        else:
            self._tid = tcp.next_tid(self._tid)
            self._n = tcp.header(tx, self._tid, unit, n)
        self._unit = unit
        self._fc = fc
        self._addr = addr
        self._count = count
        self._value = value
        self._out = out
        self._oo = out_off
        self._attempt = 0
        self.requests += 1
        now = _ticks_us()
        # ticks_us wraps every 2**30 us (~18 min): a quiet mark that old is simply quiet
        d = _diff(now, self._quiet)
        if d > _STALE_US or d < -_STALE_US:
            self._quiet = _add(now, -self.transport.gap_us)
        self._t0 = now
        self._state = _GAP

    def poll(self):
        st = self._state
        if st == _IDLE:
            return True
        now = _ticks_us()
        try:
            if st == _GAP:
                return self._gap(now)
            if st == _SEND:
                return self._send(now)
            return self._wait(now)
        except OSError as e:
            self.link_errors += 1
            self.last_link_error = e.errno
            self.transport.reset()
            return self._retry(now, pdu.ModbusError("link"))

    def abort(self):
        # Give up the transaction in flight (its task was cancelled). A reply that still comes
        # is drained before the next RTU request, or dropped by its MBAP transaction id.
        if self._state != _IDLE:
            self._settle = self._rtu
        self._state = _IDLE
        self._out = None

    def _gap(self, now):
        t = self.transport
        tmo = self.timeout_ms * 1000
        quiet = tmo if self._settle else t.gap_us
        if t.ready():
            if not self._rtu:
                return self._begin(now)
            k = t.readinto(self._rx, len(self._rx))
            if k:
                self.discarded += k
                self._quiet = now
            elif _diff(now, self._quiet) >= quiet:
                self._settle = False
                return self._begin(now)
        if _diff(now, self._t0) >= tmo + quiet:
            self.timeouts += 1
            return self._retry(now, pdu.ModbusTimeout("line busy" if self._rtu else "connect"))
        return False

    def _begin(self, now):
        self._off = 0
        self._state = _SEND
        return self._send(now)

    def _send(self, now):
        t = self.transport
        n = self._n
        off = self._off + t.write(self._tx, self._off, n - self._off)
        self._off = off
        if off < n:
            if _diff(now, self._t0) >= self.timeout_ms * 1000:
                self.timeouts += 1
                t.reset()
                return self._retry(now, pdu.ModbusTimeout("send"))
            return False
        air = n * t.char_us  # still leaving the UART when write() returns
        self._quiet = _add(now, air)
        self._deadline = _add(now, air + self.timeout_ms * 1000)
        self._got = 0
        self._state = _WAIT
        return False

    def _wait(self, now):
        t = self.transport
        rx = self._rx
        got = self._got
        is_rtu = self._rtu
        unit = self._unit
        fc = self._fc
        efc = fc | 0x80
        while True:
            if is_rtu and got and (rx[0] != unit or (got > 1 and rx[1] != fc and rx[1] != efc)):
                got = self._skip(rx, got, rtu.sync(rx, got, unit, fc))
                continue
            # how long the frame is, as far as what has arrived tells
            if is_rtu:
                want = self._need
                if got >= 2:
                    w = rtu.frame_length(rx, got)
                    if w > _MAX_RTU or w > len(rx):  # a byte count no frame (for us) can have: noise
                        got = self._skip(rx, got, 1)
                        continue
                    if w:
                        want = w
            else:
                want = _HDR
                if got >= _HDR:
                    try:
                        want = tcp.frame_length(rx, got)
                        if want > len(rx):
                            raise pdu.ModbusError("mbap length")
                    except pdu.ModbusError as e:
                        self.bad_frames += 1
                        t.reset()
                        return self._retry(now, e)
            if got >= want:
                if is_rtu:
                    # bytes read past `want` (the first read asks for the expected length,
                    # a shorter frame may say otherwise) are trailing noise: not part of it
                    self._quiet = now
                    try:
                        plen = rtu.check(rx, want, unit)
                    except rtu.CrcError as e:
                        self.crc_errors += 1
                        return self._retry(now, e)
                    except pdu.ModbusError as e:
                        self.bad_frames += 1
                        return self._retry(now, e)
                    return self._finish(now, 1, plen)
                if tcp.tid(rx) != self._tid:
                    self.discarded += 1
                    got = 0
                    continue
                if rx[6] != unit:
                    self.bad_frames += 1
                    return self._retry(now, pdu.ModbusError("unit id"))
                return self._finish(now, _HDR, got - _HDR)
            room = want - got
            if got == 0:
                k = t.readinto(rx, room)
            else:
                if room > _STAGE:
                    room = _STAGE
                stage = self._stage
                k = t.readinto(stage, room)
                for i in range(k):
                    rx[got + i] = stage[i]
            if not k:
                break
            got += k
        self._got = got
        if _diff(now, self._deadline) >= 0:
            self.timeouts += 1
            return self._retry(now, pdu.ModbusTimeout("timeout"))
        return False

    def _skip(self, rx, got, k):
        # drop k leading bytes that cannot begin the reply
        if k < 1:
            k = 1
        if k > got:
            k = got
        for i in range(k, got):
            rx[i - k] = rx[i]
        self.discarded += k
        return got - k

    def _finish(self, now, po, plen):
        fc = self._fc
        rx = self._rx
        try:
            if fc <= _FC_READ_DISCRETE:
                pdu.parse_bits(rx, po, plen, fc, self._count, self._out, self._oo)
            elif fc <= _FC_READ_INPUT:
                pdu.parse_registers(rx, po, plen, fc, self._count, self._out, self._oo)
            else:
                pdu.parse_write(rx, po, plen, fc, self._addr, self._value)
        except pdu.ModbusException as e:
            self.exceptions += 1
            self.last_exception = e.code
            self.errors += 1
            self._end()
            raise
        except pdu.ModbusError as e:
            self.bad_frames += 1
            return self._retry(now, e)
        self._end()
        return True

    def _end(self):
        self._state = _IDLE
        self._out = None
        if self._attempt and self._rtu:
            self._settle = True

    def _retry(self, now, err):
        if self._attempt < self.retries:
            self._attempt += 1
            self.retried += 1
            if not self._rtu:
                # a new transaction id, so that a late reply to this attempt is told apart
                self._tid = tcp.next_tid(self._tid)
                tcp.set_tid(self._tx, self._tid)
            self._t0 = now
            self._state = _GAP
            return False
        self.errors += 1
        self._end()
        self._settle = self._rtu
        raise err

    def stats(self):
        return {
            "requests": self.requests,
            "retried": self.retried,
            "timeouts": self.timeouts,
            "crc_errors": self.crc_errors,
            "bad_frames": self.bad_frames,
            "exceptions": self.exceptions,
            "last_exception": self.last_exception,
            "discarded": self.discarded,
            "link_errors": self.link_errors,
            "last_link_error": self.last_link_error,
            "errors": self.errors,
        }

    def close(self):
        self.abort()
        self.transport.close()
