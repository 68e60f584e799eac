# Modbus application layer (the PDU: function code + data), without I/O.
# Requests are written into the caller's buffer at an offset, so one buffer serves RTU (PDU
# after the address byte) and Modbus TCP (PDU after the 7-byte MBAP header). Replies are
# checked field by field against the request before anything is copied out: a short, long,
# foreign or hostile reply raises ModbusError, never IndexError, and leaves `out` untouched.
import struct

from compat import const

# function codes; public where another module names them (tools/rtuline.py)
FC_READ_COILS = const(1)
_FC_READ_DISCRETE = const(2)
_FC_READ_HOLDING = const(3)
_FC_READ_INPUT = const(4)
_FC_WRITE_COIL = const(5)
FC_WRITE_SINGLE = const(6)
FC_WRITE_COILS = const(15)
FC_WRITE_MULTIPLE = const(16)

# Quantity limits of the spec (V1.1b3 6.1-6.12): they keep every PDU within 253 bytes.
_MAX_READ_REGS = const(125)
_MAX_WRITE_REGS = const(123)
_MAX_READ_BITS = const(2000)
_MAX_WRITE_BITS = const(1968)
MAX_PDU = const(253)

_EXC = const(0x80)
_COIL_ON = const(0xFF00)


class ModbusError(Exception):
    # A reply that cannot be the answer to the request (or no usable reply at all).
    pass


class ModbusTimeout(ModbusError):
    pass


_NAMES = const((
    None,
    "ILLEGAL FUNCTION",
    "ILLEGAL DATA ADDRESS",
    "ILLEGAL DATA VALUE",
    "SERVER DEVICE FAILURE",
    "ACKNOWLEDGE",
    "SERVER DEVICE BUSY",
    None,
    "MEMORY PARITY ERROR",
    None,
    "GATEWAY PATH UNAVAILABLE",
    "GATEWAY TARGET DEVICE FAILED TO RESPOND",
))


def exception_name(code):
    if 0 < code < len(_NAMES) and _NAMES[code]:
        return _NAMES[code]
    return "EXCEPTION %d" % code


class ModbusException(ModbusError):
    # The device answered with an exception response (function code | 0x80, code).
    def __init__(self, code):
        super().__init__(code, exception_name(code))
        self.code = code

    @property
    def name(self):
        return exception_name(self.code)


def _check_range(addr, count, most):
    if not (0 <= addr <= 0xFFFF and 1 <= count <= most and addr + count <= 0x10000):
        raise ValueError("address/count")


def _room(buf, off, n):
    if off < 0 or off + n > len(buf):
        raise ValueError("buffer")


def read_request(buf, off, fc, addr, count):
    # FC 1-4; returns the PDU length.
    if fc == _FC_READ_HOLDING or fc == _FC_READ_INPUT:
        _check_range(addr, count, _MAX_READ_REGS)
    elif fc == FC_READ_COILS or fc == _FC_READ_DISCRETE:
        _check_range(addr, count, _MAX_READ_BITS)
    else:
        raise ValueError("function code")
    _room(buf, off, 5)
    struct.pack_into(">BHH", buf, off, fc, addr, count)
    return 5


def _u16(v):
    # Signed 16-bit values are accepted and sent in two's complement.
    if v < -0x8000 or v > 0xFFFF:
        raise ValueError("register value")
    return v & 0xFFFF


def write_single_request(buf, off, addr, value):
    _check_range(addr, 1, 1)
    _room(buf, off, 5)
    struct.pack_into(">BHH", buf, off, FC_WRITE_SINGLE, addr, _u16(value))
    return 5


def write_coil_request(buf, off, addr, on):
    _check_range(addr, 1, 1)
    _room(buf, off, 5)
    struct.pack_into(">BHH", buf, off, _FC_WRITE_COIL, addr, _COIL_ON if on else 0)
    return 5


def write_multiple_request(buf, off, addr, values, count):
    _check_range(addr, count, _MAX_WRITE_REGS)
    if count > len(values):
        raise ValueError("values")
    n = 6 + 2 * count
    _room(buf, off, n)
    struct.pack_into(">BHHB", buf, off, FC_WRITE_MULTIPLE, addr, count, 2 * count)
    j = off + 6
    for i in range(count):
        v = _u16(values[i])
        buf[j] = v >> 8
        buf[j + 1] = v & 0xFF
        j += 2
    return n


def write_coils_request(buf, off, addr, bits, count):
    _check_range(addr, count, _MAX_WRITE_BITS)
    if count > len(bits):
        raise ValueError("values")
    nb = (count + 7) >> 3
    _room(buf, off, 6 + nb)
    struct.pack_into(">BHHB", buf, off, FC_WRITE_COILS, addr, count, nb)
    j = off + 6
    for i in range(nb):
        buf[j + i] = 0
    for i in range(count):
        if bits[i]:
            buf[j + (i >> 3)] |= 1 << (i & 7)
    return 6 + nb


def response_length(fc, count):
    # PDU length of the normal reply to a request with this function code and quantity.
    if fc == FC_READ_COILS or fc == _FC_READ_DISCRETE:
        return 2 + ((count + 7) >> 3)
    if fc == _FC_READ_HOLDING or fc == _FC_READ_INPUT:
        return 2 + 2 * count
    if fc == _FC_WRITE_COIL or fc == FC_WRITE_SINGLE or fc == FC_WRITE_COILS or fc == FC_WRITE_MULTIPLE:
        return 5  # the echo of address and value (or quantity)
    raise ValueError("function code")


def _head(buf, off, n, fc):
    if off < 0 or n < 0 or off + n > len(buf):
        raise ValueError("buffer")
    if n < 2:
        raise ModbusError("short reply")
    f = buf[off]
    if f == fc | _EXC:
        if n != 2:
            raise ModbusError("exception length")
        raise ModbusException(buf[off + 1])
    if f != fc:
        raise ModbusError("function code")


def parse_registers(buf, off, n, fc, count, out, out_off=0):
    # Reply to FC 3/4 at buf[off:off+n] -> out[out_off:out_off+count]; returns count.
    _head(buf, off, n, fc)
    bc = 2 * count
    if n != 2 + bc or buf[off + 1] != bc:
        raise ModbusError("byte count")
    j = off + 2
    for i in range(out_off, out_off + count):
        out[i] = (buf[j] << 8) | buf[j + 1]
        j += 2
    return count


def parse_bits(buf, off, n, fc, count, out, out_off=0):
    # Reply to FC 1/2 -> out[out_off:out_off+count] as 0/1 (the padding bits are not checked).
    _head(buf, off, n, fc)
    bc = (count + 7) >> 3
    if n != 2 + bc or buf[off + 1] != bc:
        raise ModbusError("byte count")
    j = off + 2
    for i in range(count):
        out[out_off + i] = (buf[j + (i >> 3)] >> (i & 7)) & 1
    return count


def parse_write(buf, off, n, fc, addr, value):
    # Reply to FC 5/6 (value written) or 15/16 (quantity written): an exact echo.
    _head(buf, off, n, fc)
    if n != 5:
        raise ModbusError("reply length")
    if ((buf[off + 1] << 8) | buf[off + 2]) != addr or ((buf[off + 3] << 8) | buf[off + 4]) != value:
        raise ModbusError("echo")
