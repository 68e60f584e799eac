# Modbus PDU, RTU and MBAP codec scenarios, and the master's stepper against a scripted link.
# Plain functions with asserts, no pytest: the same file runs under CPython (test_modbus.py)
# and under the MicroPython unix port (test_cases_mpy.py). The master needs MicroPython
# (time.ticks_us, asyncio.sleep_ms); its cases return at once under CPython.
import struct
import sys
from array import array

from modbus import pdu, rtu, tcp
from modbus.pdu import ModbusError, ModbusException, ModbusTimeout
from modbus.rtu import CrcError
from support.paths import TOOLS

if TOOLS not in sys.path:
    sys.path.append(TOOLS)
import rtuline  # noqa: E402  (tools/: a device's side of the RTU line)

MPY = sys.implementation.name == "micropython"


def h(s):
    # hex with spaces -> bytes (no bytes.fromhex in every MicroPython build)
    s = s.replace(" ", "")
    return bytes(int(s[i : i + 2], 16) for i in range(0, len(s), 2))


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("no %s from %s%r" % (exc.__name__, fn.__name__, args))


def crc_bitwise(data):
    # independent of rtu's table: the algorithm as the serial-line spec describes it
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame(unit, build, *args):
    buf = bytearray(262)
    buf[0] = unit
    n = build(buf, 1, *args)
    return bytes(buf[: rtu.seal(buf, 1 + n)])


# -- CRC ------------------------------------------------------------------------------------------


def case_crc_known_vectors():
    # (frame without CRC, CRC bytes as on the wire); the 0x11 ones are the serial-line
    # spec's own examples
    vectors = (
        ("01 03 00 00 00 0A", "C5 CD"),
        ("11 03 00 6B 00 03", "76 87"),
        ("11 01 00 13 00 25", "0E 84"),
        ("01 06 00 01 00 03", "98 0B"),
        ("01 83 02", "C0 F1"),
    )
    for body, crc in vectors:
        b = h(body)
        c = rtu.crc16(b, 0, len(b))
        assert bytes((c & 0xFF, c >> 8)) == h(crc), (body, hex(c))
        assert c == crc_bitwise(b)
        buf = bytearray(len(b) + 2)
        buf[: len(b)] = b
        assert rtu.seal(buf, len(b)) == len(b) + 2
        assert bytes(buf[len(b) :]) == h(crc)


def case_crc_offset_and_empty():
    b = b"\xAA\xBB" + h("01 03 00 00 00 0A") + b"\xCC"
    assert rtu.crc16(b, 2, 6) == 0xCDC5
    assert rtu.crc16(b, 0, 0) == 0xFFFF
    data = bytes(range(256))
    assert rtu.crc16(data, 0, 256) == crc_bitwise(data)


# -- requests -------------------------------------------------------------------------------------


def case_request_encodings_byte_exact():
    assert frame(1, pdu.read_request, 3, 0, 10) == h("01 03 00 00 00 0A C5 CD")
    assert frame(0x11, pdu.read_request, 3, 0x6B, 3) == h("11 03 00 6B 00 03 76 87")
    assert frame(0x11, pdu.read_request, 1, 0x13, 0x25) == h("11 01 00 13 00 25 0E 84")
    assert frame(1, pdu.read_request, 4, 0, 5) == h("01 04 00 00 00 05 30 09")
    assert frame(1, pdu.read_request, 2, 0, 8) == h("01 02 00 00 00 08 79 CC")
    assert frame(1, pdu.write_single_request, 1, 3) == h("01 06 00 01 00 03 98 0B")
    assert frame(1, pdu.write_single_request, 2, 4242) == h("01 06 00 02 10 92 A4 67")
    assert frame(1, pdu.write_coil_request, 12, True) == h("01 05 00 0C FF 00 4C 39")
    assert frame(1, pdu.write_multiple_request, 1, [10, 0x0102], 2) == h("01 10 00 01 00 02 04 00 0A 01 02 92 30")
    # the spec's FC15 example: coils 20-29 (0x13..) = CD 01
    bits = (1, 0, 1, 1, 0, 0, 1, 1, 1, 0)
    assert frame(1, pdu.write_coils_request, 0x13, bits, 10) == h("01 0F 00 13 00 0A 02 CD 01 72 CB")


