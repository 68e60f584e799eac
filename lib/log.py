# Tagged one-line log records to the console plus a RAM ring of the recent ones for
# diagnostics. The ring is one buffer allocated at import: logging never grows the heap.
# Levels: 0 error, 1 warning, 2 info, 3 debug.
from compat import const

_LINES = const(32)
_WIDTH = const(120)
_LEVELS = "EWID"

level = 2
_ring = bytearray(_LINES * _WIDTH)
_lens = bytearray(_LINES)
_pos = 0


def log(lvl, tag, msg, *args):
    global _pos
    if lvl > level:
        return
    if args:
        msg = msg % args
    line = "[%s] %s: %s" % (tag, _LEVELS[lvl], msg)
    print(line)
    b = line.encode()
    n = len(b)
    if n > _WIDTH:
        n = _WIDTH
        while n and (b[n] & 0xC0) == 0x80:  # cut on a character boundary
            n -= 1
    off = _pos * _WIDTH
    _ring[off : off + n] = b[:n] if n < len(b) else b
    _lens[_pos] = n
    _pos = (_pos + 1) % _LINES


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
    for i in range(_LINES):
        j = (_pos + i) % _LINES
        n = _lens[j]
        if n:
            out.append(bytes(_ring[j * _WIDTH : j * _WIDTH + n]).decode())
    return out
