"""The firmware manifest freezes all of lib/, and lib/ compiles for the ESP32's mpy version and arch."""

import os
import re
import subprocess

import pytest

from support import mpyrun

LIB = os.path.join(mpyrun.ROOT, "lib")


def test_manifest_names_every_module_of_lib():
    text = open(os.path.join(mpyrun.ROOT, "firmware", "manifest.py")).read()
    packages = set(re.findall(r'^package\("([^"]+)"', text, re.M))
    modules = set(re.findall(r'^module\("([^"]+)\.py"', text, re.M))
    on_disk_pkgs = {d for d in os.listdir(LIB) if os.path.isdir(os.path.join(LIB, d)) and not d.startswith("__")}
    on_disk_mods = {f[:-3] for f in os.listdir(LIB) if f.endswith(".py")}
    assert packages == on_disk_pkgs
    assert modules == on_disk_mods
    for p in packages:
        assert os.path.exists(os.path.join(LIB, p, "__init__.py")), p


@pytest.mark.parametrize("arch", ["xtensawin", "x64"])
def test_lib_compiles_for_the_esp32_and_the_host(tmp_path, arch):
    # the ESP32's arch (the frozen firmware) and the host's (make mpy-check); the modules with
    # viper functions come out as machine code, the others as bytecode
    native = []
    for root, _, files in os.walk(LIB):
        for f in files:
            if f.endswith(".py"):
                out = tmp_path / "x.mpy"
                r = subprocess.run(
                    [mpyrun.MPY_CROSS, "-march=" + arch, "-o", str(out), os.path.join(root, f)],
                    capture_output=True, text=True,
                )
                assert r.returncode == 0, (f, r.stderr)
                if out.read_bytes()[2] >> 2:
                    native.append(os.path.relpath(os.path.join(root, f), LIB).replace(os.sep, "/"))
    assert sorted(native) == ["compat.py", "eejson/escape.py", "eejson/lexer.py", "utf8.py"]
