"""gw build on the real lib/ tree: every module compiled, the .mpy header version matching
mpy-cross, the size target, the built tree importing under MicroPython, and the version checks
(--mpy-version, a board's sys.implementation._mpy read through mpremote)."""

import json
import os
import re
import subprocess

import pytest

import build
import gw
from support import mpyrun

LIB = mpyrun.LIB
# the modules with module-level viper functions: machine code for -march in the build
NATIVE = ["compat.py", "eejson/escape.py", "eejson/lexer.py", "utf8.py"]


def cross_major_sub():
    out = subprocess.run([mpyrun.MPY_CROSS, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"mpy v(\d+)\.(\d+)", out)
    return int(m.group(1)), int(m.group(2))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("gwbuild") / "out")
    assert gw.main(["build", "--out", out]) == 0
    return out


def test_every_module_compiled_with_the_right_header(built):
    major, sub = cross_major_sub()
    sources = []
    for d, _, files in os.walk(LIB):
        sources += [os.path.relpath(os.path.join(d, f), LIB) for f in files if f.endswith(".py")]
    assert sources
    for rel in sources:
        mpy = os.path.join(built, "lib", rel[:-3] + ".mpy")
        with open(mpy, "rb") as f:
            h = f.read(4)
        assert h[0:1] == b"M" and h[1] == major, (rel, h)
        if rel.replace(os.sep, "/") in NATIVE:
            # viper: xtensawin machine code (arch 10) for the mpy sub-version of mpy-cross
            assert h[2] == (sub | 10 << 2), (rel, h)
        else:
            # bytecode only (no arch bits): loads on the ESP32 whatever the sub-version
            assert h[2] == 0, (rel, h)
        # small ints fit the ESP32's 31 bits
        assert h[3] <= 31
    produced = []
    for d, _, files in os.walk(os.path.join(built, "lib")):
        produced += [f for f in files]
    assert len(produced) == len(sources) and all(f.endswith(".mpy") for f in produced)


def test_size_target_and_report(built, capsys):
    with open(os.path.join(built, ".gw-build")) as f:
        s = json.load(f)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(built, "lib")) for f in fs)
    assert s["total_mpy"] == total
    print("\nlib/ as .mpy: %.1f KB in %d files (target 200 KB)" % (total / 1024.0, s["lib_files"]))
    assert total <= 200 * 1024
    assert s["mpy"] == "%d.%d" % cross_major_sub() and s["march"] == "xtensawin" and s["native"] == NATIVE


def test_report_names_the_native_modules(built, capsys):
    with open(os.path.join(built, ".gw-build")) as f:
        s = json.load(f)
    build.report(s, "the firmware")
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("native code (xtensawin only): " + ", ".join(NATIVE)), first


def test_tree_around_lib(built):
    for f in ("boot.py", "main.py"):
        # the firmware runs these two as source only
        assert open(os.path.join(built, f)).read() == open(os.path.join(mpyrun.ROOT, f)).read()
    board = os.path.join(mpyrun.ROOT, "board_configs", "esp32-wroom.json")
    assert open(os.path.join(built, "board.json")).read() == open(board).read()
    m = json.load(open(board))["charger"]["map"]
    assert open(os.path.join(built, m)).read() == open(os.path.join(mpyrun.ROOT, "board_configs", m)).read()
    assert not os.path.exists(os.path.join(built, "data"))


def _import_all(built, tmp_path):
    # every module of the build imported under the unix port, from the build and not from lib/
    mods = []
    for d, _, files in os.walk(os.path.join(built, "lib")):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), os.path.join(built, "lib"))[:-4]
            mods.append(rel.replace(os.sep, ".").replace(".__init__", ""))
    script = tmp_path / "imp.py"
    script.write_text(
        "import sys\n"
        "n = 0\n"
        "for m in %r:\n"
        "    __import__(m)\n"
        "    f = getattr(sys.modules.get(m), '__file__', '')\n"
        "    assert f.endswith('.mpy') and f.startswith(%r), (m, f)\n"
        "    n += 1\n"
        "print('imported', n)\n" % (sorted(mods), built)
    )
    env = dict(os.environ, MICROPYPATH=os.path.join(built, "lib") + ":.frozen")
    r = subprocess.run([mpyrun.MICROPYTHON, str(script)], capture_output=True, text=True, env=env, cwd=str(tmp_path))
    return r, len(mods)


