# DNS message codec for mDNS (RFC 1035 wire format, RFC 6762 bits), sans-IO.
# Reader walks a received message in place (no copies, no objects per record); Writer builds
# a message into one preallocated buffer with the same name compression as dnspython, so the
# host tests can compare our packets with dnspython's byte for byte.
# Names we own are kept as uncompressed wire bytes ("refs"): b"\x05_ship\x04_tcp\x05local\x00",
# made at set-up by mdns.setup.
from compat import const

# The record types, classes and flags are private constants of each module that uses them
# (folded at compile time, no globals entries): TYPE A 1, PTR 12, TXT 16, SRV 33, ANY 255;
# CLASS IN 1, ANY 255, its top bit 0x8000 the cache-flush (records) or unicast-response
# (questions) bit; flags QR 0x8000, AA 0x0400, every mDNS response 0x8400.
_MAX_JUMPS = const(16)  # compression pointers followed per name
_MAX_NAME = const(255)  # wire length of a name (RFC 1035 3.1)


class DnsError(ValueError):
    pass


def name_end(buf, n, off):
    """Offset just past the name at off (past its first pointer, or its root label), after
    checking the whole name: label types and lengths, total length, and pointers: each must
    land before the start of the labels that led to it (so targets strictly decrease and no
    loop can exist), at most _MAX_JUMPS of them."""
    end = -1
    total = 0
    jumps = 0
    p = off
    lo = off  # start of the current run of labels
    while True:
        if p >= n:
            raise DnsError("name runs past the end")
        c = buf[p]
        if c >= 0xC0:
            if p + 1 >= n:
                raise DnsError("cut pointer")
            t = ((c & 0x3F) << 8) | buf[p + 1]
            if t >= lo:
                raise DnsError("pointer not backwards")
            jumps += 1
            if jumps > _MAX_JUMPS:
                raise DnsError("too many pointers")
            if end < 0:
                end = p + 2
            p = lo = t
        elif c >= 0x40:
            raise DnsError("bad label type")
        else:
            total += c + 1
            if total > _MAX_NAME:
                raise DnsError("name too long")
            if c == 0:
                return end if end >= 0 else p + 1
            p += c + 1
            if p > n:
                raise DnsError("label runs past the end")


def name_eq(buf, n, off, r, ri=0):
    """Does the name at buf[off] equal ref r from offset ri (a suffix), ignoring ASCII case?
    Safe on unchecked input: a malformed name compares unequal."""
    p = lo = off
    jumps = 0
    rn = len(r)
    while p < n:
        c = buf[p]
        if c >= 0xC0:
            if p + 1 >= n:
                return False
            t = ((c & 0x3F) << 8) | buf[p + 1]
            jumps += 1
            if t >= lo or jumps > _MAX_JUMPS:
                return False
            p = lo = t
            continue
        if c >= 0x40 or ri >= rn or r[ri] != c or p + c >= n:
            return False
        if c == 0:
            return True
        p += 1
        ri += 1
        end = p + c
        while p < end:
            a = buf[p]
            b = r[ri]
            if a != b and (a | 32 != b | 32 or not 97 <= a | 32 <= 122):  # ASCII case ignored
                return False
            p += 1
            ri += 1
    return False


def read_name(buf, n, off, out, lower=True, k=0):
    """Copy the name at off into bytearray out from offset k as an uncompressed ref
    (lower-case unless told otherwise); returns the offset just past it. For the browser,
    which keeps the names it learns, and the writer, which echoes a question in place."""
    p = lo = off
    jumps = 0
    while True:
        if p >= n:
            raise DnsError("name runs past the end")
        c = buf[p]
        if c >= 0xC0:
            if p + 1 >= n:
                raise DnsError("cut pointer")
            t = ((c & 0x3F) << 8) | buf[p + 1]
            jumps += 1
            if t >= lo or jumps > _MAX_JUMPS:
                raise DnsError("bad pointer")
            p = lo = t
            continue
        if c >= 0x40 or p + c >= n or k + c + 1 > len(out):
            raise DnsError("bad label")
        out[k] = c
        k += 1
        p += 1
        if c == 0:
            return k
        for _ in range(c):
            a = buf[p]
            out[k] = a + 32 if lower and 65 <= a <= 90 else a
            k += 1
            p += 1


