# SNTP (RFC 4330) as a sans-IO packet codec plus a small asyncio UDP exchange, so that the time
# sync never blocks the event loop while it waits for a server: ntptime.settime() sits in a
# blocking recv for up to its timeout (1 s per server, several servers, every retry), and SHIP
# timers, the Modbus bridge and the watchdog's feed all stall meanwhile.
#
# What still blocks: the server's name lookup (getaddrinfo: lwIP's resolver on the ESP32, the C
# library's on the unix port), which MicroPython cannot run asynchronously. It is done once per
# server and its address kept; it is looked up again only after that server failed
# RESOLVE_AFTER times in a row (a pool name whose host went away). An address needs no lookup
# at all: ntp.servers may list IPs. mDNS names (.local) are not resolved by either resolver.
#
# Codec: request(buf, nonce) fills a 48-byte client packet (LI 0, version 4, mode 3) whose
# transmit timestamp is the nonce; parse(buf, n, nonce) checks the server's answer (mode 4, a
# stratum 1..15, not "unsynchronised", our nonce echoed as its originate timestamp, a non-zero
# transmit time) and returns its transmit time in seconds since the local time epoch.
import asyncio
import time

from compat import const, ticks_diff, ticks_ms

PACKET = const(48)
PORT = const(123)
RESOLVE_AFTER = const(3)
_NTP_1970 = 2208988800  # seconds from 1900 (NTP) to 1970
# the unix port and the ESP32 since MicroPython 1.22 count from 1970; older ports from 2000
EPOCH_DELTA = _NTP_1970 + (946684800 if time.gmtime(0)[0] == 2000 else 0)


class SntpError(ValueError):
    pass


def request(buf, nonce):
    """Fill buf (48 bytes) with a client request carrying nonce (0..2**32-1) as its transmit
    timestamp's fraction, which the server echoes back."""
    for i in range(PACKET):
        buf[i] = 0
    buf[0] = 0x23  # LI 0, VN 4, mode 3 (client)
    buf[44] = (nonce >> 24) & 0xFF
    buf[45] = (nonce >> 16) & 0xFF
    buf[46] = (nonce >> 8) & 0xFF
    buf[47] = nonce & 0xFF


def _u32(b, i):
    return (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]


def parse(buf, n, nonce):
    """The server's transmit time from its answer, in whole seconds since the time epoch."""
    if n < PACKET:
        raise SntpError("short answer (%d bytes)" % n)
    if buf[0] & 7 != 4:
        raise SntpError("not a server answer (mode %d)" % (buf[0] & 7))
    if buf[0] >> 6 == 3:
        raise SntpError("server not synchronised")
    st = buf[1]
    if st == 0 or st > 15:
        raise SntpError("kiss-o'-death or bad stratum %d" % st)
    if _u32(buf, 24) != 0 or _u32(buf, 28) != nonce:
        raise SntpError("answer to another request")
    secs = _u32(buf, 40)
    if secs == 0:
        raise SntpError("no transmit time")
    return secs - EPOCH_DELTA


def set_rtc(rtc, t):
    """Set the RTC (machine.RTC) to t seconds since the epoch, as ntptime.settime() does."""
    tm = time.gmtime(t)
    rtc.datetime((tm[0], tm[1], tm[2], tm[6] + 1, tm[3], tm[4], tm[5], 0))


class Sntp:
    """The asyncio side: one 48-byte buffer, a resolved address per server, a non-blocking UDP
    socket per exchange. query() returns the server's time or raises (OSError, SntpError)."""

    def __init__(self, port=PORT, timeout_ms=1000, poll_ms=20):
        self.port = port
        self.timeout_ms = timeout_ms
        self.poll_ms = poll_ms
        self.buf = bytearray(PACKET)
        self._addr = {}  # server -> [sockaddr, failures in a row]

    def address(self, server):
        a = self._addr.get(server)
        if a is None or a[1] >= RESOLVE_AFTER:
            import socket

            # the one blocking step (see the top of this file)
            a = [socket.getaddrinfo(server, self.port, 0, socket.SOCK_DGRAM)[0][-1], 0]
            self._addr[server] = a
        return a

    async def query(self, server):
        import socket

        a = self.address(server)
        nonce = (ticks_ms() * 2654435761) & 0xFFFFFFFF or 1
        buf = self.buf
        request(buf, nonce)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setblocking(False)
            s.sendto(buf, a[0])
            t0 = ticks_ms()
            while True:
                try:
                    n = s.recv_into(buf) if hasattr(s, "recv_into") else _copy(buf, s.recv(PACKET + 16))
                except OSError as e:
                    if e.args[0] not in (11, 35, 115):  # EAGAIN, EWOULDBLOCK (BSD), EINPROGRESS
                        raise
                    if ticks_diff(ticks_ms(), t0) >= self.timeout_ms:
                        raise OSError(110)  # ETIMEDOUT, as ntptime says it
                    await asyncio.sleep_ms(self.poll_ms)
                    continue
                try:
                    t = parse(buf, n, nonce)
                except SntpError:
                    continue  # a stray or stale datagram: wait on for ours
                a[1] = 0
                return t
        except BaseException:
            a[1] += 1
            raise
        finally:
            s.close()


def _copy(buf, data):
    n = len(data) if len(data) < PACKET else PACKET
    buf[:n] = data[:n]
    return len(data)
