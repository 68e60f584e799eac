# Register maps as data (board_configs/chargers/*.json, format in the README there) and their
# interpreter, without I/O: the poll plan (register blocks, each with its preallocated
# array("H") for the master to read into), decode() from raw registers into the charger model,
# and the raw values the bridge writes (limit, pause, watchdog, failsafe, standby).
#
# This module is what the running gateway keeps. Reading and checking a map document is
# controller/mapload.py (load, load_file), which the gateway lets go after start-up.
from array import array

from compat import const
from charger import F_CHARGING, F_ERROR, F_PLUGGED, F_STATE

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")


class MapError(ValueError):
    pass


KINDS = ("holding", "input", "coil", "discrete")
_READ_FC = const((3, 4, 1, 2))
TYPES = ("u16", "s16", "u32", "s32", "bit")
_WIDTH = (1, 1, 2, 2, 1)
_T_S16 = const(1)
_T_S32 = const(3)
_T_BIT = const(4)


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
            return bool(v) if self.field == F_PLUGGED or self.field == F_CHARGING else v
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


class Map:
    # Filled in by controller.mapload.load (the attributes its readers set), used by the
    # poller (decode, forget) and the bridge (encode_limit, init_writes).

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
