"""mDNS (lib/mdns): the shared cases, our packets byte for byte against dnspython building the
same messages from the same inputs, our parser fed dnspython-built messages, hypothesis
properties, and a mutation corpus under MicroPython and CPython."""

import os
import re
import subprocess
import sys

import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype as RT
import dns.rrset
from support import mpyrun
from support.paths import MPY_SCRIPTS
import pytest
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.SRV import SRV
from hypothesis import HealthCheck, given, settings, strategies as st

from cases import caserun
from cases import mdns_cases as cases
from gateway import config
from gateway import mdns_service as service
from mdns import dns as D
from mdns.browse import Browser
from mdns.responder import UP, Responder

IN = dns.rdataclass.IN
FLUSH = 0x8001
SKI = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize("name", caserun.names(cases))
def test_case(name):
    getattr(cases, name)()


# ---- the reference: dnspython builds the message from the same inputs -----------------------


class Spec:
    def __init__(self, instance="OpenEVGW-Box-1234", host="openevgw-1234", port=4712, ip="192.168.1.20",
                 txt=None):
        self.instance = instance
        self.host = host
        self.port = port
        self.ip = ip
        self.txt = txt if txt is not None else [
            ("txtvers", "1"), ("id", instance), ("path", "/ship/"), ("ski", SKI), ("register", "false"),
            ("brand", "OpenEVGW"), ("model", "Box"), ("type", "ChargingStation"), ("serial", "1234"), ("cat", "3")]

    def responder(self):
        r = Responder(self.instance, self.host, self.port, self.ip, self.txt)
        r.start(0)
        t = 0
        while r.state != UP:
            r.poll(t)
            t += 250
        return r


def _name(*labels):
    return dns.name.Name([label.encode() if isinstance(label, str) else label for label in labels] + [b""])


SVC = _name("_ship", "_tcp", "local")
SERVICES = _name("_services", "_dns-sd", "_udp", "local")


def _rrset(owner, rd, ttl, flush):
    if flush:  # the cache-flush bit is the top bit of the class: dnspython carries it generically
        rd = dns.rdata.GenericRdata(FLUSH, rd.rdtype, rd.to_wire())
    rs = dns.rrset.RRset(owner, rd.rdclass, rd.rdtype)
    rs.add(rd, ttl)
    return rs


def records(spec, ttl=120, flush=True):
    inst = _name(spec.instance, "_ship", "_tcp", "local")
    host = _name(spec.host, "local")
    txt = [("%s=%s" % kv).encode() for kv in spec.txt]
    return {
        "PTR": _rrset(SVC, PTR(IN, RT.PTR, inst), ttl, False),
        "SRV": _rrset(inst, SRV(IN, RT.SRV, 0, 0, spec.port, host), ttl, flush),
        "TXT": _rrset(inst, TXT(IN, RT.TXT, txt), ttl, flush),
        "A": _rrset(host, A(IN, RT.A, spec.ip), ttl, flush),
        "SVC": _rrset(SERVICES, PTR(IN, RT.PTR, SVC), ttl, False),
    }


def message(flags, question=(), answer=(), authority=(), additional=(), mid=0):
    m = dns.message.Message(id=mid)
    m.flags = flags
    m.question = list(question)
    m.answer = list(answer)
    m.authority = list(authority)
    m.additional = list(additional)
    return m.to_wire()


RESPONSE = dns.flags.QR | dns.flags.AA


def _ours(buf, n):
    return bytes(buf[:n])


def _query(qname, qtype, **kw):
    q = dns.message.make_query(qname, qtype, **kw)
    q.id = 0  # mDNS queries carry id 0
    return q


SPECS = [
    Spec(),
    Spec(instance="Wall Box 1.2 ü", host="wb-0042", port=4711, ip="10.1.2.3"),
    Spec(instance="E" * 63, host="h" * 63, port=65535, ip="255.255.255.255",
         txt=[("txtvers", "1"), ("id", "x" * 200)]),
]


