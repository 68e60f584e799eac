"""Board configs and firmware board definitions: what can be checked without ESP-IDF.

Every board_configs/*.json parses with the device's own parser (lib/gateway/config.py) and its
charger map exists; each firmware/boards/* definition targets its chip, freezes
firmware/manifest.py, keeps the IDF mDNS responder and queries out, and carries the TLS
settings SHIP needs."""

import glob
import json
import os
import re

import pytest

from support import mpyrun
from gateway import config

BOARDS = os.path.join(mpyrun.ROOT, "board_configs")
FW = os.path.join(mpyrun.ROOT, "firmware")
CONFIGS = sorted(glob.glob(os.path.join(BOARDS, "*.json")))

# MicroPython ports/esp32/boards/ fragments the definitions may name (1.29)
PORT_FRAGMENTS = {"sdkconfig.base", "sdkconfig.240mhz", "sdkconfig.spiram_esp32", "sdkconfig.spiram_quad",
                  "sdkconfig.spiram_oct", "sdkconfig.flash_qio_80m", "sdkconfig.free_ram"}


def test_the_issue_boards_exist():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {"host-sim.json", "esp32-wroom.json", "esp32-s3-psram.json", "olimex-esp32-poe.json"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_board_config_parses(path):
    cfg = config.load(path)
    assert cfg["board"] == os.path.basename(path)[:-5]
    c = cfg["charger"]
    if c is not None:
        assert os.path.isfile(c["map"]), c["map"]
        json.load(open(c["map"]))
    if cfg["board"] != "host-sim":
        # a device: reachable from the LAN, a real network, the RS-485 UART with its DE pin
        assert cfg["ship"]["host"] == "0.0.0.0"
        assert cfg["network"]["kind"] in ("wifi", "ethernet")
        assert c["link"]["kind"] == "uart" and c["link"]["de"] is not None
        assert c["discharges"] is False
        pins = [c["link"]["tx"], c["link"]["rx"], c["link"]["de"]]
        n = cfg["network"]
        if n["kind"] == "ethernet":
            pins += [n["mdc"], n["mdio"]] + ([n["power"]] if n["power"] is not None else [])
            # GPIO0 or GPIO17 carry the RMII clock
            pins.append(int(re.match(r"GPIO(\d+)_", n["clock"]).group(1)))
        if cfg["safe_mode_pin"] is not None:
            pins.append(cfg["safe_mode_pin"])
        assert len(pins) == len(set(pins)), pins
        # GPIO34..39 of the ESP32 are inputs only: never TX or DE
        assert c["link"]["tx"] < 34 and c["link"]["de"] < 34


def _cmake(board):
    text = open(os.path.join(FW, "boards", board, "mpconfigboard.cmake")).read()
    return re.sub(r"#.*", "", text)


def _fragments(board):
    """The sdkconfig fragments a definition (and its variants) lists, as files on disk or port names."""
    d = os.path.join(FW, "boards", board)
    out = []
    for f in sorted(glob.glob(os.path.join(d, "mpconfig*.cmake"))):
        text = re.sub(r"#.*", "", open(f).read())
        for m in re.finditer(r"SDKCONFIG_DEFAULTS([^)]*)\)", text):
            out += m.group(1).split()
    return out


@pytest.mark.parametrize("board,target", [("OPENEVGW_ESP32", "esp32"), ("OPENEVGW_ESP32_S3", "esp32s3")])
def test_board_definition(board, target):
    d = os.path.join(FW, "boards", board)
    cm = _cmake(board)
    assert re.search(r"set\(IDF_TARGET %s\)" % target, cm)
    m = re.search(r"set\(MICROPY_FROZEN_MANIFEST \$\{MICROPY_BOARD_DIR\}/([^)]+)\)", cm)
    assert m and os.path.samefile(os.path.join(d, m.group(1)), os.path.join(FW, "manifest.py"))
    frags = _fragments(board)
    assert frags[0] == "boards/sdkconfig.base"
    assert "boards/sdkconfig.ble" not in frags  # no Bluetooth
    for f in frags:
        if f.startswith("${MICROPY_BOARD_DIR}/"):
            assert os.path.isfile(os.path.join(d, f[len("${MICROPY_BOARD_DIR}/"):])), f
        else:
            assert f.startswith("boards/") and f[len("boards/"):] in PORT_FRAGMENTS, f
    assert "${MICROPY_BOARD_DIR}/../sdkconfig.gateway" in frags
    h = open(os.path.join(d, "mpconfigboard.h")).read()
    for macro in ("MICROPY_HW_ENABLE_MDNS_QUERIES", "MICROPY_HW_ENABLE_MDNS_RESPONDER", "MICROPY_PY_BLUETOOTH"):
        assert re.search(r"#define %s \(0\)" % macro, h), macro
    assert re.search(r'#define MICROPY_HW_MCU_NAME "ESP32', h)


def _sdkconfig(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'(CONFIG_[A-Z0-9_]+)=(y|n|\d+|"[^"]*")', line)
        assert m, (path, line)
        out[m.group(1)] = m.group(2)
    return out


def test_sdkconfig_fragments_are_well_formed():
    files = (glob.glob(os.path.join(FW, "boards", "sdkconfig.*"))
             + glob.glob(os.path.join(FW, "boards", "*", "sdkconfig.*")))
    assert len(files) >= 3
    for f in files:
        _sdkconfig(f)


def test_tls_settings_for_ship():
    s = _sdkconfig(os.path.join(FW, "boards", "sdkconfig.gateway"))
    want = {
        "CONFIG_MBEDTLS_SSL_PROTO_TLS1_2": "y",
        "CONFIG_MBEDTLS_SSL_PROTO_TLS1_3": "n",
        "CONFIG_MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA": "y",
        "CONFIG_MBEDTLS_ECDSA_C": "y",
        "CONFIG_MBEDTLS_ECDH_C": "y",
        "CONFIG_MBEDTLS_AES_C": "y",
        "CONFIG_MBEDTLS_GCM_C": "y",
        "CONFIG_MBEDTLS_ECP_DP_SECP256R1_ENABLED": "y",
        # sane buffers: full-size records in (interop), 4 KB out
        "CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN": "y",
        "CONFIG_MBEDTLS_SSL_IN_CONTENT_LEN": "16384",
        "CONFIG_MBEDTLS_SSL_OUT_CONTENT_LEN": "4096",
    }
    for k, v in want.items():
        assert s.get(k) == v, k


def test_poe_variant_matches_the_board_config():
    s = _sdkconfig(os.path.join(FW, "boards", "OPENEVGW_ESP32", "sdkconfig.poe"))
    cfg = config.load(os.path.join(BOARDS, "olimex-esp32-poe.json"))
    assert cfg["network"]["clock"] == "GPIO%s_OUT" % s["CONFIG_ETH_RMII_CLK_OUT_GPIO"]


def test_readme_names_the_build():
    text = open(os.path.join(FW, "README.md")).read()
    for s in ("BOARD_DIR=", "OPENEVGW_ESP32", "OPENEVGW_ESP32_S3", "ESP-IDF", "tools/gw flash", "tools/gw build"):
        assert s in text, s


# the ESP32 module's flash and PSRAM lines: GPIO6..11 (flash) everywhere, GPIO16 and 17 on a
# WROVER, whose PSRAM takes them
FLASH_PINS = {6, 7, 8, 9, 10, 11}
PSRAM_PINS = {16, 17}


def test_wrover_config_keeps_off_the_psram_lines():
    cfg = config.load(os.path.join(BOARDS, "esp32-wrover.json"))
    link = cfg["charger"]["link"]
    pins = {link["tx"], link["rx"], link["de"]}
    assert not pins & (PSRAM_PINS | FLASH_PINS), pins
    # the WROOM config is for modules without PSRAM: it does use 16 and 17
    wroom = config.load(os.path.join(BOARDS, "esp32-wroom.json"))["charger"]["link"]
    assert {wroom["tx"], wroom["rx"]} == PSRAM_PINS
    fw = open(os.path.join(FW, "README.md")).read()
    assert "`esp32-wrover.json` | `OPENEVGW_ESP32` `SPIRAM`" in fw
