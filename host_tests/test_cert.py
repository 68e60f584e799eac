"""lib/ship/cert.py: SKI from raw DER, checked against independent computations, under CPython
and MicroPython; malformed input must only ever raise CertError."""

import hashlib
import os
import random
import shutil
import struct
import subprocess

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import certs  # tools/certs.py: the independent reference
from support import mpyrun
from support.paths import MPY_SCRIPTS, TOOLS
from ship import cert

CERT_CHECK = os.path.join(MPY_SCRIPTS, "cert_check.py")


# Views of the device's parser that only the tests need (lib/ship/cert.py keeps peer_ski): the
# key's point, its hash and the SKI extension, walked by the same code as peer_ski.
def public_point(der):
    b = cert._view(der)
    ks, ke, _, _ = cert._walk(b)
    p = cert._point_at(b, ks, ke)
    return bytes(b[p : p + cert._POINT_LEN])


def ski_of(der):
    b = cert._view(der)
    ks, ke, _, _ = cert._walk(b)
    return cert._ski(b, ks, ke)


def ski_extension(der):
    b = cert._view(der)
    _, _, s, n = cert._walk(b)
    return None if s < 0 else bytes(b[s : s + n])


@pytest.fixture(scope="module")
def pki():
    good, _ = certs.create(cn="Test-EVSE", o="Test", ou="Lab", c="DE")
    other, _ = certs.create()
    forged, _ = certs.forged_cert(bytes.fromhex(certs.ski_hex(good)))
    rsa, _ = certs.rsa_cert()
    noski, _ = certs.cert_without_ski()
    p384, _ = certs.p384_cert()
    return {"good": good, "other": other, "forged": forged, "rsa": rsa, "noski": noski, "p384": p384}


def _openssl_ski(der, tmp_path):
    # ship.md 2.3: openssl x509 -pubkey | openssl ec -pubin -outform DER | tail -c 65 | sha1sum
    path = tmp_path / "c.der"
    path.write_bytes(der)
    pem = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-in", str(path), "-pubkey", "-noout"],
        capture_output=True, check=True, timeout=10,
    ).stdout
    spki = subprocess.run(
        ["openssl", "ec", "-pubin", "-outform", "DER"],
        input=pem, capture_output=True, check=True, timeout=10,
    ).stdout
    return hashlib.sha1(spki[-65:]).hexdigest()


# --- tools/certs.py: the SHIP profile and gw certs (no lib/ involved) --------------------------


def test_tools_certificate_follows_ship_profile():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    der, key_der = certs.create(cn="Unit-01", o="Org", ou="Unit", c="DE")
    c = x509.load_der_x509_certificate(der)
    key = c.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert c.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert c.issuer == c.subject
    c.verify_directly_issued_by(c)  # self-signed
    assert 0 < c.serial_number and len(c.serial_number.to_bytes(20, "big").lstrip(b"\0")) <= 20
    life = c.not_valid_after_utc - c.not_valid_before_utc
    assert 3650 <= life.days <= 3653
    ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not (ku.key_cert_sign or ku.key_encipherment or ku.crl_sign)
    assert c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    ski = c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert ski == hashlib.sha1(certs.point_bytes(key)).digest()
    assert certs.ski_hex(der) == ski.hex() == certs.ski_extension_hex(der)
    names = {a.oid: a.value for a in c.subject}
    assert names[x509.NameOID.COMMON_NAME] == "Unit-01" and names[x509.NameOID.COUNTRY_NAME] == "DE"
    k = serialization.load_der_private_key(key_der, None)  # PKCS#8 DER, no password
    assert certs.point_bytes(k.public_key()) == certs.point_bytes(key)
    k.sign(b"x", ec.ECDSA(hashes.SHA256()))
    # two certificates never share a serial or a key
    der2, _ = certs.create()
    assert x509.load_der_x509_certificate(der2).serial_number != c.serial_number
    assert certs.ski_hex(der2) != certs.ski_hex(der)