def case_request_signed_values_and_arrays():
    buf = bytearray(16)
    assert pdu.write_single_request(buf, 0, 0, -1) == 5
    assert bytes(buf[:5]) == h("06 00 00 FF FF")
    vals = array("H", (1, 2, 0xFFFF))
    assert pdu.write_multiple_request(buf, 0, 7, vals, 3) == 12
    assert bytes(buf[:12]) == h("10 00 07 00 03 06 00 01 00 02 FF FF")
    pdu.write_multiple_request(buf, 0, 7, [-32768], 1)
    assert bytes(buf[6:8]) == h("80 00")


def case_request_limits():
    buf = bytearray(262)
    assert pdu.read_request(buf, 0, 3, 0, 125) == 5
    assert pdu.read_request(buf, 0, 1, 0, 2000) == 5
    assert pdu.read_request(buf, 0, 3, 0xFFFF, 1) == 5
    for args in ((3, 0, 0), (3, 0, 126), (4, 0, 126), (1, 0, 2001), (2, 0, 0), (3, 0xFFFF, 2), (3, -1, 1),
                 (3, 0x10000, 1), (7, 0, 1)):
        raises(ValueError, pdu.read_request, buf, 0, *args)
    raises(ValueError, pdu.write_single_request, buf, 0, 0, 0x10000)
    raises(ValueError, pdu.write_single_request, buf, 0, 0, -0x8001)
    raises(ValueError, pdu.write_multiple_request, buf, 0, 0, [0] * 124, 124)
    raises(ValueError, pdu.write_multiple_request, buf, 0, 0, [0, 1], 3)
    raises(ValueError, pdu.write_coils_request, buf, 0, 0, [0] * 1969, 1969)
    assert pdu.write_multiple_request(buf, 0, 0, [0] * 123, 123) == 6 + 246
    assert pdu.write_coils_request(buf, 0, 0, [1] * 1968, 1968) == 6 + 246
    raises(ValueError, pdu.read_request, bytearray(4), 0, 3, 0, 1)
    raises(ValueError, pdu.write_multiple_request, bytearray(10), 0, 0, [1, 2, 3], 3)


# -- replies --------------------------------------------------------------------------------------


def case_parse_registers():
    b = h("03 06 00 64 00 65 FF FF")
    out = array("H", bytes(8))
    assert pdu.parse_registers(b, 0, len(b), 3, 3, out, 1) == 3
    assert list(out) == [0, 100, 101, 0xFFFF]
    b = h("EE 04 02 12 34 EE")
    out = [None]
    pdu.parse_registers(b, 1, 4, 4, 1, out)
    assert out == [0x1234]


def case_parse_bits():
    # the spec's FC1 example reply: coils 20..56 = CD 6B B2 0E 1B
    b = h("01 05 CD 6B B2 0E 1B")
    out = bytearray(37)
    pdu.parse_bits(b, 0, len(b), 1, 37, out)
    expect = []
    for byte in (0xCD, 0x6B, 0xB2, 0x0E, 0x1B):
        for k in range(8):
            expect.append((byte >> k) & 1)
    assert list(out) == expect[:37]
    raises(ModbusError, pdu.parse_bits, b, 0, len(b), 1, 41, bytearray(41))
    raises(ModbusError, pdu.parse_bits, b, 0, len(b), 2, 37, out)


