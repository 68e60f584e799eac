"""SHIP messages for the test CEM: constants, ShipError, message builders, the type byte + JSON framing
(``encode``, ``data_message``) and ``ShipMessage`` (a received message, decoded).

No I/O; the dialect (plain <-> EEBUS JSON) comes from dialect.py. Nothing from the firmware's lib/.
"""

from . import dialect

__all__ = [
    "ShipError", "ShipMessage", "CMI", "hello_msg", "protocol_handshake_msg", "protocol_handshake_error_msg",
    "pin_state_msg", "pin_input_msg", "pin_error_msg", "access_methods_request_msg", "access_methods_msg",
    "connection_close_msg", "encode",
    "datagram_json", "data_message", "CLOSE_NORMAL", "CLOSE_REJECTED", "CLOSE_USER",
]

CMI = b"\x00\x00"
# the gateway's SHIP port (lib/gateway/config.py SHIP_PORT; this package must not import lib/,
# so host_tests/test_newcomer.py checks that the two agree)
DEFAULT_PORT = 4712
TYPE_INIT, TYPE_CONTROL, TYPE_DATA, TYPE_END = 0, 1, 2, 3
CLOSE_NORMAL = 4001     # "close"
CLOSE_REJECTED = 4452   # "Node rejected by application"
CLOSE_USER = 4500       # "User close"
CMI_TIMEOUT = 10.0
HELLO_PROLONG_MIN_MS = 1000


class ShipError(Exception):
    """A SHIP/TLS/WebSocket failure.

    Attributes: ``close_code`` / ``close_reason`` (WebSocket close frame received from the peer, None when
    none was received), ``phase`` (step name: tls, upgrade, cmi, hello, protocol, pin, access, data, close),
    ``timeout`` (True when a wait timed out), ``peer`` (the ShipPeer, when known), ``detail``,
    ``local`` (True when WE aborted, e.g. hello timeout or untrusted SKI; ``close_code`` is then the code
    we sent).
    """

    def __init__(self, message, *, close_code=None, close_reason=None, phase=None, timeout=False,
                 peer=None, detail=None, local=False):
        super().__init__(message)
        self.local = local
        self.close_code = close_code
        self.close_reason = close_reason
        self.phase = phase
        self.timeout = timeout
        self.peer = peer
        self.detail = detail

    def __str__(self):
        s = super().__str__()
        if self.close_code is not None and "close %d" % self.close_code not in s:
            s += " (close %d%s)" % (self.close_code, " " + self.close_reason if self.close_reason else "")
        return s


# ---------------------------------------------------------------------------------------------------
# messages (dialect dicts, schema order)

def hello_msg(phase, waiting=None, prolongation_request=None):
    items = [{"phase": phase}]
    if waiting is not None:
        items.append({"waiting": int(waiting)})
    if prolongation_request is not None:
        items.append({"prolongationRequest": bool(prolongation_request)})
    return {"connectionHello": items}


def protocol_handshake_msg(handshake_type, major=1, minor=0, formats=("JSON-UTF8",)):
    return {"messageProtocolHandshake": [
        {"handshakeType": handshake_type},
        {"version": [{"major": major}, {"minor": minor}]},
        {"formats": [{"format": list(formats)}]},
    ]}


def protocol_handshake_error_msg(error):
    return {"messageProtocolHandshakeError": [{"error": int(error)}]}


def pin_state_msg(pin_state="none", input_permission=None):
    items = [{"pinState": pin_state}]
    if input_permission is not None:
        items.append({"inputPermission": input_permission})
    return {"connectionPinState": items}


def pin_input_msg(pin):
    return {"connectionPinInput": [{"pin": str(pin)}]}


def pin_error_msg(error=1):
    return {"connectionPinError": [{"error": int(error)}]}


def access_methods_request_msg():
    return {"accessMethodsRequest": []}


def access_methods_msg(ship_id, dns_sd_mdns=False, dns_uri=None):
    items = [{"id": ship_id}]
    if dns_sd_mdns:
        items.append({"dnsSd_mDns": []})
    if dns_uri is not None:
        items.append({"dns": [{"uri": dns_uri}]})
    return {"accessMethods": items}


def connection_close_msg(phase, max_time=None, reason=None):
    items = [{"phase": phase}]
    if max_time is not None:
        items.append({"maxTime": int(max_time)})
    if reason is not None:
        items.append({"reason": reason})
    return {"connectionClose": items}


