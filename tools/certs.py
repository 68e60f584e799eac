"""gw certs: create the device's SHIP certificate and key (DER) and print its SKI.

Host-side (CPython + cryptography). The certificate follows the SHIP profile (ship.md section 3):
ECDSA P-256, ecdsa-with-SHA256, self-signed, random serial, NotBefore now, NotAfter now + 10 years,
KeyUsage digitalSignature, BasicConstraints CA:TRUE and SubjectKeyIdentifier = SHA-1 of the 65-byte
uncompressed public point. Peers since ship-go PR #58 refuse a certificate whose SKI extension differs
from that hash, so the value is computed here and checked against cryptography's own derivation.

This module deliberately does not import lib/: its SKI computation is the independent reference that
the firmware's DER walker (lib/ship/cert.py) is tested against.

The test CEM's identities (tools/testcem/identity.py) are made and read with the same functions.

The test helpers (forged_cert, rsa_cert, cert_without_ski, p384_cert) build certificates that a SHIP
node must refuse.
"""

import datetime
import hashlib
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CERT_FILE = "cert.der"
KEY_FILE = "key.der"

DEFAULT_CN = "Demo-EVSE"
DEFAULT_O = "Demo"
DEFAULT_OU = "Demo"
DEFAULT_C = "DE"

_VALID_DAYS = 3652  # 10 years including the leap days


def point_bytes(public_key):
    """The 65-byte uncompressed point 04||X||Y of an EC public key."""
    return public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def ski_of_key(public_key):
    """SHIP SKI (20 bytes): SHA-1 over the uncompressed point (RFC 5280 4.2.1.2 method 1)."""
    ski = hashlib.sha1(point_bytes(public_key)).digest()
    # cryptography's derivation hashes the same BIT STRING contents; a mismatch would mean the
    # profile is wrong, so refuse to produce a certificate rather than ship a bad SKI.
    ref = x509.SubjectKeyIdentifier.from_public_key(public_key).digest
    if ref != ski:
        raise AssertionError("SKI derivation disagrees with cryptography")
    return ski


def ski_of_public_key(public_key):
    """SKI (hex) = SHA-1 over the uncompressed point (ship.md 2.3). Non-EC keys (negative tests only):
    SHA-1 over the subjectPublicKey BIT STRING contents (RFC 5280 4.2.1.2 method 1)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return hashlib.sha1(point_bytes(public_key)).hexdigest()
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest.hex()


def ski_hex(cert_der):
    """The SHIP SKI of a DER certificate as 40 lower-case hex digits, recomputed from its EC key."""
    key = x509.load_der_x509_certificate(bytes(cert_der)).public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an EC certificate")
    return ski_of_public_key(key)


def ski_extension_hex(cert_der):
    """The SubjectKeyIdentifier extension value as hex, or None if the certificate has none."""
    cert = x509.load_der_x509_certificate(bytes(cert_der))
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return None
    return ext.value.digest.hex()


def _name(cn, o, ou, c):
    attrs = []
    if c:
        attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, c))
    if o:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _random_serial():
    # 16 random octets with the top bit clear: positive, <= 20 octets encoded (RFC 5280 4.1.2.2),
    # and never zero.
    return (int.from_bytes(os.urandom(16), "big") >> 1) | 1


def key_der(key):
    # PKCS#8 DER: the unix wheel parses it (and SEC1) but not PEM.
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def self_signed(key, ski, cn, o, ou, c, now=None, *, days=_VALID_DAYS, ca=True, critical=False):
    """Self-signed certificate in the SHIP profile for key: (cert_der, key_der). ski = extension bytes
    or None (omit); now = NotBefore; critical marks KeyUsage and BasicConstraints critical."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    name = _name(cn, o, ou, c)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_random_serial())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=critical,
        )
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=critical)
    )
    if ski is not None:
        b = b.add_extension(x509.SubjectKeyIdentifier(bytes(ski)), critical=False)
    cert = b.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER), key_der(key)


def create(cn=DEFAULT_CN, o=DEFAULT_O, ou=DEFAULT_OU, c=DEFAULT_C):
    """New P-256 key and SHIP certificate: returns (cert_der, key_der), key in PKCS#8 DER.
    cn may be a function of the SKI (hex) returning the CN: the SHIP ID can hold part of it."""
    key = ec.generate_private_key(ec.SECP256R1())
    ski = ski_of_key(key.public_key())
    if callable(cn):
        cn = cn(bytes(ski).hex())
    return self_signed(key, ski, cn, o, ou, c)