def case_parse_write_echo():
    pdu.parse_write(h("06 00 02 10 92"), 0, 5, 6, 2, 4242)
    pdu.parse_write(h("05 00 0C FF 00"), 0, 5, 5, 12, 0xFF00)
    pdu.parse_write(h("10 00 01 00 02"), 0, 5, 16, 1, 2)
    pdu.parse_write(h("0F 00 13 00 0A"), 0, 5, 15, 0x13, 10)
    raises(ModbusError, pdu.parse_write, h("06 00 02 10 93"), 0, 5, 6, 2, 4242)
    raises(ModbusError, pdu.parse_write, h("06 00 03 10 92"), 0, 5, 6, 2, 4242)
    raises(ModbusError, pdu.parse_write, h("06 00 02 10"), 0, 4, 6, 2, 4242)
    raises(ModbusError, pdu.parse_write, h("10 00 01 00 02 00"), 0, 6, 16, 1, 2)


def case_exception_responses():
    names = {
        1: "ILLEGAL FUNCTION",
        2: "ILLEGAL DATA ADDRESS",
        3: "ILLEGAL DATA VALUE",
        4: "SERVER DEVICE FAILURE",
        6: "SERVER DEVICE BUSY",
        10: "GATEWAY PATH UNAVAILABLE",
        11: "GATEWAY TARGET DEVICE FAILED TO RESPOND",
    }
    for code, name in names.items():
        e = raises(ModbusException, pdu.parse_registers, bytes((0x83, code)), 0, 2, 3, 1, [0])
        assert e.code == code and e.name == name, (code, e.name)
        assert isinstance(e, ModbusError)
    e = raises(ModbusException, pdu.parse_write, h("90 02"), 0, 2, 16, 0, 1)
    assert e.code == 2
    assert pdu.exception_name(0x42) == "EXCEPTION 66"
    # an exception reply with trailing bytes, or to another function, is malformed
    raises(ModbusError, pdu.parse_registers, h("83 02 00"), 0, 3, 3, 1, [0])
    e = raises(ModbusError, pdu.parse_registers, h("84 02"), 0, 2, 3, 1, [0])
    assert not isinstance(e, ModbusException)


def case_malformed_replies():
    out = array("H", bytes(20))
    good = h("03 04 00 01 00 02")
    pdu.parse_registers(good, 0, 6, 3, 2, out)
    bad = (
        (h("04 04 00 01 00 02"), 6),  # function code
        (h("03 02 00 01 00 02"), 6),  # byte count
        (h("03 04 00 01 00"), 5),  # short
        (h("03 04 00 01 00 02 00"), 7),  # long
        (h("03"), 1),
        (b"", 0),
    )
    for b, n in bad:
        out[0] = 0xBEEF
        raises(ModbusError, pdu.parse_registers, b, 0, n, 3, 2, out)
        assert out[0] == 0xBEEF  # nothing copied out of a rejected reply
    raises(ValueError, pdu.parse_registers, good, 0, 7, 3, 2, out)


def case_response_lengths():
    assert pdu.response_length(3, 10) == 22
    assert pdu.response_length(4, 125) == 252
    assert pdu.response_length(1, 1) == 3
    assert pdu.response_length(2, 9) == 4
    assert pdu.response_length(1, 2000) == 252
    for fc in (5, 6, 15, 16):
        assert pdu.response_length(fc, 7) == 5
    assert rtu.expected_length(3, 10) == 25
    raises(ValueError, pdu.response_length, 8, 1)


# -- RTU frames -----------------------------------------------------------------------------------


def case_rtu_check():
    f = bytearray(h("01 03 04 00 64 00 65 7B C7"))
    assert rtu.check(f, len(f), 1) == 6
    out = [0, 0]
    pdu.parse_registers(f, 1, 6, 3, 2, out)
    assert out == [100, 101]
    raises(ModbusError, rtu.check, f, len(f), 2)  # another unit
    f[3] ^= 1
    e = raises(CrcError, rtu.check, f, len(f), 1)
    assert isinstance(e, ModbusError)
    raises(ModbusError, rtu.check, f, 3, 1)
    raises(ModbusError, rtu.check, bytearray(300), 257, 1)
    raises(ModbusError, rtu.check, f, len(f) + 1, 1)
    assert rtu.check(h("01 83 02 C0 F1"), 5, 1) == 2