def test_gw_certs_cli(tmp_path):
    gw = os.path.join(TOOLS, "gw")
    out = tmp_path / "run" / "dev"

    def run(*a):
        return subprocess.run([gw, "certs", *a], capture_output=True, text=True, timeout=30)

    h = run("--help")
    assert h.returncode == 0 and "--out DIR" in h.stdout and "--force" in h.stdout
    r = run("--out", str(out), "--cn", "Box-7", "--o", "ACME", "--ou", "EV", "--c", "AT")
    assert r.returncode == 0, r.stderr
    der = (out / "cert.der").read_bytes()
    assert (out / "key.der").stat().st_mode & 0o077 == 0  # the key is private
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("SKI ")]
    assert lines == ["SKI " + certs.ski_hex(der)]
    assert len(lines[0]) == 44
    if shutil.which("openssl"):
        assert certs.ski_hex(der) == _openssl_ski(der, tmp_path)
    subj = {a.oid: a.value for a in x509.load_der_x509_certificate(der).subject}
    assert subj[x509.NameOID.ORGANIZATION_NAME] == "ACME" and subj[x509.NameOID.COUNTRY_NAME] == "AT"
    # no silent overwrite: the SKI is the device's identity at every paired peer
    r2 = run("--out", str(out))
    assert r2.returncode != 0 and "--force" in r2.stderr
    assert (out / "cert.der").read_bytes() == der
    r3 = run("--out", str(out), "--force")
    assert r3.returncode == 0
    assert (out / "cert.der").read_bytes() != der
    assert "SKI " + certs.ski_hex((out / "cert.der").read_bytes()) in r3.stdout.splitlines()


