# mDNS codec, responder and browser (lib/mdns), sans-IO; runs under CPython and MicroPython.
# Packets are built here by a small independent encoder (uncompressed names, or hand-written
# pointers); dnspython checks the bytes in test_mdns.py.
import sys

from mdns import dns as D
from mdns.browse import Browser
from mdns import setup as S
from mdns.responder import ANNOUNCING, IDLE, PROBING, UP, Responder
from mdns.setup import ship_txt

MPY = sys.implementation.name == "micropython"
SKI = "0123456789abcdef0123456789abcdef01234567"
CEM_SKI = "ab" * 20
INST = "OpenEVGW-Box-1234"


def _u16(v):
    return bytes([(v >> 8) & 0xFF, v & 0xFF])


def _name(text):
    out = b""
    for label in text.split("."):
        if label:
            b = label.encode()
            out += bytes([len(b)]) + b
    return out + b"\x00"


def _msg(flags=0, qs=(), an=(), ar=(), mid=0):
    """qs: (name, type, class); an/ar: (name, type, class, ttl, rdata bytes)."""
    out = _u16(mid) + _u16(flags) + _u16(len(qs)) + _u16(len(an)) + _u16(0) + _u16(len(ar))
    for name, t, c in qs:
        out += _name(name) + _u16(t) + _u16(c)
    for name, t, c, ttl, rd in tuple(an) + tuple(ar):
        out += _name(name) + _u16(t) + _u16(c) + _u16(ttl >> 16) + _u16(ttl & 0xFFFF) + _u16(len(rd)) + rd
    return out


def _txt(pairs):
    out = b""
    for k, v in pairs:
        s = ("%s=%s" % (k, v)).encode()
        out += bytes([len(s)]) + s
    return out


def _responder(up=True):
    txt = ship_txt(INST, SKI, brand="OpenEVGW", model="Box", dtype="ChargingStation", serial="1234")
    r = Responder(INST, "openevgw-1234", 4712, "192.168.1.20", txt)
    if up:
        r.start(0)
        t = 0
        while r.state != UP:
            r.poll(t)
            t += 250
    return r


def _records(buf, n):
    """[(section, type, class, ttl)] of a message, by our Reader."""
    rd = D.Reader()
    rd.start(buf, n)
    out = []
    while rd.record():
        out.append((rd.section, rd.type, rd.cls, rd.ttl))
    return out


SVC_Q = _msg(qs=[("_ship._tcp.local", 12, 1)])


# ---- codec ---------------------------------------------------------------------------------


def case_ref_and_label_ref():
    assert S.ref("_ship._tcp.local") == b"\x05_ship\x04_tcp\x05local\x00"
    assert S.ref("local.") == b"\x05local\x00"
    # an instance label keeps dots and spaces: it is one label
    r = S.label_ref("Box 1.2", S.ref("local"))
    assert r == b"\x07Box 1.2\x05local\x00"
    for bad in ("", "x" * 64):
        try:
            S.label_ref(bad, b"\x00")
            assert False
        except D.DnsError:
            pass


def case_name_end_follows_and_checks_pointers():
    # header + "\x03abc\x00" at 12, then a name "\x01x" + pointer to 12
    b = bytes(12) + b"\x03abc\x00" + b"\x01x\xc0\x0c"
    assert D.name_end(b, len(b), 12) == 17
    assert D.name_end(b, len(b), 17) == 21
    assert D.name_eq(b, len(b), 17, b"\x01X\x03ABC\x00")
    assert not D.name_eq(b, len(b), 17, b"\x01x\x03abd\x00")
    assert not D.name_eq(b, len(b), 17, b"\x01x\x00")


def _bad(b, off=12):
    try:
        D.name_end(b, len(b), off)
    except D.DnsError:
        return True
    return False


