"""gw deploy, repl and flash: the exact mpremote, ampy and esptool command lines (no board here),
checked against each tool's own argument parser, and the errors for a missing or wrong port."""

import argparse
import json
import os
import shlex
import subprocess
import sys

import pytest

import devport
import gw
from support import mpyrun

PROBE = 'import sys; print(getattr(sys.implementation, "_mpy", 0))'


def gw_lines(capsys, *argv):
    rc = gw.main(list(argv))
    out = capsys.readouterr()
    return rc, [shlex.split(line) for line in out.out.splitlines()], out.err


@pytest.fixture
def build_dir(tmp_path):
    """A gw build output as deploy sees it (the real build is tested in test_tools_build.py)."""
    d = tmp_path / "out"
    for rel in ("lib/ship/node.mpy", "lib/compat.mpy", "chargers/x.json", "data/cert.der", "data/key.der"):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(b"M\x06\x00\x1f")
    for f in ("boot.py", "main.py", "board.json"):
        (d / f).write_text("#\n")
    (d / ".gw-build").write_text(json.dumps({"mpy": "6.3", "lib_files": 2}))
    return str(d)


def test_deploy_mpremote_exact(capsys, build_dir):
    d = build_dir
    rc, cmds, _ = gw_lines(capsys, "deploy", d, "--port", "/dev/ttyUSB0", "--dry-run")
    assert rc == 0
    assert cmds == [
        ["mpremote", "connect", "/dev/ttyUSB0", "exec", PROBE],
        ["mpremote", "connect", "/dev/ttyUSB0", "fs", "cp", "-r",
         d + "/board.json", d + "/boot.py", d + "/chargers", d + "/data", d + "/lib", d + "/main.py",
         ":", "+", "reset"],
    ]


def test_deploy_mpremote_options(capsys, build_dir):
    d = build_dir
    rc, cmds, _ = gw_lines(capsys, "deploy", d, "--port", "/dev/ttyACM0", "--dry-run", "--skip-lib", "--force",
                           "--no-reset")
    assert rc == 0
    assert cmds == [["mpremote", "connect", "/dev/ttyACM0", "fs", "cp", "-r", "-f",
                     d + "/board.json", d + "/boot.py", d + "/chargers", d + "/data", d + "/main.py", ":"]]
    rc, cmds, _ = gw_lines(capsys, "deploy", d, "--port", "/dev/ttyACM0", "--dry-run", "--clean", "--no-check")
    assert rc == 0
    assert cmds == [["mpremote", "connect", "/dev/ttyACM0",
                     "exec", "import os; 'lib' in os.listdir('/') or os.mkdir('/lib')", "+",
                     "fs", "rm", "-r", ":lib", "+",
                     "fs", "cp", "-r", d + "/board.json", d + "/boot.py", d + "/chargers", d + "/data", d + "/lib",
                     d + "/main.py", ":", "+", "reset"]]


def test_deploy_romfs_exact(capsys, build_dir):
    # lib/ as the ROMFS image first (mpremote refuses a board without a romfs partition, or a too
    # large image, before it erases anything, and the chain stops), then :lib goes (stale
    # modules of an earlier file-system deploy), then the rest of the build to the file system
    d = build_dir
    rc, cmds, _ = gw_lines(capsys, "deploy", d, "--port", "/dev/ttyUSB0", "--dry-run", "--romfs")
    assert rc == 0
    assert cmds == [
        ["mpremote", "connect", "/dev/ttyUSB0", "exec", PROBE],
        ["mpremote", "connect", "/dev/ttyUSB0", "romfs", "--no-mpy", "deploy", d + "/lib", "+",
         "exec", "import os; 'lib' in os.listdir('/') or os.mkdir('/lib')", "+", "fs", "rm", "-r", ":lib", "+",
         "fs", "cp", "-r", d + "/board.json", d + "/boot.py", d + "/chargers", d + "/data", d + "/main.py", ":",
         "+", "reset"],
    ]


