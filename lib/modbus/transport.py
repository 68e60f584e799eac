# Links for the Modbus master: RTU on a machine.UART (the ESP32, optional RS-485 direction
# pin), RTU on a tty (the host: a pty pair in tests, or a USB RS-485 adapter), RTU framing over
# TCP, and Modbus TCP.
#
# They are non-blocking and synchronous, and the master polls them from its task between
# asyncio.sleep_ms() calls. That is deliberate: awaiting an asyncio stream costs ~190 bytes per
# wait on the unix port (a coroutine plus an I/O-queue entry and a poll registration), while
# sleep_ms() is a preallocated singleton, so a poll cycle allocates nothing; and the master can
# time the RTU line silences itself.
#
# Interface the master uses:
#   rtu      True: address + PDU + CRC frames; False: MBAP frames
#   gap_us   silence the line needs before a request (t3.5 on serial lines, 0 on TCP)
#   char_us  time on the wire per character (0 when there is no baud rate)
#   poll_ms  receive poll interval
#   ready()  True once the link can carry a request (TCP: advances a non-blocking connect)
#   write(buf, off, n) -> bytes taken (0 when the link cannot take any now)
#   readinto(buf, n) -> bytes read into buf[0:], 0 when none are waiting; OSError: link lost
#   reset()  drop the link after an error (TCP reconnects on the next ready())
#   close()
import errno
import select
import socket

from compat import const
from modbus.rtu import char_us, t35_us

_ANCHOR = ...  # the constant table is not empty (compat.py, "A module's constant table")

# Linux termios values the unix port's termios module does not export.
_VTIME = const(5)
_VMIN = const(6)
_CREAD = const(0o200)
_CLOCAL = const(0o4000)
_LINUX_BAUD = {1200: 0o11, 2400: 0o13, 4800: 0o14, 9600: 0o15, 19200: 0o16, 38400: 0o17}


class _Link:
    rtu = True
    gap_us = 0
    char_us = 0
    poll_ms = 1

    def __init__(self):
        self._buf = None
        self._mv = None
        self._off = -1
        self._n = -1
        self._view = None

    def _slice(self, buf, off, n):
        # machine.UART.write takes one buffer argument (no offset or length), and a fresh
        # memoryview slice allocates; polls send the same frame shape each time, so the last
        # slice is kept.
        if buf is not self._buf:
            self._buf = buf
            self._mv = memoryview(buf)
            self._n = -1
        if off != self._off or n != self._n:
            self._view = self._mv[off : off + n]
            self._off = off
            self._n = n
        return self._view

    def _serial(self, baudrate):
        # a serial line: t3.5 of silence before each request, receive polls every two characters
        self.char_us = char_us(baudrate)
        self.gap_us = t35_us(baudrate)
        self.poll_ms = max(1, 2 * self.char_us // 1000)

    def ready(self):
        return True

    def reset(self):
        pass

    def close(self):
        pass


class Uart(_Link):
    # `uart` is built from the board config, e.g.
    #   UART(2, baudrate=9600, tx=17, rx=16, rxbuf=512, timeout=0, timeout_char=0)
    # (rxbuf above the 256 default so that a 255-byte reply fits; timeout=0 so that reads never
    # block). `de` is the transceiver's DE (and /RE) pin when it has no automatic direction
    # control: high while sending, low again once the last stop bit is out. flush() blocks for
    # that (the frame's time on the wire, ~9 ms for a read request at 9600 baud): releasing
    # the bus late would clip the start of the reply, and sleep_ms() is too coarse for it.
    # Not testable on the host (no machine.UART in the unix port).
    def __init__(self, uart, baudrate, de=None):
        super().__init__()
        self._u = uart
        self._de = de
        if de is not None:
            de.value(0)
        self._serial(baudrate)

    def write(self, buf, off, n):
        u = self._u
        de = self._de
        v = self._slice(buf, off, n)
        if de is None:
            return u.write(v) or 0
        de.value(1)
        k = u.write(v) or 0
        u.flush()
        de.value(0)
        return k

    def readinto(self, buf, n):
        u = self._u
        if not u.any():
            return 0
        return u.readinto(buf, n) or 0


class Serial(_Link):
    # A tty on the unix port. The port has no os-level open/read and no fcntl, so the fd cannot
    # be made non-blocking; raw mode with VMIN=0 and VTIME=0 makes the tty itself return at
    # once with what it holds (0 bytes when nothing), which is the non-blocking read we need.
    # The builtin open() gives a FileIO with fileno(), readinto(buf, n) and write().
    def __init__(self, path, baudrate=9600):
        super().__init__()
        import termios

        f = open(path, "r+b")
        fd = f.fileno()
        termios.setraw(fd)
        a = termios.tcgetattr(fd)
        a[2] |= _CREAD | _CLOCAL  # no modem-control lines on an RS-485 adapter
        cc = a[6]
        cc[_VMIN] = 0
        cc[_VTIME] = 0
        speed = getattr(termios, "B%d" % baudrate, None) or _LINUX_BAUD.get(baudrate)
        if speed:
            a[4] = speed
            a[5] = speed
        termios.tcsetattr(fd, termios.TCSANOW, a)
        self._f = f
        self._serial(baudrate)

    def write(self, buf, off, n):
        return self._f.write(self._slice(buf, off, n)) or 0

    def readinto(self, buf, n):
        return self._f.readinto(buf, n) or 0

    def close(self):
        f = self._f
        self._f = None
        if f is not None:
            f.close()


class _Tcp(_Link):
    def __init__(self, host, port):
        super().__init__()
        self._addr = (host, port)
        self._ai = None
        self._s = None
        self._poll = None

    def ready(self):
        s = self._s
        if s is None:
            if self._ai is None:
                self._ai = socket.getaddrinfo(self._addr[0], self._addr[1], 0, socket.SOCK_STREAM)[0]
            ai = self._ai
            s = socket.socket(ai[0], socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(ai[-1])
            except OSError as e:
                if e.errno != errno.EINPROGRESS:
                    s.close()
                    raise
            self._s = s
            self._poll = select.poll()
            self._poll.register(s, select.POLLOUT)
        p = self._poll
        if p is None:
            return True
        ev = p.poll(0)
        if not ev:
            return False
        self._poll = None
        if ev[0][1] & (select.POLLERR | select.POLLHUP):
            self.reset()
            raise OSError(errno.ECONNREFUSED)
        return True

    def write(self, buf, off, n):
        return self._s.write(self._slice(buf, off, n)) or 0

    def readinto(self, buf, n):
        k = self._s.readinto(buf, n)
        if k is None:  # EAGAIN
            return 0
        if k == 0:
            self.reset()
            raise OSError(errno.ECONNRESET)
        return k

    def reset(self):
        s = self._s
        self._s = None
        self._poll = None
        if s is not None:
            s.close()

    def close(self):
        self.reset()


class RtuOverTcp(_Tcp):
    # RTU frames on a TCP stream (serial-to-Ethernet converters, the host simulator).
    rtu = True


class Tcp(_Tcp):
    # Modbus TCP (MBAP).
    rtu = False
