"""The peer's use cases as the gateway keeps them (lib/spine/remote.py UseCaseReader): any
nodeManagementUseCaseData, well-formed or odd, streamed in any chunking, leaves at most 16
entries of [actor str, name str, scenario mask within 1..30, entity tuple or None] and never
raises; useCaseAvailable false is left out."""

import json

from hypothesis import given, settings, strategies as st

from eejson.reader import JsonError, Reader
from spine.remote import RemoteDevice, UseCaseReader, announced

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.text(max_size=80))
odd = st.recursive(scalars,
                   lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=12), c, max_size=4)),
                   max_leaves=12)
support = st.fixed_dictionaries({
    "useCaseName": st.one_of(st.text(max_size=70), odd),
    "useCaseAvailable": st.one_of(st.booleans(), odd),
    "scenarioSupport": st.one_of(st.lists(st.integers(-5, 40), max_size=8), odd),
})
info = st.fixed_dictionaries({
    "address": st.one_of(st.fixed_dictionaries({"device": st.text(max_size=20),
                                                "entity": st.lists(st.integers(-3, 2000), max_size=10)}), odd),
    "actor": st.one_of(st.sampled_from(["EnergyGuard", "CEM", "EV", "x" * 50]), odd),
    "useCaseSupport": st.one_of(st.lists(support, max_size=12), odd),
})
doc = st.one_of(st.fixed_dictionaries({"useCaseInformation": st.lists(info, max_size=6)}), odd)


def dialect(v):
    # plain value -> EEBUS-JSON text as on the wire: objects become lists of one-key objects
    if isinstance(v, dict):
        return "[" + ",".join("{%s:%s}" % (json.dumps(k), dialect(v[k])) for k in v) + "]"
    if isinstance(v, list):
        return "[" + ",".join(dialect(x) for x in v) + "]"
    return json.dumps(v)


def parse(value, chunk):
    # the session hands the reader the function's value (spine/session.py _route)
    r = RemoteDevice()
    data = dialect(value).encode()
    rd = Reader(UseCaseReader(r, None))
    try:
        for i in range(0, len(data), chunk):
            rd.feed(data, i, min(chunk, len(data) - i))
        rd.finish()
    except JsonError:
        pass  # refused as a whole by the session; what was kept stays bounded
    return r


kept = [0]


@settings(max_examples=300, deadline=None)
@given(doc, st.integers(1, 64))
def test_any_usecase_data_is_bounded(value, chunk):
    r = parse(value, chunk)
    kept[0] += len(r.ucs)
    assert r.ucs is not None and len(r.ucs) <= 16
    for actor, name, mask, ent in r.ucs:
        assert isinstance(actor, str) and len(actor) <= 40
        assert isinstance(name, str) and len(name) <= 64
        assert 0 <= mask < (1 << 31) and not mask & 1
        assert ent is None or (isinstance(ent, tuple) and len(ent) <= 8)


def test_real_announcement_and_unavailable():
    r = RemoteDevice()
    rd = Reader(UseCaseReader(r, None))
    text = (b'{"useCaseInformation":[[{"address":[{"device":"d:_n:G"},{"entity":[1]}]},{"actor":"EnergyGuard"},'
            b'{"useCaseSupport":[[{"useCaseName":"limitationOfPowerConsumption"},{"useCaseVersion":"1.0.0"},'
            b'{"useCaseAvailable":true},{"scenarioSupport":[1,2,3,4]}],[{"useCaseName":"monitoringOfPowerConsumption"},'
            b'{"useCaseAvailable":false},{"scenarioSupport":[1]}]]}]]}')
    rd.feed(text, 0, len(text))
    rd.finish()
    assert r.ucs == [["EnergyGuard", "limitationOfPowerConsumption", 0b11110, (1,)]]
    assert announced(r, "EnergyGuard", ("limitationOfPowerConsumption",))
    assert not announced(r, "CEM", ("limitationOfPowerConsumption",))


def test_the_property_reached_real_entries():
    # the generated documents are not all refused: the run above kept entries
    r = parse({"useCaseInformation": [{"address": {"device": "d", "entity": [1]}, "actor": "CEM",
                                       "useCaseSupport": [{"useCaseName": "a", "scenarioSupport": [1, 2, 31]}]}]}, 5)
    assert r.ucs == [["CEM", "a", 6, (1,)]]
    assert kept[0] > 0