def case_name_end_rejects_loops_and_overruns():
    assert _bad(bytes(12) + b"\xc0\x0c")  # points at itself
    assert _bad(bytes(12) + b"\xc0\x0e\x00")  # forwards
    assert _bad(bytes(12) + b"\x01a\xc0\x0c")  # back into its own start: a loop
    assert _bad(bytes(12) + b"\x05ab")  # label runs past the end
    assert _bad(bytes(12) + b"\x01a")  # no root label
    assert _bad(bytes(12) + b"\x41a\x00")  # label type 01
    assert _bad(bytes(12) + b"\xc0")  # cut pointer
    # 64 labels of 3: 256 bytes of name
    assert _bad(bytes(12) + b"\x03abc" * 64 + b"\x00")
    assert not _bad(bytes(12) + b"\x03abc" * 63 + b"\x00")
    # a chain of 17 backward pointers is over the jump limit, 16 is fine
    b = bytearray(bytes(12) + b"\x00")
    for i in range(17):
        b += bytes([0xC0, len(b) - 2 if i else 12])
    assert _bad(bytes(b), len(b) - 2)
    assert not _bad(bytes(b), len(b) - 4)


def case_name_eq_never_raises_on_garbage():
    for junk in (b"\xff\xff", b"\xc0", b"\x3f", b"\x02a", b"\x00"):
        b = bytes(12) + junk
        assert D.name_eq(b, len(b), 12, b"\x01a\x00") is False


def case_writer_compresses_like_dnspython():
    w = D.Writer(256)
    w.begin(0, 0x8400)
    w.question(S.ref("a.b.local"), 1, 1)
    w.question(S.ref("C.b.LOCAL"), 1, 1)  # suffix b.local found, case ignored
    w.record(S.ref("x.y"), 12, 1, 7, 1)
    w.name(S.ref("a.b.local"))  # whole name found
    w.end()
    w.record(S.ref("x.y"), 33, 1, 7, 1)
    w.name(S.ref("z.b.local"), False)  # written in full, remembered nowhere
    w.end()
    b = bytes(w.buf[: w.pos])
    assert b[:12] == b"\x00\x00\x84\x00\x00\x02\x00\x02\x00\x00\x00\x00"
    body = b[12:]
    want = (b"\x01a\x01b\x05local\x00" + b"\x00\x01\x00\x01"
            + b"\x01C\xc0\x0e" + b"\x00\x01\x00\x01"
            + b"\x01x\x01y\x00" + b"\x00\x0c\x00\x01\x00\x00\x00\x07\x00\x02" + b"\xc0\x0c"
            + b"\xc0\x23" + b"\x00\x21\x00\x01\x00\x00\x00\x07\x00\x0b" + b"\x01z\x01b\x05local\x00")
    assert body == want, body


def case_writer_refuses_overflow():
    w = D.Writer(40)
    w.begin(0, 0)
    try:
        for _ in range(10):
            w.question(S.ref("abcdefgh.local"), 1, 1)
        assert False
    except D.DnsError:
        pass


def case_reader_sections_and_bounds():
    m = _msg(qs=[("a.local", 1, 1)], an=[("a.local", 1, 1, 5, b"\x01\x02\x03\x04")],
             ar=[("b.local", 16, 1, 5, b"\x01x")])
    rd = D.Reader()
    rd.start(m, len(m))
    assert rd.question() and rd.type == 1 and not rd.question()
    assert rd.record() and rd.section == 1 and rd.ttl == 5 and rd.rdlen == 4
    assert rd.record() and rd.section == 3 and rd.type == 16
    assert not rd.record()
    cut = m[:-1]
    rd.start(cut, len(cut))
    rd.record()
    try:
        rd.record()
        assert False
    except D.DnsError:
        pass


# ---- responder -----------------------------------------------------------------------------


def case_schedule_probes_then_announces_twice():
    r = _responder(up=False)
    assert r.state == IDLE and r.due_in(0) == -1 and r.poll(0) == 0
    r.start(1000)
    sent = []
    t = 1000
    while t < 6000:
        n = r.poll(t)
        if n:
            flags = (r.w.buf[2] << 8) | r.w.buf[3]
            sent.append((t, "resp" if flags & 0x8000 else "probe"))
        t += 50
    assert sent == [(1000, "probe"), (1250, "probe"), (1500, "probe"), (1750, "resp"), (2750, "resp")], sent
    assert r.state == UP and r.due_in(t) == -1


