"""TLS contexts for the test CEM (CPython ``ssl``).

SHIP (ship.md 2): TLS 1.2, ECDHE-ECDSA with AES-128 GCM/CBC-SHA256, self-signed certificates on both sides,
no chain verification; trust is decided by the SKI later (hello phase).

Client side is easy with Python's ssl: ``CERT_NONE`` + ``check_hostname=False`` still hands out the server
certificate via ``getpeercert(binary_form=True)``.

Server side is not: Python's ssl has no verify callback. Findings (CPython 3.11, OpenSSL 3.0):

- ``CERT_NONE``: the server sends no CertificateRequest, so the client sends no certificate and
  ``getpeercert()`` is None -> useless for SHIP.
- ``CERT_OPTIONAL`` without trust anchors: a client that presents its self-signed certificate FAILS the
  handshake (OpenSSL verification error, the client sees a reset); only an anonymous client gets through.
  The opposite of what SHIP needs.
- ``CERT_OPTIONAL``/``CERT_REQUIRED`` + ``load_verify_locations(cadata=<peer cert DER>)``: works (the
  self-signed peer certificate is its own trust anchor; no VERIFY_X509_PARTIAL_CHAIN needed, also with
  BasicConstraints CA:FALSE), but only for certificates known in advance -> "pinned" mode below. An
  unknown certificate fails at TLS level, so the SHIP trust-denial path (pending/aborted/4452) cannot be
  exercised with it; OpenSSL also checks the validity dates then.
- Accept-any (ship-go's ``RequireAnyClientCert``): set OpenSSL's verify callback to one that always
  returns 1 through ``ctypes`` on the ``SSL_CTX*`` inside the ``ssl.SSLContext`` object, with mode
  ``SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT`` (= what ``CERT_REQUIRED`` sets). Any certificate is
  accepted, a client without a certificate is refused by the TLS handshake. Implemented in
  ``accept_any_client_cert``; it checks the pointer by reading the verify mode back and raises
  ``RuntimeError`` if the layout does not match (then use pinned mode).
"""

import ctypes
import ssl

# TLS 1.2 names of the two SHIP suites (GCM preferred like Go servers; CBC-SHA256 is the mandatory one).
SHIP_CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256"

_SSL_VERIFY_PEER = 0x01
_SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 0x02

_VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_accept_all_cb = _VERIFY_CB(lambda preverify_ok, x509_store_ctx: 1)  # keep a reference forever
_libssl = None


def _lib():
    global _libssl
    if _libssl is None:
        import _ssl

        lib = ctypes.CDLL(_ssl.__file__)  # dlsym on this handle also searches libssl it links against
        lib.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VERIFY_CB]
        lib.SSL_CTX_set_verify.restype = None
        lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
        _libssl = lib
    return _libssl


def _ssl_ctx_ptr(ctx):
    # CPython's PySSLContext starts with PyObject_HEAD followed by "SSL_CTX *ctx".
    return ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value


def accept_any_client_cert(ctx, require=True):
    """Make a server ``SSLContext`` request a client certificate and accept any (self-signed) one.

    ``require``: refuse clients that send no certificate (TLS handshake failure). With False an
    anonymous client gets through and the application must notice ``getpeercert()`` is None.
    Call after every other change of ``ctx.verify_mode`` (setting verify_mode resets the callback).
    """
    lib = _lib()
    ctx.verify_mode = ssl.CERT_REQUIRED if require else ssl.CERT_OPTIONAL
    ptr = _ssl_ctx_ptr(ctx)
    expected = _SSL_VERIFY_PEER | (_SSL_VERIFY_FAIL_IF_NO_PEER_CERT if require else 0)
    if not ptr or lib.SSL_CTX_get_verify_mode(ptr) != expected:
        raise RuntimeError("cannot locate SSL_CTX inside ssl.SSLContext; use pinned client certificates")
    lib.SSL_CTX_set_verify(ptr, expected, _accept_all_cb)
    return ctx


def _base(ctx, tls12_only, ciphers):
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls12_only:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def client_context(identity=None, *, tls12_only=True, ciphers=SHIP_CIPHERS):
    """Client context: our certificate (``identity``; None = anonymous client, for negative tests),
    no server chain or host name verification (the caller checks the SKI)."""
    ctx = _base(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), tls12_only, ciphers)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if identity is not None:
        identity.load_into(ctx)
    return ctx


def server_context(identity, *, client_certs="any", pinned=(), tls12_only=True, ciphers=SHIP_CIPHERS):
    """Server context with our certificate.

    ``client_certs``: ``"any"`` = require a certificate, accept any (ctypes, see module doc);
    ``"optional-any"`` = request one, accept any, let anonymous clients through;
    ``"pinned"`` = require one of the DER certificates in ``pinned`` (pure ssl, no ctypes);
    ``"none"`` = do not request a client certificate.
    """
    ctx = _base(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), tls12_only, ciphers)
    identity.load_into(ctx)
    if client_certs == "any":
        accept_any_client_cert(ctx, require=True)
    elif client_certs == "optional-any":
        accept_any_client_cert(ctx, require=False)
    elif client_certs == "pinned":
        ctx.verify_mode = ssl.CERT_REQUIRED
        for der in pinned:
            ctx.load_verify_locations(cadata=bytes(der))
    elif client_certs == "none":
        ctx.verify_mode = ssl.CERT_NONE
    else:
        raise ValueError("client_certs must be any, optional-any, pinned or none")
    return ctx