@pytest.mark.parametrize("spec", SPECS, ids=["plain", "spaces-dots-utf8", "longest"])
def test_announcement_equals_dnspython(spec):
    r = Responder(spec.instance, spec.host, spec.port, spec.ip, spec.txt)
    r.start(0)
    for t in (0, 250, 500):
        r.poll(t)
    n = r.poll(750)
    rec = records(spec)
    want = message(RESPONSE, answer=[rec[k] for k in ("PTR", "SRV", "TXT", "A", "SVC")])
    assert _ours(r.w.buf, n) == want
    # and it reads back as the same content
    m = dns.message.from_wire(want)
    assert [(rs.name, rs.rdtype, rs.rdclass) for rs in m.answer] == [
        (rec[k].name, rec[k].rdtype, rec[k].rdclass) for k in ("PTR", "SRV", "TXT", "A", "SVC")]


@pytest.mark.parametrize("spec", SPECS[:2], ids=["plain", "spaces-dots-utf8"])
def test_probes_equal_dnspython(spec):
    r = Responder(spec.instance, spec.host, spec.port, spec.ip, spec.txt)
    r.start(0)
    rec = records(spec, flush=False)
    inst = _name(spec.instance, "_ship", "_tcp", "local")
    host = _name(spec.host, "local")
    for t, cls in ((0, FLUSH), (250, IN), (500, IN)):  # the first probe asks for a unicast answer
        n = r.poll(t)
        want = message(0, question=[dns.rrset.RRset(inst, cls, RT.ANY), dns.rrset.RRset(host, cls, RT.ANY)],
                       authority=[rec["SRV"], rec["TXT"], rec["A"]])
        assert _ours(r.w.buf, n) == want, t


def test_goodbye_equals_dnspython():
    spec = Spec()
    r = spec.responder()
    n = r.goodbye()
    rec = records(spec, ttl=0)
    assert _ours(r.w.buf, n) == message(RESPONSE, answer=[rec[k] for k in ("PTR", "SRV", "TXT", "A", "SVC")])


INST = "OpenEVGW-Box-1234._ship._tcp.local."
ANSWERS = [
    # query name, type, answer records, additional records
    ("_ship._tcp.local.", "PTR", ["PTR"], ["SRV", "TXT", "A"]),
    ("_SHIP._TCP.LOCAL.", "PTR", ["PTR"], ["SRV", "TXT", "A"]),
    ("_ship._tcp.local.", "ANY", ["PTR"], ["SRV", "TXT", "A"]),
    (INST, "SRV", ["SRV"], ["A"]),
    (INST.lower(), "TXT", ["TXT"], []),
    (INST, "ANY", ["SRV", "TXT"], ["A"]),
    ("openevgw-1234.local.", "A", ["A"], []),
    ("OpenEVGW-1234.local.", "ANY", ["A"], []),
    ("_services._dns-sd._udp.local.", "PTR", ["SVC"], []),
]


@pytest.mark.parametrize("qname,qtype,answer,additional", ANSWERS)
@pytest.mark.parametrize("edns", [False, True], ids=["plain", "edns"])
def test_answers_to_dnspython_queries_equal_dnspython(qname, qtype, answer, additional, edns):
    spec = Spec()
    r = spec.responder()
    q = _query(qname, qtype, use_edns=0 if edns else False).to_wire()
    n = r.handle(q, len(q), 5353, 5000)
    rec = records(spec)
    assert not r.unicast
    assert _ours(r.w.buf, n) == message(RESPONSE, answer=[rec[k] for k in answer],
                                        additional=[rec[k] for k in additional])


def test_several_questions_in_one_query():
    spec = Spec()
    r = spec.responder()
    q = dns.message.Message(id=0)
    q.question = [dns.rrset.RRset(dns.name.from_text(x), IN, t) for x, t in (
        ("_http._tcp.local.", RT.PTR), ("openevgw-1234.local.", RT.A), ("_services._dns-sd._udp.local.", RT.PTR),
        ("_ship._tcp.local.", RT.PTR))]
    w = q.to_wire()
    n = r.handle(w, len(w), 5353, 5000)
    rec = records(spec)
    # answers in our record order; the A record asked for is an answer, not an additional
    assert _ours(r.w.buf, n) == message(RESPONSE, answer=[rec[k] for k in ("PTR", "A", "SVC")],
                                        additional=[rec["SRV"], rec["TXT"]])


