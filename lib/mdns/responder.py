# DNS-SD responder for one SHIP service instance (RFC 6762/6763), sans-IO: fed received
# packets and the time, it answers into one preallocated buffer and says when it next wants
# to send (probes, announcements). The adapter (udp.py) owns the socket.
#
# Records (one instance, one IPv4 address, TTL 120 s as SHIP chapter 7 asks):
#   _ship._tcp.local              PTR <instance>._ship._tcp.local      shared
#   <instance>._ship._tcp.local   SRV 0 0 <port> <host>.local          unique (cache-flush)
#   <instance>._ship._tcp.local   TXT txtvers=1 id= path= ski= ...     unique
#   <host>.local                  A   <ip>                             unique
#   _services._dns-sd._udp.local  PTR _ship._tcp.local                 shared
from compat import const, ticks_add, ticks_diff
from mdns import dns as D

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

# the fixed names in wire form (mdns.setup.ref), as constants: no bytes made at import
# (test_mdns checks them)
_SHIP = const(b"\x05_ship\x04_tcp\x05local\x00")  # _ship._tcp.local, the service
_SERVICES = const(b"\x09_services\x07_dns-sd\x04_udp\x05local\x00")  # _services._dns-sd._udp.local
_TTL = const(120)
_TYPE_A = const(1)
_TYPE_PTR = const(12)
_TYPE_TXT = const(16)
_TYPE_SRV = const(33)
_TYPE_ANY = const(255)
_CLASS_IN = const(1)
_CLASS_ANY = const(255)
_TOP = const(0x8000)  # of a class: cache-flush (records), unicast response (questions)
_FLAG_QR = const(0x8000)
_RESPONSE = const(0x8400)  # QR + AA, opcode 0: every mDNS response
_LEGACY_TTL = const(10)  # RFC 6762 6.7: answers to one-shot (legacy) queriers
_PORT = const(5353)

_R_PTR = const(0)
_R_SRV = const(1)
_R_TXT = const(2)
_R_A = const(3)
_R_SVC = const(4)
_N = const(5)
_ALL = const(0x1F)

# schedule (RFC 6762 8.1, 8.3): three probes 250 ms apart, then two announcements 1 s apart
_PROBES = const(3)
_PROBE_MS = const(250)
_ANNOUNCES = const(2)
_ANNOUNCE_MS = const(1000)

IDLE = const(0)
PROBING = const(1)
ANNOUNCING = const(2)
UP = const(3)


def ip4(text):
    p = text.split(".")
    if len(p) != 4:
        raise ValueError("not an IPv4 address: " + text)
    return bytes([int(x) & 0xFF for x in p])