def test_deploy_romfs_refusals(capsys, build_dir, tmp_path):
    rc, cmds, err = gw_lines(capsys, "deploy", build_dir, "--port", "/dev/ttyUSB0", "--dry-run", "--romfs",
                             "--skip-lib")
    assert rc == 2 and cmds == [] and "choose one" in err
    rc, cmds, err = gw_lines(capsys, "deploy", build_dir, "--port", "/dev/ttyUSB0", "--dry-run", "--romfs",
                             "--tool", "ampy")
    assert rc == 2 and cmds == [] and "--romfs is for mpremote" in err
    d = tmp_path / "nolib"
    (d / "data").mkdir(parents=True)
    (d / "board.json").write_text("{}")
    (d / ".gw-build").write_text(json.dumps({"mpy": "6.3"}))
    rc, cmds, err = gw_lines(capsys, "deploy", str(d), "--port", "/dev/ttyUSB0", "--dry-run", "--romfs")
    assert rc == 2 and cmds == [] and "no lib/" in err


def test_deploy_ampy_exact(capsys, build_dir):
    d = build_dir
    rc, cmds, _ = gw_lines(capsys, "deploy", d, "--tool", "ampy", "--port", "/dev/ttyUSB1", "--clean", "--dry-run")
    assert rc == 0
    base = ["ampy", "--port", "/dev/ttyUSB1"]
    assert cmds == [
        base + ["rmdir", "--missing-okay", "/lib"],
        base + ["put", d + "/board.json", "/board.json"],
        base + ["put", d + "/boot.py", "/boot.py"],
        base + ["put", d + "/chargers", "/chargers"],
        base + ["put", d + "/data", "/data"],
        base + ["put", d + "/lib", "/lib"],
        base + ["put", d + "/main.py", "/main.py"],
        base + ["reset", "--hard"],
    ]
    rc, cmds, _ = gw_lines(capsys, "deploy", d, "--tool", "ampy", "--port", "/dev/ttyUSB1", "--baud", "57600",
                           "--no-reset", "--skip-lib", "--dry-run")
    assert cmds[0] == ["ampy", "--port", "/dev/ttyUSB1", "--baud", "57600", "put", d + "/board.json", "/board.json"]
    assert len(cmds) == 5


def test_repl_exact(capsys):
    rc, cmds, _ = gw_lines(capsys, "repl", "--port", "/dev/ttyACM0", "--dry-run")
    assert rc == 0
    assert cmds == [["mpremote", "connect", "/dev/ttyACM0", "repl"]]


@pytest.fixture
def firmware(tmp_path):
    p = tmp_path / "firmware.bin"
    p.write_bytes(b"\xe9\x03\x02\x20" + bytes(60))
    return str(p)


@pytest.mark.parametrize("chip,offset", [("esp32", "0x1000"), ("esp32s2", "0x1000"), ("esp32s3", "0x0"),
                                         ("esp32c3", "0x0"), ("esp32c6", "0x0")])
def test_flash_exact(capsys, firmware, chip, offset):
    rc, cmds, _ = gw_lines(capsys, "flash", firmware, "--chip", chip, "--port", "/dev/ttyUSB0", "--dry-run")
    assert rc == 0
    assert cmds == [["esptool", "--chip", chip, "--port", "/dev/ttyUSB0", "--baud", "460800",
                     "write-flash", offset, firmware]]


