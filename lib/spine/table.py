# Function data as rows (spine.md 3, 11, 12): most SPINE functions are a list of entries,
# xxxListData = {xxxData: [entry, ...]}, each entry an object with key fields (limitId,
# measurementId, ...) and values. A row is a flat tuple (key, value, key, value, ...): it
# costs one tuple per entry, is built once for descriptions and per snapshot for changing
# data, and lets one emitter serve reads with selectors and elements (spine.md 3.1).
#
# Values: bool, int, str as they are; a 2-tuple (number, scale) is a scaledNumber
# {number, scale}; a list is a nested object in the same flat form; a callable writes its
# own value; None leaves the member out (an optional field not known now), and so does a list
# (Items) without entries: on the wire a list member is there with entries or not at all, since
# `[]` reads as an empty object to eebus-go, which then drops the whole message.
from compat import const
from spine.device import Function

# what a list function offers (spine.device's possibleOperations flags): read, also partially,
# and when writable also write, also partially
_OPS_READ = const(3)
_OPS_READ_WRITE = const(15)


def scaled(x):
    """(number, scale) of an int or float as spine-go's NewScaledNumberType picks it: the
    smallest scale that keeps the value, at most 4 decimals."""
    if isinstance(x, int):
        return (x, 0)
    for s in range(5):
        m = x * (10 ** s)
        r = int(m + 0.5) if m >= 0 else -int(-m + 0.5)
        if abs(m - r) < 1e-6 * (10 ** s) or s == 4:
            if s == 0:
                return (r, 0)
            while s and r % 10 == 0:
                r //= 10
                s -= 1
            return (r, -s)
    return (int(x), 0)


def number(v):
    """The value of a scaledNumber tree {number, scale} (int when exact), or None."""
    if not isinstance(v, dict):
        return None
    n = v.get("number")
    s = v.get("scale", 0)
    if not isinstance(n, int) or isinstance(n, bool) or not isinstance(s, int) or isinstance(s, bool):
        return None
    if s < -10 or s > 10:
        return None
    if s >= 0:
        return n * (10 ** s)
    d = 10 ** -s
    return n // d if n % d == 0 else n / d


# ISO 8601 duration designators' seconds (a month 30 days, a year 365), date part (YMWD) and
# time part (HMS): constants in flash when frozen. Module names, not literals in duration_s:
# every builtin the emitters below use (isinstance, len, type) is looked up in this module's
# globals table first, and MicroPython fills a table to the last slot before it grows it, so a
# table with no free slot is scanned whole on every such lookup (the emitters ~20 % slower);
# these two keep four of its 29 slots free
_DATE_S = (31536000, 2592000, 604800, 86400)
_TIME_S = (3600, 60, 1)
DURATION_MAX_S = const(999999999)  # ~31.7 years: longer durations are clamped (a small int on the ESP32)
_FRAC_DIGITS = const(9)  # fraction digits kept; the rest is below 0.04 s even for a year


def duration_s(text):
    """Seconds of an ISO 8601 duration (PT2H, P1DT30M, PT1H2M3S, PT0.5S, -PT5S), rounded, or None.
    Magnitudes above DURATION_MAX_S are clamped to it: the digits come from a peer and are counted
    without ever building a big integer."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    n = len(text)
    i = 1 if text.startswith("-") else 0
    if n - i < 3 or text[i] != "P":
        return None
    i += 1
    units, secs = "YMWD", _DATE_S
    total = 0  # whole seconds, at most DURATION_MAX_S + 1 ("more than the cap")
    frac = 0.0  # seconds from fractions
    seen = False
    while i < n:
        if text[i] == "T":
            if units == "HMS":
                return None
            units, secs = "HMS", _TIME_S
            i += 1
            continue
        j = i
        v = 0
        while j < n and "0" <= text[j] <= "9":
            d = ord(text[j]) - 48
            v = v * 10 + d if v <= (DURATION_MAX_S - d) // 10 else DURATION_MAX_S + 1
            j += 1
        f = 0
        fd = 0
        if j < n and text[j] == ".":
            j += 1
            while j < n and "0" <= text[j] <= "9":
                if fd < _FRAC_DIGITS:
                    f = f * 10 + ord(text[j]) - 48
                    fd += 1
                j += 1
            if j == i + 1:  # "." alone
                return None
        if j == i or j >= n:
            return None  # a designator without a number, or a number without a designator
        k = units.find(text[j])
        if k < 0:
            return None
        m = secs[k]
        if v > (DURATION_MAX_S - total) // m:
            total = DURATION_MAX_S + 1
        else:
            total += v * m
        if f:
            frac += f / (10 ** fd) * m  # float first: f * m could be a big integer
        seen = True
        i = j + 1
    if not seen:
        return None
    if total <= DURATION_MAX_S and frac:
        total = int(total + frac + 0.5)
    if total > DURATION_MAX_S:
        total = DURATION_MAX_S
    return -total if text[0] == "-" else total


def duration_text(s):
    """ISO 8601 duration of whole seconds, as spine-go writes them (PT2H, PT1H2M3S, PT0S)."""
    s = int(s)
    if s <= 0:
        return "PT0S"
    h = s // 3600
    m = (s % 3600) // 60
    sec = s % 60
    t = "PT"
    if h:
        t += "%dH" % h
    if m:
        t += "%dM" % m
    if sec:
        t += "%dS" % sec
    return t


def emit_value(w, v):
    if v is True or v is False:
        w.boolean(v)
    elif isinstance(v, int):
        w.integer(v)
    elif isinstance(v, str):
        w.string(v)
    elif isinstance(v, tuple):
        w.obj_begin()
        w.member("number")
        w.integer(v[0])
        w.member("scale")
        w.integer(v[1])
        w.obj_end()
    elif isinstance(v, list):
        emit_object(w, v)
    else:
        v(w)


def emit_object(w, row, elements=None, keys=()):
    w.obj_begin()
    i = 0
    n = len(row)
    while i < n:
        k = row[i]
        v = row[i + 1]
        i += 2
        if v is None or (type(v) is Items and not v.items):
            continue
        if elements is not None and k not in elements and k not in keys:
            continue
        w.member(k)
        emit_value(w, v)
    w.obj_end()


def field(row, key):
    i = 0
    n = len(row)
    while i < n:
        if row[i] == key:
            return row[i + 1]
        i += 2
    return None


def selected(row, selectors):
    # every selector naming a field of the row must match it; selectors the row does not
    # have are ignored (as spine-go does)
    for k in selectors:
        v = field(row, k)
        if v is not None and v != selectors[k]:
            return False
    return True


def emit_list(w, item, rows, selectors=None, elements=None, keys=(), of_function=False):
    """{item: [row, ...]}, restricted to rows matching selectors and to elements (the key
    fields always stay, so that a restricted entry still says which one it is). No row: {}
    (the item member left out, as spine-go writes an empty list). of_function: item is the
    function's name, the member is item_name() of it."""
    w.obj_begin()
    first = True
    for r in rows:
        if selectors and not selected(r, selectors):
            continue
        if first:
            first = False
            if of_function and item.endswith("ListData"):
                w.member_cut(item, len(item) - 8, b"Data")
            else:
                w.member(item)
            w.list_begin()
        emit_object(w, r, elements or None, keys)
    if not first:
        w.list_end()
    w.obj_end()