def encode(msg, msg_type=None):
    """A message object (dialect or plain; the outer object keeps its braces) -> SHIP bytes
    (type byte + compact JSON). ``msg_type`` defaults from the top-level key (data 2, connectionClose 3,
    else 1)."""
    if msg_type is None:
        (key,) = msg.keys()
        msg_type = TYPE_DATA if key == "data" else TYPE_END if key == "connectionClose" else TYPE_CONTROL
    if not dialect.is_dialect_message(msg):
        msg = dialect.message_to_eebus(msg)
    return bytes([msg_type]) + dialect.dumps_compact(msg).encode("utf-8")


def datagram_json(datagram):
    """Datagram in any accepted form -> dialect JSON text of ``{"datagram":[...]}``.

    Accepted: plain ``{"datagram": {...}}``; plain body ``{"header": ..., "payload": ...}``; dialect
    ``{"datagram": [...]}``; str/bytes = dialect text used verbatim."""
    if isinstance(datagram, (bytes, bytearray)):
        return bytes(datagram).decode("utf-8")
    if isinstance(datagram, str):
        return datagram
    if not (isinstance(datagram, dict) and list(datagram.keys()) == ["datagram"]):
        datagram = {"datagram": datagram}
    if not isinstance(datagram["datagram"], list):
        datagram = dialect.message_to_eebus(datagram)
    return dialect.dumps_compact(datagram)


def data_message(datagram, protocol_id="ee1.0", payload_wrapped=False):
    """SHIP data message bytes exactly as ship-go frames them:
    ``[02]{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[...]}}]}``.
    ``payload_wrapped=True`` gives the strict dialect form ``{"payload":[{"datagram":[...]}]}``."""
    inner = datagram_json(datagram)
    if payload_wrapped:
        inner = "[" + inner + "]"
    text = '{"data":[{"header":[{"protocolId":%s}]},{"payload":%s}]}' % (
        dialect.dumps_compact(protocol_id), inner)
    return b"\x02" + text.encode("utf-8")


class ShipMessage:
    """One received (or sent) SHIP message.

    ``raw``: the whole WebSocket message (type byte included); ``type``: first byte (None if empty);
    ``value``: bytes after the type byte; ``eebus``: parsed dialect JSON (types 1-3) or None;
    ``plain``: plain JSON of the whole message or None; ``name``: top-level key (``"cmi"`` for type 0,
    ``"unknown"`` / ``"invalid"`` otherwise); ``body``: plain value of the top-level key;
    ``error``: parse error text; ``text_frame``: True if it arrived in a WebSocket text frame.
    """

    def __init__(self, raw, text_frame=False):
        self.raw = bytes(raw)
        self.text_frame = text_frame
        self.type = self.raw[0] if self.raw else None
        self.value = self.raw[1:]
        self.eebus = None
        self.plain = None
        self.error = None
        self.name = "invalid"
        if self.type == TYPE_INIT:
            self.name = "cmi"
        elif self.type in (TYPE_CONTROL, TYPE_DATA, TYPE_END):
            try:
                self.eebus = dialect.loads(self.value)
                self.plain = dialect.message_to_plain(self.eebus)
                if len(self.plain) != 1:
                    raise ValueError("%d top-level keys" % len(self.plain))
                (self.name,) = self.plain.keys()
            except (ValueError, UnicodeDecodeError) as e:
                self.error = "%s: %s" % (type(e).__name__, e)
                self.name = "invalid"
        elif self.raw:
            self.name = "unknown"

    @property
    def body(self):
        if self.plain is None:
            return None
        return self.plain.get(self.name)

    def get(self, key, default=None):
        b = self.body
        return b.get(key, default) if isinstance(b, dict) else default

    @property
    def datagram(self):
        """Plain datagram body ``{"header": {...}, "payload": {...}}`` of a data message, else None."""
        if self.name != "data" or not isinstance(self.body, dict):
            return None
        p = self.body.get("payload")
        return p.get("datagram") if isinstance(p, dict) else None

    @property
    def json_text(self):
        try:
            return self.value.decode("utf-8")
        except UnicodeDecodeError:
            return repr(self.value)

    def describe(self):
        if self.type == TYPE_INIT:
            return "[00] CMI %s" % self.value.hex()
        if self.type is None:
            return "(empty message)"
        tag = "[%02x]" % self.type
        if self.type in (TYPE_CONTROL, TYPE_DATA, TYPE_END):
            extra = " (text frame!)" if self.text_frame else ""
            if self.error:
                return "%s %s%s: %s | %s" % (tag, self.name, extra, self.error, self.json_text[:200])
            return "%s %s%s %s" % (tag, self.name, extra, self.json_text)
        return "%s unknown type %s" % (tag, self.value[:64].hex())

    def __repr__(self):
        return "ShipMessage(%s)" % self.describe()[:300]
