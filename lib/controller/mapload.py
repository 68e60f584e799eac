# Reading and checking a register map document (board_configs/chargers/*.json, format in the
# README there) into a controller.regmap.Map (load, load_file): start-up only (gateway.startup lets
# this module go).
#
# A map is checked whole at load and refused with MapError naming the entry and the reason,
# so that a typo in a map stops the gateway at boot instead of writing a wrong current later.
# Unknown keys are errors for the same reason ("adress" must not silently mean "missing").
from array import array

import jsonfile
from doccheck import Kit
from compat import const
from charger import F_CHARGING, F_ERROR, F_PLUGGED, FIELD_NAMES
from controller.regmap import KINDS, TYPES, Block, Map, MapError, Point, Write
from modbus.pdu import response_length

# The model fields a point may feed. "link" is the bridge's own, "error_text" has no register.
FIELDS = (
    "state", "plugged", "charging", "error", "i1", "i2", "i3", "u1", "u2", "u3", "power",
    "session_wh", "total_wh", "phases", "hw_min", "hw_max", "ev_max",
)

_READ_FC = (3, 4, 1, 2)  # by kind
_WIDTH = (1, 1, 2, 2, 1)  # by type
_P_OFFSET = const(7)  # regmap.Point's offset

_K_HOLDING = const(0)
_K_COIL = const(2)
_T_BIT = const(4)
# IEC 61851-1 states, with the x1/x2 substates (2 = PWM on, charging allowed)
_STATES = ("A", "B", "C", "D", "E", "F")

_MAX_REGS = const(125)  # per read request (Modbus spec)
_MAX_BITS = const(256)  # our own bound: a wallbox has a handful of flags
_MIN_POLL = const(100)
_MAX_POLL = const(3600000)

_TOP_KEYS = ("name", "document", "notes", "link", "poll_ms", "max_gap", "points", "writes")
_LINK_KEYS = ("kind", "unit", "baudrate", "parity", "stopbits", "port", "note")
_POINT_KEYS = ("kind", "address", "count", "type", "words", "scale", "mask", "field", "enum",
               "interval_ms", "note")
_WRITE_KEYS = ("limit", "enable", "watchdog", "failsafe", "standby")
_LIMIT_KEYS = ("kind", "address", "scale", "min", "max", "pause", "fc", "note")
_ENABLE_KEYS = ("kind", "address", "on", "off", "note")
_WDOG_KEYS = ("kind", "address", "value", "timeout_ms", "feed", "feed_address", "feed_value", "note")
_FS_KEYS = ("kind", "address", "scale", "amps", "note")
_STBY_KEYS = ("kind", "address", "value", "note")


_K = Kit(MapError)
_fail = _K.fail
_obj = _K.obj
_keys = _K.keys
_int = _K.integer
_num = _K.number
_str = _K.text
_bool = _K.flag


def _scaling(scale):
    # (mul, div): values come out as raw * mul, or raw / div when the scale is 1/div (0.1,
    # 0.01: dividing gives 23.1 where multiplying by 0.1 gives 23.100000000000001)
    if scale == int(scale):
        return int(scale), 0
    inv = 1 / scale
    n = int(inv + 0.5)
    if n > 1 and abs(inv - n) < 1e-9 * n:
        return 0, n
    return scale, 0


def _state_entry(v, path):
    if type(v) is str:
        v = {"state": v}
    _obj(v, path)
    _keys(v, ("state", "plugged", "charging", "error", "note"), path)
    s = _str(v, "state", path)
    letter = s[:1]
    if letter not in _STATES or len(s) > 2 or (len(s) == 2 and s[1] not in "12"):
        _fail(path + ".state", 'unknown IEC 61851 state "%s"' % s)
    plugged = _bool(v, "plugged", path, letter in "BCD")
    charging = _bool(v, "charging", path, letter in "CD" and s[1:] != "1")
    err = _int(v, "error", path, 0, 0xFFFF, -1)
    return (letter, plugged, charging, err)


