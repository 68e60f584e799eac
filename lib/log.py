# Tagged one-line log records to the console plus a RAM ring of the recent ones for
# diagnostics. The ring is one buffer allocated at import (32 lines), resized once at start-up
# by the board config (log.ring bytes, ring()): logging never grows the heap.
# Levels: 0 error, 1 warning, 2 info, 3 debug.
import os
import time

from compat import const, ticks_ms

_LINES = const(32)
_WIDTH = const(120)
_LEVELS = "EWID"

level = 2
_ring = bytearray(_LINES * _WIDTH)
_lens = bytearray(_LINES)
_n = _LINES  # lines in the ring
_pos = 0
_file = None  # the optional flash file (to_file)


def log(lvl, tag, msg, *args):
    global _pos
    if lvl > level:
        return
    if args:
        msg = msg % args
    line = "[%s] %s: %s" % (tag, _LEVELS[lvl], msg)
    print(line)
    if _file is not None:
        _file.line(line)
    b = line.encode()
    n = len(b)
    if n > _WIDTH:
        n = _WIDTH
        while n and (b[n] & 0xC0) == 0x80:  # cut on a character boundary
            n -= 1
    off = _pos * _WIDTH
    _ring[off : off + n] = b[:n] if n < len(b) else b
    _lens[_pos] = n
    _pos = (_pos + 1) % _n


def ring(nbytes):
    """Resize the ring to nbytes (whole lines of 120 bytes, at least one), emptying it; the
    gateway calls it once at start-up, before the long-lived buffers are allocated."""
    global _ring, _lens, _n, _pos
    _ring = _lens = None  # the old ring is free before the new one is allocated
    _n = max(1, nbytes // _WIDTH)
    _ring = bytearray(_n * _WIDTH)
    _lens = bytearray(_n)
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
    for i in range(_n):
        j = (_pos + i) % _n
        n = _lens[j]
        if n:
            out.append(bytes(_ring[j * _WIDTH : j * _WIDTH + n]).decode())
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
