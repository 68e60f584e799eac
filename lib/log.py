# Tagged one-line log records to the console plus a small RAM ring for diagnostics.
# Levels: 0 error, 1 warning, 2 info, 3 debug.
from compat import const

_RING = const(32)
_LEVELS = "EWID"

level = 2
_ring = [None] * _RING
_pos = 0


def log(lvl, tag, msg, *args):
    global _pos
    if lvl > level:
        return
    if args:
        msg = msg % args
    line = "[%s] %s: %s" % (tag, _LEVELS[lvl], msg)
    _ring[_pos] = line
    _pos = (_pos + 1) % _RING
    print(line)


def error(tag, msg, *args):
    log(0, tag, msg, *args)


def warn(tag, msg, *args):
    log(1, tag, msg, *args)


def info(tag, msg, *args):
    log(2, tag, msg, *args)


def debug(tag, msg, *args):
    log(3, tag, msg, *args)


def recent():
    """The ring's lines, oldest first."""
    out = []
    for i in range(_RING):
        line = _ring[(_pos + i) % _RING]
        if line is not None:
            out.append(line)
    return out
