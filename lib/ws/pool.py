# Per-connection buffers made once at start-up. A heap that has run for a while is cut into
# small pieces (TLS records, SPINE objects), so a kilobyte-sized bytearray asked for on
# accept may find no contiguous block although plenty is free; the buffers a connection needs
# are therefore set aside before anything transient, and a connection borrows a set.


class Slot:
    # bufs: one bytearray per size of the pool, in the order the sizes were given
    def __init__(self, bufs):
        self.bufs = bufs
        self.held = False


class Pool:
    """count sets of buffers of the given sizes. Allocated largest size first, every set's
    buffer of one size before the next size: the big blocks come out of an unbroken heap.
    Taking and giving allocate nothing (a scan of a fixed tuple, no list that shrinks and
    regrows)."""

    def __init__(self, count, sizes):
        self.sizes = sizes
        cols = [None] * len(sizes)
        for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
            cols[i] = [bytearray(sizes[i]) for _ in range(count)]
        self.slots = tuple(Slot(tuple(c[k] for c in cols)) for k in range(count))
        self.size = count
        self.free = count
        self.low = count  # fewest free sets seen
        self.refused = 0  # takes that found none

    def take(self):
        """A free set (Slot), or None when every set is lent."""
        for s in self.slots:
            if not s.held:
                s.held = True
                self.free -= 1
                if self.free < self.low:
                    self.low = self.free
                return s
        self.refused += 1
        return None

    def give(self, s):
        """Return a set; returning one twice (or None) changes nothing."""
        if s is not None and s.held:
            s.held = False
            self.free += 1