def case_rtu_frame_lengths():
    assert rtu.frame_length(b"\x01", 1) == 0
    assert rtu.frame_length(b"\x01\x03", 2) == 0
    assert rtu.frame_length(b"\x01\x03\x14", 3) == 25
    assert rtu.frame_length(b"\x01\x83", 2) == 5
    assert rtu.frame_length(b"\x01\x06", 2) == 8
    assert rtu.frame_length(b"\x01\x10", 2) == 8
    assert rtu.frame_length(b"\x01\x01\x05", 3) == 10
    raises(ModbusError, rtu.frame_length, b"\x01\x07", 2)
    assert rtuline.request_length(b"\x01\x03", 2) == 8
    assert rtuline.request_length(b"\x01\x10\x00\x01\x00\x02", 6) == 0
    assert rtuline.request_length(h("01 10 00 01 00 02 04"), 7) == 13
    raises(ModbusError, rtuline.request_length, b"\x01\x2b", 2)


def case_rtu_sync():
    assert rtu.sync(h("01 03 04"), 3, 1, 3) == 0
    assert rtu.sync(h("00 FF 01 03 04"), 5, 1, 3) == 2
    assert rtu.sync(h("01 04 01 83 02"), 5, 1, 3) == 2
    assert rtu.sync(h("55 AA 01"), 3, 1, 3) == 2  # a lone address byte may yet start it
    assert rtu.sync(h("55 AA"), 2, 1, 3) == 2
    assert rtu.sync(b"", 0, 1, 3) == 0


def case_rtu_timing():
    assert rtu.char_us(9600) == 1146
    assert rtu.t35_us(9600) == 4011  # 3.5 characters of 11 bits
    assert rtuline.t15_us(9600) == 1719
    assert rtu.t35_us(19200) == 2006
    assert rtu.t35_us(1200) == 32084
    assert rtu.t35_us(38400) == 1750  # fixed above 19200
    assert rtu.t35_us(115200) == 1750
    assert rtuline.t15_us(115200) == 750
    assert rtu.char_us(115200) == 96


# -- MBAP -----------------------------------------------------------------------------------------


def case_mbap_header_and_check():
    buf = bytearray(262)
    n = pdu.read_request(buf, 7, 3, 0, 5)
    assert tcp.header(buf, 0x1234, 1, n) == 12
    assert bytes(buf[:12]) == h("12 34 00 00 00 06 01 03 00 00 00 05")
    reply = bytearray(h("12 34 00 00 00 07 01 03 04 00 64 00 65"))
    assert tcp.frame_length(reply, 6) == 0
    assert tcp.frame_length(reply, 7) == 13
    assert tcp.tid(reply) == 0x1234
    assert tcp.check(reply, 13, 1) == 6
    raises(ModbusError, tcp.check, reply, 13, 2)
    raises(ModbusError, tcp.check, reply, 12, 1)
    raises(ModbusError, tcp.check, reply, 0, 1)
    reply[3] = 1
    raises(ModbusError, tcp.frame_length, reply, 7)
    raises(ModbusError, tcp.frame_length, h("00 01 00 00 00 02 01"), 7)
    raises(ModbusError, tcp.frame_length, h("00 01 00 00 01 00 01"), 7)
    assert tcp.frame_length(h("00 01 00 00 00 FE 01"), 7) == 260
    assert tcp.next_tid(0xFFFF) == 0
    tcp.set_tid(buf, 0xBEEF)
    assert tcp.tid(buf) == 0xBEEF
    raises(ValueError, tcp.header, buf, 0x10000, 1, 5)
    raises(ValueError, tcp.header, buf, 1, 1, 254)


# -- allocation -----------------------------------------------------------------------------------


