# Mutation corpus for the EEBUS JSON reader: deterministic mutations of the wire captures
# (argv[1] = capture directory, argv[2] = count) fed in random chunk sizes to a reader with a
# null consumer or the tree builder. Every one must end in success or JsonError; anything
# else is printed and fails the run. Runs under MicroPython and CPython alike: the printed
# digest of the outcomes (accepted or error position) must be the same on both.
import os
import sys

import fuzz
from eejson.dialect import Tree
from eejson.reader import Consumer, JsonError, Reader

MPY = sys.implementation.name == "micropython"
# bytes that matter to the grammar, so that mutations reach deep states
SPICE = b'{}[]",:\\/0123456789-+.eEtrufalsn \t\r\n\x00\x7f\x80\xbf\xc3\xe2\xed\xf0\xf4\xffu'


def _more(rng, b, op, i, n):
    if op == 4:
        # a copy of up to 15 bytes in place
        j = rng.below(n + 1)
        k = min(i, j)
        b = b[:k] + b[k : k + rng.below(16)] + b[k:]
    elif i < n:
        # two bytes swapped
        j = rng.below(n)
        if i > j:
            i, j = j, i
        if i < j:
            b = b[:i] + b[j : j + 1] + b[i + 1 : j] + b[i : i + 1] + b[j + 1 :]
    return b


def mutate(rng, b):
    return fuzz.mutate(rng, b, SPICE, 4, _more)


def run(data, chunk, consumer, reader):
    reader.reset(consumer)
    buf = bytearray(data)
    n = len(buf)
    off = 0
    while off < n:
        k = chunk if chunk < n - off else n - off
        reader.feed(buf, off, k)
        off += k
    reader.finish()


def main():
    d = sys.argv[1]
    count = int(sys.argv[2])
    names = sorted(x for x in os.listdir(d) if x.endswith(".json"))
    docs = []
    for name in names:
        with open(d + "/" + name, "rb") as f:
            docs.append(f.read())
    rng = fuzz.Rng(20240611)
    reader = Reader(None)
    null = Consumer()
    ok = err = other = 0
    digest = 0
    for k in range(count):
        if k % 10 == 9:
            data = bytes([rng.below(256) for _ in range(rng.below(64))])
        else:
            data = mutate(rng, docs[k % len(docs)])
        chunk = 1 + rng.below(64) if rng.below(2) else len(data) + 1
        cons = Tree() if k % 3 == 0 else null
        try:
            run(data, chunk, cons, reader)
            ok += 1
            h = 1
        except JsonError as e:
            err += 1
            h = 2 + e.pos
        except Exception as e:  # noqa: BLE001 - the point is to catch anything else
            other += 1
            h = 0
            print("OTHER", type(e).__name__, repr(e), repr(data[:200]), chunk)
            if MPY:
                sys.print_exception(e)
        digest = (digest * 31 + h) & 0xFFFFFFF
    print("RESULT total=%d ok=%d err=%d other=%d digest=%d" % (count, ok, err, other, digest))
    if other:
        sys.exit(1)


main()
