"""gw qr: the SHIP QR text against the format of ship.md 11.3 (written out here, not taken from
the tool), the SKI recomputed from a real certificate, and the PNG segno writes."""

import hashlib
import os
import re
import struct
import zlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import gw
from support import mpyrun
import qr

HOST_SIM = os.path.join(mpyrun.ROOT, "board_configs", "host-sim.json")


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "certs"
    assert gw.main(["certs", "--out", str(d)]) == 0
    der = (d / "cert.der").read_bytes()
    # the SKI as SHIP defines it: SHA-1 of the uncompressed public point
    key = x509.load_der_x509_certificate(der).public_key()
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return str(d), hashlib.sha1(point).hexdigest()


def test_text_matches_the_reference_format(certs, capsys):
    d, ski = certs
    capsys.readouterr()
    assert gw.main(["qr", "--certs", d, "--board", HOST_SIM, "--text-only"]) == 0
    out = capsys.readouterr().out.splitlines()
    # host-sim identity: OpenEVGW / HostSim / ChargingStation, serial null -> first 10 SKI digits
    serial = ski[:10]
    assert out == ["SHIP;SKI:%s;ID:OpenEVGW-HostSim-%s;BRAND:OpenEVGW;TYPE:ChargingStation;MODEL:HostSim;"
                   "SERIAL:%s;CAT:3;ENDSHIP;" % (ski, serial, serial)]


def test_text_rules():
    # optional fields only when non-empty, in the fixed order; ';' removed from values
    assert qr.qr_text("ab" * 20, "X-Y-1", cat=None) == "SHIP;SKI:%s;ID:X-Y-1;ENDSHIP;" % ("ab" * 20)
    assert qr.qr_text("ab" * 20, "I;D", brand="B;r", model="", serial="7", type_="T") == (
        "SHIP;SKI:%s;ID:ID;BRAND:Br;TYPE:T;SERIAL:7;CAT:3;ENDSHIP;" % ("ab" * 20))
    with pytest.raises(ValueError):
        qr.qr_text("", "id")


