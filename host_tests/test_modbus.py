"""Modbus codec (lib/modbus pdu, rtu, tcp) under CPython: the shared cases, and properties
against encoders written here from the spec and against pymodbus's own framer.
(MicroPython: test_cases_mpy.py runs the same cases, the master's included.)"""

import struct

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rtuline  # tools/: a device's side of the RTU line
from cases import caserun, modbus_cases
from modbus import pdu, rtu, tcp
from modbus.pdu import ModbusError, ModbusException
from modbus.rtu import CrcError

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", caserun.names(modbus_cases))
def test_case(name):
    getattr(modbus_cases, name)()


# -- independent reference: the spec's bitwise CRC and struct-built frames -------------------------

crc_ref = modbus_cases.crc_bitwise


def seal_ref(body):
    return body + struct.pack("<H", crc_ref(body))


def request_ref(fc, addr, count=None, value=None, values=None):
    if fc in (1, 2, 3, 4):
        return struct.pack(">BHH", fc, addr, count)
    if fc == 5:
        return struct.pack(">BHH", fc, addr, 0xFF00 if value else 0)
    if fc == 6:
        return struct.pack(">BHH", fc, addr, value & 0xFFFF)
    if fc == 16:
        return struct.pack(">BHHB", fc, addr, len(values), 2 * len(values)) + b"".join(
            struct.pack(">H", v & 0xFFFF) for v in values
        )
    if fc == 15:
        packed = bytearray((len(values) + 7) // 8)
        for i, b in enumerate(values):
            if b:
                packed[i // 8] |= 1 << (i % 8)
        return struct.pack(">BHHB", fc, addr, len(values), len(packed)) + bytes(packed)
    raise AssertionError(fc)


def registers_reply_ref(fc, values):
    return struct.pack(">BB", fc, 2 * len(values)) + b"".join(struct.pack(">H", v) for v in values)


def bits_reply_ref(fc, bits):
    packed = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            packed[i // 8] |= 1 << (i % 8)
    return bytes((fc, len(packed))) + bytes(packed)


def ours(build, *args):
    buf = bytearray(262)
    n = build(buf, 0, *args)
    return bytes(buf[:n])


# -- CRC ------------------------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=300), st.integers(0, 20))
def test_crc_matches_the_bitwise_definition(data, skip):
    off = min(skip, len(data))
    assert rtu.crc16(data, off, len(data) - off) == crc_ref(data[off:])


@SETTINGS
@given(st.binary(min_size=1, max_size=254))
def test_crc_matches_pymodbus(data):
    from pymodbus.framer import FramerRTU

    # pymodbus returns the CRC byte-swapped, i.e. in wire order read big-endian
    assert struct.pack("<H", rtu.crc16(data, 0, len(data))) == FramerRTU.compute_CRC(data).to_bytes(2, "big")


# -- requests -------------------------------------------------------------------------------------


@SETTINGS
@given(st.sampled_from([1, 2, 3, 4]), st.integers(0, 0xFFFF), st.integers(1, 2000), st.integers(1, 247))
def test_read_requests_match_the_reference(fc, addr, count, unit):
    most = 125 if fc in (3, 4) else 2000
    assume(count <= most and addr + count <= 0x10000)
    assert ours(pdu.read_request, fc, addr, count) == request_ref(fc, addr, count)
    assert (modbus_cases.frame(unit, pdu.read_request, fc, addr, count)
            == seal_ref(bytes([unit]) + request_ref(fc, addr, count)))


@SETTINGS
@given(st.integers(0, 0xFFFF), st.lists(st.integers(-0x8000, 0xFFFF), min_size=1, max_size=123))
def test_write_requests_match_the_reference(addr, values):
    assume(addr + len(values) <= 0x10000)
    assert ours(pdu.write_multiple_request, addr, values, len(values)) == request_ref(16, addr, values=values)
    assert ours(pdu.write_single_request, addr, values[0]) == request_ref(6, addr, value=values[0])
    assert ours(pdu.write_coil_request, addr, values[0] & 1) == request_ref(5, addr, value=values[0] & 1)


@SETTINGS
@given(st.integers(0, 0xFFFF), st.lists(st.booleans(), min_size=1, max_size=1968))
def test_write_coils_match_the_reference(addr, bits):
    assume(addr + len(bits) <= 0x10000)
    assert ours(pdu.write_coils_request, addr, bits, len(bits)) == request_ref(15, addr, values=bits)


def _pymodbus_frame(req):
    from pymodbus.framer import FramerRTU
    from pymodbus.pdu import DecodePDU

    return FramerRTU(DecodePDU(False)).buildFrame(req)


def test_requests_match_pymodbus_frames():
    from pymodbus.pdu.bit_message import (
        ReadCoilsRequest,
        ReadDiscreteInputsRequest,
        WriteMultipleCoilsRequest,
        WriteSingleCoilRequest,
    )
    from pymodbus.pdu.register_message import (
        ReadHoldingRegistersRequest,
        ReadInputRegistersRequest,
        WriteMultipleRegistersRequest,
        WriteSingleRegisterRequest,
    )

    f = modbus_cases.frame
    pairs = [
        (f(1, pdu.read_request, 3, 0, 10), ReadHoldingRegistersRequest(address=0, count=10, dev_id=1)),
        (f(7, pdu.read_request, 4, 300, 125), ReadInputRegistersRequest(address=300, count=125, dev_id=7)),
        (f(2, pdu.read_request, 1, 19, 37), ReadCoilsRequest(address=19, count=37, dev_id=2)),
        (f(2, pdu.read_request, 2, 0, 2000), ReadDiscreteInputsRequest(address=0, count=2000, dev_id=2)),
        (f(1, pdu.write_single_request, 2, 4242), WriteSingleRegisterRequest(address=2, registers=[4242], dev_id=1)),
        (f(1, pdu.write_coil_request, 12, True), WriteSingleCoilRequest(address=12, bits=[True], dev_id=1)),
        (
            f(1, pdu.write_multiple_request, 10, [1, 2, 65535], 3),
            WriteMultipleRegistersRequest(address=10, registers=[1, 2, 65535], dev_id=1),
        ),
        (
            f(3, pdu.write_coils_request, 19, [1, 0, 1, 1, 0, 0, 1, 1, 1, 0], 10),
            WriteMultipleCoilsRequest(address=19, bits=[True, False, True, True, False, False, True, True, True, False],
                                      dev_id=3),
        ),
    ]
    for mine, theirs in pairs:
        assert mine == _pymodbus_frame(theirs), (mine.hex(" "), type(theirs).__name__)


# -- replies --------------------------------------------------------------------------------------


@SETTINGS
@given(st.sampled_from([3, 4]), st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=125), st.integers(1, 247))
def test_register_replies_round_trip(fc, values, unit):
    frame = bytearray(seal_ref(bytes([unit]) + registers_reply_ref(fc, values)))
    assert rtu.frame_length(frame, len(frame)) == len(frame) == rtu.expected_length(fc, len(values))
    plen = rtu.check(frame, len(frame), unit)
    out = [None] * len(values)
    pdu.parse_registers(frame, 1, plen, fc, len(values), out)
    assert out == values


@SETTINGS
@given(st.sampled_from([1, 2]), st.lists(st.booleans(), min_size=1, max_size=2000))
def test_bit_replies_round_trip(fc, bits):
    reply = bits_reply_ref(fc, bits)
    out = bytearray(len(bits))
    pdu.parse_bits(reply, 0, len(reply), fc, len(bits), out)
    assert [bool(b) for b in out] == bits


@SETTINGS
@given(st.binary(max_size=300), st.sampled_from([1, 2, 3, 4, 5, 6, 15, 16]), st.integers(1, 125),
       st.integers(0, 0xFFFF))
def test_random_bytes_raise_only_modbus_errors(data, fc, count, value):
    out = [0] * 2000
    for fn, args in (
        (pdu.parse_registers, (fc, count, out)),
        (pdu.parse_bits, (fc, count, out)),
        (pdu.parse_write, (fc, value, value)),
        (rtu.check, None),
        (rtu.frame_length, None),
        (rtuline.request_length, None),
        (tcp.frame_length, None),
        (tcp.check, None),
    ):
        try:
            if fn in (rtu.check, tcp.check):
                fn(data, len(data), data[0] if data else 1)
            elif args is None:
                fn(data, len(data))
            else:
                fn(data, 0, len(data), *args)
        except ModbusError:
            pass
    assert 0 <= rtu.sync(data, len(data), 1, fc) <= len(data)


def _master_class():
    # modbus.master reads MicroPython's microsecond clock (time.ticks_us & co): CPython's time
    # module gets the same functions here, on its monotonic clock with the device's wrap,
    # before the import (the master's cases run under MicroPython: test_cases_mpy.py)
    import time

    import compat

    if not hasattr(time, "ticks_us"):
        time.ticks_us = lambda: int(time.monotonic() * 1000000) & 0x3FFFFFFF
        time.ticks_diff = compat.ticks_diff
        time.ticks_add = compat.ticks_add
    from modbus.master import Master

    return Master


@SETTINGS
@given(st.booleans(), st.integers(8, 40), st.sampled_from([1, 2, 3, 4]), st.integers(1, 12),
       st.lists(st.tuples(st.booleans(), st.integers(0, 300), st.binary(max_size=80)), min_size=1, max_size=3))
def test_small_buffer_master_takes_any_reply(is_rtu, size, fc, count, replies):
    """Whatever bytes come back, a master with buffers of `size` bytes refuses a request that
    or whose reply would not fit, and otherwise ends with the values or a ModbusError: nothing
    is read or written outside its buffers (an IndexError would escape). An "aimed" reply
    starts as the real one would (RTU: unit, function code and a byte count; MBAP: our
    transaction id, protocol 0 and a length), so that the length and frame checks get random
    input past the framing."""
    master_cls = _master_class()
    link = modbus_cases.FakeLink(is_rtu)
    for aimed, n, r in replies:
        if not aimed:
            link.script.append(r)
        elif is_rtu:
            link.script.append(bytes([1, fc, n & 0xFF]) + r)
        else:
            link.script.append(lambda req, n=n, r=r: req[:2] + b"\0\0" + struct.pack(">H", n) + r)
    m = master_cls(link, timeout_ms=0, retries=len(replies) - 1, size=size)
    out = [0] * count
    plen = pdu.response_length(fc, count)
    fits = (max(8, 3 + plen) if is_rtu else 7 + max(5, plen)) <= size
    try:
        m.start(1, fc, 0, count, None, out)
    except ValueError as e:
        assert not fits and str(e) == "buffer"
        return
    assert fits
    for _ in range(20000):
        try:
            if m.poll():
                break
        except ModbusError:
            break
    assert not m.busy()
    if is_rtu:
        assert link.resets == 0


def _mutations(frame, data):
    # flip, drop, insert, truncate, extend, all driven by hypothesis
    kind, pos, byte = data.draw(st.tuples(st.integers(0, 4), st.integers(0, len(frame) - 1), st.integers(1, 255)))
    b = bytearray(frame)
    if kind == 0:
        b[pos] ^= byte
    elif kind == 1:
        del b[pos]
    elif kind == 2:
        b.insert(pos, byte)
    elif kind == 3:
        del b[pos:]
    else:
        b += bytes([byte])
    return bytes(b)


@SETTINGS
@given(st.sampled_from([3, 4]), st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=20), st.data())
def test_mutated_rtu_replies_are_rejected_or_exact(fc, values, data):
    frame = seal_ref(bytes([1]) + registers_reply_ref(fc, values))
    bad = _mutations(frame, data)
    assume(bad != frame)
    buf = bytearray(bad)
    out = [None] * len(values)
    try:
        plen = rtu.check(buf, len(buf), 1)
        pdu.parse_registers(buf, 1, plen, fc, len(values), out)
    except ModbusError:
        assert out == [None] * len(values)
        return
    # a mutation the CRC cannot see would have to survive parsing too: never for a
    # single changed byte (CRC-16 catches every burst up to 16 bits)
    raise AssertionError("accepted %s from %s" % (bad.hex(" "), frame.hex(" ")))


@SETTINGS
@given(st.integers(0, 255), st.binary(min_size=3, max_size=30), st.integers(1, 6), st.integers(1, 255))
def test_single_byte_errors_are_crc_errors(unit, body, pos, flip):
    frame = bytearray(seal_ref(bytes([unit]) + body))
    pos %= len(frame)
    frame[pos] ^= flip
    with pytest.raises(CrcError):
        rtu.check(frame, len(frame), unit)


@SETTINGS
@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=20), st.integers(0, 0xFFFF), st.integers(0, 255),
       st.data())