def case_probe_asks_qu_first_then_qm_with_proposals():
    r = _responder(up=False)
    r.start(0)
    n = r.poll(0)
    rd = D.Reader()
    rd.start(r.w.buf, n)
    assert rd.qd == 2 and rd.ns == 3 and rd.an == 0
    rd.question()
    assert rd.type == 255 and rd.cls == 0x8001
    n = r.poll(250)
    rd.start(r.w.buf, n)
    rd.question()
    assert rd.cls == 1
    recs = _records(r.w.buf, n)
    assert [x[1] for x in recs] == [33, 16, 1] and all(x[0] == 2 and x[2] == 1 for x in recs)


def case_no_answers_while_probing():
    r = _responder(up=False)
    r.start(0)
    r.poll(0)
    assert r.handle(SVC_Q, len(SVC_Q), 5353, 10) == 0


def case_ptr_query_answers_with_additionals():
    r = _responder()
    n = r.handle(SVC_Q, len(SVC_Q), 5353, 5000)
    assert n and not r.unicast and r.shared
    recs = _records(r.w.buf, n)
    assert recs == [(1, 12, 1, 120), (3, 33, 0x8001, 120), (3, 16, 0x8001, 120), (3, 1, 0x8001, 120)], recs


def case_each_record_asked_alone():
    r = _responder()
    inst = INST + "._ship._tcp.local"
    for name, t, want in (
        (inst, 33, [(1, 33), (3, 1)]),
        (inst, 16, [(1, 16)]),
        (inst, 255, [(1, 33), (1, 16), (3, 1)]),
        ("OPENEVGW-1234.local", 1, [(1, 1)]),
        ("openevgw-1234.local", 255, [(1, 1)]),
        ("_services._dns-sd._udp.local", 12, [(1, 12)]),
        ("_ship._tcp.local", 255, [(1, 12), (3, 33), (3, 16), (3, 1)]),
    ):
        q = _msg(qs=[(name, t, 1)])
        n = r.handle(q, len(q), 5353, 9000)
        got = [(s, ty) for s, ty, c, ttl in _records(r.w.buf, n)]
        assert got == want, (name, t, got)


def case_other_names_types_and_classes_ignored():
    r = _responder()
    for name, t, c in (("_http._tcp.local", 12, 1), ("openevgw-1234.local", 28, 1),
                       ("_ship._tcp.local", 12, 3), ("other._ship._tcp.local", 33, 1)):
        q = _msg(qs=[(name, t, c)])
        assert r.handle(q, len(q), 5353, 9000) == 0
    # a response (QR) and a non-zero opcode are not queries
    q = _msg(flags=0x8000, qs=[("_ship._tcp.local", 12, 1)])
    assert r.handle(q, len(q), 5353, 9000) == 0
    q = _msg(flags=0x2800, qs=[("_ship._tcp.local", 12, 1)])
    assert r.handle(q, len(q), 5353, 9000) == 0


def _ptr_rdata():
    return _name(INST + "._ship._tcp.local")


