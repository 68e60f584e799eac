# Trust store scenarios; runs under CPython and MicroPython. Files go to a scratch directory.
import json
import os

import jsonfile

from ship import trust as T

SKI_A = "10798eec" + "0" * 32
SKI_B = "ab" * 20
_DIR = "/tmp" if os.getenv("TMPDIR") is None else os.getenv("TMPDIR")


def _path(name):
    p = _DIR + "/trust_case_" + name + ".json"
    for q in (p, p + ".tmp"):
        try:
            os.remove(q)
        except OSError:
            pass
    return p


def case_unknown_is_pending_and_listed():
    s = T.TrustStore(_path("pending"), _path("pending_list"))
    assert s.decide(SKI_A, 0, "127.0.0.1:5000") == T.PENDING
    assert SKI_A in s.pending
    with open(s.pending_path) as f:
        assert json.load(f)[SKI_A] == "127.0.0.1:5000"
    s.add(SKI_A)
    assert s.decide(SKI_A, 0) == T.TRUSTED
    assert SKI_A not in s.pending


def case_persisted_and_reloaded():
    p = _path("persist")
    s = T.TrustStore(p)
    s.add(SKI_A, "CEM-1")
    s.deny(SKI_B)
    s2 = T.TrustStore(p)
    assert s2.is_trusted(SKI_A) and s2.trusted[SKI_A]["id"] == "CEM-1"
    assert s2.decide(SKI_B, 0) == T.DENIED
    assert s2.remove(SKI_A) and not T.TrustStore(p).is_trusted(SKI_A)


def case_pairing_window_accepts_then_closes():
    s = T.TrustStore(_path("window"))
    s.open_window(1000, 60)
    assert s.decide(SKI_A, 2000) == T.TRUSTED
    assert s.trusted[SKI_A]["by"] == "window"
    assert s.decide(SKI_B, 61000) == T.PENDING


def case_ship_id_checked():
    s = T.TrustStore(_path("ids"))
    s.add(SKI_A)
    assert s.check_id(SKI_A, "CEM-1")
    assert s.check_id(SKI_A, "CEM-1")
    assert not s.check_id(SKI_A, "CEM-2")


def case_normalize():
    assert T.normalize_ski("AB:" * 19 + "AB") == SKI_B
    assert T.normalize_ski("ab-" * 19 + "ab") == SKI_B
    for bad in ("", "ab" * 19, "zz" * 20):
        try:
            T.normalize_ski(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


class _Crash(Exception):
    pass


class _HalfJson:
    # writes part of the document, then dies, as a power cut would
    @staticmethod
    def dump(doc, f):
        f.write('{"trusted": {"')
        raise _Crash()

    load = staticmethod(json.load)


def case_interrupted_write_keeps_previous_store():
    p = _path("crash")
    s = T.TrustStore(p)
    s.add(SKI_A, "CEM-1")
    real = jsonfile.json
    jsonfile.json = _HalfJson
    try:
        s.add(SKI_B)
        raise AssertionError("no crash")
    except _Crash:
        pass
    finally:
        jsonfile.json = real
    again = T.TrustStore(p)
    assert again.error is None
    assert again.is_trusted(SKI_A) and not again.is_trusted(SKI_B)


def case_corrupt_store_reported_not_fatal():
    p = _path("corrupt")
    with open(p, "w") as f:
        f.write("{nope")
    s = T.TrustStore(p)
    assert s.error and not s.trusted


def case_pending_bounded():
    s = T.TrustStore(_path("bounded"))
    for i in range(50):
        s.decide("%040x" % i, 0)
    assert len(s.pending) == 8
