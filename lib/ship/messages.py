# SHIP messages: the exact bytes we send (ship.md section 6, byte for byte as ship-go) and a
# lenient reader for the small control messages we receive.
import json

from compat import MICROPYTHON, const

TYPE_INIT = const(0)
TYPE_CONTROL = const(1)
TYPE_DATA = const(2)
TYPE_END = const(3)

CMI = b"\x00\x00"
HELLO_PROLONG = b'\x01{"connectionHello":[{"phase":"pending"},{"prolongationRequest":true}]}'
HELLO_ABORTED = b'\x01{"connectionHello":[{"phase":"aborted"}]}'
PROTO_ANNOUNCE = (
    b'\x01{"messageProtocolHandshake":[{"handshakeType":"announceMax"},'
    b'{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF8"]}]}]}'
)
PROTO_SELECT = (
    b'\x01{"messageProtocolHandshake":[{"handshakeType":"select"},'
    b'{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF8"]}]}]}'
)
PIN_NONE = b'\x01{"connectionPinState":[{"pinState":"none"}]}'
PIN_OK = b'\x01{"connectionPinState":[{"pinState":"pinOk"}]}'
ACCESS_REQUEST = b'\x01{"accessMethodsRequest":[]}'
CLOSE_CONFIRM = b'\x03{"connectionClose":[{"phase":"confirm"}]}'

# SPINE datagrams travel inside this envelope; the payload is not array-wrapped (ship.md 6.6).
DATA_PREFIX = b'\x02{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":'
DATA_SUFFIX = b"}]}"

# messageProtocolHandshakeError values
ERR_TIMEOUT = const(1)
ERR_UNEXPECTED = const(2)
ERR_MISMATCH = const(3)


def hello(phase, waiting_ms):
    # phase: b"ready" or b"pending"
    return b'\x01{"connectionHello":[{"phase":"%s"},{"waiting":%d}]}' % (phase, waiting_ms)


def pin_state(state, permission):
    # state: b"required" | b"optional"; permission: b"ok" | b"busy" (PIN input locked)
    return b'\x01{"connectionPinState":[{"pinState":"%s"},{"inputPermission":"%s"}]}' % (state, permission)


def pin_input(pin):
    return b'\x01{"connectionPinInput":[{"pin":%s}]}' % json.dumps(pin).encode()


def pin_error(code):
    return b'\x01{"connectionPinError":[{"error":%d}]}' % code


# the SHIP 1.0 control messages (ship.md 5); any other name is an unknown control message
KNOWN_CONTROL = (
    "connectionHello", "messageProtocolHandshake", "messageProtocolHandshakeError", "connectionPinState",
    "connectionPinInput", "connectionPinError", "accessMethodsRequest", "accessMethods",
)


def proto_error(code):
    return b'\x01{"messageProtocolHandshakeError":[{"error":%d}]}' % code


def close_announce(max_time_ms, reason):
    # reason must be one of the two enum values: unspecific | removedConnection
    return b'\x03{"connectionClose":[{"phase":"announce"},{"maxTime":%d},{"reason":"%s"}]}' % (
        max_time_ms,
        reason.encode(),
    )


def access_methods(ship_id):
    return b'\x01{"accessMethods":[{"id":%s}]}' % json.dumps(ship_id).encode()


def fields(value):
    # An EEBUS-dialect object is a list of single-key objects; a lenient peer may send the
    # plain object. Returns a dict, or None when value is neither.
    if isinstance(value, dict):
        return value
    if not isinstance(value, list):
        return None
    out = {}
    for item in value:
        if not isinstance(item, dict) or len(item) != 1:
            return None
        out.update(item)
    return out


def parse_control(buf, off, n):
    """Decode a control or end message body (after the type byte) held in buf[off:off+n].

    Returns (name, fields) for a single-key top-level object, or None for anything else.
    Trailing NUL bytes and whitespace are ignored (some peers send a NUL).
    """
    while n and buf[off + n - 1] in b"\x00 \t\r\n":
        n -= 1
    try:
        # MicroPython's json reads any buffer in place: no copy of up to 1 KB (two, through a
        # slice and bytes()), which a heap cut into small pieces may not hold; CPython's
        # takes bytes
        mv = memoryview(buf)[off : off + n]
        doc = json.loads(mv if MICROPYTHON else bytes(mv))
    except (ValueError, UnicodeError):
        return None
    if not isinstance(doc, dict) or len(doc) != 1:
        return None
    for name in doc:
        value = doc[name]
        # the flat handshake error of ship-go v0.7: {"error":N}
        if name == "error":
            return "messageProtocolHandshakeError", {"error": value}
        f = fields(value)
        if f is None:
            return None
        return name, f