def test_gw_certs_subject_is_the_device_identity(tmp_path):
    """Not Demo-EVSE whatever the device: CN the SHIP ID (<brand>-<model>-<serial>, the serial the
    SKI's first 10 hex digits when not configured, as lib/gateway/config.ship_settings makes it),
    O the brand, OU the model; device.json in the data directory wins over the board config."""
    gw = os.path.join(TOOLS, "gw")
    board = os.path.join(mpyrun.ROOT, "board_configs", "esp32-wroom.json")

    def subject(out, *a):
        r = subprocess.run([gw, "certs", "--out", str(out), *a], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        der = (out / "cert.der").read_bytes()
        subj = {a.oid: a.value for a in x509.load_der_x509_certificate(der).subject}
        return subj, certs.ski_hex(der), r.stdout

    subj, ski, out = subject(tmp_path / "a", "--board", board)
    N = x509.NameOID
    assert subj[N.COMMON_NAME] == "OpenEVGW-ESP32-WROOM-" + ski[:10], (subj, ski)
    assert subj[N.ORGANIZATION_NAME] == "OpenEVGW" and subj[N.ORGANIZATIONAL_UNIT_NAME] == "ESP32-WROOM"
    assert "subject CN=OpenEVGW-ESP32-WROOM-" in out
    assert "Demo" not in repr(subj)
    # the default board is the host's (make certs, tools/gw run)
    subj, ski, _ = subject(tmp_path / "b")
    assert subj[N.COMMON_NAME] == "OpenEVGW-HostSim-" + ski[:10]
    d = tmp_path / "c"
    d.mkdir()
    (d / "device.json").write_text('{"identity": {"brand": "Acme", "serial": "SN-42"}}')
    subj, _, _ = subject(d, "--board", board)
    assert subj[N.COMMON_NAME] == "Acme-ESP32-WROOM-SN-42" and subj[N.ORGANIZATION_NAME] == "Acme"


# --- CPython ---------------------------------------------------------------------------------


def test_ski_matches_independent_computations(pki, tmp_path):
    for name in ("good", "other"):
        der = pki[name]
        ski = cert.peer_ski(der)
        assert len(ski) == 40 and ski == ski.lower()
        # tools/certs.py: cryptography's point bytes, hashed there
        assert ski == certs.ski_hex(der)
        # cryptography's own RFC 5280 method-1 derivation
        key = x509.load_der_x509_certificate(der).public_key()
        assert ski == x509.SubjectKeyIdentifier.from_public_key(key).digest.hex()
        assert ski_of(der).hex() == ski
        assert ski_extension(der).hex() == ski
        assert public_point(der) == certs.point_bytes(key)
        if shutil.which("openssl"):
            assert ski == _openssl_ski(der, tmp_path)


def test_buffer_types(pki):
    der = pki["good"]
    ski = cert.peer_ski(der)
    assert cert.peer_ski(bytearray(der)) == ski
    assert cert.peer_ski(memoryview(der)) == ski
    # a view into a larger buffer, as mbedTLS hands it to the verify callback
    big = b"\xff" * 7 + der + b"\x00" * 5
    assert cert.peer_ski(memoryview(big)[7 : 7 + len(der)]) == ski


def test_forged_cert_refused(pki):
    der = pki["forged"]
    # the extension claims the good certificate's SKI ...
    assert ski_extension(der) == bytes.fromhex(certs.ski_hex(pki["good"]))
    # ... but the key says otherwise (SHIP-TS-SEC-01)
    assert ski_of(der).hex() == certs.ski_hex(der) != certs.ski_hex(pki["good"])
    with pytest.raises(cert.CertError):
        cert.peer_ski(der)


def test_rsa_cert_refused(pki):
    der = pki["rsa"]
    assert ski_extension(der) is not None  # has an SKI; the key type is what is wrong
    for fn in (cert.peer_ski, ski_of, public_point):
        with pytest.raises(cert.CertError):
            fn(der)


def test_p384_cert_refused(pki):
    der = pki["p384"]
    for fn in (cert.peer_ski, ski_of, public_point):
        with pytest.raises(cert.CertError):
            fn(der)


def test_cert_without_ski_refused(pki):
    der = pki["noski"]
    assert ski_extension(der) is None
    assert ski_of(der).hex() == certs.ski_hex(der)  # the key itself is fine
    with pytest.raises(cert.CertError):
        cert.peer_ski(der)


def test_cert_error_is_value_error():
    assert issubclass(cert.CertError, ValueError)


def _patch_len(der, new_len_bytes):
    # Re-encode the outer SEQUENCE length of a DER certificate (which uses 0x82 + 2 bytes).
    assert der[0] == 0x30 and der[1] == 0x82
    return der[:1] + new_len_bytes + der[4:]


def test_length_forms(pki):
    der = pki["good"]
    n = len(der) - 4
    ski = cert.peer_ski(der)
    # 0x83 with a leading zero octet: not minimal, but well within bounds -> accepted
    assert cert.peer_ski(_patch_len(der, b"\x83\x00" + n.to_bytes(2, "big"))) == ski
    for bad in (
        b"\x84\x00\x00" + n.to_bytes(2, "big"),  # 4 length octets
        b"\x80",  # indefinite length (BER, not DER)
        b"\x82" + (n + 1).to_bytes(2, "big"),  # longer than the buffer
        b"\x82" + (n - 1).to_bytes(2, "big"),  # trailing byte
        b"\x83\xff\xff\xff",  # 16 MB
        b"\x85\xff\xff\xff\xff\xff",
        b"\xff",
    ):
        with pytest.raises(cert.CertError):
            cert.peer_ski(_patch_len(der, bad))
    with pytest.raises(cert.CertError):
        cert.peer_ski(der + b"\x00")


def test_duplicate_ski_extension_refused(pki):
    # cryptography refuses to build duplicate extensions, so splice a second copy of the SKI
    # extension into the DER and grow every enclosing length.
    der = pki["good"]
    ski_ext = b"\x30\x1d\x06\x03\x55\x1d\x0e\x04\x16\x04\x14" + ski_of(der)
    at = der.find(ski_ext)
    assert at > 0
    dup = _insert_after(der, 0, len(der), at, ski_ext)
    assert len(dup) == len(der) + len(ski_ext)
    with pytest.raises(cert.CertError):
        cert.peer_ski(dup)


def _insert_after(buf, pos, end, at, extra):
    # Re-encode the TLVs in buf[pos:end], appending `extra` after the TLV that starts at `at`
    # and re-encoding the length of every TLV that encloses it.
    out = b""
    while pos < end:
        tag, n = buf[pos], buf[pos + 1]
        hl = 2
        if n & 0x80:
            hl += n & 0x7F
            n = int.from_bytes(buf[pos + 2 : pos + hl], "big")
        cs, ce = pos + hl, pos + hl + n
        if pos == at:
            out += buf[pos:ce] + extra
        elif cs <= at < ce:
            inner = _insert_after(buf, cs, ce, at, extra)
            m = len(inner)
            ln = bytes([m]) if m < 0x80 else b"\x81" + bytes([m]) if m < 0x100 else b"\x82" + m.to_bytes(2, "big")
            out += bytes([tag]) + ln + inner
        else:
            out += buf[pos:ce]
        pos = ce
    return out


def test_normalize_ski():
    ski = "cfb2ae8fdf9a4c7a0ccd7dd0163f94194f97d282"
    assert cert.normalize_ski(ski) == ski
    assert cert.normalize_ski("CF:B2:AE:8F:DF:9A:4C:7A:0C:CD:7D:D0:16:3F:94:19:4F:97:D2:82") == ski
    assert cert.normalize_ski(" cfb2 ae8f-df9a 4c7a-0ccd 7dd0 163f 9419 4f97 d282 ") == ski
    for bad in ("", ski[:-1], ski + "0", ski[:-1] + "g", ski[:-2] + "\u00e4", "0x" + ski[2:]):
        with pytest.raises(ValueError):
            cert.normalize_ski(bad)


# --- robustness: nothing but CertError ---------------------------------------------------------


def _outcome(fn, der):
    try:
        r = fn(der)
    except cert.CertError:
        return "CertError"
    # anything else propagates and fails the test
    if r is None:
        return "None"
    return r if isinstance(r, str) else r.hex()


def _all_outcomes(der):
    return tuple(_outcome(fn, der) for fn in (cert.peer_ski, ski_extension, ski_of))


_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_only_cert_error(data):
    _all_outcomes(data)
    _all_outcomes(b"\x30\x82" + len(data).to_bytes(2, "big") + data)


_GOOD = certs.create()[0]


@_FUZZ
@given(st.integers(min_value=0, max_value=len(_GOOD) - 1))
def test_truncations_refused(n):
    assert _all_outcomes(_GOOD[:n]) == ("CertError",) * 3


@_FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(_GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=4
    ),
    st.sampled_from(["set", "insert", "delete"]),
)
def test_mutations_only_cert_error(edits, how):
    der = bytearray(_GOOD)
    for pos, val in edits:
        pos = min(pos, len(der) - 1)
        if how == "set":
            der[pos] = val
        elif how == "insert":
            der.insert(pos, val)
        else:
            del der[pos]
    _all_outcomes(bytes(der))
    _all_outcomes(memoryview(der))


