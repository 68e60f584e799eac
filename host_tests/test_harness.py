"""The MicroPython harness itself: exit codes, tracebacks on stdout, heap checkpoints, bisection."""

from support import mpyrun


def test_traceback_counts_as_failure(tmp_path):
    r = mpyrun.run_code("raise ValueError('boom')\n", tmp_path)
    assert not r.ok
    assert "ValueError" in r.stdout


def test_heap_checkpoints_and_heapsize(tmp_path):
    code = mpyrun.HEAP_SNIPPET + "heap('base')\nkeep = bytearray(20000)\nheap('after')\n"
    r = mpyrun.run_code(code, tmp_path, heapsize="64K").check()
    h = r.heap()
    assert 20000 <= h["after"] - h["base"] < 20500


def test_min_heapsize_bisects(tmp_path):
    code = "b = bytearray(30000)\n"

    def passes(hs):
        return mpyrun.run_code(code, tmp_path, heapsize=hs).ok

    hs = mpyrun.min_heapsize(passes, lo=8 * 1024, hi=128 * 1024)
    assert 30 * 1024 <= hs <= 40 * 1024
    assert not passes(hs - 1024)