def case_known_answer_suppression():
    r = _responder()
    ka = ("_ship._tcp.local", 12, 1, 100, _ptr_rdata())
    q = _msg(qs=[("_ship._tcp.local", 12, 1)], an=[ka])
    assert r.handle(q, len(q), 5353, 9000) == 0
    # less than half the TTL left at the querier: answered again
    q = _msg(qs=[("_ship._tcp.local", 12, 1)], an=[("_ship._tcp.local", 12, 1, 59, _ptr_rdata())])
    assert r.handle(q, len(q), 5353, 9000)
    # another instance's PTR suppresses nothing
    q = _msg(qs=[("_ship._tcp.local", 12, 1)], an=[("_ship._tcp.local", 12, 1, 120, _name("x._ship._tcp.local"))])
    assert r.handle(q, len(q), 5353, 9000)
    # a known SRV is left out of the additionals; a known A too
    srv = b"\x00\x00\x00\x00\x12\x68" + _name("openevgw-1234.local")
    a = bytes([192, 168, 1, 20])
    q = _msg(qs=[("_ship._tcp.local", 12, 1)],
             an=[(INST + "._ship._tcp.local", 33, 0x8001, 120, srv), ("openevgw-1234.local", 1, 1, 120, a)])
    n = r.handle(q, len(q), 5353, 9000)
    assert [x[1] for x in _records(r.w.buf, n)] == [12, 16]
    # an SRV with another port is not ours
    srv2 = b"\x00\x00\x00\x00\x12\x69" + _name("openevgw-1234.local")
    q = _msg(qs=[(INST + "._ship._tcp.local", 33, 1)], an=[(INST + "._ship._tcp.local", 33, 1, 120, srv2)])
    assert r.handle(q, len(q), 5353, 9000)


def case_qu_answered_unicast_only_when_recently_multicast():
    r = _responder()  # announced at 750 and 1750
    q = _msg(qs=[("_ship._tcp.local", 12, 0x8001)])
    assert r.handle(q, len(q), 5353, 2000) and r.unicast
    # a quarter TTL (30 s) later the records are multicast to refresh every cache
    assert r.handle(q, len(q), 5353, 1750 + 30001) and not r.unicast
    assert r.handle(q, len(q), 5353, 1750 + 30002) and r.unicast
    # QU and QM questions together: multicast
    q = _msg(qs=[("_ship._tcp.local", 12, 0x8001), ("openevgw-1234.local", 1, 1)])
    assert r.handle(q, len(q), 5353, 1750 + 30003) and not r.unicast


def case_legacy_unicast_echoes_id_and_question():
    r = _responder()
    q = _msg(qs=[("OpenEVGW-1234.Local", 1, 1)], mid=0x4242)
    n = r.handle(q, len(q), 40000, 9000)
    assert n and r.unicast
    b = r.w.buf
    assert b[0] == 0x42 and b[1] == 0x42 and b[5] == 1
    rd = D.Reader()
    rd.start(b, n)
    rd.question()
    assert D.name_eq(b, n, rd.name, b"\x0dopenevgw-1234\x05local\x00")
    assert _records(b, n) == [(1, 1, 1, 10)]  # TTL 10, no cache-flush bit


def case_reply_buffer_fits_the_largest_messages_and_grows():
    # the buffer is sized by the records (not 1460 B): the whole announcement and a legacy reply
    # to one question of the longest legal name fit, and a longer TXT grows it
    r = _responder()
    assert r.w.size < 1024
    long_name = ".".join(["a" * 63] * 3 + ["b" * 55]) + ".local"  # 255 B on the wire
    q = _msg(qs=[(long_name, 1, 1), (INST + "._ship._tcp.local", 255, 1)], mid=7)
    n = r.handle(q, len(q), 40000, 9000)
    assert n and r.unicast and len(_records(r.w.buf, n)) == 3  # SRV, TXT, A (+ nothing for the other)
    big = ship_txt(INST, SKI, brand="B" * 32, model="M" * 32, dtype="T" * 32, serial="S" * 32)
    big += [("x%d" % i, "v" * 250) for i in range(4)]
    size = r.w.size
    r.configure(txt_pairs=big)
    assert r.w.size > size
    r.changed(20000)
    n = r.poll(20000)
    recs = _records(r.w.buf, n)
    assert len(recs) == 5
    rd = D.Reader()
    rd.start(r.w.buf, n)
    while rd.record():
        if rd.type == 16:
            assert bytes(r.w.buf[rd.rdata:rd.rdata + rd.rdlen]) == _txt(big)


