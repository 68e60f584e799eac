# The HTTP/1.1 upgrade of RFC 6455 without I/O, for both roles. Runs once per connection, so
# it trades a few short-lived strings for simplicity; heads are bounded by the caller's buffer.
import binascii
import hashlib

from compat import const

_PROTOCOL = const("ship")  # the WebSocket subprotocol SHIP asks for (RFC 6455 1.9)
_GUID = const(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
_B64 = const("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
# (status, reason) pairs flat: a constant tuple stays in flash when frozen, a dict would not
_REASONS = const((
    400, "Bad Request",
    403, "Forbidden",
    405, "Method Not Allowed",
    426, "Upgrade Required",
    431, "Request Header Fields Too Large",
))


class UpgradeError(Exception):
    # status: the HTTP status sent (server) or received (client); 0 when there is none
    # (connection lost, timeout, malformed response).
    def __init__(self, status, reason):
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


def accept_key(key):
    if isinstance(key, str):
        key = key.encode()
    h = hashlib.sha1(key)
    h.update(_GUID)
    return binascii.b2a_base64(h.digest(), newline=False).decode()


def new_key():
    import os  # a dial's only (not a global of this resident module)

    return binascii.b2a_base64(os.urandom(16), newline=False).decode()


def _key_ok(key):
    # MicroPython's a2b_base64 skips junk instead of raising, so check the alphabet first.
    if len(key) != 24 or key[22:] != "==":
        return False
    for c in key[:22]:
        if c not in _B64:
            return False
    try:
        return len(binascii.a2b_base64(key)) == 16
    except ValueError:
        return False


# (lines, head length) once buf[:n] holds a complete head, (None, 0) while it does not.
def _split(buf, n, status):
    e = buf.find(b"\r\n\r\n", 0, n)
    if e < 0:
        if n >= len(buf):
            raise UpgradeError(status, "head too large")
        return None, 0
    try:
        text = bytes(buf[:e]).decode()
    except UnicodeError:
        raise UpgradeError(status and 400, "head not UTF-8")
    return text.split("\r\n"), e + 4


def _headers(lines, status):
    h = {}
    for i in range(1, len(lines)):
        line = lines[i]
        c = line.find(":")
        if c <= 0 or line[0] in " \t":
            raise UpgradeError(status, "bad header line")
        name = line[:c].strip().lower()
        v = line[c + 1 :].strip()
        # Repeated fields form one comma-separated list (RFC 9110 5.3).
        h[name] = h[name] + "," + v if name in h else v
    return h


def _tokens(v, lower):
    r = []
    for t in v.split(","):
        t = t.strip()
        r.append(t.lower() if lower else t)
    return r


# Server: None while the head in buf[:n] is incomplete, else (path, key, head_length); the
# bytes after head_length already belong to the WebSocket stream.
def parse_request(buf, n):
    lines, hl = _split(buf, n, 431)
    if lines is None:
        return None
    rl = lines[0].split(" ")
    if len(rl) != 3 or rl[2] != "HTTP/1.1" or not rl[1]:
        raise UpgradeError(400, "bad request line")
    if rl[0] != "GET":
        raise UpgradeError(405, "method not GET")
    h = _headers(lines, 400)
    if "websocket" not in _tokens(h.get("upgrade", ""), True):
        raise UpgradeError(400, "no Upgrade: websocket")
    if "upgrade" not in _tokens(h.get("connection", ""), True):
        raise UpgradeError(400, "no Connection: upgrade")
    v = h.get("sec-websocket-version")
    if v is None:
        raise UpgradeError(400, "no Sec-WebSocket-Version")
    if v != "13":
        raise UpgradeError(426, "unsupported WebSocket version")
    key = h.get("sec-websocket-key", "")
    if not _key_ok(key):
        raise UpgradeError(400, "bad Sec-WebSocket-Key")
    # Subprotocol tokens are case-sensitive (RFC 6455 4.1).
    if _PROTOCOL not in _tokens(h.get("sec-websocket-protocol", ""), False):
        raise UpgradeError(400, "subprotocol %s not offered" % _PROTOCOL)
    return rl[1], key, hl


def accept_response(key):
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: %s\r\n"
        "Sec-WebSocket-Protocol: %s\r\n\r\n" % (accept_key(key), _PROTOCOL)
    ).encode()


def error_response(status):
    reason = "Error"
    for i in range(0, len(_REASONS), 2):
        if _REASONS[i] == status:
            reason = _REASONS[i + 1]
    extra = ""
    if status == 426:
        extra = "Sec-WebSocket-Version: 13\r\n"
    elif status == 405:
        extra = "Allow: GET\r\n"
    return (
        "HTTP/1.1 %d %s\r\n%sConnection: close\r\nContent-Length: 0\r\n\r\n"
        % (status, reason, extra)
    ).encode()


def request(host, path, key):
    return (
        "GET %s HTTP/1.1\r\n"
        "Host: %s\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: %s\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: %s\r\n\r\n" % (path, host, key, _PROTOCOL)
    ).encode()


# Client: None while the head in buf[:n] is incomplete, else the head length.
def parse_response(buf, n, key):
    lines, hl = _split(buf, n, 0)
    if lines is None:
        return None
    sl = lines[0].split(" ", 2)
    if len(sl) < 2 or not sl[0].startswith("HTTP/1."):
        raise UpgradeError(0, "bad status line")
    try:
        status = int(sl[1])
    except ValueError:
        raise UpgradeError(0, "bad status line")
    if status != 101:
        raise UpgradeError(status, "upgrade refused")
    h = _headers(lines, status)
    if "websocket" not in _tokens(h.get("upgrade", ""), True):
        raise UpgradeError(status, "no Upgrade: websocket")
    if "upgrade" not in _tokens(h.get("connection", ""), True):
        raise UpgradeError(status, "no Connection: upgrade")
    if h.get("sec-websocket-accept") != accept_key(key):
        raise UpgradeError(status, "wrong Sec-WebSocket-Accept")
    if h.get("sec-websocket-protocol") != _PROTOCOL:
        raise UpgradeError(status, "subprotocol not %s" % _PROTOCOL)
    if "sec-websocket-extensions" in h:
        raise UpgradeError(status, "extension not offered")
    return hl
