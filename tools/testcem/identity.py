"""SHIP identities for the test CEM: self-signed ECDSA P-256 certificate + key, stored as DER.

Independent of the gateway firmware (nothing from lib/ is imported). The certificate profile follows
ship.md section 3: P-256, ecdsa-with-SHA256, self-signed, KeyUsage digitalSignature, BasicConstraints CA,
SubjectKeyIdentifier = SHA-1 of the 65-byte uncompressed public point (ship.md 2.3).

Files in a directory: ``cert.der`` (X.509 DER) and ``key.der`` (private key, PKCS#8 DER when written by
this module; SEC1 DER is accepted on load).
"""

import datetime
import hashlib
import os
import secrets
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_FILE = "cert.der"
KEY_FILE = "key.der"


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


def point_of_public_key(public_key):
    """65-byte uncompressed point 04||X||Y of an EC public key."""
    return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def ski_of_public_key(public_key):
    """SKI (hex) = SHA-1 over the uncompressed point (ship.md 2.3). Non-EC keys (negative tests only):
    SHA-1 over the subjectPublicKey BIT STRING contents (RFC 5280 4.2.1.2 method 1)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return hashlib.sha1(point_of_public_key(public_key)).hexdigest()
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest.hex()


def ski_of_cert(cert_der):
    """SKI (hex) recomputed from the public key of a DER certificate (never from the extension)."""
    cert = x509.load_der_x509_certificate(bytes(cert_der))
    return ski_of_public_key(cert.public_key())


def ski_extension_of_cert(cert_der):
    """The certificate's SubjectKeyIdentifier extension as hex, or None when it has none."""
    cert = x509.load_der_x509_certificate(bytes(cert_der))
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return None
    return ext.value.digest.hex()


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
        self._key = serialization.load_der_private_key(self.key_der, password=None)

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
        pub = key.public_key()
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, org_unit),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ])
        now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        builder = (x509.CertificateBuilder()
                   .subject_name(name).issuer_name(name).public_key(pub)
                   .serial_number(secrets.randbits(127) | 1)
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ski_extension is True:
            digest = hashlib.sha1(point_of_public_key(pub)).digest()
        elif ski_extension is False or ski_extension is None:
            digest = None
        else:
            digest = bytes.fromhex(normalize_ski(ski_extension))
        if digest is not None:
            builder = builder.add_extension(x509.SubjectKeyIdentifier(digest), critical=False)
        cert = builder.sign(key, hashes.SHA256())
        cert_der = cert.public_bytes(serialization.Encoding.DER)
        key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return cls(cert_der, key_der)

    @classmethod
    def load(cls, directory):
        with open(os.path.join(directory, CERT_FILE), "rb") as f:
            cert_der = f.read()
        with open(os.path.join(directory, KEY_FILE), "rb") as f:
            key_der = f.read()
        return cls(cert_der, key_der)

    def save(self, directory):
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, CERT_FILE), "wb") as f:
            f.write(self.cert_der)
        path = os.path.join(directory, KEY_FILE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key_der)

    @classmethod
    def load_or_create(cls, directory, **generate_args):
        """(identity, created): load ``directory``/cert.der+key.der, or generate and save a new pair."""
        if os.path.exists(os.path.join(directory, CERT_FILE)) and os.path.exists(
                os.path.join(directory, KEY_FILE)):
            return cls.load(directory), False
        ident = cls.generate(**generate_args)
        ident.save(directory)
        return ident, True

    def cert_pem(self):
        return x509.load_der_x509_certificate(self.cert_der).public_bytes(serialization.Encoding.PEM)

    def key_pem(self):
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    def load_into(self, ctx):
        """Load certificate and key into an ``ssl.SSLContext`` (Python's ssl only reads PEM files)."""
        with tempfile.TemporaryDirectory(prefix="testcem-") as d:
            cp, kp = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            with open(cp, "wb") as f:
                f.write(self.cert_pem())
            fd = os.open(kp, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(self.key_pem())
            ctx.load_cert_chain(cp, kp)
