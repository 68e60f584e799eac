# DNS-SD browser for _ship._tcp (RFC 6763 4-6), sans-IO: builds the queries, learns
# instances from responses (PTR -> SRV + TXT -> A) and picks a CEM to dial by SKI, by a
# trust predicate, or the first one found. Browsing is occasional, so unlike the responder it
# keeps what it learns as ordinary objects.
from check import normalize_ski
from compat import const, ticks_add, ticks_diff
from mdns import dns as D

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")
_TYPE_A = const(1)
_TYPE_PTR = const(12)
_TYPE_TXT = const(16)
_TYPE_SRV = const(33)
_CLASS_IN = const(1)
_FLAG_QR = const(0x8000)
_FIRST_MS = const(1000)  # RFC 6762 5.2: the interval starts at 1 s and doubles
_RESOLVE_MS = const(1000)
_MAX_KNOWN = const(8)  # known answers per query (one packet)
# Instances held at most: anyone on the LAN may announce _ship._tcp instances. When full, a new
# one takes the place of the oldest not yet resolved, else it is not kept (a CEM announces its
# SRV, TXT and A with its PTR, so it is complete at once and an incomplete flood cannot push it out).
_MAX_FOUND = const(8)
# TTLs are held as tick deadlines, and ticks_diff spans +-2**29 ms (6 days) on the ESP32
_MAX_TTL = const(86400)


class Found:
    """One service instance as learned so far; complete once it has ip, port and ski."""

    def __init__(self, name, label, now):
        self.name = name  # lower-case ref of <instance>._ship._tcp.local
        self.instance = label  # the instance label as sent
        self.target = None  # ref of the SRV target host
        self.port = 0
        self.ip = None
        self.txt = {}
        self.ski = None
        self.path = "/ship/"
        self.expires = now
        self.ttl = 0

    @property
    def complete(self):
        return self.ip is not None and self.port and self.ski is not None

    def __repr__(self):
        return "<%s %s:%s ski %s>" % (self.instance, self.ip, self.port, self.ski)