def case_malformed_and_truncated_counted():
    r = _responder()
    for junk in (b"", b"\x00" * 11, SVC_Q[:-1], SVC_Q[:12] + b"\xc0\x0c\x00\x0c\x00\x01"):
        assert r.handle(junk, len(junk), 5353, 9000) == 0
    assert r.stats[2] == 4


def case_conflict_while_probing_renames():
    r = _responder(up=False)
    r.start(0)
    r.poll(0)
    other = _msg(flags=0x8400,
                 an=[(INST + "._ship._tcp.local", 33, 0x8001, 120, b"\x00\x00\x00\x00\x00\x50" + _name("other.local"))])
    r.handle(other, len(other), 5353, 100)
    assert r.conflicts == 1 and r.state == PROBING
    assert r.instance == INST + " (2)" and r.host == "openevgw-1234-2"
    # the old name is no longer ours, the new one is
    q = _msg(qs=[(INST + " (2)._ship._tcp.local", 16, 1)])
    t = 100
    while r.state != UP:
        r.poll(t)
        t += 250
    assert r.handle(q, len(q), 5353, t)


def case_own_announcement_is_not_a_conflict():
    r = _responder(up=False)
    r.start(0)
    r.poll(0)
    twin = _responder()
    twin.changed(5000)
    n = twin.poll(5000)
    echo = bytes(twin.w.buf[:n])
    r.handle(echo, len(echo), 5353, 10)
    assert r.conflicts == 0 and r.instance == INST


def case_goodbye_sends_ttl_zero_and_falls_silent():
    r = _responder()
    n = r.goodbye()
    recs = _records(r.w.buf, n)
    assert len(recs) == 5 and all(x[3] == 0 for x in recs)
    assert r.state == IDLE and r.handle(SVC_Q, len(SVC_Q), 5353, 9000) == 0
    assert r.goodbye() == 0


def case_change_is_announced_twice():
    r = _responder()
    r.configure(port=4713)
    r.changed(10000)
    assert r.state == ANNOUNCING
    assert r.poll(10000) and r.poll(10500) == 0 and r.poll(11000) and r.state == UP
    q = _msg(qs=[(INST + "._ship._tcp.local", 33, 1)])
    n = r.handle(q, len(q), 5353, 12000)
    rd = D.Reader()
    rd.start(r.w.buf, n)
    rd.record()
    assert (r.w.buf[rd.rdata + 4] << 8) | r.w.buf[rd.rdata + 5] == 4713


def case_txt_order_and_values():
    pairs = ship_txt("ID-1", SKI, brand="B" * 40, model="M", dtype="EVSE", serial=None)
    assert [k for k, v in pairs] == ["txtvers", "id", "path", "ski", "register", "brand", "model", "type", "cat"]
    assert dict(pairs)["register"] == "false" and len(dict(pairs)["brand"]) == 32


def case_answering_allocates_nothing():
    r = _responder()
    q = _msg(qs=[("_ship._tcp.local", 12, 1)],
             an=[("_services._dns-sd._udp.local", 12, 1, 10, _name("_ship._tcp.local"))])
    n0 = r.handle(q, len(q), 5353, 5000)
    if MPY:
        import micropython

        micropython.heap_lock()
        try:
            n = r.handle(q, len(q), 5353, 5001)
            m = r.handle(SVC_Q, len(SVC_Q), 5353, 5002)
        finally:
            micropython.heap_unlock()
        assert n == n0 and m == n0


# ---- browser -------------------------------------------------------------------------------


def _announce(inst, host, port, ip, ski, ttl=120, extra_first=False):
    srv = b"\x00\x00\x00\x00" + _u16(port) + _name(host)
    txt = _txt([("txtvers", "1"), ("id", inst), ("path", "/ship/"), ("ski", ski), ("register", "false")])
    an = [("_ship._tcp.local", 12, 1, ttl, _name(inst + "._ship._tcp.local"))]
    ar = [(inst + "._ship._tcp.local", 33, 0x8001, ttl, srv), (inst + "._ship._tcp.local", 16, 0x8001, ttl, txt),
          (host, 1, 0x8001, ttl, bytes(ip))]
    if extra_first:  # address and SRV before the PTR
        return _msg(flags=0x8400, an=ar[::-1] + an)
    return _msg(flags=0x8400, an=an, ar=ar)


