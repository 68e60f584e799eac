# Tagged one-line log records to the console plus a RAM ring of the recent ones for
# diagnostics. The ring is one buffer of whole lines packed end to end, each ending in a NUL, so
# that it holds as many lines as their lengths allow (their bytes with the NULs stay below the
# ring's: a NUL before the oldest line marks where it starts). The gateway sizes it once at
# start-up from the board config (log.ring bytes, ring()), before the long-lived buffers;
# logging never grows the heap after that. Levels: 0 error, 1 warning, 2 info, 3 debug.
import os
import time

from compat import MICROPYTHON, const

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

_WIDTH = const(120)  # longest line the ring keeps (longer ones are cut)
RING = const(2048)  # default ring bytes: ~30 lines of the 60-70 B the gateway's lines take
_LEVELS = const("EWID")

level = 2
_ring = None  # made by ring(), at the latest by the first record
_pos = 0  # where the next line goes; the oldest line starts at the first non-NUL from here
_file = None  # the optional flash file (to_file)


def log(lvl, tag, msg, *args):
    global _pos
    if lvl > level:
        return
    if args:
        msg = msg % args
    # the record is its head and the message, never one string: a long message (a peer's use
    # cases at a session's start) would otherwise be copied three more times at once (the
    # line, its UTF-8 bytes, their cut), blocks of a few hundred bytes each
    head = "[%s] %s: " % (tag, _LEVELS[lvl])
    print(head, msg, sep="")
    if _file is not None:
        _file.line(head + msg)
    r = _ring
    if r is None:
        ring()
        r = _ring
    size = len(r)
    h = _utf8(head)
    m = _utf8(msg)
    nh = len(h)
    n = nh + len(m)
    top = size - 2 if size < _WIDTH + 2 else _WIDTH  # and its NUL, and the one free byte
    if n > top:
        n = top
        while n > nh and (m[n - nh] & 0xC0) == 0x80:  # cut on a character boundary
            n -= 1
    p = _put(r, _pos, h, n if n < nh else nh)
    if n > nh:
        p = _put(r, p, m, n - nh)
    r[p] = 0
    p = (p + 1) % size
    _pos = p
    # what is left of the oldest line after the one just written overlapped it goes
    while r[p]:
        r[p] = 0
        p = (p + 1) % size


# a str's UTF-8 bytes: on MicroPython a view of the str itself, no copy
_utf8 = memoryview if MICROPYTHON else str.encode


def _put(r, p, b, n):
    # b[:n] into the ring at p, wrapping at its end; where the next byte goes
    size = len(r)
    k = size - p
    if n <= k:
        r[p : p + n] = b[:n]
    else:
        r[p:] = b[:k]
        r[: n - k] = b[k:n]
    return (p + n) % size


def ring(nbytes=None):
    """Size the ring to nbytes (None: RING), emptying it; the gateway calls it once at
    start-up, before the long-lived buffers are allocated."""
    global _ring, _pos
    _ring = None  # the old ring is free before the new one is allocated
    _ring = bytearray(max(2, nbytes or RING))
    _pos = 0


def error(tag, msg, *args):
    log(0, tag, msg, *args)


def warn(tag, msg, *args):
    log(1, tag, msg, *args)


def info(tag, msg, *args):
    log(2, tag, msg, *args)


def debug(tag, msg, *args):
    log(3, tag, msg, *args)


def recent():
    """The ring's lines, oldest first (lines longer than the ring's width are cut)."""
    out = []
    r = _ring
    if r is None:
        return out
    size = len(r)
    p = _pos
    a = -1  # start of the line being read
    for k in range(size):
        j = (p + k) % size
        if r[j]:
            if a < 0:
                a = j
        elif a >= 0:
            out.append((bytes(r[a:j]) if a < j else bytes(r[a:]) + bytes(r[:j])).decode())
            a = -1
    return out


class Rotating:
    """A text file on flash that never grows past two files of max_bytes: when path is full it
    becomes path + ".1" (the older one is dropped). Each line is flushed, so what a crash or a
    watchdog reset leaves behind is readable after the restart."""

    def __init__(self, path, max_bytes, stamp=None):
        self.path = path
        self.max = max_bytes
        self.stamp = stamp  # callable giving a prefix (time) per line, or None
        try:
            self.size = os.stat(path)[6]
        except OSError:
            self.size = 0
        self._f = None

    def write(self, text):
        if self.size + len(text) > self.max and self.size:
            self._rotate()
        f = self._f
        if f is None:
            f = self._f = open(self.path, "a")
        f.write(text)
        f.flush()
        self.size += len(text)

    def line(self, line):
        try:
            self.write((self.stamp() + " " + line + "\n") if self.stamp else line + "\n")
        except OSError:
            pass  # a full or failing flash must not take the logger down

    def _rotate(self):
        self.close()
        try:
            os.remove(self.path + ".1")
        except OSError:
            pass
        try:
            os.rename(self.path, self.path + ".1")
        except OSError:
            os.remove(self.path)
        self.size = 0

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def read(self):
        """Both files' text, oldest first."""
        out = []
        for p in (self.path + ".1", self.path):
            try:
                with open(p) as f:
                    out.append(f.read())
            except OSError:
                pass
        return "".join(out)


def stamp():
    """UTC time once the clock is set, else seconds since boot with a + (flash lines outlive
    the boot they were written in)."""
    t = time.gmtime()
    if t[0] >= 2024:
        return "%04d-%02d-%02dT%02d:%02d:%02dZ" % t[:6]
    from compat import ticks_ms  # until the clock is set only: not a global of this module

    return "+%d.%03d" % divmod(ticks_ms(), 1000)


def to_file(path, kb):
    """Also write records to a rotating flash file (two files of kb KB); kb 0 stops it."""
    global _file
    if _file is not None:
        _file.close()
        _file = None
    if kb:
        _file = Rotating(path, kb * 1024, stamp)
    return _file
