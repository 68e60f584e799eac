"""gw build on the real lib/ tree: every module the board deploys compiled (those of features
its config turns off left out, and the table of them checked per board config), the .mpy header version matching
mpy-cross, the size target, the built tree importing under MicroPython, and the version checks
(--mpy-version, a board's sys.implementation._mpy read through mpremote)."""

import contextlib
import io
import json
import os
import re
import subprocess
import tempfile

import pytest

import build
import gw
from support import mpyrun

LIB = mpyrun.LIB
# native/'s modules of module-level viper functions: machine code for -march, built into lib/
NATIVE = ["eejson_escape.py", "eejson_lexer.py", "utf8.py", "ws_mask.py"]


def cross_major_sub():
    out = subprocess.run([mpyrun.MPY_CROSS, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"mpy v(\d+)\.(\d+)", out)
    return int(m.group(1)), int(m.group(2))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("gwbuild") / "out")
    assert gw.main(["build", "--out", out]) == 0
    return out


# what the default board (esp32-wroom: echonet off, usecases.evcs off, usecases.cevc and
# ship.cem_browse off by default) leaves out
# the charger's one link is a UART on the ESP32 boards: the other links' modules stay out
OTHER_LINKS = [["modbus/net.py", "modbus.net"], ["modbus/tty.py", "modbus.tty"]]
WROOM_LEFT_OUT = [["echonet/", "echonet"], ["gateway/echonet_service.py", "echonet"],
                  ["mdns/browse.py", "mdns.browse"], ["usecases/evcs.py", "usecases.evcs"],
                  ["usecases/cevc.py", "usecases.cevc"]] + OTHER_LINKS


def lib_sources():
    """Every module the device's /lib may hold: lib/'s and native/'s, relative to their top."""
    sources = []
    for top in (LIB, mpyrun.NATIVE):
        for d, _, files in os.walk(top):
            sources += [os.path.relpath(os.path.join(d, f), top).replace(os.sep, "/")
                        for f in files if f.endswith(".py")]
    return sorted(sources)


def summary_of(out):
    with open(os.path.join(out, ".gw-build")) as f:
        return json.load(f)


def test_every_module_compiled_with_the_right_header(built):
    """Every module the board deploys compiled (by design since the feature table: not those of
    features the board config turns off, which are absent from the tree)."""
    major, sub = cross_major_sub()
    all_sources = lib_sources()
    assert all_sources
    gone = summary_of(built)["left_out_files"]
    assert gone and set(gone) < set(all_sources)
    sources = [rel for rel in all_sources if rel not in gone]
    for rel in gone:
        assert not os.path.exists(os.path.join(built, "lib", rel[:-3] + ".mpy")), rel
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
    # the WROOM's tree: no ECHONET, no EVCS, no CEVC; everything else
    assert s["left_out"] == WROOM_LEFT_OUT
    assert sorted(s["left_out_files"]) == sorted(
        [r for r in lib_sources() if r.startswith("echonet/")]
        + ["gateway/echonet_service.py", "mdns/browse.py", "usecases/evcs.py", "usecases/cevc.py", "modbus/net.py",
           "modbus/tty.py"])
    assert s["lib_files"] == len(lib_sources()) - len(s["left_out_files"])
    assert s["limit"] == build.LIMIT == 200 * 1024


def test_report_names_what_was_left_out(built, capsys):
    build.report(summary_of(built), "the firmware")
    out = capsys.readouterr().out.splitlines()
    assert ("left out for this board: echonet/ (echonet off), gateway/echonet_service.py (echonet off), "
            "mdns/browse.py (mdns.browse off), usecases/evcs.py (usecases.evcs off), "
            "usecases/cevc.py (usecases.cevc off), "
            "modbus/net.py (modbus.net off), modbus/tty.py (modbus.tty off) (--all keeps them)") in out
    assert any(line.startswith("deployed lib ") and "ok" in line for line in out), out


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


# ---- the feature table: what a board config turns off stays off the device ---------------------

BOARDS = sorted(f for f in os.listdir(os.path.join(mpyrun.ROOT, "board_configs")) if f.endswith(".json"))


def everything_on_board(tmp_path):
    """The WROOM config with every feature of build.FEATURES (and the pairing button) on."""
    src = os.path.join(mpyrun.ROOT, "board_configs", "esp32-wroom.json")
    doc = json.load(open(src))
    doc["mdns"] = {"enabled": True}
    doc["ship"]["cem_browse"] = True
    doc["echonet"] = {"enabled": True}
    doc["usecases"] = {"evcs": True, "cevc": True}
    doc["pair_button"] = {"pin": 0}
    d = tmp_path / "boards"
    d.mkdir()
    p = d / "all-on.json"
    p.write_text(json.dumps(doc))
    (d / "chargers").mkdir()
    m = doc["charger"]["map"]
    (d / m).write_text(open(os.path.join(mpyrun.ROOT, "board_configs", m)).read())
    return str(p)


