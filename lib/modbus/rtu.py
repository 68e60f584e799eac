# Modbus RTU framing without I/O: address byte + PDU + CRC-16 (reflected polynomial 0xA001,
# initial value 0xFFFF, low byte first on the wire), the length a frame must reach before it
# is complete, and the character timing from which the master derives the line's silences.
from compat import const
from modbus import pdu

# the function codes of modbus.pdu that frame_length tells apart, inlined (as master.py does)
_FC_READ_COILS = const(1)
_FC_READ_INPUT = const(4)
_FC_WRITE_COIL = const(5)
_FC_WRITE_SINGLE = const(6)
_FC_WRITE_COILS = const(15)
_FC_WRITE_MULTIPLE = const(16)

MAX_FRAME = const(256)
MAX_UNIT = const(247)  # 248-255 are reserved; 0 is broadcast (no reply)


class CrcError(pdu.ModbusError):
    pass


# The CRC table (reflected 0xA001) as two constant byte strings, low and high bytes: in flash
# when frozen, and ~7x faster than bit by bit under MicroPython (bench_modbus.py prints both);
# the frames are checked on every poll. test_modbus checks it against the bit-by-bit CRC.
_LO = (
    const(b"\x00\xc1\x81\x40\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40"
    b"\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0\x80\x41"
    b"\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1\x81\x40"
    b"\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40"
    b"\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40"
    b"\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41"
    b"\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1\x81\x40"
    b"\x01\xc0\x80\x41\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41"
    b"\x01\xc0\x80\x41\x00\xc1\x81\x40\x00\xc1\x81\x40\x01\xc0\x80\x41\x00\xc1\x81\x40\x01\xc0\x80\x41\x01\xc0\x80\x41"
    b"\x00\xc1\x81\x40")
)
_HI = (
    const(b"\x00\xc0\xc1\x01\xc3\x03\x02\xc2\xc6\x06\x07\xc7\x05\xc5\xc4\x04\xcc\x0c\x0d\xcd\x0f\xcf\xce\x0e\x0a\xca\xcb\x0b"
    b"\xc9\x09\x08\xc8\xd8\x18\x19\xd9\x1b\xdb\xda\x1a\x1e\xde\xdf\x1f\xdd\x1d\x1c\xdc\x14\xd4\xd5\x15\xd7\x17\x16\xd6"
    b"\xd2\x12\x13\xd3\x11\xd1\xd0\x10\xf0\x30\x31\xf1\x33\xf3\xf2\x32\x36\xf6\xf7\x37\xf5\x35\x34\xf4\x3c\xfc\xfd\x3d"
    b"\xff\x3f\x3e\xfe\xfa\x3a\x3b\xfb\x39\xf9\xf8\x38\x28\xe8\xe9\x29\xeb\x2b\x2a\xea\xee\x2e\x2f\xef\x2d\xed\xec\x2c"
    b"\xe4\x24\x25\xe5\x27\xe7\xe6\x26\x22\xe2\xe3\x23\xe1\x21\x20\xe0\xa0\x60\x61\xa1\x63\xa3\xa2\x62\x66\xa6\xa7\x67"
    b"\xa5\x65\x64\xa4\x6c\xac\xad\x6d\xaf\x6f\x6e\xae\xaa\x6a\x6b\xab\x69\xa9\xa8\x68\x78\xb8\xb9\x79\xbb\x7b\x7a\xba"
    b"\xbe\x7e\x7f\xbf\x7d\xbd\xbc\x7c\xb4\x74\x75\xb5\x77\xb7\xb6\x76\x72\xb2\xb3\x73\xb1\x71\x70\xb0\x50\x90\x91\x51"
    b"\x93\x53\x52\x92\x96\x56\x57\x97\x55\x95\x94\x54\x9c\x5c\x5d\x9d\x5f\x9f\x9e\x5e\x5a\x9a\x9b\x5b\x99\x59\x58\x98"
    b"\x88\x48\x49\x89\x4b\x8b\x8a\x4a\x4e\x8e\x8f\x4f\x8d\x4d\x4c\x8c\x44\x84\x85\x45\x87\x47\x46\x86\x82\x42\x43\x83"
    b"\x41\x81\x80\x40")
)


def crc16(buf, off, n):
    crc = 0xFFFF
    lo = _LO
    hi = _HI
    for i in range(off, off + n):
        j = (crc ^ buf[i]) & 0xFF
        crc = (crc >> 8) ^ (hi[j] << 8 | lo[j])
    return crc


def seal(buf, n):
    # Append the CRC to the n bytes at buf[0:n] (address + PDU); returns the frame length.
    if n < 2 or n + 2 > len(buf) or n + 2 > MAX_FRAME:
        raise ValueError("frame length")
    c = crc16(buf, 0, n)
    buf[n] = c & 0xFF
    buf[n + 1] = c >> 8
    return n + 2


def check(buf, n, unit):
    # Validate the frame at buf[0:n] from `unit`; returns the PDU length (the PDU is at buf[1]).
    if n < 4 or n > MAX_FRAME or n > len(buf):
        raise pdu.ModbusError("frame length")
    c = crc16(buf, 0, n - 2)
    if buf[n - 2] != c & 0xFF or buf[n - 1] != c >> 8:
        raise CrcError("crc")
    if buf[0] != unit:
        raise pdu.ModbusError("address")
    return n - 3


def expected_length(fc, count):
    # Length of the normal reply frame to a request; an exception reply is always 5.
    return 3 + pdu.response_length(fc, count)


def frame_length(buf, n):
    # Length of the reply frame that starts at buf[0], for a reader that does not know the
    # request; 0 while fewer bytes have arrived than are needed to tell.
    if n < 2:
        return 0
    fc = buf[1]
    if fc & 0x80:
        return 5
    if _FC_READ_COILS <= fc <= _FC_READ_INPUT:
        if n < 3:
            return 0
        return 5 + buf[2]
    if fc == _FC_WRITE_COIL or fc == _FC_WRITE_SINGLE or fc == _FC_WRITE_COILS or fc == _FC_WRITE_MULTIPLE:
        return 8
    raise pdu.ModbusError("function code")


def sync(buf, n, unit, fc):
    # Index of the first byte in buf[0:n] that can start the reply (the unit address followed
    # by fc or fc|0x80); n when none can. What comes before it is noise or a stray frame.
    e = fc | 0x80
    i = 0
    while i < n:
        if buf[i] == unit:
            if i + 1 == n:
                return i
            f = buf[i + 1]
            if f == fc or f == e:
                return i
        i += 1
    return n


# Character time at 11 bits (start, 8 data, parity or a second stop bit, stop). The spec fixes
# t1.5 and t3.5 at 750 us and 1750 us above 19200 baud, where timers would be too tight.
def char_us(baud):
    return (11000000 + baud - 1) // baud


def t35_us(baud):
    return 1750 if baud > 19200 else (38500000 + baud - 1) // baud