def case_steady_state_codec_allocates_nothing():
    tx = bytearray(262)
    rx = bytearray(h("01 03 14") + bytes(20) + b"\x00\x00")
    c = rtu.crc16(rx, 0, 23)
    rx[23] = c & 0xFF
    rx[24] = c >> 8
    mbap = bytearray(h("00 01 00 00 00 17 01 03 14") + bytes(20))
    out = array("H", bytes(20))
    echo = h("06 00 02 10 92")

    def cycle():
        tx[0] = 1
        n = pdu.read_request(tx, 1, 3, 0, 10)
        rtu.seal(tx, 1 + n)
        plen = rtu.check(rx, 25, 1)
        pdu.parse_registers(rx, 1, plen, 3, 10, out)
        n = pdu.read_request(tx, 7, 3, 0, 10)
        tcp.header(tx, 1, 1, n)
        tcp.frame_length(mbap, 7)
        plen = tcp.check(mbap, 29, 1)
        pdu.parse_registers(mbap, 7, plen, 3, 10, out)
        n = pdu.write_single_request(tx, 1, 2, 4242)
        rtu.seal(tx, 1 + n)
        pdu.parse_write(echo, 0, 5, 6, 2, 4242)

    cycle()
    if not MPY:
        return
    import micropython

    micropython.heap_lock()
    try:
        cycle()
    finally:
        micropython.heap_unlock()


# -- the master's stepper against a scripted link (MicroPython only) ------------------------------


class FakeLink:
    # answers each request with the next scripted reply: bytes, None (silence), or a function
    # of the request
    gap_us = 0
    char_us = 0
    poll_ms = 1

    def __init__(self, is_rtu=True, gap_us=0):
        self.rtu = is_rtu
        self.gap_us = gap_us
        self.script = []
        self.sent = []
        self.inbox = b""
        self.resets = 0

    def ready(self):
        return True

    def write(self, buf, off, n):
        req = bytes(buf[off : off + n])
        self.sent.append((req, _now()))
        r = self.script.pop(0) if self.script else None
        if callable(r):
            r = r(req)
        if r:
            self.inbox += r
        return n

    def readinto(self, buf, n):
        k = min(n, len(self.inbox))
        for i in range(k):
            buf[i] = self.inbox[i]
        self.inbox = self.inbox[k:]
        return k

    def reset(self):
        self.resets += 1
        self.inbox = b""

    def close(self):
        pass


def _now():
    import time

    return time.ticks_us()


def run(m, *args, **kw):
    import time

    m.start(*args, **kw)
    for _ in range(5000):
        if m.poll():
            return
        time.sleep_ms(1)
    raise AssertionError("master never finished")


def rtu_reply(unit, pdu_bytes):
    b = bytearray(len(pdu_bytes) + 3)
    b[0] = unit
    b[1 : 1 + len(pdu_bytes)] = pdu_bytes
    rtu.seal(b, 1 + len(pdu_bytes))
    return bytes(b)


def mbap_reply(req, pdu_bytes, tid=None):
    t = tcp.tid(req) if tid is None else tid
    return struct.pack(">HHHB", t, 0, len(pdu_bytes) + 1, req[6]) + pdu_bytes


REGS3 = h("03 06 00 64 00 65 00 66")


def master(link, **kw):
    # the stepper with the host-only coroutines (tools/mbclient.py) on top
    from mbclient import Client

    kw.setdefault("timeout_ms", 40)
    return Client(link, **kw)


def case_master_rtu_read_and_write():
    if not MPY:
        return
    link = FakeLink()
    m = master(link)
    link.script = [rtu_reply(1, REGS3), rtu_reply(1, h("06 00 02 10 92"))]
    out = array("H", bytes(8))
    run(m, 1, 3, 0, 3, out=out, out_off=1)
    assert list(out) == [0, 100, 101, 102]
    assert link.sent[0][0] == h("01 03 00 00 00 03 05 CB")
    run(m, 1, 6, 2, 1, 4242)
    assert link.sent[1][0] == h("01 06 00 02 10 92 A4 67")
    assert m.requests == 2 and m.errors == 0 and m.retried == 0