def _enum(d, path):
    e = _obj(d, path)
    if not e:
        _fail(path, "empty")
    out = {}
    has_error = False
    for k in e:
        try:
            code = int(k)
        except ValueError:
            code = -1
        if not 0 <= code <= 0xFFFFFFFF or str(code) != k:
            _fail(path, 'key "%s" is not a register value' % k)
        t = _state_entry(e[k], '%s."%s"' % (path, k))
        if t[3] >= 0:
            has_error = True
        out[code] = t
    # once one state names an error code, the others clear it (leaving an error state must
    # not leave the error standing); otherwise the error field is not this point's business
    for code in out:
        t = out[code]
        if t[3] < 0:
            out[code] = (t[0], t[1], t[2], 0 if has_error else None)
    return out


def _point(d, i, default_ms, fed):
    path = "points[%d]" % i
    _obj(d, path)
    _keys(d, _POINT_KEYS, path)
    kind = KINDS.index(_str(d, "kind", path, KINDS))
    bits = kind >= _K_COIL
    addr = _int(d, "address", path, 0, 0xFFFF)
    typ = TYPES.index(_str(d, "type", path, TYPES, "bit" if bits else "u16"))
    if bits != (typ == _T_BIT):
        _fail(path + ".type", '"%s" does not fit kind "%s"' % (TYPES[typ], KINDS[kind]))
    width = _WIDTH[typ]
    if _int(d, "count", path, 1, 2, width) != width:
        _fail(path + ".count", "%s takes %d register(s)" % (TYPES[typ], width))
    if addr + width > 0x10000:
        _fail(path + ".address", "past the end of the address space")
    words = _str(d, "words", path, ("big", "little"), "big")
    if "words" in d and width != 2:
        _fail(path + ".words", "only for 32-bit types")
    mask = _int(d, "mask", path, 1, 0xFFFFFFFF if width == 2 else 0xFFFF, 0)
    if mask and bits:
        _fail(path + ".mask", "not for bits")
    scale = _num(d, "scale", path, 1, True)
    fname = _str(d, "field", path, FIELDS)
    field = FIELD_NAMES.index(fname)
    enum = None
    if "enum" in d:
        if fname != "state":
            _fail(path + ".enum", 'only for the field "state"')
        if "scale" in d:
            _fail(path + ".scale", "not with an enum")
        enum = _enum(d["enum"], path + ".enum")
    elif fname == "state":
        _fail(path + ".enum", 'missing (the field "state" needs one)')
    fields = [field]
    if enum is not None:
        fields += [F_PLUGGED, F_CHARGING]
        if any(t[3] is not None for t in enum.values()):
            fields.append(F_ERROR)
    for f in fields:
        if f in fed:
            _fail(path + ".field", '"%s" is already fed by points[%d]' % (FIELD_NAMES[f], fed[f]))
        fed[f] = i
    interval = _int(d, "interval_ms", path, _MIN_POLL, _MAX_POLL, default_ms)
    mul, div = _scaling(scale) if scale != 1 else (1, 0)
    # offset 0 until the plan puts the point in a block
    return Point(i, kind, addr, typ, field, interval, width, 0, words == "little", mask, scale, mul, div, enum)


def _plan(points, max_gap):
    # Blocks per (interval, kind), addresses merged while the hole between two points is at
    # most max_gap registers and the request stays within its size limit. Points are not
    # moved between interval classes: a slow block must not be read at the fast rate.
    order = sorted(points, key=lambda p: (p.interval, p.kind, p.address))
    blocks = []
    cur = []
    start = end = 0
    for p in order:
        most = _MAX_BITS if p.kind >= _K_COIL else _MAX_REGS
        pend = p.address + p.width
        if cur and (p.interval != cur[0].interval or p.kind != cur[0].kind
                    or p.address > end + max_gap or max(end, pend) - start > most):
            blocks.append(_block(cur, start, end))
            cur = []
        if not cur:
            start = p.address
            end = pend
        elif pend > end:
            end = pend
        cur.append(p)
    if cur:
        blocks.append(_block(cur, start, end))
    return blocks


