"""lib/gateway/sntp.py: the SNTP codec under CPython against packets built here with struct (RFC
4330 layout), and the asyncio exchange under MicroPython against a CPython SNTP responder on
127.0.0.1: the clock is set from the answer, the event loop keeps running while the answer is
awaited, a silent server times out without blocking, and the TimeSync round uses it."""

import socket
import struct
import threading
import time

import pytest

from support import mpyrun
from gateway import sntp

NTP_1970 = 2208988800


def answer(req, secs, mode=4, stratum=2, li=0, echo=True):
    """A server's answer to req (RFC 4330 section 4): originate = the request's transmit."""
    origin = req[40:48] if echo else b"\x00" * 8
    head = bytes([(li << 6) | (4 << 3) | mode, stratum, 6, 0xEC]) + b"\x00" * 8 + b"GPS\x00"
    return head + struct.pack("!II", secs + NTP_1970, 0) + origin + struct.pack("!II", secs + NTP_1970, 1) * 2


def test_request_layout():
    buf = bytearray(48)
    sntp.request(buf, 0x12345678)
    assert buf[0] == 0x23 and buf[0] & 7 == 3 and (buf[0] >> 3) & 7 == 4
    assert bytes(buf[1:40]) == b"\x00" * 39 and struct.unpack("!II", bytes(buf[40:48])) == (0, 0x12345678)


def test_parse_answer_and_refusals():
    buf = bytearray(48)
    sntp.request(buf, 99)
    t = 1_780_000_000
    assert sntp.parse(bytearray(answer(bytes(buf), t)), 48, 99) == t
    for bad, why in ((answer(bytes(buf), t, mode=3), "mode"), (answer(bytes(buf), t, stratum=0), "stratum"),
                     (answer(bytes(buf), t, li=3), "synchronised"), (answer(bytes(buf), t, echo=False), "another"),
                     (answer(bytes(buf), t)[:47], "short")):
        with pytest.raises(sntp.SntpError, match=why):
            sntp.parse(bytearray(bad.ljust(48, b"\x00")), len(bad), 99)


class Responder:
    """A CPython SNTP server on 127.0.0.1 that answers after `delay` s, or never when silent."""

    def __init__(self, secs, delay=0.0, silent=False):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(0.2)
        self.port = self.s.getsockname()[1]
        self.secs, self.delay, self.silent = secs, delay, silent
        self.asked = 0
        self.stop = False
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        while not self.stop:
            try:
                req, peer = self.s.recvfrom(512)
            except socket.timeout:
                continue
            self.asked += 1
            if self.silent:
                continue
            time.sleep(self.delay)
            self.s.sendto(b"\x24junk", peer)  # a stray datagram first: ignored
            self.s.sendto(answer(req, self.secs), peer)

    def close(self):
        self.stop = True
        self.t.join()
        self.s.close()


CODE = r'''
import asyncio, time
from gateway.sntp import Sntp
from gateway.timesync import TimeSync
from compat import ticks_ms, ticks_diff

class Rtc:
    def __init__(self):
        self.set = None
    def datetime(self, t):
        self.set = t

ticks = [0]
async def ticker():
    while True:
        ticks[0] += 1
        await asyncio.sleep_ms(10)

async def main():
    tk = asyncio.create_task(ticker())
    rtc = Rtc()
    ts = TimeSync(["127.0.0.1"], 3, sntp=Sntp(port=%d, timeout_ms=%d), rtc=rtc)
    t0 = ticks_ms()
    d = await ts.astep()
    print("SYNCED", ts.synced(), d, rtc.set, ticks_diff(ticks_ms(), t0), ticks[0], ts.last_error)
    tk.cancel()

asyncio.run(main())
'''


def _run(tmp_path, port, timeout_ms):
    r = mpyrun.run_code(CODE % (port, timeout_ms), tmp_path).check()
    line = [s for s in r.stdout.splitlines() if s.startswith("SYNCED")][0]
    return line


def test_exchange_sets_the_clock_without_blocking_the_loop(tmp_path):
    t = 1_780_000_000  # 2026-05-28 20:26:40 UTC, a Thursday
    srv = Responder(t, delay=0.3)
    try:
        line = _run(tmp_path, srv.port, 2000)
    finally:
        srv.close()
    assert line.startswith("SYNCED True 21600 (2026, 5, 28, 4, 20, 26, 40, 0)"), line
    ms, ticks = int(line.split()[-3]), int(line.split()[-2])
    # the answer took >= 300 ms; a 10 ms ticker ran all along (a blocking recv would give 0-1)
    assert ms >= 300 and ticks >= 10, line


def test_silent_server_times_out_on_the_loop(tmp_path):
    srv = Responder(0, silent=True)
    try:
        line = _run(tmp_path, srv.port, 400)
    finally:
        srv.close()
    assert line.startswith("SYNCED False 1 None"), line
    f = line.split()
    # 400 ms waited, the 10 ms ticker ran meanwhile
    assert "OSError(110" in line and int(f[4]) >= 400 and int(f[5]) >= 20, line
    assert srv.asked == 1
