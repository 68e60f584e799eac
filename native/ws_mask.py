# WebSocket masking (RFC 6455 5.3), the one viper function of the ws layer.
from compat import MICROPYTHON

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

if not MICROPYTHON:
    from compat import micropython, ptr8


# Unmask (or mask) n bytes of buf in place, starting at off, with the 4-byte key whose phase
# is given by pos (the payload offset of buf[off] within its frame). Viper: ~30x faster than
# plain Python and allocation-free; under CPython the same code as plain Python.
@micropython.viper
def xor_mask(buf: ptr8, off: int, n: int, key: ptr8, pos: int):
    i = off
    end = off + n
    p = pos
    while i < end:
        buf[i] = buf[i] ^ key[p & 3]
        i += 1
        p += 1
