"""The firmware manifest freezes all of lib/ and native/; lib/ compiles as bytecode for any target,
native/ as machine code for the ESP32's arch and the host's."""

import os
import re
import subprocess

import pytest

from support import mpyrun

LIB = os.path.join(mpyrun.ROOT, "lib")
NATIVE = os.path.join(mpyrun.ROOT, "native")


def test_manifest_names_every_module_of_lib():
    text = open(os.path.join(mpyrun.ROOT, "firmware", "manifest.py")).read()
    packages = set(re.findall(r'^package\("([^"]+)"', text, re.M))
    modules = set(re.findall(r'^module\("([^"]+)\.py", base_path="../lib"\)', text, re.M))
    natives = set(re.findall(r'^module\("([^"]+)\.py", base_path="../native"\)', text, re.M))
    on_disk_pkgs = {d for d in os.listdir(LIB) if os.path.isdir(os.path.join(LIB, d)) and not d.startswith("__")}
    on_disk_mods = {f[:-3] for f in os.listdir(LIB) if f.endswith(".py")}
    assert packages == on_disk_pkgs
    assert modules == on_disk_mods
    assert natives == {f[:-3] for f in os.listdir(NATIVE) if f.endswith(".py")}
    for p in packages:
        assert os.path.exists(os.path.join(LIB, p, "__init__.py")), p


def _compile_all(top, tmp_path, march):
    """[(path relative to top, the .mpy holds machine code)] of every module under top."""
    out = []
    for root, _, files in os.walk(top):
        for f in files:
            if f.endswith(".py"):
                mpy = tmp_path / "x.mpy"
                r = subprocess.run([mpyrun.MPY_CROSS, *(["-march=" + march] if march else []), "-o", str(mpy),
                                    os.path.join(root, f)], capture_output=True, text=True)
                assert r.returncode == 0, (f, march, r.stderr)
                rel = os.path.relpath(os.path.join(root, f), top).replace(os.sep, "/")
                out.append((rel, bool(mpy.read_bytes()[2] >> 2)))
    return out


@pytest.mark.parametrize("arch", [None, "xtensawin", "x64"])
def test_lib_is_bytecode_for_any_target(tmp_path, arch):
    # no -march at all, the ESP32's (the frozen firmware) and the host's: lib/ holds no machine code
    mods = _compile_all(LIB, tmp_path, arch)
    assert len(mods) > 50
    assert [rel for rel, native in mods if native] == []


@pytest.mark.parametrize("arch", ["xtensawin", "x64"])
def test_native_compiles_to_machine_code_for_the_esp32_and_the_host(tmp_path, arch):
    mods = _compile_all(NATIVE, tmp_path, arch)
    assert sorted(rel for rel, native in mods if native) == ["eejson_escape.py", "eejson_lexer.py", "utf8.py",
                                                             "ws_mask.py"]
    assert all(native for _, native in mods)