def case_browser_learns_picks_and_forgets():
    b = Browser(own_ski=SKI)
    b.start(0)
    n = b.poll(0)
    rd = D.Reader()
    rd.start(b.w.buf, n)
    assert rd.qd == 1 and rd.question() and rd.type == 12
    own = _announce(INST, "openevgw-1234.local", 4712, [10, 0, 0, 2], SKI)
    assert b.feed(own, len(own), 10) and b.pick() is None  # ourselves: never picked
    m = _announce("CEM-1", "cem.local", 4711, [10, 0, 0, 3], CEM_SKI.upper(), extra_first=True)
    assert b.feed(m, len(m), 20)
    f = b.pick()
    assert f.instance == "CEM-1" and f.ip == "10.0.0.3" and f.port == 4711 and f.ski == CEM_SKI and f.path == "/ship/"
    assert b.pick(ski=CEM_SKI) is f and b.pick(ski="cd" * 20) is None
    assert b.pick(trusted=lambda s: False) is None and b.pick(trusted=lambda s: s == CEM_SKI) is f
    assert not b.feed(m, len(m), 30)  # nothing new
    bye = _announce("CEM-1", "cem.local", 4711, [10, 0, 0, 3], CEM_SKI, ttl=0)
    assert b.feed(bye, len(bye), 40) and b.pick() is None
    # queries are not responses; junk is dropped
    assert not b.feed(SVC_Q, len(SVC_Q), 50) and not b.feed(b"\x00\x01", 2, 50)


def case_browser_bounded_under_an_announcement_flood():
    # anyone on the LAN may announce instances: a flood of unresolved ones with the longest
    # labels neither grows the list past 8 nor overflows the query (which raised and ended the
    # mDNS task, and so the gateway), and a CEM announcing itself whole still gets in
    b = Browser(own_ski=SKI)
    b.start(0)
    for i in range(40):
        inst = ("x%02d" % i) * 21
        ptr = _msg(flags=0x8400, an=[("_ship._tcp.local", 12, 1, 4500, _name(inst + "._ship._tcp.local"))])
        b.feed(ptr, len(ptr), 10 + i)
        assert len(b.found) <= 8
    rd = D.Reader()
    for t in (100, 1200, 2400):
        n = b.poll(t)
        assert 12 < n <= b.w.size
        rd.start(b.w.buf, n)
        k = 0
        while rd.question():
            k += 1
        assert k == rd.qd >= 1
    m = _announce("CEM-1", "cem.local", 4711, [10, 0, 0, 3], CEM_SKI)
    assert b.feed(m, len(m), 3000) and len(b.found) == 8
    assert b.pick().instance == "CEM-1"
    # eight complete instances: a ninth is not kept, and the ones held stay
    for i in range(7):
        m = _announce("CEM-x%d" % i, "x%d.local" % i, 4711, [10, 0, 0, 10 + i], "%040x" % (i + 1))
        b.feed(m, len(m), 3100 + i)
    late = _announce("CEM-late", "late.local", 4711, [10, 0, 0, 9], "ab" * 20)
    assert not b.feed(late, len(late), 3200)
    assert len(b.found) == 8 and b.pick(ski=CEM_SKI).instance == "CEM-1"
    n = b.poll(200000)
    rd.start(b.w.buf, n)
    assert n <= b.w.size and rd.qd == 1