def case_master_rtu_skips_noise_before_the_reply():
    if not MPY:
        return
    link = FakeLink()
    m = master(link)
    # noise, another unit's frame start, our function code but as a lone byte: all skipped
    link.script = [b"\x00\xff\x55\x02\x03" + rtu_reply(1, REGS3)]
    out = [0, 0, 0]
    run(m, 1, 3, 0, 3, out=out)
    assert out == [100, 101, 102]
    assert m.discarded == 5 and m.retried == 0


def case_master_rtu_crc_error_is_retried():
    if not MPY:
        return
    link = FakeLink()
    m = master(link)
    bad = bytearray(rtu_reply(1, REGS3))
    bad[-1] ^= 0xFF
    link.script = [bytes(bad), rtu_reply(1, REGS3)]
    out = [0, 0, 0]
    run(m, 1, 3, 0, 3, out=out)
    assert out == [100, 101, 102]
    assert m.crc_errors == 1 and m.retried == 1 and len(link.sent) == 2 and m.errors == 0


def case_master_rtu_timeout_then_reply():
    if not MPY:
        return
    link = FakeLink()
    m = master(link)
    link.script = [None, rtu_reply(1, REGS3)]
    out = [0, 0, 0]
    run(m, 1, 3, 0, 3, out=out)
    assert out == [100, 101, 102] and m.timeouts == 1 and m.retried == 1


def case_master_rtu_gives_up_after_retries_and_recovers():
    if not MPY:
        return
    link = FakeLink()
    m = master(link, retries=2)
    link.script = [None, None, None, rtu_reply(1, REGS3)]
    e = raises(ModbusTimeout, run, m, 1, 3, 0, 3, None, [0, 0, 0])
    assert isinstance(e, ModbusError)
    assert m.timeouts == 3 and m.errors == 1 and len(link.sent) == 3 and not m.busy()
    out = [0, 0, 0]
    run(m, 1, 3, 0, 3, out=out)
    assert out == [100, 101, 102] and m.errors == 1


def case_master_rtu_exception_is_not_retried():
    if not MPY:
        return
    link = FakeLink()
    m = master(link)
    link.script = [rtu_reply(1, h("83 02")), rtu_reply(1, REGS3)]
    e = raises(ModbusException, run, m, 1, 3, 98, 3, None, [0, 0, 0])
    assert e.code == 2 and e.name == "ILLEGAL DATA ADDRESS"
    assert len(link.sent) == 1 and m.exceptions == 1 and m.last_exception == 2 and m.errors == 1
    out = [0, 0, 0]
    run(m, 1, 3, 0, 3, out=out)
    assert out == [100, 101, 102]


def case_master_rtu_malformed_reply_is_retried():
    if not MPY:
        return
    link = FakeLink()
    m = master(link)
    # right CRC, wrong byte count (2 registers instead of 3): read as far as its own length
    link.script = [rtu_reply(1, h("03 04 00 64 00 65")), rtu_reply(1, REGS3)]
    out = [0, 0, 0]
    run(m, 1, 3, 0, 3, out=out)
    assert out == [100, 101, 102] and m.bad_frames == 1 and m.crc_errors == 0


def case_master_rtu_drains_stale_bytes_and_keeps_the_gap():
    if not MPY:
        return
    import time

    link = FakeLink(gap_us=20000)
    m = master(link, timeout_ms=200)
    link.script = [rtu_reply(1, REGS3), rtu_reply(1, REGS3)]
    run(m, 1, 3, 0, 3, out=[0, 0, 0])
    t_reply = time.ticks_us()
    link.inbox = rtu_reply(1, REGS3)  # a late duplicate
    run(m, 1, 3, 0, 3, out=[0, 0, 0])
    assert m.discarded == len(rtu_reply(1, REGS3))
    assert time.ticks_diff(link.sent[1][1], t_reply) >= 20000  # t3.5 of silence before it


