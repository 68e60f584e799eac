# Modbus TCP framing without I/O: the 7-byte MBAP header (transaction id, protocol id 0,
# length of what follows, unit id) in front of the PDU. TCP guarantees the bytes; what the
# header adds is a frame length and a transaction id, by which a late reply to an earlier,
# timed-out request is told apart from the current one.
import struct

from compat import const
from modbus.pdu import MAX_PDU, ModbusError

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

_HEADER = const(7)
_MAX_ADU = const(260)  # 7 + 253


def header(buf, tid, unit, pdu_len):
    # Write the header for a PDU already at buf[7:7+pdu_len]; returns the frame length.
    if not (0 <= tid <= 0xFFFF and 0 <= unit <= 0xFF and 1 <= pdu_len <= MAX_PDU):
        raise ValueError("header")
    if _HEADER + pdu_len > len(buf):
        raise ValueError("buffer")
    struct.pack_into(">HHHB", buf, 0, tid, 0, pdu_len + 1, unit)
    return _HEADER + pdu_len


def frame_length(buf, n):
    # Length of the frame whose header is at buf[0], or 0 while fewer than 7 bytes arrived.
    # A bad protocol id or length means the stream is out of step: nothing after it can be
    # framed, so the caller has to drop the connection.
    if n < _HEADER:
        return 0
    if buf[2] or buf[3]:
        raise ModbusError("protocol id")
    ln = (buf[4] << 8) | buf[5]
    if ln < 3 or ln > MAX_PDU + 1:  # unit id + at least an exception PDU
        raise ModbusError("mbap length")
    return 6 + ln


def tid(buf):
    return (buf[0] << 8) | buf[1]


def next_tid(t):
    return (t + 1) & 0xFFFF


def set_tid(buf, t):
    buf[0] = (t >> 8) & 0xFF
    buf[1] = t & 0xFF


def check(buf, n, unit):
    # Validate a complete frame at buf[0:n] for `unit`; returns the PDU length (PDU at buf[7]).
    if n < _HEADER or n > len(buf) or frame_length(buf, n) != n:
        raise ModbusError("frame length")
    if buf[6] != unit:
        raise ModbusError("unit id")
    return n - _HEADER
