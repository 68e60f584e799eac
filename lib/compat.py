# The few shims between the ESP32, the MicroPython unix port and CPython.
# Protocol cores import from here so that they also run under CPython (property tests).
import sys

MICROPYTHON = sys.implementation.name == "micropython"


# Unmask (or mask) n bytes of buf in place, starting at off, with the 4-byte key whose phase
# is given by pos (the payload offset of buf[off] within its frame). This plain version serves
# CPython and a firmware built without the native emitter.
def xor_mask(buf, off, n, key, pos):
    for i in range(off, off + n):
        buf[i] ^= key[(pos + i - off) & 3]


if MICROPYTHON:
    from micropython import const
    import micropython
    import time

    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add

    # Viper makes xor_mask ~30x faster than plain Python and allocation-free; it is compiled
    # at import from source so that a plain mpy-cross (no -march) accepts this file.
    _XOR_SRC = """
@micropython.viper
def xor_mask(buf: ptr8, off: int, n: int, key: ptr8, pos: int):
    i = off
    end = off + n
    p = pos
    while i < end:
        buf[i] = buf[i] ^ key[p & 3]
        i += 1
        p += 1
"""
    try:
        _g = {"micropython": micropython}
        exec(_XOR_SRC, _g)
        xor_mask = _g["xor_mask"]
        del _g
    except Exception:
        pass  # no native emitter: the plain version stays

else:  # CPython: property tests of the sans-IO cores

    def const(x):
        return x

    import time as _time

    def ticks_ms():
        return int(_time.monotonic() * 1000) & 0x3FFFFFFF

    def ticks_diff(a, b):
        d = (a - b) & 0x3FFFFFFF
        return d - 0x40000000 if d & 0x20000000 else d

    def ticks_add(a, d):
        return (a + d) & 0x3FFFFFFF


def sockaddr_host(addr):
    # The unix port gives a raw sockaddr bytearray, lwIP and CPython give (host, port).
    if isinstance(addr, tuple):
        return addr[0], addr[1]
    import socket

    fam, ip, port = socket.sockaddr(addr)[:3]
    if isinstance(ip, (bytes, bytearray)) and len(ip) == 4:
        ip = "%d.%d.%d.%d" % (ip[0], ip[1], ip[2], ip[3])
    return ip, port


def hexlify(b):
    import binascii

    return binascii.hexlify(b).decode()
