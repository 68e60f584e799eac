# Register maps as data (board_configs/chargers/*.json, format in the README there) and their
# interpreter, without I/O: the poll plan (register blocks, each with its preallocated
# array("H") for the master to read into), decode() from raw registers into the charger model,
# and the raw values the bridge writes (limit, pause, watchdog, failsafe, standby).
#
# A map is checked whole at load and refused with MapError naming the entry and the reason,
# so that a typo in a map stops the gateway at boot instead of writing a wrong current later.
# Unknown keys are errors for the same reason ("adress" must not silently mean "missing").
from array import array

import jsonfile
from check import Kit
from compat import const
from charger import F_CHARGING, F_ERROR, F_PLUGGED, F_STATE, FIELD_NAMES


class MapError(ValueError):
    pass


KINDS = ("holding", "input", "coil", "discrete")
_READ_FC = (3, 4, 1, 2)
TYPES = ("u16", "s16", "u32", "s32", "bit")
_WIDTH = (1, 1, 2, 2, 1)
_K_HOLDING = const(0)
_K_COIL = const(2)
_T_S16 = const(1)
_T_U32 = const(2)
_T_S32 = const(3)
_T_BIT = const(4)

# The model fields a point may feed. "link" is the bridge's own, "error_text" has no register.
FIELDS = (
    "state", "plugged", "charging", "error", "i1", "i2", "i3", "u1", "u2", "u3", "power",
    "session_wh", "total_wh", "phases", "hw_min", "hw_max", "ev_max",
)
_BOOL_FIELDS = ("plugged", "charging")
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


class Point:
    # One value polled from the controller. `last` is the raw value last decoded (-1: none),
    # so that unchanged registers cost one comparison and no allocation.
    # The values most points have are the class's: a point holds only the attributes that
    # differ (each one a slot of its instance table, resident for the whole run). Only these
    # are set after start-up: last (every point has its own from __init__), and none other.
    width = 1
    lo_first = False
    mask = 0
    scale = 1
    mul = 1
    div = 0
    enum = None  # {code: (state, plugged, charging, error or None)} or None
    offset = 0

    def __init__(self, index, kind, address, typ, lo_first, mask, scale, field, enum, interval):
        self.index = index
        self.kind = kind
        self.address = address
        self.type = typ
        if _WIDTH[typ] != 1:
            self.width = _WIDTH[typ]
        if lo_first:
            self.lo_first = lo_first
        if mask:
            self.mask = mask
        if scale != 1:
            self.scale = scale
            self.mul, self.div = _scaling(scale)
        self.field = field
        if enum is not None:
            self.enum = enum
        self.interval = interval
        self.block = None
        self.last = -1

    def raw(self, regs, off):
        # the unsigned value of the point's registers (or bit) at regs[off:]
        if self.width == 1:
            return regs[off]
        if self.lo_first:
            return (regs[off + 1] << 16) | regs[off]
        return (regs[off] << 16) | regs[off + 1]

    def value(self, raw):
        # raw -> model value (not for enum points); None when the mask leaves nothing
        v = raw
        if self.mask:
            v &= self.mask
        t = self.type
        if t == _T_BIT:
            return bool(v) if FIELD_NAMES[self.field] in _BOOL_FIELDS else v
        if t == _T_S16 and v & 0x8000:
            v -= 0x10000
        elif t == _T_S32 and v & 0x80000000:
            v -= 0x100000000
        if self.div:
            return v / self.div
        if self.mul != 1:
            return v * self.mul
        return v


class Block:
    # One read request in the poll plan: function code, first address, count, how often,
    # the points it feeds and the buffer the master reads into (allocated once).
    def __init__(self, kind, address, count, interval, points):
        self.kind = kind
        self.fc = _READ_FC[kind]
        self.address = address
        self.count = count
        self.interval = interval
        self.points = points
        self.regs = array("H", [0] * count)


class Write:
    # A register or coil the bridge writes: fc 5 (coil), 6 or 16 (holding)
    def __init__(self, kind, address, fc, value=0):
        self.kind = kind
        self.address = address
        self.fc = fc
        self.value = value


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
    return Point(i, kind, addr, typ, words == "little", mask, scale, field, enum, interval)


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
            blocks.append(Block(cur[0].kind, start, end - start, cur[0].interval, tuple(cur)))
            cur = []
        if not cur:
            start = p.address
            end = pend
        elif pend > end:
            end = pend
        cur.append(p)
    if cur:
        blocks.append(Block(cur[0].kind, start, end - start, cur[0].interval, tuple(cur)))
    for b in blocks:
        for p in b.points:
            p.block = b
            if p.address != b.address:
                p.offset = p.address - b.address
    return blocks


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