def test_legacy_unicast_equals_dnspython():
    spec = Spec()
    r = spec.responder()
    q = dns.message.make_query("_Ship._TCP.local.", "PTR")
    q.id = 0xBEEF
    w = q.to_wire()
    n = r.handle(w, len(w), 49152, 5000)
    assert r.unicast
    rec = records(spec, ttl=10, flush=False)
    want = message(RESPONSE, question=q.question, answer=[rec["PTR"]], additional=[rec[k] for k in ("SRV", "TXT", "A")],
                   mid=0xBEEF)
    assert _ours(r.w.buf, n) == want
    # a stub resolver accepts it as the answer to its query
    assert q.is_response(dns.message.from_wire(want))


def test_known_answers_in_a_dnspython_query():
    spec = Spec()
    r = spec.responder()
    rec = records(spec, ttl=100, flush=False)
    q = _query("_ship._tcp.local.", "PTR")
    q.answer = [rec["PTR"], rec["SRV"]]
    w = q.to_wire()
    assert r.handle(w, len(w), 5353, 5000) == 0  # the PTR is known: nothing to say
    q = _query(INST, "ANY")
    q.answer = [rec["SRV"]]
    w = q.to_wire()
    n = r.handle(w, len(w), 5353, 5000)
    full = records(spec)
    assert _ours(r.w.buf, n) == message(RESPONSE, answer=[full["TXT"]], additional=[full["A"]])


def test_browser_query_equals_dnspython():
    b = Browser()
    b.start(0)
    n = b.poll(0)
    assert _ours(b.w.buf, n) == message(0, question=[dns.rrset.RRset(SVC, IN, RT.PTR)])
    # after learning two instances: the PTR question with both as known answers
    for spec in (Spec(instance="CEM-1", host="cem1"), Spec(instance="CEM 2", host="cem2", ip="10.0.0.9")):
        w = message(RESPONSE, answer=[records(spec)[k] for k in ("PTR", "SRV", "TXT", "A")])
        b.feed(w, len(w), 10)
    n = b.poll(1000)
    want = message(0, question=[dns.rrset.RRset(SVC, IN, RT.PTR)], answer=[
        _rrset(SVC, PTR(IN, RT.PTR, _name("cem-1", "_ship", "_tcp", "local")), 119, False),
        _rrset(SVC, PTR(IN, RT.PTR, _name("cem 2", "_ship", "_tcp", "local")), 119, False)])
    assert _ours(b.w.buf, n) == want
    assert [f.instance for f in b.found] == ["CEM-1", "CEM 2"]


def test_browser_reads_a_dnspython_announcement_of_a_cem():
    spec = Spec(instance="HEMS", host="hems", port=4711, ip="10.0.0.5",
                txt=[("txtvers", "1"), ("id", "HEMS-1"), ("path", "/ship/x"), ("ski", "AB" * 20), ("register", "true"),
                     ("type", "EnergyManagementSystem")])
    rec = records(spec)
    w = message(RESPONSE, answer=[rec["A"], rec["TXT"], rec["PTR"]], additional=[rec["SRV"]])
    b = Browser(own_ski=SKI)
    assert b.feed(w, len(w), 0)
    f = b.pick()
    assert (f.instance, f.ip, f.port, f.ski, f.path) == ("HEMS", "10.0.0.5", 4711, "ab" * 20, "/ship/x")
    assert f.txt["type"] == "EnergyManagementSystem"


# ---- our parser on dnspython-built messages --------------------------------------------------