def test_flash_erase_and_baud(capsys, firmware):
    rc, cmds, _ = gw_lines(capsys, "flash", firmware, "--port", "/dev/ttyUSB0", "--baud", "115200", "--erase",
                           "--dry-run")
    assert rc == 0
    base = ["esptool", "--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "115200"]
    assert cmds == [base + ["erase-flash"], base + ["write-flash", "0x1000", firmware]]


def test_flash_refuses_what_is_not_an_image(capsys, tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    rc, cmds, err = gw_lines(capsys, "flash", str(p), "--port", "/dev/ttyUSB0", "--dry-run")
    assert rc == 2 and cmds == [] and "not an ESP32 firmware image" in err
    rc, cmds, err = gw_lines(capsys, "flash", str(tmp_path / "missing.bin"), "--dry-run")
    assert rc == 2 and "no such file" in err


# --- ports ---------------------------------------------------------------------------------


@pytest.fixture
def fake_dev(tmp_path, monkeypatch):
    d = tmp_path / "dev"
    d.mkdir()
    monkeypatch.setattr(devport, "PORT_GLOBS", [str(d / "ttyUSB*"), str(d / "ttyACM*")])
    return d


def test_no_board_attached(capsys, fake_dev, build_dir, firmware):
    for argv in (["deploy", build_dir], ["repl"], ["flash", firmware]):
        rc, cmds, err = gw_lines(capsys, *argv)
        assert rc == 2 and cmds == []
        assert "no board attached" in err and "ttyUSB*" in err and "--port" in err


def test_the_only_port_is_taken_and_several_are_refused(capsys, fake_dev):
    (fake_dev / "ttyACM0").touch()
    rc, cmds, _ = gw_lines(capsys, "repl", "--dry-run")
    assert cmds == [["mpremote", "connect", str(fake_dev / "ttyACM0"), "repl"]]
    (fake_dev / "ttyUSB0").touch()
    rc, cmds, err = gw_lines(capsys, "repl", "--dry-run")
    assert rc == 2 and "several serial ports" in err and "ttyUSB0" in err and "ttyACM0" in err


def test_wrong_port(capsys, fake_dev, build_dir):
    (fake_dev / "ttyUSB0").touch()
    rc, cmds, err = gw_lines(capsys, "deploy", build_dir, "--port", "/dev/ttyUSB77")
    assert rc == 2 and cmds == []
    assert "wrong port: /dev/ttyUSB77 does not exist" in err and str(fake_dev / "ttyUSB0") in err


def test_deploy_needs_a_build(capsys, tmp_path):
    rc, _, err = gw_lines(capsys, "deploy", str(tmp_path / "nothing"), "--port", "/dev/ttyUSB0", "--dry-run")
    assert rc == 2 and "gw build --out" in err
    rc, _, err = gw_lines(capsys, "deploy", str(tmp_path), "--port", "/dev/ttyUSB0", "--dry-run")
    assert rc == 2 and "not a gw build output" in err


def test_deploy_mpy_mismatch_stops_before_copying(capsys, build_dir, monkeypatch):
    import build

    seen = []

    def fake_capture(cmd, timeout=30):
        seen.append(cmd)
        return "5\n"  # a board with MicroPython before 1.19 (mpy v5)

    ran = []
    monkeypatch.setattr(build, "capture", fake_capture)
    monkeypatch.setattr(devport.subprocess, "run", lambda *a, **k: ran.append(a))
    rc, _, err = gw_lines(capsys, "deploy", build_dir, "--port", "socket://x")
    assert rc == 2 and "mpy version mismatch" in err and "v5" in err
    assert seen == [["mpremote", "connect", "socket://x", "exec", PROBE]]
    assert ran == []


@pytest.mark.parametrize("mpy,native,ok", [
    (6 | (3 | 10 << 2) << 8, True, True),  # v6.3 xtensawin, as built
    (6 | (3 | 11 << 2) << 8, True, False),  # an ESP32-C3: rv32imc
    (6 | (2 | 10 << 2) << 8, True, False),  # an older sub-version
    (6 | 3 << 8, True, False),  # a firmware without a native emitter
    (6 | (3 | 11 << 2) << 8, False, True),  # bytecode only loads anywhere its major version does
])
def test_deploy_checks_the_native_code_against_the_board(capsys, build_dir, monkeypatch, mpy, native, ok):
    import build

    marker = os.path.join(build_dir, ".gw-build")
    with open(marker, "w") as f:
        json.dump({"mpy": "6.3", "lib_files": 2, "march": "xtensawin", "native": ["ws_mask.py"] if native else []}, f)
    ran = []
    monkeypatch.setattr(build, "capture", lambda cmd, timeout=30: "%d\n" % mpy)
    monkeypatch.setattr(devport, "run_one", lambda cmd, out: ran.append(cmd) or 0)
    rc, _, err = gw_lines(capsys, "deploy", build_dir, "--port", "socket://x")
    if ok:
        assert rc == 0 and ran, err
    else:
        assert rc == 2 and "native code mismatch" in err and "ws_mask.py" in err, err
        assert ran == []


# --- the printed lines are valid for the tools themselves ----------------------------------


def test_mpremote_accepts_the_commands(build_dir):
    from mpremote import main as mp

    import deploy

    cmds = deploy.mpremote_commands("/dev/ttyUSB0", deploy.entries(build_dir), clean=True, force=True)
    cmds += deploy.mpremote_commands("/dev/ttyUSB0", deploy.entries(build_dir, True), romfs=build_dir + "/lib")
    cmds += [deploy.check_command("/dev/ttyUSB0")] + deploy.repl_commands("/dev/ttyUSB0")
    seen = set()
    for cmd in cmds:
        assert cmd[0] == "mpremote"
        # mpremote's own command loop (main.main), parsing without running anything
        cfg = type("Config", (), {})()
        cfg.commands = {}
        mp.prepare_command_expansions(cfg)
        rest = list(cmd[1:])
        names = []
        while rest:
            if rest[0] == "+":
                rest.pop(0)
                continue
            mp.do_command_expansion(rest)
            name = rest.pop(0)
            assert name in mp._COMMANDS, name
            names.append(name)
            t = rest.index("+") if "+" in rest else len(rest)
            p = mp._COMMANDS[name][1]()
            p.add_argument("next_command", nargs=argparse.REMAINDER)
            a = p.parse_args(rest[:t])
            if name == "fs":
                assert a.command[0] in ("cp", "rm") and a.recursive
            if name == "romfs":
                assert a.command == ["deploy"] and a.mpy is False and a.partition == 0
                assert os.path.isdir(a.path)
            rest = a.next_command + rest[t:]
        assert names[0] == "connect"
        seen.update(names)
    assert {"romfs", "exec", "fs", "repl"} <= seen


def test_ampy_knows_the_commands():
    from ampy import cli

    c = cli.cli.commands
    assert {"put", "rmdir", "reset"} <= set(c)
    assert "--missing-okay" in [o for p in c["rmdir"].params for o in p.opts]
    assert "--hard" in [o for p in c["reset"].params for o in p.opts]
    assert {"--port", "--baud"} <= {o for p in cli.cli.params for o in p.opts}


def test_esptool_accepts_the_commands(firmware):
    import flash

    esptool = os.path.join(mpyrun.VENV_BIN, "esptool")
    for cmd in flash.commands("esp32s3", "/dev/ttyUSB0", firmware, erase=True):
        # --help after the command: click parses and checks everything before it, connects to nothing
        r = subprocess.run([esptool] + cmd[1:] + ["--help"], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert cmd[7] in r.stdout


def test_help_of_every_device_command():
    for c in ("build", "deploy", "flash", "qr", "run", "repl"):
        r = subprocess.run([sys.executable, os.path.join(mpyrun.ROOT, "tools", "gw.py"), c, "--help"],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "usage: gw " + c in r.stdout, (c, r.stderr)


def test_dry_run_without_a_board_prints_the_commands_with_a_placeholder(capsys, fake_dev, build_dir, firmware):
    for argv, tool in ((["deploy", build_dir, "--dry-run"], "mpremote"), (["repl", "--dry-run"], "mpremote"),
                       (["flash", firmware, "--dry-run"], "esptool")):
        rc, cmds, err = gw_lines(capsys, *argv)
        assert rc == 0 and cmds and all(c[0] == tool and devport.PLACEHOLDER in c for c in cmds), cmds
        assert "no board attached: PORT stands for its serial port" in err


def test_flash_falls_back_to_115200(capfd, tmp_path, firmware):
    # the real esptool on a "port" that is a plain file: it fails at once at either rate
    port = tmp_path / "ttyFAKE"
    port.touch()
    assert gw.main(["flash", firmware, "--port", str(port)]) == 2
    out = capfd.readouterr()
    runs = [shlex.split(line[2:]) for line in out.out.splitlines() if line.startswith("$ ")]
    assert [c[c.index("--baud") + 1] for c in runs] == ["460800", "115200"]
    assert "esptool failed at 460800 baud" in out.out and "esptool failed (exit" in out.err


def test_flash_fallback_keeps_the_slow_rate_for_the_rest():
    import flash

    ran = []

    def esptool(cmd):  # a board that only talks at 115200
        ran.append(cmd)
        return 0 if cmd[cmd.index("--baud") + 1] == "115200" else 2

    cmds = flash.commands("esp32", "/dev/ttyUSB0", "fw.bin", 460800, erase=True)
    assert flash.run_with_fallback(cmds, 460800, esptool) == 0
    assert [(c[c.index("--baud") + 1], c[-1]) for c in ran] == [("460800", "erase-flash"), ("115200", "erase-flash"),
                                                                 ("115200", "fw.bin")]