def test_mbap_replies_round_trip_and_mutations(values, tid, unit, data):
    body = registers_reply_ref(3, values)
    frame = struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body
    buf = bytearray(frame)
    assert tcp.frame_length(buf, 7) == len(frame)
    assert tcp.tid(buf) == tid
    out = [None] * len(values)
    pdu.parse_registers(buf, 7, tcp.check(buf, len(buf), unit), 3, len(values), out)
    assert out == values
    bad = bytearray(_mutations(frame, data))
    try:
        n = tcp.frame_length(bad, len(bad))
        if n == len(bad):
            pdu.parse_registers(bad, 7, tcp.check(bad, n, unit), 3, len(values), out)
    except ModbusError:
        pass


@SETTINGS
@given(st.integers(1, 255), st.sampled_from([1, 2, 3, 4, 5, 6, 15, 16]))
def test_exception_replies(code, fc):
    reply = bytes((fc | 0x80, code))
    for fn, args in ((pdu.parse_registers, (3, [0] * 3)), (pdu.parse_bits, (3, [0] * 3)), (pdu.parse_write, (0, 0))):
        try:
            fn(reply, 0, 2, fc, *args)
        except ModbusException as e:
            assert e.code == code and e.name
        except ModbusError:
            pass
        else:
            raise AssertionError("accepted an exception reply")



def test_rtu_and_pdu_inline_the_spec_function_codes():
    """rtu.frame_length tells replies apart by function code, with private constants (inlined
    under MicroPython), as pdu keeps those no other module names: both must be the spec's
    (read coils 1, discrete inputs 2, holding 3, input registers 4, write coil 5, register 6,
    coils 15, registers 16)."""
    assert (rtu._FC_READ_COILS, rtu._FC_READ_INPUT, rtu._FC_WRITE_COIL, rtu._FC_WRITE_SINGLE,
            rtu._FC_WRITE_COILS, rtu._FC_WRITE_MULTIPLE) == (1, 4, 5, 6, 15, 16)
    assert (pdu.FC_READ_COILS, pdu._FC_READ_DISCRETE, pdu._FC_READ_HOLDING, pdu._FC_READ_INPUT,
            pdu._FC_WRITE_COIL, pdu.FC_WRITE_SINGLE, pdu.FC_WRITE_COILS, pdu.FC_WRITE_MULTIPLE) == (
        1, 2, 3, 4, 5, 6, 15, 16)