class Reader:
    """Walks one message. After start(): flags, qd, an, ns, ar (the id is buf[0:2]).
    question() and record() step through the sections and leave the fields of the current
    entry in attributes (name = offset of its owner name), so reading allocates nothing.
    Sixteen attributes: their table (17 slots) keeps a free one."""

    def __init__(self):
        self.buf = None
        self.n = 0
        self.pos = 0

    def start(self, buf, n):
        if n < 12:
            raise DnsError("short header")
        self.buf = buf
        self.n = n
        self.flags = (buf[2] << 8) | buf[3]
        self.qd = (buf[4] << 8) | buf[5]
        self.an = (buf[6] << 8) | buf[7]
        self.ns = (buf[8] << 8) | buf[9]
        self.ar = (buf[10] << 8) | buf[11]
        self.pos = 12
        self._i = 0  # entries read: questions, then records
        self.section = 0  # of the current record: 1 answer, 2 authority, 3 additional

    def question(self):
        if self._i >= self.qd:
            return False
        buf = self.buf
        off = self.pos
        p = name_end(buf, self.n, off)
        if p + 4 > self.n:
            raise DnsError("cut question")
        self.name = off
        self.type = (buf[p] << 8) | buf[p + 1]
        self.cls = (buf[p + 2] << 8) | buf[p + 3]
        self.pos = p + 4
        self._i += 1
        return True

    def skip_questions(self):
        while self.question():
            pass

    def record(self):
        """Next resource record of the answer, authority or additional section."""
        if self._i < self.qd:
            self.skip_questions()
        r = self._i - self.qd
        if r >= self.an + self.ns + self.ar:
            return False
        buf = self.buf
        off = self.pos
        p = name_end(buf, self.n, off)
        if p + 10 > self.n:
            raise DnsError("cut record")
        self.name = off
        self.type = (buf[p] << 8) | buf[p + 1]
        self.cls = (buf[p + 2] << 8) | buf[p + 3]
        self.ttl = (buf[p + 4] << 24) | (buf[p + 5] << 16) | (buf[p + 6] << 8) | buf[p + 7]
        ln = (buf[p + 8] << 8) | buf[p + 9]
        p += 10
        if p + ln > self.n:
            raise DnsError("cut rdata")
        self.rdata = p
        self.rdlen = ln
        self.pos = p + ln
        self._i += 1
        self.section = 1 if r < self.an else (2 if r < self.an + self.ns else 3)
        return True

    def rdata_name(self, skip=0):
        """Offset of the name in the current record's rdata (PTR: 0, SRV: 6), checked to
        end inside the rdata."""
        off = self.rdata + skip
        if name_end(self.buf, self.n, off) > self.rdata + self.rdlen:
            raise DnsError("rdata name runs past the rdata")
        return off


class Writer:
    """Builds one message into buf. Names are compressed as dnspython does: every suffix
    first written in full is remembered at its offset, and a later name that ends in a
    remembered suffix (ASCII case ignored) points to it. A name is first copied in full,
    then cut at its first remembered suffix: so a question echoed from a received message
    needs no buffer of its own."""

    def __init__(self, size=1460, slots=32):
        from array import array

        self.buf = bytearray(size)
        self.size = size
        self._tab = array("H", range(slots))  # offsets of remembered suffixes (2 B each, a list 4)
        self._nt = 0
        self.pos = 12
        self._rd = 0

    def begin(self, mid, flags):
        b = self.buf
        b[0] = mid >> 8
        b[1] = mid & 0xFF
        b[2] = flags >> 8
        b[3] = flags & 0xFF
        for i in range(4, 12):
            b[i] = 0
        self.pos = 12
        self._nt = 0

    def u16(self, v):
        p = self.pos
        if p + 2 > self.size:
            raise DnsError("message does not fit")
        b = self.buf
        b[p] = (v >> 8) & 0xFF
        b[p + 1] = v & 0xFF
        self.pos = p + 2

    def raw(self, data):
        k = len(data)
        p = self.pos
        if p + k > self.size:
            raise DnsError("message does not fit")
        self.buf[p : p + k] = data
        self.pos = p + k

    def name(self, r, compress=True):
        """Write ref r; compress=False writes it in full and remembers nothing (SRV targets,
        as dnspython does)."""
        b = self.buf
        p = self.pos
        ri = 0
        while True:
            c = r[ri]
            if p + c + 1 > self.size:
                raise DnsError("message does not fit")
            for i in range(ri, ri + c + 1):  # labels are short: a loop beats a slice object
                b[p] = r[i]
                p += 1
            if c == 0:
                break
            ri += c + 1
        if compress:
            self._cut(p)
        else:
            self.pos = p

    def name_from(self, src, n, off):
        """Write a name found in a received message as it came (legacy unicast echoes the
        question)."""
        self._cut(read_name(src, n, off, self.buf, False, self.pos))

    def _cut(self, end):
        # the name copied in full at pos..end: point to the first of its suffixes remembered
        # before it (its own are not: name_eq reads nothing at or past pos), remember the others
        b = self.buf
        q = p = self.pos
        tab = self._tab
        while b[q]:
            for i in range(self._nt):
                t = tab[i]
                if name_eq(b, p, t, b, q):
                    b[q] = 0xC0 | (t >> 8)
                    b[q + 1] = t & 0xFF
                    self.pos = q + 2
                    return
            if self._nt < len(tab) and q <= 0x3FFF:
                tab[self._nt] = q
                self._nt += 1
            q += b[q] + 1
        self.pos = end

    def question(self, r, qtype, qclass):
        self.name(r)
        self.u16(qtype)
        self.u16(qclass)
        self._count(4)

    def record(self, r, rtype, rclass, ttl, section):
        """Owner name and fixed fields of a record; the caller writes the rdata next and
        closes it with end()."""
        self.name(r)
        self.u16(rtype)
        self.u16(rclass)
        self.u16(ttl >> 16)
        self.u16(ttl & 0xFFFF)
        self.u16(0)
        self._rd = self.pos
        self._count(4 + 2 * section)

    def end(self):
        ln = self.pos - self._rd
        self.buf[self._rd - 2] = ln >> 8
        self.buf[self._rd - 1] = ln & 0xFF

    def _count(self, at):
        b = self.buf
        v = ((b[at] << 8) | b[at + 1]) + 1
        b[at] = v >> 8
        b[at + 1] = v & 0xFF