class Responder:
    """Publishes instance._ship._tcp.local on host.local (ip, port) with the TXT of txt_pairs
    (mdns.setup.ship_txt). The reply buffer is sized by the largest message the responder
    builds (mdns.setup) and grows when a configure() (a rename, a longer TXT) needs more."""

    def __init__(self, instance, host, port, ip, txt_pairs):
        self.w = None
        self.r = D.Reader()
        self._last = [0] * _N  # ticks of each record's last multicast
        self._sent = 0  # records multicast at least once
        self.state = IDLE
        self._count = 0
        self._due = 0
        self._renames = 0
        self.unicast = False  # where the last reply goes: False multicast, True the sender
        self.shared = False  # the last reply answers a shared record (PTR): may be delayed
        self.conflicts = 0
        self.stats = [0, 0, 0]  # queries answered, packets ignored, malformed packets
        self._base = (instance, host)
        self.configure(instance, host, port, ip, txt_pairs)

    # ---- records --------------------------------------------------------------------------

    def configure(self, instance=None, host=None, port=None, ip=None, txt_pairs=None):
        """Set any of the published values. A new address or port is stored as it is (a network
        change); names and TXT are encoded by mdns.setup (set-up time, allocates)."""
        if port is not None:
            self.port = port
        if ip is not None:
            self.ip = ip4(ip) if isinstance(ip, str) else bytes(ip)
        if instance is not None or host is not None or txt_pairs is not None:
            from mdns import setup

            setup.names(self, instance, host, txt_pairs)

    def _put(self, i, ttl, flush, section):
        w = self.w
        cls = _CLASS_IN | (_TOP if flush and i != _R_PTR and i != _R_SVC else 0)
        if i == _R_PTR:
            w.record(_SHIP, _TYPE_PTR, cls, ttl, section)
            w.name(self._inst)
        elif i == _R_SRV:
            w.record(self._inst, _TYPE_SRV, cls, ttl, section)
            w.u16(0)
            w.u16(0)
            w.u16(self.port)
            w.name(self._host, False)  # uncompressed, as RFC 2782 and dnspython write it
        elif i == _R_TXT:
            w.record(self._inst, _TYPE_TXT, cls, ttl, section)
            w.raw(self.txt)
        elif i == _R_A:
            w.record(self._host, _TYPE_A, cls, ttl, section)
            w.raw(self.ip)
        else:
            w.record(_SERVICES, _TYPE_PTR, cls, ttl, section)
            w.name(_SHIP)
        w.end()

    def _match(self, buf, n, r):
        """Which of our records (bit) the current record of reader r is, name, type and
        rdata alike; 0 for none."""
        t = r.type
        if t == _TYPE_PTR:
            if D.name_eq(buf, n, r.name, _SHIP) and D.name_eq(buf, n, r.rdata, self._inst):
                return 1 << _R_PTR
            if D.name_eq(buf, n, r.name, _SERVICES) and D.name_eq(buf, n, r.rdata, _SHIP):
                return 1 << _R_SVC
        elif t == _TYPE_SRV:
            p = r.rdata
            if (r.rdlen > 6 and buf[p] == 0 and buf[p + 1] == 0 and buf[p + 2] == 0 and buf[p + 3] == 0
                    and ((buf[p + 4] << 8) | buf[p + 5]) == self.port
                    and D.name_eq(buf, n, r.name, self._inst) and D.name_eq(buf, n, p + 6, self._host)):
                return 1 << _R_SRV
        elif t == _TYPE_TXT:
            if r.rdlen == len(self.txt) and _same(buf, r.rdata, self.txt) and D.name_eq(buf, n, r.name, self._inst):
                return 1 << _R_TXT
        elif t == _TYPE_A:
            if r.rdlen == 4 and _same(buf, r.rdata, self.ip) and D.name_eq(buf, n, r.name, self._host):
                return 1 << _R_A
        return 0

    # ---- schedule -------------------------------------------------------------------------

    def start(self, now):
        """Probe our names, then announce. Call again after a network (re)connect."""
        self.state = PROBING
        self._count = 0
        self._due = now

    def changed(self, now):
        """Records changed (address, port, TXT): announce them again, twice."""
        if self.state >= ANNOUNCING:
            self.state = ANNOUNCING
            self._count = 0
            self._due = now

    def due_in(self, now):
        """Milliseconds until poll() wants to run; -1 when nothing is scheduled."""
        if self.state == PROBING or self.state == ANNOUNCING:
            d = ticks_diff(self._due, now)
            return d if d > 0 else 0
        return -1

    def poll(self, now):
        """Length of a packet to multicast now (in self.w.buf), or 0."""
        st = self.state
        if (st != PROBING and st != ANNOUNCING) or ticks_diff(self._due, now) > 0:
            return 0
        w = self.w
        if st == PROBING:
            if self._count == _PROBES:
                # a quiet 250 ms after the last probe: the names are ours
                self.state = ANNOUNCING
                self._count = 0
                return self.poll(now)
            w.begin(0, 0)
            qu = _TOP if self._count == 0 else 0  # RFC 6762 8.1: first probe asks QU
            w.question(self._inst, _TYPE_ANY, _CLASS_IN | qu)
            w.question(self._host, _TYPE_ANY, _CLASS_IN | qu)
            for i in (_R_SRV, _R_TXT, _R_A):
                self._put(i, _TTL, False, 2)
            self._count += 1
            self._due = ticks_add(now, _PROBE_MS)
            return w.pos
        w.begin(0, _RESPONSE)
        for i in range(_N):
            self._put(i, _TTL, True, 1)
        self._multicast(_ALL, now)
        self._count += 1
        if self._count >= _ANNOUNCES:
            self.state = UP
        self._due = ticks_add(now, _ANNOUNCE_MS)
        return w.pos

    def goodbye(self):
        """Length of the goodbye packet (every record with TTL 0, RFC 6762 10.1); the
        responder falls silent."""
        if self.state == IDLE or self.state == PROBING:
            self.state = IDLE
            return 0
        self.state = IDLE
        w = self.w
        w.begin(0, _RESPONSE)
        for i in range(_N):
            self._put(i, 0, True, 1)
        return w.pos

    def _multicast(self, mask, now):
        self._sent |= mask
        for i in range(_N):
            if mask & (1 << i):
                self._last[i] = now

    def _conflict(self, now):
        # RFC 6762 9: another host holds one of our unique names with other data; pick the
        # next name and probe again (8.1: "name (2)", host "name-2")
        self.conflicts += 1
        if self.state == PROBING:
            self._renames += 1
            k = self._renames + 1
            self.configure(instance="%s (%d)" % (self._base[0], k), host="%s-%d" % (self._base[1], k))
        self.start(ticks_add(now, 1000) if self.conflicts > 15 else now)  # 8.1: slow down after 15

    # ---- received packets -----------------------------------------------------------------

    def handle(self, buf, n, src_port, now):
        """Feed one received packet; returns the length of the reply in self.w.buf (0: none)
        and sets self.unicast (True: send it back to the sender's address and port)."""
        r = self.r
        try:
            r.start(buf, n)
            if r.flags & _FLAG_QR:
                # another host's record of a unique name of ours, with other data: a conflict
                if self.state != IDLE:
                    while r.record():
                        o = r.name
                        mine = D.name_eq(buf, n, o, self._inst) or D.name_eq(buf, n, o, self._host)
                        if mine and not self._match(buf, n, r):
                            self._conflict(now)
                            break
                return 0
            if (r.flags & 0x7800) or self.state < ANNOUNCING:
                # not a standard query, or our names are not ours yet (probing)
                self.stats[1] += 1
                return 0
            return self._query(buf, n, src_port, now)
        except D.DnsError:
            self.stats[2] += 1
            return 0

    def _query(self, buf, n, src_port, now):
        r = self.r
        want = 0
        extra = 0
        qu = True
        while r.question():
            c = r.cls & 0x7FFF
            if c != _CLASS_IN and c != _CLASS_ANY:
                continue
            if not r.cls & _TOP:
                qu = False
            t = r.type
            anyt = t == _TYPE_ANY
            if D.name_eq(buf, n, r.name, _SHIP):
                if anyt or t == _TYPE_PTR:
                    want |= 1 << _R_PTR
                    extra |= (1 << _R_SRV) | (1 << _R_TXT) | (1 << _R_A)  # RFC 6763 12.1
            elif D.name_eq(buf, n, r.name, self._inst):
                if anyt or t == _TYPE_SRV:
                    want |= 1 << _R_SRV
                    extra |= 1 << _R_A  # RFC 6763 12.2
                if anyt or t == _TYPE_TXT:
                    want |= 1 << _R_TXT
            elif D.name_eq(buf, n, r.name, self._host):
                if anyt or t == _TYPE_A:
                    want |= 1 << _R_A
            elif D.name_eq(buf, n, r.name, _SERVICES):
                if anyt or t == _TYPE_PTR:
                    want |= 1 << _R_SVC
        if not want:
            self.stats[1] += 1
            return 0
        # known-answer suppression (RFC 6762 7.1): the querier holds it with >= half our TTL
        known = 0
        half = _TTL // 2
        while r.record():
            if r.section == 1 and r.ttl >= half:
                known |= self._match(buf, n, r)
        want &= ~known
        extra &= ~(want | known)
        if not want:
            self.stats[1] += 1
            return 0
        legacy = src_port != _PORT
        w = self.w
        if legacy:
            # one-shot resolver (RFC 6762 6.7): its id and questions back, short TTL, no flush
            w.begin((buf[0] << 8) | buf[1], _RESPONSE)
            r.start(buf, n)
            while r.question():
                w.name_from(buf, n, r.name)
                w.u16(r.type)
                w.u16(r.cls & 0x7FFF)
                w._count(4)
            ttl = _LEGACY_TTL
            self.unicast = True
        else:
            w.begin(0, _RESPONSE)
            ttl = _TTL
            # QU (5.4): unicast, unless a record was not multicast within a quarter TTL
            m = want | extra
            if qu and not m & ~self._sent:
                for i in range(_N):
                    if m & (1 << i) and ticks_diff(now, self._last[i]) > _TTL * 250:
                        qu = False
            else:
                qu = False
            self.unicast = qu
        for i in range(_N):
            if want & (1 << i):
                self._put(i, ttl, not legacy, 1)
        for i in range(_N):
            if extra & (1 << i):
                self._put(i, ttl, not legacy, 3)
        self.shared = (want & ((1 << _R_PTR) | (1 << _R_SVC))) != 0
        if not self.unicast:
            self._multicast(want | extra, now)
        self.stats[0] += 1
        return w.pos


def _same(buf, off, data):
    for i in range(len(data)):
        if buf[off + i] != data[i]:
            return False
    return True

