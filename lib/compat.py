# The few shims between the ESP32, the MicroPython unix port and CPython.
# Protocol cores import from here so that they also run under CPython (property tests).
# The viper modules (native/: ws_mask, utf8, eejson_lexer, eejson_escape) take the shim below
# under CPython; on MicroPython they are machine code.
import sys

MICROPYTHON = sys.implementation.name == "micropython"


if not MICROPYTHON:
    # CPython: what a viper module (native/) needs from MicroPython, as no-ops, so that the same
    # code runs as plain Python (property tests). A module with viper functions imports these
    # under CPython only; MicroPython's compiler reads @micropython.viper and ptr8(x) by name.
    class micropython:
        @staticmethod
        def viper(f):
            return f

        native = viper

    def ptr8(x):
        # ptr8(obj)/ptr32(obj) and the argument annotations: index the object itself
        return x

    ptr32 = ptr8


if MICROPYTHON:
    from micropython import const
    import time

    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add

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