def _block(cur, start, end):
    # the points placed at their offsets in the block's buffer
    pts = tuple(p if p.address == start else Point(*(p[:_P_OFFSET] + (p.address - start,) + p[_P_OFFSET + 1:]))
                for p in cur)
    k = cur[0].kind
    return Block(k, _READ_FC[k], start, end - start, cur[0].interval, pts, array("H", [0] * (end - start)))


def _holding_or_coil(d, path, coil_ok):
    kinds = ("holding", "coil") if coil_ok else ("holding",)
    return KINDS.index(_str(d, "kind", path, kinds, "holding"))


def _fc(kind, d, path):
    if kind == _K_COIL:
        if "fc" in d:
            _fail(path + ".fc", "coils are written with function code 5")
        return 5
    fc = _int(d, "fc", path, 6, 16, 6)
    if fc != 6 and fc != 16:
        _fail(path + ".fc", "6 or 16")
    return fc


def load(doc):
    """A checked regmap.Map from a parsed map document; MapError names what is wrong."""
    m = Map()
    _obj(doc, "map")
    _keys(doc, _TOP_KEYS, "map")
    m.name = _str(doc, "name", "map")
    m.document = _str(doc, "document", "map")
    notes = doc.get("notes", "")
    if type(notes) is list:
        for i in range(len(notes)):
            if type(notes[i]) is not str:
                _fail("notes[%d]" % i, "must be a string")
    elif type(notes) is not str:
        _fail("notes", "must be a string or a list of strings")
    _link(m, doc)
    poll = _int(doc, "poll_ms", "map", _MIN_POLL, _MAX_POLL, 1000)
    max_gap = _int(doc, "max_gap", "map", 0, 16, 0)
    pts = doc.get("points")
    if type(pts) is not list or not pts:
        _fail("points", "missing or empty")
    fed = {}
    m.blocks = tuple(_plan([_point(pts[i], i, poll, fed) for i in range(len(pts))], max_gap))
    placed = [None] * len(pts)
    for b in m.blocks:
        for p in b.points:
            placed[p.index] = p
    m.points = tuple(placed)
    m.last = [-1] * len(placed)
    _writes(m, doc)
    m.unknown = 0  # enum codes seen that the map does not name
    m.last_unknown = None
    return m


def _link(m, doc):
    d = _obj(doc.get("link"), "link")
    _keys(d, _LINK_KEYS, "link")
    m.kind = _str(d, "kind", "link", ("rtu", "tcp"))
    rtu = m.kind == "rtu"
    m.unit = _int(d, "unit", "link", 1 if rtu else 0, 247 if rtu else 255)
    m.baudrate = _int(d, "baudrate", "link", 1200, 1000000, 9600)
    m.parity = _str(d, "parity", "link", ("N", "E", "O"), "N")
    m.stopbits = _int(d, "stopbits", "link", 1, 2, 1)
    m.port = _int(d, "port", "link", 1, 65535, 502)


def _section(w, name, keys):
    # writes.<name>: an object with only the given keys; (it, its path for messages)
    path = "writes." + name
    d = _obj(w[name], path)
    _keys(d, keys, path)
    return d, path


