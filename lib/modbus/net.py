# RTU framing over TCP and Modbus TCP: modbus/transport.py says what a link does.
import errno
import select
import socket

from modbus.transport import Link

# (no _ROOM: with one class fewer, 9 globals leave the 10-slot table its free slot)
_ANCHOR = ...  # the constant table is not empty (compat.py, "A module's constant table")


class Tcp(Link):
    # Modbus TCP (MBAP).
    rtu = False

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


class RtuOverTcp(Tcp):
    # RTU frames on a TCP stream (serial-to-Ethernet converters, the host simulator). A
    # subclass of Tcp rather than both of a shared base: one type fewer resident.
    rtu = True