def item_name(function):
    # loadControlLimitListData -> loadControlLimitData
    return function[:-8] + "Data" if function.endswith("ListData") else function


# The key fields of the list functions served (what a read restricted to elements keeps of
# every entry, spine.md 3.1), by the start of the function's name: a constant in flash, looked
# up only for such a read, instead of a slot in every Table
_KEYS = (
    ("electricalConnectionCharacteristic", ("characteristicId",)),
    ("electricalConnectionDescription", ("electricalConnectionId",)),
    ("electricalConnectionParameterDescription", ("electricalConnectionId", "parameterId")),
    ("electricalConnectionPermittedValueSet", ("electricalConnectionId", "parameterId")),
    ("deviceConfigurationKeyValue", ("keyId",)),
    ("identification", ("identificationId",)),
    ("measurement", ("measurementId",)),
    ("loadControlLimit", ("limitId",)),
    ("timeSeries", ("timeSeriesId",)),
    ("bill", ("billId",)),
)


def key_fields(function):
    for prefix, keys in _KEYS:
        if function.startswith(prefix):
            return keys
    return ()


class Table(Function):
    """A list function served from rows, e.g. measurementListData: read, also partially,
    and, given write, written, also partially. rows() returns the current rows (a tuple or
    list the caller does not change afterwards: a send emits it more than once). The Table is
    the Function itself (one object per list function, not two: they stay resident), and holds
    its name and rows only: its item name (item_name()), key fields (key_fields()) and, unless
    written, its operations come from its name and class."""

    ops = _OPS_READ
    selects = True

    def __init__(self, function, rows, write=None):
        self.name = function
        self._rows = rows  # a sequence, or a callable returning one (snapshot)
        if write is not None:
            self.ops = _OPS_READ_WRITE
            self.write = write

    def rows(self):
        r = self._rows
        return r() if callable(r) else r

    def emitter(self, selectors=None, elements=None):
        rows = self.rows()
        name = self.name
        keys = key_fields(name) if elements else ()

        def emit(w):
            emit_list(w, name, rows, selectors, elements, keys, True)

        return emit


class Items:
    """A list value whose elements are table values (a flat list is an object): for list
    members inside a row, e.g. a bill's positions."""

    def __init__(self, items):
        self.items = items

    def __call__(self, w):
        w.list_begin()
        for it in self.items:
            emit_value(w, it)
        w.list_end()


# ---- written data as the tree builder hands it over: each returns the value, or None when it
# is not shaped right


def uint32(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFFFFFFFF


def as_obj(v):
    # an object member: a dict; the tree builder turns an empty object into []
    if isinstance(v, dict):
        return v
    if v == []:
        return {}
    return None


def as_objects(v):
    # a list of objects; one entry may arrive as a bare object
    if isinstance(v, dict):
        return [v]
    if not isinstance(v, list):
        return None
    for x in v:
        if not isinstance(x, dict):
            return None
    return v


def entries(tree, item):
    """The entries of a written list {item: [..]} as a list of dicts, or None when the data
    is not shaped so (a single entry arrives as a dict from the tree builder)."""
    if not isinstance(tree, dict):
        return None
    return as_objects(tree.get(item))