def case_master_tcp_drops_a_late_reply_by_transaction_id():
    if not MPY:
        return
    link = FakeLink(is_rtu=False)
    m = master(link)
    first = []

    def late(req):
        # the reply to the first attempt comes in front of the reply to the second
        return mbap_reply(first[0], REGS3) + mbap_reply(req, REGS3)

    def silent(req):
        first.append(req)
        return None

    link.script = [silent, late]
    out = [0, 0, 0]
    run(m, 1, 3, 0, 3, out=out)
    assert out == [100, 101, 102]
    assert m.timeouts == 1 and m.discarded == 1
    assert tcp.tid(link.sent[0][0]) != tcp.tid(link.sent[1][0])
    assert link.sent[1][0][6:] == h("01 03 00 00 00 03")


def case_master_tcp_bad_header_drops_the_connection():
    if not MPY:
        return
    link = FakeLink(is_rtu=False)
    m = master(link)
    link.script = [lambda req: b"\x00\x01\x00\x05\x00\x07" + bytes(10), lambda req: mbap_reply(req, REGS3)]
    out = [0, 0, 0]
    run(m, 1, 3, 0, 3, out=out)
    assert out == [100, 101, 102] and link.resets == 1 and m.bad_frames == 1


def case_master_tcp_unit_and_exception():
    if not MPY:
        return
    link = FakeLink(is_rtu=False)
    m = master(link, retries=0)
    link.script = [lambda req: mbap_reply(req, h("86 04"))]
    e = raises(ModbusException, run, m, 9, 6, 2, 1, 7)
    assert e.code == 4 and link.sent[0][0][6] == 9
    link.script = [lambda req: mbap_reply(req, REGS3)[:6] + b"\x02" + REGS3]
    raises(ModbusError, run, m, 1, 3, 0, 3, None, [0, 0, 0])
    assert m.bad_frames == 1


def case_master_argument_checks():
    if not MPY:
        return
    m = master(FakeLink())
    raises(ValueError, m.start, 0, 3, 0, 1, None, [0])  # broadcast gets no reply: not a poll
    raises(ValueError, m.start, 248, 3, 0, 1, None, [0])
    raises(ValueError, m.start, 1, 3, 0, 3, None, [0, 0])  # out too short
    raises(ValueError, m.start, 1, 3, 0, 1)  # no out
    raises(ValueError, m.start, 1, 8, 0, 1, None, [0])
    assert not m.busy()
    m.start(1, 3, 0, 1, None, [0])
    raises(ModbusError, m.start, 1, 3, 0, 1, None, [0])
    m.abort()
    assert not m.busy()
    assert master(FakeLink(is_rtu=False)).start(0, 3, 0, 1, None, [0]) is None


def case_master_size_bounds_requests_and_replies():
    if not MPY:
        return
    # 16 bytes: a 3-register read fits (RTU reply 11 bytes, MBAP reply 15), a 4-register read
    # does over RTU (13) but not over TCP (17), and neither does a long write
    out = [0, 0, 0, 0]
    link = FakeLink()
    m = master(link, size=16)
    link.script = [rtu_reply(1, h("03 08 00 01 00 02 00 03 00 04"))]
    run(m, 1, 3, 0, 4, out=out)
    assert out == [1, 2, 3, 4]
    raises(ValueError, m.start, 1, 3, 0, 6, None, [0] * 6)  # reply 17
    raises(ValueError, m.start, 1, 16, 0, 4, [1, 2, 3, 4])  # request 19
    assert not m.busy()
    t = master(FakeLink(is_rtu=False), size=16)
    t.start(1, 3, 0, 3, None, out)
    t.abort()
    raises(ValueError, t.start, 1, 3, 0, 4, None, out)
    assert not t.busy() and m.requests == 1


