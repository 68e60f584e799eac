# Per-connection buffers made once at start-up. A heap that has run for a while is cut into
# small pieces (TLS records, SPINE objects), so a kilobyte-sized bytearray asked for on
# accept may find no contiguous block although plenty is free; the buffers a connection needs
# are therefore set aside before anything transient, and a connection borrows a set.

_ANCHOR = ...  # the constant table is not empty (compat.py, "A module's constant table")


class Pool:
    """count sets of buffers of the given sizes (sets[k]: one bytearray per size, in the order
    given). Allocated largest size first, every set's buffer of one size before the next size:
    the big blocks come out of an unbroken heap. Taking and giving allocate nothing."""

    def __init__(self, count, sizes):
        cols = [None] * len(sizes)
        for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
            cols[i] = [bytearray(sizes[i]) for _ in range(count)]
        self.sets = tuple(tuple(c[k] for c in cols) for k in range(count))
        self.held = bytearray(count)  # per set: 0 free, else the borrower's tag
        self.size = count
        self.free = count
        self.low = count  # fewest free sets seen

    def take(self, tag=1):
        """The index of a free set, lent under tag (1..255: who holds it, for the lender's
        rules), or -1 when every set is lent."""
        h = self.held
        for k in range(self.size):
            if not h[k]:
                h[k] = tag
                self.free -= 1
                if self.free < self.low:
                    self.low = self.free
                return k
        return -1

    def count(self, tag):
        """How many sets are lent under tag."""
        n = 0
        for t in self.held:
            if t == tag:
                n += 1
        return n

    def give(self, k):
        """Return set k; returning one twice (or -1) changes nothing."""
        if k >= 0 and self.held[k]:
            self.held[k] = 0
            self.free += 1
