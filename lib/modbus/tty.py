# RTU on a tty of the unix port (a pty pair in tests, a USB RS-485 adapter): modbus/transport.py
# says what a link does.
from compat import const
from modbus.transport import Link

_ANCHOR = ...  # the constant table is not empty (compat.py, "A module's constant table")

# Linux termios values the unix port's termios module does not export.
_VTIME = const(5)
_VMIN = const(6)
_CREAD = const(0o200)
_CLOCAL = const(0o4000)
_LINUX_BAUD = {1200: 0o11, 2400: 0o13, 4800: 0o14, 9600: 0o15, 19200: 0o16, 38400: 0o17}


class Serial(Link):
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
