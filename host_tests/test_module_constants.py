"""Every module of lib/ and native/ with more than a few names holds a constant object (compat.py,
"A module's constant table"). MicroPython gives a module compiled from source, or loaded from a
.mpy, one allocation for its qstr table and its object table and points the object table at the
end of the qstr table; with no object that pointer is one past the allocation, and when the qstr
table fills whole GC blocks (16 bytes on the ESP32, 32 on the 64-bit host) the GC takes it for a
reference to the next block for as long as the module lives. Found with a heap-walking build of
the unix port: ws.pool's table kept a connection's WebSocket coroutine, and with it ~10 KB of
that connection, in the hostile suite's SPINE storm.

The figures are read from mpy-cross's output (the .mpy header: n_qstr, n_obj), which is the
stock firmware's lib/ and has the same tables as a compile from source. A table of up to six
qstrs (three words on the ESP32, two on the host) fills no block."""

import os
import subprocess

import pytest
from support.mpyrun import MPY_CROSS
from support.paths import LIB, NATIVE

SMALL = 6  # qstrs: a table this small never ends on a block boundary (16- or 32-byte blocks)


def _vuint(b, i):
    v = 0
    while True:
        c = b[i]
        i += 1
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            return v, i


def tables(path, tmp_path, march=None):
    """(n_qstr, n_obj) of a source file, from its .mpy."""
    out = tmp_path / "m.mpy"
    cmd = [MPY_CROSS, "-o", str(out)] + (["-march=" + march] if march else []) + [str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    b = out.read_bytes()
    assert b[0:1] == b"M", "not an .mpy header"
    nq, i = _vuint(b, 4)
    no, _ = _vuint(b, i)
    return nq, no


def modules():
    for root, march in ((LIB, None), (NATIVE, "x64")):
        for d, _, files in os.walk(root):
            for f in sorted(files):
                if f.endswith(".py"):
                    yield os.path.join(d, f), march


def test_the_header_is_read(tmp_path):
    """A module without constant objects counts none; the anchor makes one."""
    names = ", ".join("a%d" % i for i in range(12))
    src = tmp_path / "bare.py"
    src.write_text("def f(%s):\n    return [%s]\n" % (names, names))
    nq, no = tables(src, tmp_path)
    assert nq > SMALL and no == 0
    src.write_text(src.read_text() + "\n_ANCHOR = ...\n")
    assert tables(src, tmp_path)[1] == 1


@pytest.mark.parametrize(
    "path,march",
    list(modules()),
    ids=lambda v: os.path.relpath(v, LIB) if isinstance(v, str) and v.startswith(LIB) else None,
)
def test_module_has_a_constant_object(path, march, tmp_path):
    nq, no = tables(path, tmp_path, march)
    assert no > 0 or nq <= SMALL, (
        "%s: %d qstrs and no constant object: its object table points past its qstr table, which "
        "can keep the next heap block alive for good; add _ANCHOR = ... (compat.py)" % (path, nq)
    )
