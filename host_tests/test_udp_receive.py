"""compat.recv_datagram under MicroPython on real loopback UDP sockets: each datagram comes
whole, alone and in order (a readinto longer than a datagram would run on into the next one),
with its sender, at every length around compat.PEEK; on a heap with no block of the receive
size a short datagram still comes and a long one is dropped without an exception, and the
datagrams behind it are not touched; on a heap without even the peek's 256 B the datagram is
dropped, and the next one after the heap is whole again comes."""

import socket

from support import mpyrun

CODE = r"""
import gc
import socket
import sys
import time

from cases.heapfill import fill_heap
from compat import PEEK, recv_datagram

port = int(sys.argv[1])
SIZES = (5, 0, 1, PEEK - 1, PEEK, PEEK + 1, 1400, 3, 2000, 40)
RX = 1500


def body(i, n):
    return bytes((i * 31 + k) & 0xFF for k in range(n))


def sock(p):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(socket.getaddrinfo("127.0.0.1", p)[0][-1])
    s.setblocking(False)
    return s


rx = sock(port)
tx = sock(port + 1)
dst = socket.getaddrinfo("127.0.0.1", port)[0][-1]
src = socket.getaddrinfo("127.0.0.1", port + 1)[0][-1]

for i, n in enumerate(SIZES):
    tx.sendto(body(i, n), dst)
time.sleep_ms(100)
for i, n in enumerate(SIZES):
    got = recv_datagram(rx, RX)
    data, addr = got
    want = body(i, n)[:RX]  # a datagram longer than rx is cut, as recvfrom(rx) cuts it
    assert bytes(addr) == bytes(src), (i, addr)
    assert data == want, (i, n, len(data))
    print("OK", n, len(data))
assert recv_datagram(rx, RX) is None
print("EMPTY")


def fragmented(small1, big, small2):
    # in a function: a new global could resize the module's dict on the fragmented heap
    hold = fill_heap(RX)  # no block of RX bytes free, holes of about RX - 32
    try:
        bytearray(RX)
        print("UNFRAGMENTED")
    except MemoryError:
        print("FRAGMENTED")
    for d in (small1, big, small2):
        tx.sendto(d, dst)
    time.sleep_ms(100)
    got = [recv_datagram(rx, RX) for _ in range(4)]
    assert got[0][0] == small1, got[0]
    assert got[1][0] is None and bytes(got[1][1]) == bytes(src), got[1]
    assert got[2][0] == small2, got[2]
    assert got[3] is None
    hold = None


def no_peek(small1, small2):
    # not even the peek's PEEK bytes: the datagram is dropped, the one after a cut comes
    hold = fill_heap(PEEK)  # not even the peek's PEEK (+1) bytes
    tx.sendto(small1, dst)
    time.sleep_ms(100)
    got = [recv_datagram(rx, RX) for _ in range(2)]
    assert got[0] == (None, None), got[0]
    assert got[1] is None, got[1]
    hold = None
    gc.collect()
    tx.sendto(small2, dst)
    time.sleep_ms(100)
    assert recv_datagram(rx, RX)[0] == small2


fragmented(body(90, 60), body(91, 1400), body(92, PEEK - 1))
no_peek(body(93, 60), body(94, 61))
print("DROPPED ONE")
"""


def _free_port_pair():
    # two consecutive free UDP ports on loopback
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
            ):
                a.bind(("127.0.0.1", p))
                b.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def test_datagrams_whole_and_alone_and_drop_on_fragmented_heap(tmp_path):
    r = mpyrun.run_code(CODE, tmp_path, heapsize="96k", args=(str(_free_port_pair()),),
                          extra_path=mpyrun.CASE_PATH).check()
    lines = r.stdout.split()
    assert r.stdout.count("OK ") == 10
    assert "EMPTY" in lines
    assert "FRAGMENTED" in lines, r.stdout  # the drop case ran on a heap with no rx-byte block
    assert "DROPPED" in lines
