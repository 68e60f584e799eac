# Deterministic byte mutations for the mutation corpora (eejson_mutations.py, mdns_mutations.py).
# Runs under MicroPython and CPython alike (the scripts compare the digests of both runs); both
# find this module beside them: sys.path[0] is the script's directory in both runtimes.


class Rng:
    """A small LCG: the same sequence under MicroPython and CPython."""

    def __init__(self, seed):
        self.x = seed

    def below(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


def mutate(rng, b, spice, insert_max, more):
    """1 to 3 edits of b: truncate, flip a byte, insert 1..insert_max bytes (from spice or random),
    delete 1..4 bytes; edits 4 and 5 are the format's own: more(rng, b, op, i, n) -> b.
    bytes rebuilt by slicing: MicroPython's bytearray has no slice deletion or insertion."""
    for _ in range(1 + rng.below(3)):
        n = len(b)
        op = rng.below(6)
        i = rng.below(n + 1)
        if op == 0 and n:
            b = b[:i]
        elif op == 1 and i < n:
            b = b[:i] + bytes((b[i] ^ (1 + rng.below(255)),)) + b[i + 1 :]
        elif op == 2:
            ins = bytearray()
            for _ in range(1 + rng.below(insert_max)):
                ins.append(spice[rng.below(len(spice))] if rng.below(2) else rng.below(256))
            b = b[:i] + bytes(ins) + b[i:]
        elif op == 3:
            b = b[:i] + b[i + 1 + rng.below(4) :]
        elif op >= 4:
            b = more(rng, b, op, i, n)
    return b