def case_master_small_buffer_rtu_reply_too_long_is_noise():
    if not MPY:
        return
    # a byte count that cannot fit the buffer (so cannot answer our request): the bytes are
    # skipped as noise, the attempt times out and the retry gets the right reply
    link = FakeLink()
    m = master(link, size=16)
    link.script = [rtu_reply(1, bytes([3, 40]) + bytes(40)), rtu_reply(1, REGS3)]
    out = [0, 0, 0]
    run(m, 1, 3, 0, 3, out=out)
    assert out == [100, 101, 102]
    assert m.timeouts == 1 and m.retried == 1 and m.discarded > 0


def case_master_small_buffer_tcp_frame_too_long_drops_the_connection():
    if not MPY:
        return
    link = FakeLink(is_rtu=False)
    m = master(link, size=16)
    link.script = [lambda req: mbap_reply(req, bytes([3, 40]) + bytes(40)), lambda req: mbap_reply(req, REGS3)]
    out = [0, 0, 0]
    run(m, 1, 3, 0, 3, out=out)
    assert out == [100, 101, 102] and link.resets == 1 and m.bad_frames == 1


def case_master_rtu_settles_after_a_retry():
    if not MPY:
        return
    import time

    link = FakeLink()
    m = master(link, timeout_ms=40)
    link.script = [None, rtu_reply(1, REGS3), rtu_reply(1, h("03 06 00 01 00 02 00 03"))]
    run(m, 1, 3, 0, 3, out=[0, 0, 0])
    assert m.retried == 1
    # the device's answer to the first attempt turns up after all: it must not be taken for
    # the next request's reply
    link.inbox = rtu_reply(1, REGS3)
    t = time.ticks_us()
    out = [0, 0, 0]
    run(m, 1, 3, 0, 3, out=out)
    assert out == [1, 2, 3] and m.discarded == len(rtu_reply(1, REGS3))
    assert time.ticks_diff(link.sent[2][1], t) >= 40000  # a whole timeout of silence first
    # and then back to t3.5
    t = time.ticks_us()
    link.script = [rtu_reply(1, REGS3)]
    run(m, 1, 3, 0, 3, out=out)
    assert time.ticks_diff(link.sent[3][1], t) < 30000


def case_master_rtu_short_frame_with_trailing_noise():
    if not MPY:
        return
    link = FakeLink()
    m = master(link)
    # a well-formed but short reply (2 registers for 3) followed by noise that fills up the
    # expected length: the frame ends where its own byte count says
    short = rtu_reply(1, h("03 04 00 64 00 65"))
    link.script = [short + b"\x00\x00\x00\x00", rtu_reply(1, REGS3)]
    out = [0, 0, 0]
    run(m, 1, 3, 0, 3, out=out)
    assert out == [100, 101, 102] and m.bad_frames == 1 and m.crc_errors == 0


def case_master_coroutines_share_and_cancel():
    if not MPY:
        return
    import asyncio

    link = FakeLink()
    m = master(link, timeout_ms=60)

    def answer(req):
        if req[1] == 3:
            return rtu_reply(1, REGS3)
        if req[1] == 1:
            return rtu_reply(1, h("01 01 06"))
        return rtu_reply(1, req[1:6])  # the echo of a write

    async def main():
        link.script = [answer] * 8
        # two tasks on one master: the second waits for the first's transaction
        a, b = await asyncio.gather(m.read_holding(1, 0, 3), m.write_single(1, 2, 7))
        assert a == (100, 101, 102) and b is None
        out = array("H", bytes(6))
        assert await m.read_holding(1, 0, 3, out) is out and list(out) == [100, 101, 102]
        assert await m.read_coils(1, 0, 3) == (0, 1, 1)
        # a caller's own timeout cancels the transaction; the master is free again and
        # settles before the next request
        link.script = [None]
        try:
            await asyncio.wait_for_ms(m.read_holding(1, 0, 3), 20)
            raise AssertionError("not cancelled")
        except asyncio.TimeoutError:
            pass
        assert not m.busy()
        link.script = [answer]
        assert await m.read_holding(1, 0, 3) == (100, 101, 102)

    asyncio.run(main())
