"""ISO 8601 durations from peers (spine.table.duration_s) under CPython: the shared cases
(MicroPython runs them in test_cases_mpy), a property against an exact reference written here
with a regular expression and fractions, and mutations of the forms peers send."""
import re
from fractions import Fraction

import pytest
from hypothesis import example, given, strategies as st

from cases import caserun, duration_cases
from spine.table import DURATION_MAX_S, duration_s


@pytest.mark.parametrize("name", caserun.names(duration_cases))
def test_case(name):
    getattr(duration_cases, name)()


_NUM = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_FORM = re.compile(r"-?P((?:%s[YMWD])*)(?:T((?:%s[HMS])*))?" % (_NUM, _NUM))
_ITEM = re.compile(r"(%s)([YMWDHS])" % _NUM)
_DATE = {"Y": 31536000, "M": 2592000, "W": 604800, "D": 86400}
_TIME = {"H": 3600, "M": 60, "S": 1}


def reference(text):
    """(exact seconds as a Fraction, or None for malformed)."""
    if len(text) > 40:
        return None
    m = _FORM.fullmatch(text)
    if not m:
        return None
    date, time = m.group(1), m.group(2) or ""
    if not date and not time:
        return None
    total = Fraction(0)
    for part, units in ((date, _DATE), (time, _TIME)):
        for num, unit in _ITEM.findall(part):
            total += Fraction(num if num[-1] != "." else num[:-1]) * units[unit]
    return -total if text[0] == "-" else total


def rounded(x):
    """Half up, as the gateway rounds, then clamped."""
    n = (abs(x) + Fraction(1, 2)).__floor__()
    n = min(n, DURATION_MAX_S)
    return -n if x < 0 else n


NUM = st.one_of(st.integers(0, 10 ** 12).map(str), st.integers(0, 10 ** 40).map(str),
                st.tuples(st.integers(0, 999), st.text("0123456789", max_size=12)).map(lambda t: "%d.%s" % t),
                st.text("0123456789", min_size=1, max_size=6).map(lambda t: "." + t))
ITEM_D = st.tuples(NUM, st.sampled_from("YMWD")).map("".join)
ITEM_T = st.tuples(NUM, st.sampled_from("HMS")).map("".join)


def _form(neg, date, time, with_t):
    return ("-" if neg else "") + "P" + "".join(date) + ("T" + "".join(time) if with_t or time else "")


WELL_FORMED = st.builds(_form, st.booleans(), st.lists(ITEM_D, max_size=3), st.lists(ITEM_T, max_size=3),
                        st.booleans())
ANY = st.one_of(WELL_FORMED, st.text("PT-0123456789.YMWDHS x", max_size=20), st.text(max_size=12))


@given(ANY)
@example("PT0.5S")
@example("P" + "9" * 38 + "Y")
@example("PT0.0000001Y")
def test_duration_against_the_reference(text):
    got = duration_s(text)
    want = reference(text)
    if want is None:
        assert got is None
        return
    assert isinstance(got, int)
    assert -DURATION_MAX_S <= got <= DURATION_MAX_S
    if "." in text:  # floats inside: a result at a half second may round the other way
        assert abs(got - rounded(want)) <= 1, (got, want)
    else:
        assert got == rounded(want)


@given(WELL_FORMED, st.integers(0, 40), st.sampled_from("PT-.0123456789YMWDHS\x00é "))
def test_mutated_durations_never_raise(text, at, ch):
    for t in (text[:at] + ch + text[at:], text[:at] + text[at + 1:], text[:at] + ch + text[at + 1:]):
        got = duration_s(t)
        assert got is None or (isinstance(got, int) and abs(got) <= DURATION_MAX_S)