def test_built_tree_imports_under_micropython(tmp_path):
    """Built for the unix port's arch (x64), the tree imports under the unix port: every .mpy,
    the viper modules' machine code included, from the build and not from lib/."""
    out = str(tmp_path / "x64")
    s = build.build(out, march="x64")
    assert s["native"] == NATIVE
    r, n = _import_all(out, tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stdout, r.stdout + r.stderr
    assert ("imported %d" % n) in r.stdout


def test_xtensawin_tree_is_refused_by_the_host(built, tmp_path):
    """The default build holds ESP32 machine code: the x64 unix port refuses it (so a tree built
    for the wrong arch fails at import, never runs foreign code)."""
    r, _ = _import_all(built, tmp_path)
    assert r.returncode != 0 and "incompatible .mpy arch" in r.stdout + r.stderr


def test_certs_copied_to_data(tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "cert.der").write_bytes(b"c")
    (certs / "key.der").write_bytes(b"k")
    out = str(tmp_path / "out")
    assert gw.main(["build", "--out", out, "--certs", str(certs), "--board",
                    os.path.join(mpyrun.ROOT, "board_configs", "olimex-esp32-poe.json")]) == 0
    assert open(os.path.join(out, "data", "key.der"), "rb").read() == b"k"
    # a rebuild replaces the tree: nothing stale stays
    open(os.path.join(out, "lib", "stale.mpy"), "wb").close()
    assert gw.main(["build", "--out", out]) == 0
    assert not os.path.exists(os.path.join(out, "lib", "stale.mpy"))
    assert not os.path.exists(os.path.join(out, "data"))


def test_refuses_a_foreign_directory_and_a_bad_board(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert gw.main(["build", "--out", str(tmp_path)]) == 2
    assert "not a gw build output" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").exists()
    bad = tmp_path / "bad.json"
    bad.write_text('{"ship": {"port": 4712, "bogus": 1}}')
    assert gw.main(["build", "--out", str(tmp_path / "o"), "--board", str(bad)]) == 2
    assert "ship.bogus: unknown key" in capsys.readouterr().err


def test_mpy_version_mismatch(tmp_path, capsys):
    major, sub = cross_major_sub()
    out = str(tmp_path / "o")
    assert gw.main(["build", "--out", out, "--mpy-version", str(major - 1)]) == 2
    err = capsys.readouterr().err
    assert "mpy version mismatch" in err and "v%d" % (major - 1) in err and "v%d.%d" % (major, sub) in err
    assert not os.path.exists(out)
    assert gw.main(["build", "--out", out, "--mpy-version", "%d.%d" % (major, sub)]) == 0
    # the same as a board's sys.implementation._mpy: v6.3 on xtensawin = 6 | (3 | 10 << 2) << 8
    assert gw.main(["build", "--out", out, "--mpy-version", str(major | (sub | 10 << 2) << 8)]) == 0
    assert "--mpy-version" in capsys.readouterr().out


def test_decode_mpy():
    assert build.decode_mpy(2822) == (6, 3, "x64")  # the unix wheel (micropython.md 1.1)
    assert build.decode_mpy(11014) == (6, 3, "xtensawin")  # ESP32 and S3
    assert build.decode_mpy(6) == (6, 0, "none")
    assert build.parse_mpy_version("v6.3") == (6, 3, None)
    assert build.parse_mpy_version("6") == (6, None, None)
    assert build.parse_mpy_version("0x2b06") == (6, 3, "xtensawin")


def test_board_version_through_mpremote(tmp_path, capsys, monkeypatch):
    """--port asks the board for sys.implementation._mpy with mpremote exec; its answer sets the
    version check and the -march."""
    major, sub = cross_major_sub()
    answers = []

    def fake_capture(cmd, timeout=30):
        answers.append(cmd)
        return reply

    monkeypatch.setattr(build, "capture", fake_capture)
    port = str(tmp_path / "ttyUSB0")  # not under /dev: passed through as mpremote device name
    out = str(tmp_path / "o")
    reply = "%d\n" % (major | (sub | 10 << 2) << 8)
    assert gw.main(["build", "--out", out, "--port", port]) == 0
    assert answers == [["mpremote", "connect", port, "exec",
                        'import sys; print(getattr(sys.implementation, "_mpy", 0))']]
    assert "xtensawin" in capsys.readouterr().out
    reply = "%d\n" % (5 | (10 << 2) << 8)
    assert gw.main(["build", "--out", out, "--port", port]) == 2
    assert "mpy version mismatch: the board on %s" % port in capsys.readouterr().err
    reply = "0\n"
    assert gw.main(["build", "--out", out, "--port", port]) == 2
    assert "no sys.implementation._mpy" in capsys.readouterr().err
    reply = "%d\n" % (major | (sub | 10 << 2) << 8)
    assert gw.main(["build", "--out", out, "--port", port, "--march", "rv32imc"]) == 2
    assert "--march rv32imc but the board" in capsys.readouterr().err


def test_over_the_limit_fails_unless_told(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(build, "LIMIT", 10 * 1024)
    out = str(tmp_path / "o")
    assert gw.main(["build", "--out", out]) == 1
    assert "over the 10.0 KB target" in capsys.readouterr().err
    assert gw.main(["build", "--out", out, "--no-limit"]) == 0


def test_no_source_lines_is_smaller(tmp_path):
    a = build.build(str(tmp_path / "a"))
    b = build.build(str(tmp_path / "b"), lines=False)
    assert b["total_mpy"] < a["total_mpy"]
