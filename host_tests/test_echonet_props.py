"""ECHONET Lite engine: every property against the Release R tables (parsed from the reference),
hypothesis properties over frames, and a mutation corpus (CPython here; the same corpus under
MicroPython in test_echonet_e2e.py)."""

import random

from support import echonet_mra
from support import echonet_peer as peer
import pytest
from charger import Charger
from echonet import objects as ob
from echonet.engine import Engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TABLES = echonet_mra.load()

STATES = [
    dict(link=True, state="A", plugged=False, charging=False, error=0, power=0, total_wh=0),
    dict(link=True, state="C", plugged=True, charging=True, error=0, power=11040, total_wh=999999999),
    dict(link=True, state="B", plugged=True, charging=False, error=7, power=0, total_wh=1234567890),
    dict(link=False),
    dict(link=True, state="F", plugged=True, charging=False, error=0, power=-4000.7, total_wh=5.5),
    dict(link=True, state="C", plugged=True, charging=True, error=0, power=70000.2, total_wh=12),
]


def engine(discharges, charger=True):
    ch = Charger(6, 16, 3, 230) if charger else None
    return Engine(ch, ident=b"0123456789", discharges=discharges, product="HostSim", serial="SN1"), ch


def get(e, deoj, epcs):
    return peer.request(e, peer.get(deoj, epcs, tid=7))


def maps(e, deoj):
    r = get(e, deoj, [0x9D, 0x9E, 0x9F])
    return {p.epc: peer.decode_map(p.edt) for p in r.props}


@pytest.mark.parametrize("discharges", [False, True])
def test_every_mandatory_property_is_in_the_maps(discharges):
    e, _ = engine(discharges)
    cls = "evcd" if discharges else "evc"
    deoj = ob.EVCD if discharges else ob.EVC
    m = maps(e, (deoj << 8) | 1)
    for col, epc in (("get", 0x9F), ("set", 0x9E), ("anno", 0x9D)):
        need = echonet_mra.mandatory(TABLES, "super", col) | echonet_mra.mandatory(TABLES, cls, col)
        assert need <= set(m[epc]), (col, sorted(hex(x) for x in need - set(m[epc])))
    node = maps(e, ob.NODE_EOJ)
    assert echonet_mra.mandatory(TABLES, "node", "get") <= set(node[0x9F])
    assert echonet_mra.mandatory(TABLES, "node", "anno") <= set(node[0x9D])
    assert node[0x9E] == []


def _row(cls, epc):
    return TABLES[cls].get(epc) or TABLES["super"].get(epc)


@pytest.mark.parametrize("discharges", [False, True])
def test_every_property_encoding_matches_release_r(discharges):
    cls = "evcd" if discharges else "evc"
    deoj = ((ob.EVCD if discharges else ob.EVC) << 8) | 1
    e, ch = engine(discharges)
    m = maps(e, deoj)
    for epc in m[0x9F]:
        assert _row(cls, epc) is not None and _row(cls, epc)["get"] != "–", hex(epc)
    for epc in m[0x9E]:
        assert _row(cls, epc)["set"] != "–", hex(epc)
    for epc in m[0x9D]:
        assert epc in m[0x9F] or _row(cls, epc)["get"] == "–", hex(epc)
    seen = set()
    for s in STATES:
        ch.update(**s)
        r = get(e, deoj, m[0x9F])
        assert [p.epc for p in r.props] == m[0x9F]
        for p in r.props:
            if p.edt:
                seen.add(p.epc)
                why = echonet_mra.check_edt(_row(cls, p.epc), p.edt)
                assert why is None, (hex(p.epc), p.edt.hex(), s, why)
    # what is never available: the vehicle battery, without a vehicle data link
    never = set(m[0x9F]) - seen
    assert never == ({0xC0, 0xC2, 0xC4} if discharges else set()) | {0xCE, 0xCF, 0xD0, 0xE2, 0xE4}
    nodemap = maps(e, ob.NODE_EOJ)[0x9F]
    r = get(e, ob.NODE_EOJ, nodemap)
    for p in r.props:
        why = echonet_mra.check_edt(TABLES["node"][p.epc], p.edt)
        assert why is None, (hex(p.epc), p.edt.hex(), why)


def test_without_a_charger_model_static_properties_still_answer():
    e, _ = engine(False, charger=False)
    r = get(e, 0x02A101, [0x80, 0x88, 0xC5, 0xC7, 0xD3])
    assert [(p.epc, p.edt) for p in r.props] == [
        (0x80, b"\x30"), (0x88, b"\x42"), (0xC5, (11040).to_bytes(4, "big")), (0xC7, b""), (0xD3, b"")]


# ---- hypothesis over frames: never raises, answers only as the rules allow