class Browser:
    def __init__(self, own_ski=None, service="_ship._tcp.local", max_interval_ms=60000, size=512):
        from mdns.setup import ref

        self.w = D.Writer(size)
        self.r = D.Reader()
        self._service = ref(service)
        self._scratch = bytearray(256)
        self.own_ski = own_ski
        self.found = []  # Found, in the order first seen
        self._max = max_interval_ms
        self._interval = _FIRST_MS
        self._due = 0
        self.running = False

    def start(self, now):
        self.running = True
        self._interval = _FIRST_MS
        self._due = now

    def stop(self):
        self.running = False

    def due_in(self, now):
        if not self.running:
            return -1
        d = ticks_diff(self._due, now)
        return d if d > 0 else 0

    # ---- queries --------------------------------------------------------------------------

    def poll(self, now):
        """Length of a query to multicast now (in self.w.buf), or 0."""
        if not self.running or ticks_diff(self._due, now) > 0:
            return 0
        self._expire(now)
        w = self.w
        w.begin(0, 0)
        w.question(self._service, _TYPE_PTR, _CLASS_IN)
        pending = False
        # Each addition is made only if it fits whole (a name is written in full before it is
        # compressed): the names are the peers', so what they add up to is theirs too. What does
        # not fit waits for room (instances resolved or expired), and the query still goes out.
        for f in self.found:
            # resolve what a PTR told us about but no SRV/TXT/A has followed yet
            if f.target is None or f.ski is None:
                if w.pos + 2 * (len(f.name) + 4) > w.size:
                    continue
                w.question(f.name, _TYPE_SRV, _CLASS_IN)
                w.question(f.name, _TYPE_TXT, _CLASS_IN)
                pending = True
            elif f.ip is None:
                if w.pos + len(f.target) + 4 > w.size:
                    continue
                w.question(f.target, _TYPE_A, _CLASS_IN)
                pending = True
        # known answers (RFC 6762 7.1): instances we hold with more than half their TTL left
        k = 0
        for f in self.found:
            left = ticks_diff(f.expires, now) // 1000
            if k < _MAX_KNOWN and left * 2 > f.ttl and w.pos + len(self._service) + 10 + len(f.name) <= w.size:
                w.record(self._service, _TYPE_PTR, _CLASS_IN, left, 1)
                w.name(f.name)
                w.end()
                k += 1
        if pending:
            self._due = ticks_add(now, _RESOLVE_MS)
        else:
            self._due = ticks_add(now, self._interval)
            self._interval = min(self._interval * 2, self._max)
        return w.pos

    # ---- responses ------------------------------------------------------------------------

    def feed(self, buf, n, now):
        """Learn from one received packet; True when an instance appeared, changed or went."""
        r = self.r
        try:
            r.start(buf, n)
            if not r.flags & _FLAG_QR or r.flags & 0x7800:
                return False
            changed = False
            # PTRs, then SRV/TXT, then A: a packet may hold them in any order. An address is
            # kept only for a known SRV target (poll asks for one still missing), so the A
            # records of every other host on the network cost nothing
            while r.record():
                if r.type == _TYPE_PTR and D.name_eq(buf, n, r.name, self._service):
                    changed |= self._ptr(r.rdata_name(), r.ttl, now)
            if not self.found:
                return changed
            r.start(buf, n)
            while r.record():
                t = r.type
                if t == _TYPE_SRV and r.rdlen > 6:
                    f = self._lookup(buf, n, r.name)
                    if f is not None:
                        changed |= self._srv(f, r)
                elif t == _TYPE_TXT:
                    f = self._lookup(buf, n, r.name)
                    if f is not None:
                        changed |= self._txt(f, buf, r.rdata, r.rdlen)
            r.start(buf, n)
            while r.record():
                if r.type == _TYPE_A and r.rdlen == 4 and r.ttl:
                    changed |= self._a(r)
            return changed
        except D.DnsError:
            return False

    def _ref(self, off, lower=True):
        k = D.read_name(self.r.buf, self.r.n, off, self._scratch, lower)
        return bytes(self._scratch[:k])

    def _ptr(self, off, ttl, now):
        name = self._ref(off)
        ttl = ttl if ttl < _MAX_TTL else _MAX_TTL
        for i, f in enumerate(self.found):
            if f.name == name:
                if ttl == 0:  # goodbye
                    del self.found[i]
                    return True
                f.ttl = ttl
                f.expires = ticks_add(now, ttl * 1000)
                return False
        if ttl == 0:
            return False
        label = self._ref(off, False)
        try:
            label = label[1 : 1 + label[0]].decode()
        except UnicodeError:
            label = repr(label)
        fs = self.found
        if len(fs) >= _MAX_FOUND:
            for i in range(len(fs)):
                if not fs[i].complete:
                    del fs[i]
                    break
            else:
                return False
        f = Found(name, label, now)
        f.ttl = ttl
        f.expires = ticks_add(now, ttl * 1000)
        fs.append(f)
        self._due = now  # resolve it now
        return True

    def _lookup(self, buf, n, off):
        for f in self.found:
            if D.name_eq(buf, n, off, f.name):
                return f
        return None

    def _srv(self, f, r):
        buf = r.buf
        p = r.rdata
        port = (buf[p + 4] << 8) | buf[p + 5]
        target = self._ref(r.rdata_name(6))
        if f.port == port and f.target == target:
            return False
        if f.target != target:
            f.ip = None
            f.target = target
        f.port = port
        return True

    def _txt(self, f, buf, p, ln):
        txt = {}
        end = p + ln
        while p < end:
            k = buf[p]
            p += 1
            if p + k > end:
                break
            s = bytes(buf[p : p + k])
            p += k
            i = s.find(b"=")
            try:
                if i > 0:
                    txt[s[:i].decode().lower()] = s[i + 1 :].decode()
                elif k:
                    txt[s.decode().lower()] = None  # a key without value (RFC 6763 6.4)
            except UnicodeError:
                pass
        if txt == f.txt:
            return False
        f.txt = txt
        ski = txt.get("ski")
        f.ski = _ski(ski) if txt.get("txtvers") == "1" and ski else None
        f.path = txt.get("path") or "/ship/"
        return True

    def _a(self, r):
        buf = r.buf
        ip = None
        changed = False
        for f in self.found:
            if f.target is not None and D.name_eq(buf, r.n, r.name, f.target):
                if ip is None:
                    p = r.rdata
                    ip = "%d.%d.%d.%d" % (buf[p], buf[p + 1], buf[p + 2], buf[p + 3])
                if f.ip != ip:
                    f.ip = ip
                    changed = True
        return changed

    def _expire(self, now):
        for i in range(len(self.found) - 1, -1, -1):
            if ticks_diff(self.found[i].expires, now) <= 0:
                del self.found[i]

    # ---- choice ---------------------------------------------------------------------------

    def pick(self, ski=None, trusted=None):
        """The CEM to dial: the complete instance with that SKI; else the first complete one
        whose SKI trusted(ski) accepts (or any, without a predicate). Never ourselves."""
        ski = _ski(ski) if ski else None
        for f in self.found:
            if not f.complete or f.ski == self.own_ski:
                continue
            if ski is not None:
                if f.ski == ski:
                    return f
            elif trusted is None or trusted(f.ski):
                return f
        return None


def _ski(s):
    # None rather than an error: a peer's TXT is untrusted input
    try:
        return normalize_ski(s)
    except ValueError:
        return None
