"""Plain JSON <-> EEBUS JSON dialect (ship.md section 12), structural conversion (no byte replacement).

Dialect rules (encoding, ``to_eebus``):

- object ``{"a":1,"b":2}``  -> array of single-key objects ``[{"a":1},{"b":2}]``, in the dict's insertion
  order (build plain dicts in schema order when the byte form matters);
- empty object ``{}``        -> ``[]``;
- list of objects            -> array of arrays ``[[{"x":1}],[{"x":2}]]``;
- list of scalars / ``[]``   -> unchanged;
- scalars                    -> unchanged.

Decoding (``to_plain``) classifies each array by its elements (ship.md 12.2):

- all elements single-key objects -> object (keys merged; a repeated key raises ``DialectError``);
- all elements arrays             -> list of objects (each inner array decoded as an object; an inner
  ``[]`` becomes ``{}``; an inner array of scalars stays a list);
- all elements scalars            -> list of scalars;
- ``[]``                          -> **ambiguous** (empty object or empty list): kept as ``[]``. A consumer
  must accept ``[]`` wherever an object is expected, and ``to_eebus([]) == []`` so the bytes survive;
- anything else (mixed, multi-key objects in an array) -> ``DialectError``.
- A JSON object (braces) found in dialect input is decoded member by member; this happens for the
  outermost message object and for SHIP's ``data.payload`` (see below).

Whole SHIP messages (``message_to_plain`` / ``message_to_eebus``): the outermost object keeps its braces
(``{"connectionHello":[...]}``), and in a data message ship-go does NOT array-wrap ``payload``:
``{"data":[{"header":[...]},{"payload":{"datagram":[...]}}]}``. ``message_to_eebus`` emits exactly that
(``payload_wrapped=True`` gives the strict dialect form ``{"payload":[{"datagram":[...]}]}``);
``message_to_plain`` accepts both.

``dumps_compact`` = compact JSON as ship-go emits it (separators ``,``/``:``, UTF-8, no ASCII escaping).
Known limit: Go's encoder escapes ``<``, ``>``, ``&`` as ``\\u003c`` etc. and writes floats its own way;
byte-exact reproduction of such input is not attempted (none of the captures contains them).
"""

import json

__all__ = [
    "DialectError", "to_plain", "to_eebus", "message_to_plain", "message_to_eebus",
    "dumps_compact", "loads", "is_dialect_message",
]


class DialectError(ValueError):
    pass


def _is_scalar(v):
    return v is None or isinstance(v, (str, int, float, bool))


def to_plain(value, _path="$"):
    """EEBUS dialect value -> plain JSON value (structural, see module doc)."""
    if _is_scalar(value):
        return value
    if isinstance(value, dict):
        return {k: to_plain(v, "%s.%s" % (_path, k)) for k, v in value.items()}
    if not isinstance(value, list):
        raise DialectError("%s: not a JSON value: %r" % (_path, type(value)))
    if not value:
        return []  # ambiguous: empty object or empty list
    if all(isinstance(e, dict) and len(e) == 1 for e in value):
        out = {}
        for e in value:
            (k, v), = e.items()
            if k in out:
                raise DialectError("%s: key %r repeated in an object array" % (_path, k))
            out[k] = to_plain(v, "%s.%s" % (_path, k))
        return out
    if all(isinstance(e, list) for e in value):
        return [_element_to_plain(e, "%s[%d]" % (_path, i)) for i, e in enumerate(value)]
    if all(_is_scalar(e) for e in value):
        return list(value)
    raise DialectError("%s: array mixes objects, arrays and scalars (not EEBUS dialect)" % _path)


def _element_to_plain(arr, path):
    # An array inside a list: an object in dialect form. [] is an empty object here.
    if not arr:
        return {}
    return to_plain(arr, path)


def to_eebus(value, _path="$"):
    """Plain JSON value -> EEBUS dialect value (see module doc)."""
    if _is_scalar(value):
        return value
    if isinstance(value, dict):
        return [{k: to_eebus(v, "%s.%s" % (_path, k))} for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        out = []
        for i, e in enumerate(value):
            if isinstance(e, dict):
                out.append(to_eebus(e, "%s[%d]" % (_path, i)))  # object in a list -> array
            elif isinstance(e, (list, tuple)):
                out.append(to_eebus(e, "%s[%d]" % (_path, i)))
            else:
                out.append(e)
        return out
    raise DialectError("%s: cannot encode %r" % (_path, type(value)))


def message_to_plain(msg):
    """A whole SHIP message in dialect (outer braces) -> plain. Handles ``data.payload`` wrapped or not."""
    if not isinstance(msg, dict):
        raise DialectError("a SHIP message is a JSON object")
    out = {}
    for k, v in msg.items():
        if k == "data" and isinstance(v, list):
            data = to_plain(v, "$.data")
            if not isinstance(data, dict):
                raise DialectError("$.data: not an object")
            out[k] = data  # payload {"datagram":[...]} or [{"datagram":[...]}] both end as a dict
        else:
            out[k] = to_plain(v, "$." + k)
    return out


def message_to_eebus(msg, payload_wrapped=False):
    """A whole plain SHIP message (e.g. ``{"connectionHello": {...}}``, ``{"data": {...}}``,
    ``{"datagram": {...}}``) -> dialect with the outer braces kept. In ``data``, ``payload`` is emitted
    unwrapped (``{"payload":{"datagram":[...]}}``, ship-go) unless ``payload_wrapped``."""
    if not isinstance(msg, dict):
        raise DialectError("a SHIP message is a JSON object")
    out = {}
    for k, v in msg.items():
        if k == "data" and isinstance(v, dict):
            items = []
            for dk, dv in v.items():
                if dk == "payload" and isinstance(dv, dict):
                    inner = message_to_eebus(dv)
                    items.append({dk: [{ik: iv} for ik, iv in inner.items()] if payload_wrapped else inner})
                else:
                    items.append({dk: to_eebus(dv, "$.data." + dk)})
            out[k] = items
        else:
            out[k] = to_eebus(v, "$." + k)
    return out


def dumps_compact(value):
    """Compact JSON text as ship-go emits it (no spaces, UTF-8 characters unescaped)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(data):
    """Parse JSON text/bytes leniently as SHIP receivers must: strips trailing NUL bytes and whitespace
    (ship.md 12.4), keeps key order."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data).rstrip(b"\x00 \t\r\n").decode("utf-8")
    else:
        data = data.rstrip("\x00 \t\r\n")
    return json.loads(data)


def is_dialect_message(msg):
    """True if a message object's top-level values are in dialect form (arrays), False if plain (objects)."""
    if not isinstance(msg, dict) or len(msg) != 1:
        raise DialectError("a SHIP message has exactly one top-level key")
    (v,) = msg.values()
    return isinstance(v, list)