def case_browser_resolves_and_sends_known_answers():
    b = Browser()
    b.start(0)
    b.poll(0)
    ptr = _msg(flags=0x8400, an=[("_ship._tcp.local", 12, 1, 120, _name("CEM-2._ship._tcp.local"))])
    assert b.feed(ptr, len(ptr), 100)
    n = b.poll(100)  # at once: resolve the new instance
    rd = D.Reader()
    rd.start(b.w.buf, n)
    qs = []
    while rd.question():
        qs.append(rd.type)
    assert qs == [12, 33, 16]
    assert rd.an == 1  # the PTR it holds, as a known answer
    rd.record()
    assert rd.ttl == 120 and D.name_eq(b.w.buf, n, rd.rdata, S.ref("cem-2._ship._tcp.local"))
    srv = _msg(flags=0x8400, an=[
        ("CEM-2._ship._tcp.local", 33, 0x8001, 120, b"\x00\x00\x00\x00\x12\x67" + _name("cem2.local")),
        ("CEM-2._ship._tcp.local", 16, 0x8001, 120, _txt([("txtvers", "1"), ("ski", CEM_SKI)]))])
    b.feed(srv, len(srv), 200)
    n = b.poll(1100)
    rd.start(b.w.buf, n)
    rd.question()
    rd.question()
    assert rd.type == 1  # the address is still missing
    a = _msg(flags=0x8400, an=[("cem2.local", 1, 0x8001, 120, b"\x0a\x00\x00\x07")])
    assert b.feed(a, len(a), 1200)
    assert b.pick().ip == "10.0.0.7"


def case_browser_keeps_no_address_of_an_unknown_host():
    # an A record that no SRV named yet is not kept (every host on the network sends them):
    # the address is asked for once the SRV names its host
    b = Browser()
    b.start(0)
    a = _msg(flags=0x8400, an=[("cem3.local", 1, 0x8001, 120, b"\x0a\x00\x00\x08")])
    assert not b.feed(a, len(a), 0)
    inst = "CEM-3._ship._tcp.local"
    m = _msg(flags=0x8400, an=[("_ship._tcp.local", 12, 1, 120, _name(inst))],
             ar=[(inst, 33, 0x8001, 120, b"\x00\x00\x00\x00" + _u16(4711) + _name("cem3.local")),
                 (inst, 16, 0x8001, 120, _txt([("txtvers", "1"), ("ski", CEM_SKI)]))])
    assert b.feed(m, len(m), 10) and b.found[0].ip is None and b.pick() is None
    n = b.poll(10)
    rd = D.Reader()
    rd.start(b.w.buf, n)
    qs = []
    while rd.question():
        qs.append((rd.type, D.name_eq(b.w.buf, n, rd.name, S.ref("cem3.local"))))
    assert (1, True) in qs, qs
    assert b.feed(a, len(a), 20) and b.pick().ip == "10.0.0.8"


def case_browser_interval_doubles_to_the_cap():
    b = Browser(max_interval_ms=8000)
    b.start(0)
    t = 0
    sent = []
    while t <= 40000:
        if b.poll(t):
            sent.append(t)
        t += 500
    assert sent == [0, 1000, 3000, 7000, 15000, 23000, 31000, 39000], sent


def case_browser_expires_instances():
    b = Browser()
    b.start(0)
    m = _announce("CEM-1", "cem.local", 4711, [10, 0, 0, 3], CEM_SKI, ttl=2)
    b.feed(m, len(m), 0)
    assert b.pick() is not None
    b.poll(2500)
    assert b.pick() is None and b.found == []


def case_browser_txt_without_txtvers_1_has_no_ski():
    b = Browser()
    b.start(0)
    an = [("_ship._tcp.local", 12, 1, 120, _name("X._ship._tcp.local")),
          ("X._ship._tcp.local", 33, 1, 120, b"\x00\x00\x00\x00\x00\x01" + _name("x.local")),
          ("X._ship._tcp.local", 16, 1, 120, _txt([("txtvers", "2"), ("ski", CEM_SKI)]) + b"\x07novalue" + b"\x09"),
          ("x.local", 1, 1, 120, b"\x0a\x00\x00\x01")]
    m = _msg(flags=0x8400, an=an)
    b.feed(m, len(m), 0)
    assert b.found[0].txt.get("novalue", 1) is None and b.found[0].ski is None and b.pick() is None
