# The few shims between the ESP32, the MicroPython unix port and CPython.
# Protocol cores import from here so that they also run under CPython (property tests).
import sys

MICROPYTHON = sys.implementation.name == "micropython"


def viper(src, native=True):
    # The functions that src (a module's source text) defines, in a dict; g["VIPER"] tells
    # whether they are machine code. Viper is compiled here, at import, so that plain
    # mpy-cross (no -march) accepts every file. It fails on a firmware without the native
    # emitter, and on a literal beyond the small-int range (2**30 on the ESP32): host_tests
    # compile these sources with mpy-cross -march=xtensawin so that the second never reaches
    # a device unnoticed. Then, under CPython and with native=False, the same source runs as
    # bytecode; src may name its constants with const() either way.
    if native and MICROPYTHON:
        try:
            import micropython

            g = {"micropython": micropython, "const": micropython.const}
            exec(src, g)
            g["VIPER"] = True
            return g
        except Exception:
            pass
    # MicroPython's compiler reads the decorator by name, whatever object it names: remove it
    src = src.replace("@micropython.viper\n", "")
    g = {"const": lambda x: x, "ptr8": _same, "ptr32": _same}
    exec(src, g)
    g["VIPER"] = False
    return g


def _same(x):
    # ptr8(obj)/ptr32(obj) in a viper source, run as bytecode: index the object itself
    return x


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

    # Viper makes xor_mask ~30x faster than plain Python and allocation-free.
    _g = viper("""
@micropython.viper
def xor_mask(buf: ptr8, off: int, n: int, key: ptr8, pos: int):
    i = off
    end = off + n
    p = pos
    while i < end:
        buf[i] = buf[i] ^ key[p & 3]
        i += 1
        p += 1
""")
    if _g["VIPER"]:
        xor_mask = _g["xor_mask"]
    del _g  # no native emitter: the plain version stays

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
