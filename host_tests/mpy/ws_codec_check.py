# Decode a frame stream (file argv[1]) fed through a fixed receive buffer in chunks of argv[2]
# bytes, with the heap locked around every Decoder.feed; print what was decoded so the test
# can compare it with CPython's result.
import sys
import binascii
import hashlib
import micropython
from array import array

from ws.codec import Decoder

path = sys.argv[1]
chunk = int(sys.argv[2])
with open(path, "rb") as f:
    data = f.read()


class Sink:
    # Copies payload into preallocated storage with plain loops: allocating nothing itself.
    def __init__(self):
        self.out = bytearray(65536)
        self.n = 0
        self.ends = array("i", [0] * 16)
        self.ne = 0

    def ws_begin(self):
        pass

    def ws_data(self, buf, off, n):
        out = self.out
        j = self.n
        for i in range(off, off + n):
            out[j] = buf[i]
            j += 1
        self.n = j

    def ws_end(self):
        self.ends[self.ne] = self.n
        self.ne += 1


# Locals only: a first assignment to a module global grows the globals dict (an allocation).
def main():
    sink = Sink()
    dec = Decoder(False, 16384)
    rx = bytearray(chunk)
    ctl = bytearray(16 * 125)
    ctl_op = array("i", [0] * 16)
    ctl_len = array("i", [0] * 16)
    order = array("i", [0] * 32)  # >= 0: message index, < 0: -1 - control index
    no = 0
    nc = 0
    alloc = False
    pos = 0
    while pos < len(data):
        k = min(chunk, len(data) - pos)
        rx[0:k] = data[pos : pos + k]
        pos += k
        off = 0
        micropython.heap_lock()
        try:
            while off < k:
                ne = sink.ne
                used = dec.feed(rx, off, k - off, sink)
                off += used
                while ne < sink.ne:
                    order[no] = ne
                    no += 1
                    ne += 1
                op = dec.control
                if op:
                    ctl_op[nc] = op
                    n = dec.ctl_len
                    ctl_len[nc] = n
                    c = dec.ctl
                    base = nc * 125
                    for i in range(n):
                        ctl[base + i] = c[i]
                    order[no] = -1 - nc
                    no += 1
                    nc += 1
        except MemoryError:
            alloc = True
        micropython.heap_unlock()
        if alloc:
            print("ALLOCATED in chunk at", pos - k)
            sys.exit(1)
    return sink, ctl, ctl_op, ctl_len, order, no


sink, ctl, ctl_op, ctl_len, order, no = main()
for j in range(no):
    e = order[j]
    if e >= 0:
        lo = sink.ends[e - 1] if e else 0
        m = bytes(sink.out[lo : sink.ends[e]])
        print("MSG", len(m), binascii.hexlify(hashlib.sha1(m).digest()).decode())
    else:
        i = -1 - e
        p = bytes(ctl[i * 125 : i * 125 + ctl_len[i]])
        print("CTL", ctl_op[i], len(p), binascii.hexlify(hashlib.sha1(p).digest()).decode())
print("ZERO-ALLOC ok")