LABELS = st.sampled_from(["local", "_ship", "_tcp", "a", "B", "Box-1", "x y", "wall.box", "é"]) | st.text(
    st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
NAMES = st.lists(LABELS, min_size=1, max_size=5).map(lambda ls: _name(*ls))


@st.composite
def rrsets(draw):
    owner = draw(NAMES)
    kind = draw(st.sampled_from(["A", "PTR", "TXT", "SRV"]))
    if kind == "A":
        rd = A(IN, RT.A, draw(st.sampled_from(["10.0.0.1", "127.0.0.1", "192.168.178.20"])))
    elif kind == "PTR":
        rd = PTR(IN, RT.PTR, draw(NAMES))
    elif kind == "TXT":
        rd = TXT(IN, RT.TXT, draw(st.lists(st.binary(max_size=40), min_size=1, max_size=4)))
    else:
        rd = SRV(IN, RT.SRV, 0, 0, draw(st.integers(0, 65535)), draw(NAMES))
    rs = dns.rrset.RRset(owner, IN, rd.rdtype)
    rs.add(rd, draw(st.integers(0, 2**31 - 1)))
    return rs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(NAMES, st.sampled_from([RT.A, RT.PTR, RT.SRV, RT.TXT, RT.ANY])), max_size=4),
       st.lists(rrsets(), max_size=4), st.lists(rrsets(), max_size=3), st.booleans())
def test_reader_walks_dnspython_messages_as_dnspython_wrote_them(qs, an, ar, qr):
    m = dns.message.Message(id=7)
    m.flags = RESPONSE if qr else 0
    m.question = [dns.rrset.RRset(nm, IN, t) for nm, t in qs]
    m.answer = an
    m.additional = ar
    w = m.to_wire()
    rd = D.Reader()
    rd.start(w, len(w))
    scratch = bytearray(256)

    def lower_wire(name):
        return name.canonicalize().to_wire()

    for nm, t in qs:
        assert rd.question()
        k = D.read_name(w, len(w), rd.name, scratch)
        assert bytes(scratch[:k]) == lower_wire(nm) and rd.type == t and rd.cls == IN
        assert D.name_eq(w, len(w), rd.name, nm.to_wire())
    assert not rd.question()
    for sec, lst in ((1, an), (3, ar)):
        for rs in lst:
            assert rd.record()
            assert rd.section == sec and rd.type == rs.rdtype and rd.ttl == rs.ttl
            assert D.name_eq(w, len(w), rd.name, rs.name.to_wire())
            rdata = rs[0]
            if rs.rdtype == RT.PTR:
                assert D.name_eq(w, len(w), rd.rdata_name(), rdata.target.to_wire())
            elif rs.rdtype == RT.SRV:
                assert D.name_eq(w, len(w), rd.rdata_name(6), rdata.target.to_wire())
            elif rs.rdtype in (RT.A, RT.TXT):
                assert bytes(w[rd.rdata: rd.rdata + rd.rdlen]) == rdata.to_wire()
    assert not rd.record()
    # every field set: the MicroPython instance table of 17 slots keeps a free one (at 17 it
    # would grow to 23, 48 B more for the responder's reader for as long as the gateway runs)
    assert len(rd.__dict__) <= 16, sorted(rd.__dict__)


_LOWER = bytes(range(65)) + bytes(range(97, 123)) + bytes(range(91, 256))  # ASCII A-Z to a-z only
# bytes around the letters' edges (@ [ ` {) and above ASCII, where a case fold must not reach
_EDGE = st.binary(min_size=1, max_size=6).map(lambda b: bytes(b"Aa@[`{Zz\xc1\xe1"[c % 10] for c in b))


def _wire(labels):
    return b"".join(bytes([len(x)]) + x for x in labels) + b"\x00"


@settings(max_examples=500, deadline=None)
@given(st.lists(_EDGE, min_size=1, max_size=4), st.data())
def test_name_eq_ignores_ascii_case_only(a, data):
    # a name of labels over letters and their neighbours against the same name with bit 5 of
    # some bytes flipped (A/a, but also @/`, [/{, 0xC1/0xE1) or against another name: equal
    # exactly when equal with A-Z folded to a-z (RFC 4343), whichever side the upper case is on
    if data.draw(st.booleans()):
        b = [bytes(c ^ (32 if data.draw(st.booleans()) else 0) for c in x) for x in a]
    else:
        b = data.draw(st.lists(_EDGE, min_size=1, max_size=4))
    w = bytes(12) + _wire(a)
    same = [x.translate(_LOWER) for x in a] == [x.translate(_LOWER) for x in b]
    assert D.name_eq(w, len(w), 12, _wire(b)) is same
    out = bytearray(64)
    k = D.read_name(w, len(w), 12, out, True, 3)  # lower-cased, copied from offset 3
    assert bytes(out[3:k]) == _wire([x.translate(_LOWER) for x in a])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.lists(LABELS, min_size=1, max_size=3).map(lambda ls: _name(*ls)),
                          st.sampled_from([RT.A, RT.PTR, RT.SRV, RT.TXT, RT.ANY])), max_size=3),
       st.integers(0, 3), st.sampled_from(["_ship._tcp.local.", "_SHIP._tcp.Local.", "_Ship._TCP.LOCAL."]),
       st.integers(0, 0xFFFF))