def test_board_serial_and_given_ski(tmp_path, capsys):
    board = tmp_path / "b.json"
    board.write_text('{"identity": {"brand": "Acme", "model": "Box", "type": "EVSE", "serial": "SN42"}}')
    ski = "0123456789abcdef0123456789abcdef01234567"
    assert gw.main(["qr", "--ski", ski.upper(), "--board", str(board), "--text-only"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "SHIP;SKI:%s;ID:Acme-Box-SN42;BRAND:Acme;TYPE:EVSE;MODEL:Box;SERIAL:SN42;CAT:3;ENDSHIP;" % ski]
    dev = tmp_path / "device.json"
    dev.write_text('{"identity": {"serial": "X9"}}')
    assert gw.main(["qr", "--ski", ski, "--board", str(board), "--device", str(dev), "--text-only"]) == 0
    assert capsys.readouterr().out.startswith("SHIP;SKI:%s;ID:Acme-Box-X9;" % ski)
    assert gw.main(["qr", "--ski", "12", "--board", str(board)]) == 2
    assert "40 hex digits" in capsys.readouterr().err


def test_missing_certificate(tmp_path, capsys):
    assert gw.main(["qr", "--certs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no certificate" in err and "gw certs --out" in err


def _png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    w, h, depth, color = struct.unpack(">IIBB", data[16:26])
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]
    return w, h


def test_terminal_and_png(certs, tmp_path, capsys):
    d, ski = certs
    png = tmp_path / "ship.png"
    capsys.readouterr()
    assert gw.main(["qr", "--certs", d, "--board", HOST_SIM, "--png", str(png), "--scale", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    text = out[0]
    # the terminal rendering: half-height block rows of equal width
    art = [row for row in out[1:] if row and set(row) <= set("█▀▄ ")]
    assert len(art) > 10 and len({len(row) for row in art}) == 1
    w, h = _png_size(png.read_bytes())
    q = qr.make(text)
    assert w == h == (q.symbol_size(scale=1, border=4)[0]) * 4
    # a version that holds the text (ISO 18004: 4 * version + 17 modules)
    assert (w // 4 - 8 - 17) % 4 == 0 and q.version >= 1
    assert "wrote %s" % png in out[-1]


# the grammar of ship.md 11.3 plus the PIN of IEC 63380-3 6.9.8, written out here: SKI and ID
# first, then the optional fields in their fixed order, each at most once, no ';' in values
GRAMMAR = re.compile(
    r"^SHIP;SKI:(?P<ski>[0-9a-f]{40});ID:(?P<id>[^;]+);"
    r"(?:BRAND:(?P<brand>[^;]+);)?(?:TYPE:(?P<type>[^;]+);)?(?:MODEL:(?P<model>[^;]+);)?"
    r"(?:SERIAL:(?P<serial>[^;]+);)?(?:CAT:(?P<cat>[0-9](?:,[0-9])*);)?(?:PIN:(?P<pin>[0-9]{8,16});)?ENDSHIP;$")


def test_text_with_pin_follows_the_grammar(tmp_path, capsys):
    ski = "0123456789abcdef0123456789abcdef01234567"
    board = tmp_path / "b.json"
    board.write_text('{"identity": {"brand": "Acme", "model": "Box", "type": "EVSE", "serial": "SN42"},'
                     ' "ship": {"pin_mode": "required", "pin": "12345678"}}')
    assert gw.main(["qr", "--ski", ski, "--board", str(board), "--text-only"]) == 0
    text = capsys.readouterr().out.splitlines()[0]
    m = GRAMMAR.match(text)
    assert m, text
    assert m.group("pin") == "12345678" and m.group("cat") == "3" and m.group("serial") == "SN42"
    # --pin overrides; pin_mode none leaves the PIN out
    assert gw.main(["qr", "--ski", ski, "--board", str(board), "--pin", "9876543210", "--text-only"]) == 0
    assert GRAMMAR.match(capsys.readouterr().out.splitlines()[0]).group("pin") == "9876543210"
    assert gw.main(["qr", "--ski", ski, "--board", HOST_SIM, "--text-only"]) == 0
    m = GRAMMAR.match(capsys.readouterr().out.splitlines()[0])
    assert m and m.group("pin") is None
    assert gw.main(["qr", "--ski", ski, "--board", HOST_SIM, "--pin", "12ab"]) != 0
    assert "--pin: must have 8..16 digits" in capsys.readouterr().err


def test_grammar_holds_for_any_values():
    from hypothesis import given, settings, strategies as st

    text_v = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)

    @settings(max_examples=200, deadline=None)
    @given(text_v.filter(lambda s: s.replace(";", "")), text_v, text_v, text_v, text_v,
           st.none() | st.text(alphabet="0123456789", min_size=8, max_size=16))
    def check(ship_id, brand, type_, model, serial, pin):
        t = qr.qr_text("ab" * 20, ship_id, brand, type_, model, serial, pin=pin)
        assert GRAMMAR.match(t), t
        assert t.count("ENDSHIP;") == 1 or "ENDSHIP" in ship_id + brand + type_ + model + serial

    check()


def test_device_banner_prints_the_same_text(tmp_path):
    # the device's QR line comes from the same lib function (lib/ship/qrtext.py)
    from support.gateway_proc import Gateway

    g = Gateway(tmp_path / "gw", ship={"pin_mode": "optional", "pin": "55554444"})
    g.start()
    try:
        m = g.wait_for(r"^QR (\S+)$")
        want = qr.qr_text(g.ski, g.ship_id, "Test", "ChargingStation", "GW", "0001", pin="55554444")
        assert m.group(1) == want
        assert GRAMMAR.match(want)
    finally:
        g.stop()