def _writes(m, doc):
    w = _obj(doc.get("writes"), "writes")
    _keys(w, _WRITE_KEYS, "writes")
    if "limit" not in w:
        _fail("writes.limit", "missing")
    d, path = _section(w, "limit", _LIMIT_KEYS)
    kind = _holding_or_coil(d, path, False)
    m.limit = Write(kind, _int(d, "address", path, 0, 0xFFFF), _fc(kind, d, path), 0)
    m.limit_scale = _num(d, "scale", path, 1, True)
    m.limit_min = _num(d, "min", path)
    m.limit_max = _num(d, "max", path, None, True)
    if m.limit_min > m.limit_max:
        _fail(path + ".min", "above max")
    # 1/scale when that is an integer, so that 6.1 A at 0.1 A is 61 and never 60
    m._lim_mul = _scaling(m.limit_scale)[1]
    if m._raw(m.limit_max) > 0xFFFF:
        _fail(path + ".max", "does not fit a register at this scale")
    m.pause = _str(d, "pause", path, ("zero", "enable"), "zero")
    m.enable = None
    if "enable" in w:
        d, path = _section(w, "enable", _ENABLE_KEYS)
        kind = _holding_or_coil(d, path, True)
        m.enable = Write(kind, _int(d, "address", path, 0, 0xFFFF), _fc(kind, {}, path), 0)
        top = 1 if kind == _K_COIL else 0xFFFF
        m.enable_on = _int(d, "on", path, 0, top, 1)
        m.enable_off = _int(d, "off", path, 0, top, 0)
        if m.enable_on == m.enable_off:
            _fail(path + ".off", "equals on")
    if m.pause == "enable" and m.enable is None:
        _fail("writes.limit.pause", '"enable" needs writes.enable')
    m.watchdog = None
    m.watchdog_ms = 0
    m.feed = None
    m.feed_write = None
    if "watchdog" in w:
        d, path = _section(w, "watchdog", _WDOG_KEYS)
        m.watchdog = Write(_K_HOLDING, _int(d, "address", path, 0, 0xFFFF), 6,
                              _int(d, "value", path, 0, 0xFFFF))
        _holding_or_coil(d, path, False)
        m.watchdog_ms = _int(d, "timeout_ms", path, 0, 86400000)
        if (m.watchdog_ms == 0) != (m.watchdog.value == 0):
            _fail(path + ".timeout_ms", "0 exactly when value is 0 (watchdog off)")
        m.feed = _str(d, "feed", path, ("any", "write", "register"), "any")
        if m.feed == "register":
            m.feed_write = Write(_K_HOLDING, _int(d, "feed_address", path, 0, 0xFFFF), 6,
                                    _int(d, "feed_value", path, 0, 0xFFFF))
        elif "feed_address" in d or "feed_value" in d:
            _fail(path + ".feed", '"register" for feed_address/feed_value')
    m.failsafe = None
    m.failsafe_amps = None
    m.failsafe_scale = m.limit_scale
    if "failsafe" in w:
        d, path = _section(w, "failsafe", _FS_KEYS)
        _holding_or_coil(d, path, False)
        addr = _int(d, "address", path, 0, 0xFFFF)
        scale = _num(d, "scale", path, m.limit_scale, True)
        amps = _num(d, "amps", path)
        if amps and not m.limit_min <= amps <= m.limit_max:
            _fail(path + ".amps", "outside the limit's min..max (0 = stop charging)")
        raw = int(amps / scale + 1e-6)
        if raw > 0xFFFF:
            _fail(path + ".amps", "does not fit a register at this scale")
        m.failsafe = Write(_K_HOLDING, addr, 6, raw)
        m.failsafe_amps = amps
        m.failsafe_scale = scale
    m.standby = None
    if "standby" in w:
        d, path = _section(w, "standby", _STBY_KEYS)
        kind = _holding_or_coil(d, path, True)
        m.standby = Write(kind, _int(d, "address", path, 0, 0xFFFF), _fc(kind, {}, path),
                             _int(d, "value", path, 0, 1 if kind == _K_COIL else 0xFFFF))


def frame_size(m):
    """The largest Modbus frame the bridge exchanges for map m (modbus.master.Master's size):
    an MBAP header (7 bytes, more than RTU's address and CRC) and the longest PDU, a block's
    read reply or the one-register FC 16 write (8 bytes)."""
    return 7 + max(8, max(response_length(b.fc, b.count) for b in m.blocks))


def load_file(path):
    try:
        doc = jsonfile.load(path)
    except ValueError as e:
        raise MapError("%s: not JSON (%s)" % (path, e))
    return load(doc)