def _check_answer(e, frame, n):
    """n = feed() result for frame; the answer in e.tx must be one the rules allow."""
    if n == 0:
        return
    req = peer.parse(frame)
    res = peer.parse(bytes(e.tx[:n]))
    assert req is not None, "answered a malformed frame %s" % frame.hex()
    assert res is not None and n <= 1472
    assert res.tid == req.tid and res.deoj == req.seoj
    assert res.seoj in (ob.NODE_EOJ, 0x02A101, 0x027E01) and (res.seoj >> 8) == (req.deoj >> 8)
    allowed = {0x62: (0x72, 0x52), 0x63: (0x73, 0x53), 0x61: (0x71, 0x51), 0x60: (0x50,),
               0x6E: (0x7E, 0x5E), 0x74: (0x7A,)}
    assert res.esv in allowed[req.esv], (hex(req.esv), hex(res.esv))
    assert [p.epc for p in res.props] == [p.epc for p in req.props]
    if res.esv in (0x7E, 0x5E):
        assert [p.epc for p in res.gets] == [p.epc for p in req.gets]
    if req.esv in (0x60, 0x61, 0x6E):
        for a, b in zip(req.props, res.props):
            assert res.props and (b.edt == b"" or b.edt == a.edt)
    gets = res.props if req.esv in (0x62, 0x63) else (res.gets if req.esv == 0x6E else [])
    sets = res.props if req.esv in (0x60, 0x61, 0x6E) else []
    sna = any(p.edt == b"" for p in gets) or any(p.edt for p in sets)
    if req.esv in (0x62, 0x63, 0x61, 0x6E):
        if sna:
            assert res.esv in (0x52, 0x53, 0x51, 0x5E)
        elif all(p.edt for p in (req.props if sets else [])):
            # (a rejected Set of an empty EDT echoes PDC 0: only the SNA tells)
            assert res.esv in (0x72, 0x73, 0x71, 0x7E)


EPCS = st.sampled_from([0x80, 0x81, 0x82, 0x83, 0x88, 0x8A, 0x9D, 0x9E, 0x9F, 0xC7, 0xCD, 0xDA, 0xEB, 0xED,
                        0xD3, 0xD5, 0xD6, 0xCE, 0xF0, 0x00, 0x7F])
PROP = st.tuples(EPCS, st.binary(max_size=20))
FRAMES = st.builds(
    lambda tid, deoj, esv, props, gets: peer.build(tid, 0x05FF01, deoj, esv, props, gets if esv == 0x6E else None),
    st.integers(0, 0xFFFF),
    st.sampled_from([0x0EF001, 0x0EF000, 0x02A101, 0x02A100, 0x027E01, 0x02A102]),
    st.sampled_from([0x60, 0x61, 0x62, 0x63, 0x6E, 0x74, 0x72, 0x73, 0x50]),
    st.lists(PROP, max_size=8),
    st.lists(PROP, max_size=8),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FRAMES, st.integers(0, len(STATES) - 1))
def test_wellformed_frames_get_rule_conforming_answers(frame, si):
    e, ch = engine(False)
    ch.update(**STATES[si])
    n = e.feed(frame, len(frame), 1000)
    _check_answer(e, frame, n)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_raise(data):
    e, _ = engine(False)
    n = e.feed(data, len(data), 0)
    _check_answer(e, data, n)


@settings(max_examples=300, deadline=None)
@given(FRAMES, st.data())
def test_mutated_frames_never_raise(frame, data):
    b = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        if not b:
            break
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(b)))
    b = bytes(b[:cut])
    e, _ = engine(True)
    _check_answer(e, b, e.feed(b, len(b), 0))


def corpus(seed=6, count=3000):
    """Mutations of real controller frames (pychonet, uecho layouts): flips, truncations,
    OPC/PDC lies, extensions. Shared with the MicroPython run."""
    base = [bytes.fromhex(h) for h in (
        "1081000105ff010ef00162048a008c008300d600",
        "1081000205ff0102a10162039d009f009e00",
        "1081000605ff0102a1016101da0144",
        "1081000505ff0102a1016e01da014402da008000",
        "108100130ef0010ef0017402d50401027e01800130",
        "1081000705ff0102a1016001ed020064",
        "1081000805ff0102a1016100",
        "1081001105ff0102a1016302c700f000",
    )]
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        b = bytearray(rnd.choice(base))
        k = rnd.randrange(6)
        if k == 0:
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        elif k == 1:
            b = b[:rnd.randrange(len(b))]
        elif k == 2:
            b[11] = rnd.randrange(256)  # OPC lies
        elif k == 3 and len(b) > 13:
            b[13] = rnd.randrange(256)  # PDC lies
        elif k == 4:
            b += bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 40)))
        else:
            for _ in range(rnd.randrange(1, 6)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
        out.append(bytes(b))
    return out


def test_mutation_corpus_under_cpython():
    e, _ = engine(False)
    answered = 0
    for f in corpus():
        n = e.feed(f, len(f), 0)
        _check_answer(e, f, n)
        answered += n > 0
    assert e.n_rx == 3000 and 0 < answered < 3000