# --- the same code under MicroPython ----------------------------------------------------------


def _corpus(pki, rng):
    blobs = [pki["good"], pki["other"], pki["forged"], pki["rsa"], pki["noski"], pki["p384"]]
    blobs += [b"", b"\x30", b"\x30\x80", b"\x30\x84\x00\x00\x00\x01\x00"]
    good = pki["good"]
    blobs += [good[:n] for n in range(0, len(good), 7)]
    for _ in range(150):
        der = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            der[rng.randrange(len(der))] = rng.randrange(256)
        blobs.append(bytes(der))
    blobs += [rng.randbytes(rng.randint(0, 300)) for _ in range(40)]
    return blobs


def test_micropython_agrees_with_cpython(pki, tmp_path):
    blobs = _corpus(pki, random.Random(1234))
    path = tmp_path / "corpus.bin"
    path.write_bytes(b"".join(struct.pack(">I", len(b)) + b for b in blobs))
    r = mpyrun.run(CERT_CHECK, heapsize="64K", args=[str(path)], timeout=30).check()
    lines = r.stdout.splitlines()
    results = [ln for ln in lines if not ln.startswith("ALLOC")]
    assert len(results) == len(blobs)
    for i, (line, der) in enumerate(zip(results, blobs)):
        expected = "%d %s %s %s" % ((i,) + _all_outcomes(der))
        assert line == expected, "blob %d: %s" % (i, der.hex())
        assert "OTHER" not in line
    assert results[0] == "0 %s %s %s" % ((certs.ski_hex(pki["good"]),) * 3)
    assert results[2].split()[1] == "CertError"  # forged
    assert results[3].split()[1] == "CertError"  # RSA
    assert results[4].split()[1:3] == ["CertError", "None"]  # no SKI extension
    alloc = int([ln for ln in lines if ln.startswith("ALLOC")][0].split()[1])
    # Transient garbage of one callback: (start, end) tuples of the walk, a memoryview and its
    # slices, the SHA-1 object, digest and hex text. Measured 1280 bytes on the 64-bit host
    # (roughly half on the 32-bit ESP32); a copy of the ~440-byte DER would exceed the bound.
    assert alloc <= 1536, alloc