def test_legacy_replies_echo_any_questions_as_dnspython(others, at, ours, mid):
    # a one-shot query: its questions echoed as they came, in place in the reply buffer, and our
    # records compressed against them (ASCII case ignored) exactly as dnspython writes the reply
    spec = Spec()
    r = spec.responder()
    qs = [dns.rrset.RRset(nm, IN, t) for nm, t in others]
    qs.insert(min(at, len(qs)), dns.rrset.RRset(dns.name.from_text(ours), IN, RT.PTR))
    q = dns.message.Message(id=mid)
    q.question = qs
    w = q.to_wire()
    n = r.handle(w, len(w), 40000, 5000)
    assert r.unicast
    rec = records(spec, ttl=10, flush=False)
    assert _ours(r.w.buf, n) == message(RESPONSE, question=qs, answer=[rec["PTR"]],
                                        additional=[rec[k] for k in ("SRV", "TXT", "A")], mid=mid)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["PTR", "SRV", "TXT", "A", "SVC"]), unique=True, min_size=1),
       st.text(min_size=1, max_size=20).filter(lambda s: 0 < len(s.encode()) <= 63),
       st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True),
       st.integers(1, 65535), st.tuples(*[st.integers(0, 255)] * 4),
       st.lists(st.tuples(st.from_regex(r"[a-z]{1,9}", fullmatch=True), st.text(max_size=30)), max_size=4))
def test_any_service_answers_equal_dnspython(keys, instance, host, port, ip, extra):
    ip = "%d.%d.%d.%d" % ip
    spec = Spec(instance=instance, host=host, port=port, ip=ip,
                txt=[("txtvers", "1"), ("id", "x"), ("ski", SKI)] + extra)
    r = spec.responder()
    rec = records(spec)
    # a query for each of the wanted records by name and type
    owners = {"PTR": ("_ship._tcp.local.", "PTR"), "SRV": (None, "SRV"), "TXT": (None, "TXT"),
              "A": (spec.host + ".local.", "A"), "SVC": ("_services._dns-sd._udp.local.", "PTR")}
    q = dns.message.Message(id=0)
    for k in keys:
        nm, t = owners[k]
        owner = rec[k].name if nm is None else dns.name.from_text(nm)
        q.question.append(dns.rrset.RRset(owner, IN, RT.from_text(t)))
    w = q.to_wire()
    n = r.handle(w, len(w), 5353, 5000)
    answer = [k for k in ("PTR", "SRV", "TXT", "A", "SVC") if k in keys]
    extra_keys = set()
    if "PTR" in keys:
        extra_keys |= {"SRV", "TXT", "A"}
    if "SRV" in keys:
        extra_keys.add("A")
    additional = [k for k in ("PTR", "SRV", "TXT", "A", "SVC") if k in extra_keys and k not in keys]
    assert _ours(r.w.buf, n) == message(RESPONSE, answer=[rec[k] for k in answer],
                                        additional=[rec[k] for k in additional])


# ---- robustness: whatever arrives, the codec answers with DnsError or a result ---------------


def _seeds():
    spec = Spec()
    r = spec.responder()
    rec = records(spec)
    out = [
        _query("_ship._tcp.local.", "PTR").to_wire(),
        _query(INST, "ANY", use_edns=0).to_wire(),
        _query("openevgw-1234.local.", "A").to_wire(),
        message(RESPONSE, answer=[rec[k] for k in ("PTR", "SRV", "TXT", "A", "SVC")]),
        message(0, question=[dns.rrset.RRset(SVC, IN, RT.PTR)], answer=[rec["PTR"]]),
    ]
    q = dns.message.make_query("_ship._tcp.local.", "PTR")
    q.id = 77
    out.append(q.to_wire())
    n = r.goodbye()
    out.append(bytes(r.w.buf[:n]))
    return out