class Map:
    def __init__(self, doc):
        _obj(doc, "map")
        _keys(doc, _TOP_KEYS, "map")
        self.name = _str(doc, "name", "map")
        self.document = _str(doc, "document", "map")
        notes = doc.get("notes", "")
        if type(notes) is list:
            for i in range(len(notes)):
                if type(notes[i]) is not str:
                    _fail("notes[%d]" % i, "must be a string")
        elif type(notes) is not str:
            _fail("notes", "must be a string or a list of strings")
        self._link(doc)
        poll = _int(doc, "poll_ms", "map", _MIN_POLL, _MAX_POLL, 1000)
        max_gap = _int(doc, "max_gap", "map", 0, 16, 0)
        pts = doc.get("points")
        if type(pts) is not list or not pts:
            _fail("points", "missing or empty")
        fed = {}
        self.points = tuple(_point(pts[i], i, poll, fed) for i in range(len(pts)))
        self.blocks = tuple(_plan(self.points, max_gap))
        self._writes(doc)
        self.unknown = 0  # enum codes seen that the map does not name
        self.last_unknown = None

    def _link(self, doc):
        d = _obj(doc.get("link"), "link")
        _keys(d, _LINK_KEYS, "link")
        self.kind = _str(d, "kind", "link", ("rtu", "tcp"))
        rtu = self.kind == "rtu"
        self.unit = _int(d, "unit", "link", 1 if rtu else 0, 247 if rtu else 255)
        self.baudrate = _int(d, "baudrate", "link", 1200, 1000000, 9600)
        self.parity = _str(d, "parity", "link", ("N", "E", "O"), "N")
        self.stopbits = _int(d, "stopbits", "link", 1, 2, 1)
        self.port = _int(d, "port", "link", 1, 65535, 502)

    def _writes(self, doc):
        w = _obj(doc.get("writes"), "writes")
        _keys(w, _WRITE_KEYS, "writes")
        if "limit" not in w:
            _fail("writes.limit", "missing")
        path = "writes.limit"
        d = _obj(w["limit"], path)
        _keys(d, _LIMIT_KEYS, path)
        kind = _holding_or_coil(d, path, False)
        self.limit = Write(kind, _int(d, "address", path, 0, 0xFFFF), _fc(kind, d, path))
        self.limit_scale = _num(d, "scale", path, 1, True)
        self.limit_min = _num(d, "min", path)
        self.limit_max = _num(d, "max", path, None, True)
        if self.limit_min > self.limit_max:
            _fail(path + ".min", "above max")
        # 1/scale when that is an integer, so that 6.1 A at 0.1 A is 61 and never 60
        self._lim_mul = _scaling(self.limit_scale)[1]
        if self._raw(self.limit_max) > 0xFFFF:
            _fail(path + ".max", "does not fit a register at this scale")
        self.pause = _str(d, "pause", path, ("zero", "enable"), "zero")
        self.enable = None
        if "enable" in w:
            path = "writes.enable"
            d = _obj(w["enable"], path)
            _keys(d, _ENABLE_KEYS, path)
            kind = _holding_or_coil(d, path, True)
            self.enable = Write(kind, _int(d, "address", path, 0, 0xFFFF), _fc(kind, {}, path))
            top = 1 if kind == _K_COIL else 0xFFFF
            self.enable_on = _int(d, "on", path, 0, top, 1)
            self.enable_off = _int(d, "off", path, 0, top, 0)
            if self.enable_on == self.enable_off:
                _fail(path + ".off", "equals on")
        if self.pause == "enable" and self.enable is None:
            _fail("writes.limit.pause", '"enable" needs writes.enable')
        self.watchdog = None
        self.watchdog_ms = 0
        self.feed = None
        self.feed_write = None
        if "watchdog" in w:
            path = "writes.watchdog"
            d = _obj(w["watchdog"], path)
            _keys(d, _WDOG_KEYS, path)
            self.watchdog = Write(_K_HOLDING, _int(d, "address", path, 0, 0xFFFF), 6,
                                  _int(d, "value", path, 0, 0xFFFF))
            _holding_or_coil(d, path, False)
            self.watchdog_ms = _int(d, "timeout_ms", path, 0, 86400000)
            if (self.watchdog_ms == 0) != (self.watchdog.value == 0):
                _fail(path + ".timeout_ms", "0 exactly when value is 0 (watchdog off)")
            self.feed = _str(d, "feed", path, ("any", "write", "register"), "any")
            if self.feed == "register":
                self.feed_write = Write(_K_HOLDING, _int(d, "feed_address", path, 0, 0xFFFF), 6,
                                        _int(d, "feed_value", path, 0, 0xFFFF))
            elif "feed_address" in d or "feed_value" in d:
                _fail(path + ".feed", '"register" for feed_address/feed_value')
        self.failsafe = None
        self.failsafe_amps = None
        self.failsafe_scale = self.limit_scale
        if "failsafe" in w:
            path = "writes.failsafe"
            d = _obj(w["failsafe"], path)
            _keys(d, _FS_KEYS, path)
            _holding_or_coil(d, path, False)
            addr = _int(d, "address", path, 0, 0xFFFF)
            scale = _num(d, "scale", path, self.limit_scale, True)
            amps = _num(d, "amps", path)
            if amps and not self.limit_min <= amps <= self.limit_max:
                _fail(path + ".amps", "outside the limit's min..max (0 = stop charging)")
            raw = int(amps / scale + 1e-6)
            if raw > 0xFFFF:
                _fail(path + ".amps", "does not fit a register at this scale")
            self.failsafe = Write(_K_HOLDING, addr, 6, raw)
            self.failsafe_amps = amps
            self.failsafe_scale = scale
        self.standby = None
        if "standby" in w:
            path = "writes.standby"
            d = _obj(w["standby"], path)
            _keys(d, _STBY_KEYS, path)
            kind = _holding_or_coil(d, path, True)
            self.standby = Write(kind, _int(d, "address", path, 0, 0xFFFF), _fc(kind, {}, path),
                                 _int(d, "value", path, 0, 1 if kind == _K_COIL else 0xFFFF))

    def _raw(self, amps):
        if self._lim_mul:
            return int(amps * self._lim_mul + 1e-6)
        return int(amps / self.limit_scale + 1e-6)

    # ---- the poller's side

    def decode(self, block, regs, model):
        """Set the model fields fed by `block` from its registers `regs` (the block's own
        buffer after a read). Unchanged raw values are skipped. Returns True if a model field
        changed; the caller flushes the model once per poll cycle."""
        changed = False
        for p in block.points:
            raw = p.raw(regs, p.offset)
            if raw == p.last:
                continue
            p.last = raw
            e = p.enum
            if e is None:
                if model.set(p.field, p.value(raw)):
                    changed = True
                continue
            if p.mask:
                raw &= p.mask
            t = e.get(raw)
            if t is None:
                self.unknown += 1
                self.last_unknown = raw
                continue
            if model.set(F_STATE, t[0]):
                changed = True
            if model.set(F_PLUGGED, t[1]):
                changed = True
            if model.set(F_CHARGING, t[2]):
                changed = True
            if t[3] is not None and model.set(F_ERROR, t[3]):
                changed = True
        return changed

    def forget(self):
        """Decode everything again on the next poll (after a link loss or a model reset)."""
        for p in self.points:
            p.last = -1

    # ---- the bridge's side

    def encode_limit(self, amps):
        """(register value or None, enable value or None) for a charging current in A.
        0 or anything below the map's min pauses; above max is capped at max; values are
        rounded down to the register's resolution (never more current than asked). With
        pause "zero" a pause is the value 0; with pause "enable" it is (None, off): leave the
        limit register alone and switch the enable off."""
        if type(amps) is not int and type(amps) is not float:
            raise ValueError("amps must be a number")
        if amps != amps or amps < 0:
            raise ValueError("amps must be >= 0")
        en = self.enable
        if amps < self.limit_min or amps == 0:
            if self.pause == "enable":
                return None, self.enable_off
            return 0, None
        if amps > self.limit_max:
            amps = self.limit_max
        raw = self._raw(amps)
        lo = self._raw(self.limit_min)
        if raw < lo:
            raw = lo
        return raw, (None if en is None else self.enable_on)

    def init_writes(self):
        """Writes that set the controller up after connecting (and after it rebooted):
        standby off, failsafe current, watchdog timeout, in that order (the failsafe current
        must be in place before the watchdog can fall back to it)."""
        return [w for w in (self.standby, self.failsafe, self.watchdog) if w is not None]


def load(doc):
    """A checked Map from a parsed map document; MapError names what is wrong."""
    return Map(doc)


def load_file(path):
    try:
        doc = jsonfile.load(path)
    except ValueError as e:
        raise MapError("%s: not JSON (%s)" % (path, e))
    return Map(doc)