def test_a_board_with_everything_on_deploys_every_module(tmp_path, capsys):
    board = everything_on_board(tmp_path)
    out = str(tmp_path / "o")
    s = build.build(out, board=board, limit=10 ** 9)
    # every module but the other links' (a charger has one link: its UART here)
    links = [p for p, _ in OTHER_LINKS]
    assert s["left_out"] == OTHER_LINKS and s["left_out_files"] == links
    produced = sorted(os.path.relpath(os.path.join(d, f), os.path.join(out, "lib")).replace(os.sep, "/")[:-4] + ".py"
                      for d, _, fs in os.walk(os.path.join(out, "lib")) for f in fs)
    assert produced == [r for r in lib_sources() if r not in links]
    build.report(s, "the firmware")
    assert ("left out for this board: modbus/net.py (modbus.net off), modbus/tty.py (modbus.tty off) "
            "(--all keeps them)") in capsys.readouterr().out
    # --all on the WROOM config deploys every module: these and the other links
    a = build.build(str(tmp_path / "a"), all_features=True, limit=10 ** 9)
    assert a["left_out"] == [] and a["lib_files"] == s["lib_files"] + len(links)


def test_the_limit_is_checked_on_the_deployed_total(tmp_path, capsys, monkeypatch):
    w = build.build(str(tmp_path / "w"))
    a = build.build(str(tmp_path / "a"), all_features=True)
    assert w["total_mpy"] < a["total_mpy"]
    # a limit between the two: the WROOM's tree fits, the whole of lib/ does not
    monkeypatch.setattr(build, "LIMIT", (w["total_mpy"] + a["total_mpy"]) // 2)
    out = str(tmp_path / "o")
    assert gw.main(["build", "--out", out]) == 0
    capsys.readouterr()
    assert gw.main(["build", "--out", out, "--all"]) == 1
    assert "the deployed lib/ is %.1f KB of .mpy, over" % (a["total_mpy"] / 1024.0) in capsys.readouterr().err
    assert gw.main(["build", "--out", out, "--all", "--no-limit"]) == 0
    assert "left out for this board: nothing (--all)" in capsys.readouterr().out


def _lib_module(name):
    """The device-lib-relative path of module name, or None when it is neither in lib/ nor in
    native/ (asyncio, machine, ...)."""
    base = name.replace(".", "/")
    for rel in (base + ".py", base + "/__init__.py"):
        if os.path.exists(os.path.join(LIB, rel)) or os.path.exists(os.path.join(mpyrun.NATIVE, rel)):
            return rel
    return None


def _source(rel):
    p = os.path.join(LIB, rel)
    return p if os.path.exists(p) else os.path.join(mpyrun.NATIVE, rel)


def _imports(path):
    """Every lib module path imports, function-level imports included."""
    import ast

    tree = ast.parse(open(path).read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # from pkg import mod: the submodule if there is one, else pkg itself
            names = [node.module] + [node.module + "." + a.name for a in node.names]
        else:
            continue
        for n in names:
            parts = n.split(".")
            for i in range(1, len(parts) + 1):  # import a.b loads a/__init__ too
                rel = _lib_module(".".join(parts[:i]))
                if rel:
                    out.add(rel)
    return out


# the only imports of a feature's modules, each made only when that feature is on
GUARDED = {
    ("gateway/startup.py", "gateway/echonet_service.py"): "echonet",
    ("gateway/startup.py", "gateway/mdns_service.py"): "mdns",
    ("gateway/mdns_service.py", "mdns/browse.py"): "mdns.browse",
    ("usecases/station.py", "usecases/evcs.py"): "usecases.evcs",
    ("usecases/station.py", "usecases/cevc.py"): "usecases.cevc",
    ("gateway/startup.py", "modbus/uart.py"): "modbus.uart",
    ("gateway/startup.py", "modbus/net.py"): "modbus.net",
    ("gateway/startup.py", "modbus/tty.py"): "modbus.tty",
}


@pytest.mark.parametrize("board", BOARDS)
def test_no_deployed_module_imports_a_left_out_one(board):
    """Static proof of the table for every board: from boot.py, main.py and every deployed module,
    every import (at any depth in a function) reaches a deployed module, except the guarded
    imports of a feature that is off."""
    path = os.path.join(mpyrun.ROOT, "board_configs", board)
    with contextlib.redirect_stdout(io.StringIO()), tempfile.TemporaryDirectory() as tmp:
        _, cfg = build._copy_board(path, tmp)
    skip = build.left_out(cfg)
    off = {name for _, name in skip}
    for _, name, paths in build.FEATURES:
        for p in paths:
            assert os.path.exists(os.path.join(LIB, p.rstrip("/"))), p
    deployed = [r for r in lib_sources() if not build._dropped(r, skip)]
    gone = set(lib_sources()) - set(deployed)
    guarded_hits = set()
    roots = [(f, os.path.join(mpyrun.ROOT, f)) for f in ("boot.py", "main.py")]
    for rel, p in roots + [(r, _source(r)) for r in deployed]:
        for dep in _imports(p) & gone:
            assert GUARDED.get((rel, dep)) in off, "%s imports %s, left out for %s" % (rel, dep, board)
            guarded_hits.add((rel, dep))
    # every guarded edge the table relies on is still there (else the table is stale)
    for (rel, dep), name in GUARDED.items():
        assert dep in _imports(os.path.join(LIB, rel)), (rel, dep)
        assert name in [n for n, _, _ in build.FEATURES]


_RUN_BOARD = """\
import sys
import jsonfile
from gateway import app, config, console, diag, housekeeping, netboot, netup, pairing, startup, supervisor, timesync
from charger import Charger
from controller import mapload
from controller.bridge import Bridge
from modbus import transport
from modbus.master import Master
from usecases.station import SpineApp

GONE = %r
cfg = config.load("board.json")
# what Gateway turns on, read from the config here and not from build.FEATURES: mdns.enabled null
# is on on the device (the unix port's parser makes it off)
raw = jsonfile.load("board.json")
c = cfg["charger"]
kind = c["link"]["kind"]
ON = [k for k, on in (("mdns", cfg["mdns"]["enabled"] or raw.get("mdns", {}).get("enabled") is None),
                      ("mdns.browse", cfg["ship"]["cem_browse"]),
                      ("echonet", cfg["echonet"]["enabled"]), ("usecases.evcs", cfg["usecases"]["evcs"]),
                      ("usecases.cevc", cfg["usecases"]["cevc"]), ("modbus.uart", kind == "uart"),
                      ("modbus.net", kind in ("tcp", "rtu-over-tcp")), ("modbus.tty", kind == "serial")) if on]
print("on:", " ".join(ON))
# the link's module, as gateway.startup._link imports it for this kind
__import__({"uart": "modbus.uart", "serial": "modbus.tty"}.get(kind, "modbus.net"))
rm = mapload.load_file(c["map"])
ch = Charger(c["hw_min"], c["hw_max"], c["phases"], c["nominal_v"], rm.limit_scale)
# the SPINE use cases as Gateway builds them: station.py imports evcs and cevc when they are on
sp = SpineApp("d:_n:x", {"brand": "B", "model": "M", "serial": "1"}, ch, startup._spine_options(cfg, "."))
assert (sp.evcs is not None) == ("usecases.evcs" in ON), sp.evcs
assert (sp.cevc is not None) == ("usecases.cevc" in ON), sp.cevc
sp.tick(0)
if "mdns" in ON:
    from gateway import mdns_service
if "mdns.browse" in ON:
    from mdns.browse import Browser
if "echonet" in ON:
    from gateway import echonet_service

    cfg["echonet"]["enabled"] = True
    assert echonet_service.build(cfg, ch, ".", "ab" * 20, "1") is not None
for m in GONE:
    try:
        __import__(m)
    except ImportError:
        pass
    else:
        raise AssertionError("left out but importable: " + m)
for name, m in sorted(sys.modules.items()):
    f = getattr(m, "__file__", "")
    # from the tree, or frozen (asyncio: a relative name); never from lib/
    assert name == "__main__" or not f.startswith("/") or f.startswith(%r), (name, f)
print("board ok", len(sys.modules))
"""


@pytest.mark.parametrize("board", BOARDS)
def test_each_boards_tree_runs_its_features_under_micropython(board, tmp_path):
    """Each board config's tree, built for x64, with only that tree on MICROPYPATH (and .frozen for
    asyncio): every module imports (as test_built_tree_imports_under_micropython), and the code of
    each feature the config turns on runs (the use cases built as Gateway builds them, the mDNS
    and ECHONET services imported, the ECHONET adapter made); the left-out modules are absent."""
    out = str(tmp_path / "t")
    path = os.path.join(mpyrun.ROOT, "board_configs", board)
    s = build.build(out, board=path, march="x64", limit=10 ** 9)
    r, n = _import_all(out, tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stdout, r.stdout + r.stderr
    assert ("imported %d" % n) in r.stdout
    off = {name for _, name in s["left_out"]}
    on = [name for name, _, _ in build.FEATURES if name not in off]
    gone = [rel[:-3].replace("/", ".").replace(".__init__", "") for rel in s["left_out_files"]]
    script = tmp_path / "board.py"
    script.write_text(_RUN_BOARD % (gone, out))
    env = dict(os.environ, MICROPYPATH=os.path.join(out, "lib") + ":.frozen")
    r = subprocess.run([mpyrun.MICROPYTHON, str(script)], capture_output=True, text=True, env=env, cwd=out)
    assert r.returncode == 0 and "Traceback" not in r.stdout and "board ok" in r.stdout, r.stdout + r.stderr
    # the build's table agrees with what the device's code turns on for this config
    assert sorted(r.stdout.split("on:", 1)[1].split("\n", 1)[0].split()) == sorted(on), r.stdout
    if board == "esp32-wroom.json":
        # (this tree is x64 code for the host; the 200 KB limit is checked on the xtensawin
        # build, whose native modules are smaller, by test_size_target_and_report)
        assert s["left_out"] == WROOM_LEFT_OUT