@st.composite
def mutated(draw):
    b = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 3))
        i = draw(st.integers(0, max(0, len(b) - 1)))
        if op == 0 and b:
            b[i] = draw(st.integers(0, 255))
        elif op == 1:
            del b[i: i + draw(st.integers(1, 8))]
        elif op == 2:
            b[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            del b[i:]
    return bytes(b)


_SEEDS = _seeds()


@settings(max_examples=1500, deadline=None)
@given(st.one_of(mutated(), st.binary(max_size=300)), st.sampled_from([5353, 40000]))
def test_garbage_is_dropped_or_answered_never_raises(data, port):
    r = Spec().responder()
    n = r.handle(data, len(data), port, 5000)
    assert 0 <= n <= len(r.w.buf)
    if n:  # whatever we answer, dnspython reads
        dns.message.from_wire(bytes(r.w.buf[:n]))
    b = Browser(own_ski=SKI)
    b.start(0)
    assert b.feed(data, len(data), 0) in (True, False)
    b.poll(0)
    rd = D.Reader()
    try:
        rd.start(data, len(data))
        while rd.record():
            assert rd.pos <= len(data)
    except D.DnsError:
        pass


MUTATIONS = os.path.join(MPY_SCRIPTS, "mdns_mutations.py")
_RESULT = re.compile(r"RESULT total=(\d+) answered=(\d+) dropped=(\d+) malformed=(\d+) learned=(\d+) "
                     r"other=(\d+) digest=(\d+)")


def test_mutation_corpus_under_micropython_matches_cpython(tmp_path):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n".join(s.hex() for s in _SEEDS) + "\n")
    r = mpyrun.run(MUTATIONS, args=[str(seeds), "3000"], timeout=120).check()
    got = _RESULT.search(r.stdout)
    assert got, r.stdout
    total, answered, dropped, malformed, learned, other, digest = map(int, got.groups())
    assert total == 3000 and other == 0
    assert answered > 100 and malformed > 500 and learned > 10, got.group(0)  # every outcome is reached
    env = dict(os.environ, PYTHONPATH=os.path.join(mpyrun.ROOT, "lib"))
    p = subprocess.run([sys.executable, MUTATIONS, str(seeds), "3000"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert _RESULT.search(p.stdout).groups() == got.groups()


# ---- memory ----------------------------------------------------------------------------------

MEMORY = """
import gc, micropython, socket
from mdns.responder import Responder
from mdns.setup import ship_txt
r = Responder("OpenEVGW-Box-1234", "openevgw-1234", 4712, "192.168.1.20",
              ship_txt("OpenEVGW-Box-1234", "%s", brand="OpenEVGW", model="Box", dtype="ChargingStation",
                       serial="1234"))
r.start(0)
t = 0
while r.state != 3:
    r.poll(t)
    t += 250
q = bytes.fromhex("%s")


def answer(count):
    n = 0
    for i in range(count):
        n = r.handle(q, len(q), 5353, 10000 + i)
    return n


n = answer(1)  # globals stored below must exist already (a new one grows the dict)
a0 = 0
gc.collect()
a0 = gc.mem_alloc()
micropython.heap_lock()
n = answer(200)
micropython.heap_unlock()
print("CORE", gc.mem_alloc() - a0, n)
"""


def test_answering_a_query_allocates_nothing_in_the_core(tmp_path):
    q = _query("_ship._tcp.local.", "PTR").to_wire()
    code = MEMORY % (SKI, q.hex())
    r = mpyrun.run_code(code, tmp_path).check()
    m = re.search(r"CORE (\d+) (\d+)", r.stdout)
    assert m and int(m.group(2)) > 0
    assert int(m.group(1)) == 0, r.stdout


# ---- configuration and the gateway glue ------------------------------------------------------


def test_config_mdns_defaults_off_on_the_host():
    cfg = config.parse({"board": "t"})
    assert cfg["mdns"] == {"enabled": False, "instance": None, "hostname": None, "ip": None}
    assert cfg["ship"]["cem_browse"] is False
    cfg = config.parse({"board": "t", "mdns": {"enabled": True, "ip": "10.0.0.2", "hostname": "wb-1"},
                        "ship": {"cem_browse": True}})
    assert cfg["mdns"]["enabled"] and cfg["ship"]["cem_browse"]


@pytest.mark.parametrize("doc,key", [
    ({"mdns": {"ip": "10.0.0"}}, "mdns.ip"),
    ({"mdns": {"ip": "10.0.0.256"}}, "mdns.ip"),
    ({"mdns": {"hostname": "wall_box"}}, "mdns.hostname"),
    ({"mdns": {"hostname": ""}}, "mdns.hostname"),
    ({"mdns": {"instance": "x" * 64}}, "mdns.instance"),
    ({"mdns": {"enabled": "yes"}}, "mdns.enabled"),
    ({"mdns": {"port": 1}}, "mdns.port"),
    ({"ship": {"cem_browse": True}}, "ship.cem_browse"),  # browsing needs mDNS on
])
def test_config_mdns_errors_name_the_key(doc, key):
    with pytest.raises(config.ConfigError) as e:
        config.parse(dict(doc, board="t"))
    assert str(e.value).startswith(key) or ("." + key.split(".")[-1]) in str(e.value), str(e.value)


def test_default_names_from_identity_and_serial():
    cfg = config.parse({"board": "t", "identity": {"brand": "Open EV", "model": "Box", "serial": "A_12"}})
    ship = config.ship_settings(cfg, SKI)
    assert service.names(cfg, ship) == ("Open EV-Box-A_12", "open-ev-a-12")
    cfg = config.parse({"board": "t", "mdns": {"instance": "My Box", "hostname": "wallbox"}})
    assert service.names(cfg, config.ship_settings(cfg, SKI)) == ("My Box", "wallbox")
    cfg = config.parse({"board": "t"})
    assert service.names(cfg, config.ship_settings(cfg, SKI)) == ("OpenEVGW-Gateway-" + SKI[:10],
                                                                  "openevgw-" + SKI[:10])


class _Trust:
    def __init__(self, *skis):
        self.skis = set(skis)

    def is_trusted(self, ski):
        return ski in self.skis


def test_pick_dials_the_first_trusted_cem_and_follows_its_address():
    b = Browser(own_ski=SKI)
    b.start(0)
    specs = [Spec(instance="Untrusted", host="u", txt=[("txtvers", "1"), ("ski", "cd" * 20)]),
             Spec(instance="CEM", host="c", port=4711, ip="10.0.0.5", txt=[("txtvers", "1"), ("ski", "ab" * 20)])]
    for spec in specs:
        w = message(RESPONSE, answer=[records(spec)[k] for k in ("PTR", "SRV", "TXT", "A")])
        b.feed(w, len(w), 0)
    trust = _Trust("ab" * 20)
    chosen = service.pick(b, trust, None)
    assert chosen == {"host": "10.0.0.5", "port": 4711, "ski": "ab" * 20, "path": "/ship/"}
    assert service.pick(b, _Trust(), None) is None
    moved = Spec(instance="CEM", host="c", port=4711, ip="10.0.0.6", txt=[("txtvers", "1"), ("ski", "ab" * 20)])
    w = message(RESPONSE, answer=[records(moved)["A"]])
    b.feed(w, len(w), 10)
    same = service.pick(b, trust, chosen)
    assert same is chosen and chosen["host"] == "10.0.0.6"  # the dial loop reads this dict


def test_responder_names_kept_as_constants_are_their_wire_forms():
    """mdns.responder and mdns.setup keep the fixed names in wire form as constants (no bytes
    made at import): they must be what dnspython encodes."""
    from mdns import responder, setup

    assert responder._SHIP == setup._SHIP == dns.name.from_text("_ship._tcp.local.").to_wire()
    assert responder._SERVICES == dns.name.from_text("_services._dns-sd._udp.local.").to_wire()
    assert setup._LOCAL == dns.name.from_text("local.").to_wire()
