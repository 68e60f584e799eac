# SHIP certificate checks on raw DER (sans-IO; MicroPython and CPython).
#
# The unix wheel has no getpeercert() and the peer certificate is only reachable as a memoryview
# inside the TLS verify callback, so the SKI has to come from the DER bytes themselves. Only the
# fields SHIP needs are located: the SubjectPublicKeyInfo and the SubjectKeyIdentifier extension.
# The walk is strict about structure and bounds because it runs on attacker-supplied bytes before
# the handshake has proven anything; every defect surfaces as CertError and nothing else.
#
# Nothing here keeps a reference to the caller's buffer or a view of it: in the verify callback
# the memoryview object itself lives on the C stack and points into mbedTLS memory, both gone
# once the callback returns.
import hashlib

from check import normalize_ski  # noqa: F401 (ship.trust and the tests take it from here)
from compat import const, hexlify

_SEQ = const(0x30)
_INT = const(0x02)
_BITS = const(0x03)
_OCTETS = const(0x04)
_OID = const(0x06)
_BOOL = const(0x01)
_VERSION = const(0xA0)  # [0] EXPLICIT
_ISSUER_UID = const(0x81)  # [1] IMPLICIT
_SUBJECT_UID = const(0x82)  # [2] IMPLICIT
_EXTENSIONS = const(0xA3)  # [3] EXPLICIT

_POINT_LEN = const(65)  # 04 || X(32) || Y(32)

# AlgorithmIdentifier contents for id-ecPublicKey (1.2.840.10045.2.1) with the named curve
# prime256v1 (1.2.840.10045.3.1.7), compared as bytes: the only key SHIP allows.
_EC_P256_ALG = const(b"\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07")
# Extension id 2.5.29.14 (subjectKeyIdentifier), full TLV.
_SKI_OID = const(b"\x06\x03\x55\x1d\x0e")


class CertError(ValueError):
    pass


def _tlv(b, pos, end, tag):
    # One DER TLV at b[pos:end] with the expected tag; returns (content start, content end).
    # Lengths use at most 3 length octets (0x81..0x83): a certificate never needs more, and the
    # bound keeps every value far from the limits of small ints on the device.
    if end - pos < 2:
        raise CertError("truncated")
    if b[pos] != tag:
        raise CertError("unexpected tag")
    n = b[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 3:  # 0x80 = indefinite length, not DER
            raise CertError("bad length")
        if end - pos < k:
            raise CertError("truncated")
        n = 0
        for i in range(pos, pos + k):
            n = (n << 8) | b[i]
        pos += k
    if n > end - pos:
        raise CertError("truncated")
    return pos, pos + n


def _skip(b, pos, end, tag):
    return _tlv(b, pos, end, tag)[1]


def _walk(b):
    # Returns (SPKI content start, SPKI content end, SKI value start or -1, SKI value length).
    end = len(b)
    cs, ce = _tlv(b, 0, end, _SEQ)  # Certificate
    if ce != end:
        raise CertError("trailing bytes")
    ts, te = _tlv(b, cs, ce, _SEQ)  # tbsCertificate
    # signatureAlgorithm and signatureValue: checked for shape only (nobody verifies a
    # self-signed signature; the TLS CertificateVerify is what proves the key).
    p = _skip(b, te, ce, _SEQ)
    if _skip(b, p, ce, _BITS) != ce:
        raise CertError("trailing bytes")

    p = ts
    if p < te and b[p] == _VERSION:
        vs, ve = _tlv(b, p, te, _VERSION)
        if _skip(b, vs, ve, _INT) != ve:
            raise CertError("bad version")
        p = ve
    p = _skip(b, p, te, _INT)  # serialNumber
    p = _skip(b, p, te, _SEQ)  # signature
    p = _skip(b, p, te, _SEQ)  # issuer
    p = _skip(b, p, te, _SEQ)  # validity
    p = _skip(b, p, te, _SEQ)  # subject
    ks, ke = _tlv(b, p, te, _SEQ)  # subjectPublicKeyInfo
    p = ke
    if p < te and b[p] == _ISSUER_UID:
        p = _skip(b, p, te, _ISSUER_UID)
    if p < te and b[p] == _SUBJECT_UID:
        p = _skip(b, p, te, _SUBJECT_UID)
    ski = -1
    ski_len = 0
    if p < te:
        xs, xe = _tlv(b, p, te, _EXTENSIONS)
        if xe != te:
            raise CertError("trailing bytes")
        ss, se = _tlv(b, xs, xe, _SEQ)
        if se != xe:
            raise CertError("trailing bytes")
        p = ss
        while p < se:
            es, ee = _tlv(b, p, se, _SEQ)  # Extension
            oe = _skip(b, es, ee, _OID)
            q = oe
            if q < ee and b[q] == _BOOL:  # critical
                q = _skip(b, q, ee, _BOOL)
            vs, ve = _tlv(b, q, ee, _OCTETS)
            if ve != ee:
                raise CertError("bad extension")
            if _eq(b, es, oe, _SKI_OID):
                # RFC 5280 forbids repeating an extension; a second SKI could make two parsers
                # disagree about the identity, so refuse it.
                if ski >= 0:
                    raise CertError("duplicate SKI extension")
                ks2, ke2 = _tlv(b, vs, ve, _OCTETS)  # KeyIdentifier
                if ke2 != ve:
                    raise CertError("bad SKI extension")
                ski = ks2
                ski_len = ke2 - ks2
            p = ee
    return ks, ke, ski, ski_len


def _eq(b, start, end, ref):
    if end - start != len(ref):
        return False
    for i in range(len(ref)):
        if b[start + i] != ref[i]:
            return False
    return True


def _point_at(b, ks, ke):
    # Offset of the uncompressed P-256 point inside SubjectPublicKeyInfo b[ks:ke].
    as_, ae = _tlv(b, ks, ke, _SEQ)
    if not _eq(b, as_, ae, _EC_P256_ALG):
        raise CertError("key is not EC P-256")
    bs, be = _tlv(b, ae, ke, _BITS)
    # One "unused bits" octet (0), then 04||X||Y; compressed points are not used by SHIP peers.
    if be != ke or be - bs != _POINT_LEN + 1 or b[bs] != 0 or b[bs + 1] != 4:
        raise CertError("bad EC point")
    return bs + 1


def _view(der):
    try:
        return memoryview(der)
    except TypeError:
        raise CertError("not a buffer")


def _ski(b, ks, ke):
    p = _point_at(b, ks, ke)
    return hashlib.sha1(b[p : p + _POINT_LEN]).digest()


def peer_ski(der):
    """SKI of a peer certificate as 40 lower-case hex digits, recomputed from its key.

    Raises CertError unless the key is P-256 and the SKI extension is present and equal to the
    recomputed value (SHIP-TS-SEC-01): a copied extension on another key must not pass.
    """
    b = _view(der)
    ks, ke, s, n = _walk(b)
    ski = _ski(b, ks, ke)
    if s < 0:
        raise CertError("no SKI extension")
    if not _eq(b, s, s + n, ski):
        raise CertError("SKI extension does not match the key")
    return hexlify(ski)
