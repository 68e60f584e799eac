"""lib/jsonfile.py: the shared cases under CPython (MicroPython: test_cases_mpy.py), plus a
document CPython's json cannot encode."""

import os

import jsonfile
import pytest
from cases import caserun
from cases import jsonfile_cases as cases

NAMES = caserun.names(cases)


@pytest.mark.parametrize("name", NAMES)
def test_jsonfile(name):
    getattr(cases, name)()


def test_unserialisable_doc_raises_and_leaves_no_temp_file(tmp_path):
    p = str(tmp_path / "doc.json")
    jsonfile.write(p, {"old": 1})
    with pytest.raises(TypeError):
        jsonfile.write(p, {"new": object()})
    assert sorted(os.listdir(tmp_path)) == ["doc.json"]
    assert jsonfile.read(p, None) == {"old": 1}