def identity(board, device_json=None):
    """(brand, model, serial or None) as the gateway will run: the board config's identity with
    the device's own device.json over it (lib/gateway/devconfig.py; read here as JSON, this tool
    does not import lib/)."""
    import json

    with open(board) as f:
        ident = dict(json.load(f).get("identity") or {})
    if device_json and os.path.exists(device_json):
        with open(device_json) as f:
            ident.update((json.load(f) or {}).get("identity") or {})
    return ident.get("brand") or "OpenEVGW", ident.get("model") or "Gateway", ident.get("serial")


def ship_id(brand, model, serial, ski):
    """The SHIP ID the gateway announces (lib/gateway/config.py ship_settings): a missing serial
    is the SKI's first 10 hex digits."""
    return "%s-%s-%s" % (brand, model, serial or ski[:10])


# --- certificates a SHIP node must refuse (test helpers) -------------------------------------


def forged_cert(ski_ext_bytes, cn="Forged"):
    """Fresh P-256 key, but the SKI extension carries ski_ext_bytes (e.g. a trusted peer's SKI).

    Passes an extension-only SKI check; fails the recomputed one (SHIP-TS-SEC-01).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    return self_signed(key, bytes(ski_ext_bytes), cn, DEFAULT_O, DEFAULT_OU, DEFAULT_C)


def rsa_cert(cn="RSA"):
    """RSA-2048 self-signed certificate with a standard SKI extension: (cert_der, key_der)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    return self_signed(key, ski, cn, DEFAULT_O, DEFAULT_OU, DEFAULT_C)


def cert_without_ski(cn="NoSKI"):
    """P-256 certificate in the SHIP profile but without the SubjectKeyIdentifier extension."""
    key = ec.generate_private_key(ec.SECP256R1())
    return self_signed(key, None, cn, DEFAULT_O, DEFAULT_OU, DEFAULT_C)


def p384_cert(cn="P384"):
    """ECDSA P-384 certificate with a matching SHA-1 SKI: right shape, wrong curve for SHIP."""
    key = ec.generate_private_key(ec.SECP384R1())
    ski = hashlib.sha1(point_bytes(key.public_key())).digest()
    return self_signed(key, ski, cn, DEFAULT_O, DEFAULT_OU, DEFAULT_C)


def write_file(path, data, mode):
    """Write beside the target and rename, so an interrupted run never leaves half a key."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def to_pem(cert_der, key_der):
    """(cert_pem, key_pem) for CPython's ssl, which loads chains from PEM files only."""
    cert = x509.load_der_x509_certificate(cert_der)
    key = serialization.load_der_private_key(key_der, None)
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


# --- gw certs ------------------------------------------------------------------------------


def configure(parser):
    parser.add_argument("--out", metavar="DIR", default=".run",
                        help="directory for cert.der and key.der (default: .run)")
    parser.add_argument("--board", metavar="JSON", default=os.path.join(_ROOT, "board_configs", "host-sim.json"),
                        help="board config whose identity names the certificate (default: host-sim)")
    parser.add_argument("--device-json", metavar="JSON",
                        help="the device's device.json, its identity over the board's"
                             " (default: OUT/device.json if there)")
    parser.add_argument("--cn", help="subject CN (default: the SHIP ID, <brand>-<model>-<serial>)")
    parser.add_argument("--o", help="subject O (default: the identity's brand)")
    parser.add_argument("--ou", help="subject OU (default: the identity's model)")
    parser.add_argument("--c", default=DEFAULT_C, help="subject C, two letters (default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite an existing certificate/key (the SKI changes: peers must re-pair)")




def run(args):
    if args.c and len(args.c) != 2:
        print("gw certs: --c must be a two-letter country code", file=sys.stderr)
        return 2
    cert_path = os.path.join(args.out, CERT_FILE)
    key_path = os.path.join(args.out, KEY_FILE)
    existing = [p for p in (cert_path, key_path) if os.path.exists(p)]
    if existing and not args.force:
        print("gw certs: refusing to overwrite %s; use --force (peers must then re-pair)"
              % " and ".join(existing), file=sys.stderr)
        return 1
    dj = args.device_json or os.path.join(args.out, "device.json")
    try:
        brand, model, serial = identity(args.board, dj)
    except (OSError, ValueError) as e:
        print("gw certs: identity: %s" % e, file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    cn = args.cn or (lambda ski: ship_id(brand, model, serial, ski))
    cert_der, key_der = create(cn=cn, o=args.o or brand, ou=args.ou or model, c=args.c)
    write_file(key_path, key_der, 0o600)
    write_file(cert_path, cert_der, 0o644)
    print("wrote %s and %s" % (cert_path, key_path))
    print("subject %s" % x509.load_der_x509_certificate(cert_der).subject.rfc4514_string())
    print("SKI %s" % ski_hex(cert_der))
    return 0
