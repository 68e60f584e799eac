# lib/jsonfile.py: a write that fails leaves no temp file behind (the names are unique, so a
# leftover would stay on flash for good) and raises. Runs under CPython and MicroPython.
import os

import jsonfile

_DIR = ("/tmp" if os.getenv("TMPDIR") is None else os.getenv("TMPDIR")) + "/jsonfile_case"


def _fresh(name):
    try:
        os.mkdir(_DIR)
    except OSError:
        pass
    d = _DIR + "/" + name
    try:
        os.mkdir(d)
    except OSError:
        pass
    for f in os.listdir(d):
        try:
            os.remove(d + "/" + f)
        except OSError:
            os.rmdir(d + "/" + f)
    return d


def _temps(d):
    return [f for f in os.listdir(d) if f.endswith(".tmp")]


class _Boom(Exception):
    pass


class _HalfJson:
    # writes part of the document, then fails (as json.dump does on a value it cannot encode)
    @staticmethod
    def dump(doc, f):
        f.write('{"a": ')
        raise _Boom()


def case_write_then_read():
    d = _fresh("ok")
    jsonfile.write(d + "/doc.json", {"a": [1, 2]})
    assert jsonfile.read(d + "/doc.json", None) == {"a": [1, 2]}
    assert _temps(d) == []


def case_failed_dump_leaves_no_temp_file_and_keeps_the_old_doc():
    d = _fresh("dump")
    p = d + "/doc.json"
    jsonfile.write(p, {"old": 1})
    real = jsonfile.json
    jsonfile.json = _HalfJson
    try:
        jsonfile.write(p, {"new": 2})
        raise AssertionError("the failed write did not raise")
    except _Boom:
        pass
    finally:
        jsonfile.json = real
    assert _temps(d) == [], os.listdir(d)
    assert jsonfile.read(p, None) == {"old": 1}


def case_failed_rename_leaves_no_temp_file():
    # the target is a directory: the rename fails after the temp file is complete
    d = _fresh("rename")
    p = d + "/doc.json"
    os.mkdir(p)
    try:
        jsonfile.write(p, {"a": 1})
        raise AssertionError("the failed rename did not raise")
    except OSError:
        pass
    assert _temps(d) == [], os.listdir(d)
