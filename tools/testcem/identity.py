"""SHIP identities for the test CEM: self-signed ECDSA P-256 certificate + key, stored as DER.

Independent of the gateway firmware (nothing from lib/ is imported): the certificates are made and
read by tools/certs.py (gw certs), the host side's one implementation of the SHIP certificate profile
(ship.md section 3: P-256, ecdsa-with-SHA256, self-signed, KeyUsage digitalSignature, BasicConstraints
CA, SubjectKeyIdentifier = SHA-1 of the 65-byte uncompressed public point, ship.md 2.3). The test CEM's
own certificates mark KeyUsage and BasicConstraints critical and start 5 minutes in the past.

Files in a directory: ``cert.der`` (X.509 DER) and ``key.der`` (private key, PKCS#8 DER when written by
this module; SEC1 DER is accepted on load).
"""

import datetime
import os
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import certs
from certs import CERT_FILE, KEY_FILE  # noqa: F401  (the file names of gw certs)
from certs import point_bytes as point_of_public_key  # noqa: F401  (re-exported: 65-byte point 04||X||Y)
from certs import ski_extension_hex as ski_extension_of_cert  # noqa: F401  (the extension as hex, or None)


def normalize_ski(ski):
    """User input -> 40 lower-case hex characters (spaces, dashes and colons removed), or ValueError."""
    if isinstance(ski, (bytes, bytearray)):
        if len(ski) != 20:
            raise ValueError("SKI must be 20 bytes")
        return bytes(ski).hex()
    s = "".join(ch for ch in str(ski) if ch not in " -:\t").lower()
    if len(s) != 40 or any(ch not in "0123456789abcdef" for ch in s):
        raise ValueError("SKI must be 40 hex characters, got %r" % (ski,))
    return s


def ski_of_cert(cert_der):
    """SKI (hex) recomputed from the public key of a DER certificate (never from the extension); any
    key type (an RSA peer in the negative tests)."""
    return certs.ski_of_public_key(x509.load_der_x509_certificate(bytes(cert_der)).public_key())


class Identity:
    """A certificate + private key pair (both DER) and the SKI computed from the public key.

    Attributes: ``cert_der`` (bytes), ``key_der`` (bytes), ``ski`` (40 hex chars, from the public key),
    ``ski_extension`` (hex of the SKI extension or None; differs from ``ski`` for forged certificates).
    """

    def __init__(self, cert_der, key_der):
        self.cert_der = bytes(cert_der)
        self.key_der = bytes(key_der)
        self.ski = ski_of_cert(self.cert_der)
        self.ski_extension = ski_extension_of_cert(self.cert_der)
        serialization.load_der_private_key(self.key_der, password=None)   # a bad key fails here

    def __repr__(self):
        return "Identity(ski=%s)" % self.ski

    @classmethod
    def generate(cls, common_name="TestCEM", org="TestCEM", org_unit="Test", country="DE",
                 ski_extension=True, key=None, days=3650, ca=True):
        """Create a fresh self-signed identity.

        ``ski_extension``: True = correct SKI extension (SHA-1 of the point); False = no SKI extension;
        bytes/hex str = put exactly this (forged) value into the extension (SHIP-TS-SEC-01 tests).
        ``key``: an existing ``ec.EllipticCurvePrivateKey`` (e.g. to re-issue a certificate for a key).
        """
        if key is None:
            key = ec.generate_private_key(ec.SECP256R1())
        if ski_extension is True:
            digest = certs.ski_of_key(key.public_key())
        elif ski_extension is False or ski_extension is None:
            digest = None
        else:
            digest = bytes.fromhex(normalize_ski(ski_extension))
        now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        return cls(*certs.self_signed(key, digest, common_name, org, org_unit, country, now,
                                      days=days, ca=ca, critical=True))

    @classmethod
    def load(cls, directory):
        with open(os.path.join(directory, CERT_FILE), "rb") as f:
            cert_der = f.read()
        with open(os.path.join(directory, KEY_FILE), "rb") as f:
            key_der = f.read()
        return cls(cert_der, key_der)

    def save(self, directory):
        os.makedirs(directory, exist_ok=True)
        certs.write_file(os.path.join(directory, CERT_FILE), self.cert_der, 0o644)
        certs.write_file(os.path.join(directory, KEY_FILE), self.key_der, 0o600)

    @classmethod
    def load_or_create(cls, directory, **generate_args):
        """(identity, created): load ``directory``/cert.der+key.der, or generate and save a new pair."""
        if os.path.exists(os.path.join(directory, CERT_FILE)) and os.path.exists(
                os.path.join(directory, KEY_FILE)):
            return cls.load(directory), False
        ident = cls.generate(**generate_args)
        ident.save(directory)
        return ident, True

    def load_into(self, ctx):
        """Load certificate and key into an ``ssl.SSLContext`` (Python's ssl only reads PEM files)."""
        cert_pem, key_pem = certs.to_pem(self.cert_der, self.key_der)
        with tempfile.TemporaryDirectory(prefix="testcem-") as d:
            cp, kp = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            with open(cp, "wb") as f:
                f.write(cert_pem)
            fd = os.open(kp, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key_pem)
            ctx.load_cert_chain(cp, kp)
