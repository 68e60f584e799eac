# The few shims between the ESP32, the MicroPython unix port and CPython.
# Protocol cores import from here so that they also run under CPython (property tests).
# The viper modules (native/: ws_mask, utf8, eejson_lexer, eejson_escape) take the shim below
# under CPython; on MicroPython they are machine code.
import sys
from socket import MSG_PEEK as _MSG_PEEK

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


# const(): MicroPython's compiler folds NAME = const(value), and for a _private name stores
# nothing: each use is the value itself (an int, or a str, bytes or tuple of constants), no
# module global (8 B of the module's table each, which grows in steps). So a module's private
# tags and tables are _X = const(...); a public one is stored all the same, and a name that
# only its own module uses is better private.
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


PEEK = const(256)  # a datagram shorter than this never needs a larger block
_ONE = bytearray(1)


def recv_datagram(s, rx):
    """The next datagram queued on the non-blocking UDP socket s, as (data, addr); None when
    none is queued; (None, addr) when it was dropped because the heap had no block for it
    (addr None when not even the peek found one).

    MicroPython has no recvfrom_into, and recvfrom(rx) takes an rx-byte block for every
    datagram (shrunk after the read): on a fragmented heap that block is what fails, and its
    MemoryError would end the service. So the datagram is first peeked at with at most PEEK
    bytes, which gives its address and, when it is shorter, all of it; a readinto of one byte
    then takes it off the queue (a datagram socket discards the rest of a datagram that a read
    did not take; a longer readinto would loop on into the next datagram). Only a datagram of
    PEEK bytes or more takes recvfrom(rx)."""
    try:
        d, addr = s.recvfrom(PEEK, _MSG_PEEK)
    except OSError:  # EAGAIN: none queued
        return None
    except MemoryError:  # not even PEEK bytes: the datagram, if one is queued, is dropped
        return None if s.readinto(_ONE, 1) is None else (None, None)
    if len(d) < PEEK:
        if d:
            s.readinto(_ONE, 1)
        else:
            s.recvfrom(1)  # empty: a read of 0 bytes reads as the end of a stream on some ports
        return d, addr
    d = None
    try:
        return s.recvfrom(rx)
    except MemoryError:  # raised before the read: the datagram is still queued
        s.readinto(_ONE, 1)
        return None, addr


async def detached(coro):
    """A task's coroutine that runs coro and, once it has ended, holds nothing coro used.

    MicroPython's task queue (a pairing heap) leaves a task taken off it a stale pointer to the
    last task queued under it. While that task then waits off the queue (a socket, an Event:
    minutes on end), the ended task stays alive with its coroutine and all the coroutine's frame
    still points to: for a SHIP connection's task, ~11-14 KB of its objects until the waiting
    task runs again. Here the ended task's coroutine is this frame, which lets coro go."""
    try:
        await coro
    finally:
        coro = None


# A module's constant table must not be empty: every module in lib/ with more than a few names
# holds at least one constant object (``_ANCHOR = ...`` where it has none of its own; the
# Ellipsis is a ROM object and costs no heap). MicroPython (1.28, 1.29) gives a module compiled
# from source, or loaded from a .mpy (the stock firmware's lib/), one allocation for its qstr
# table and its object table, and points the object table at the end of the qstr table. With
# no object that pointer is one past the allocation, and when the qstr table fills whole GC
# blocks it is the first address of the next block, which the GC takes for a reference for
# as long as the module lives: whatever is put there next is never collected. In the hostile
# suite's SPINE storm a connection's coroutine (read_some, begin, write of its WebSocket) was
# put in the block behind ws.pool's qstr table and kept all of that connection, ~10 KB, for
# good (host_tests/test_module_constants.py). A frozen module's tables are in flash.
#
# A full globals table: MicroPython (1.28) fills a map to its last slot before it grows it
# (py/map.c: 2, 4, 6, 8, 10, 12, 17, 23, 29, 37, 47, ... slots of 8 B), and a lookup that
# misses a full table scans all of it. Every builtin a function calls (len, isinstance, range)
# misses its module's globals before it is found among the builtins, so in a module with
# exactly a table's worth of globals each such call scans the whole table: a len() loop ran 2.2
# times slower with 23 globals than with 24 (32-bit frozen build). Trimming globals to a size
# step saves heap and lands there; a module on a per-message path then keeps a free slot with
# ``_ROOM = ...`` (host_tests/test_globals_room.py checks every such module).


def hexlify(b):
    import binascii

    return binascii.hexlify(b).decode()
