# Register maps as data (board_configs/chargers/*.json, format in the README there) and their
# interpreter, without I/O: the poll plan (register blocks, each with its preallocated
# array("H") for the master to read into), decode() from raw registers into the charger model,
# and the raw values the bridge writes (limit, pause, watchdog, failsafe, standby).
#
# This module is what the running gateway keeps. Reading and checking a map document is
# controller/mapload.py (load, load_file), which the gateway lets go after start-up.
from collections import namedtuple

from compat import const
from charger import F_CHARGING, F_ERROR, F_PLUGGED, F_STATE

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")


class MapError(ValueError):
    pass


KINDS = ("holding", "input", "coil", "discrete")
TYPES = ("u16", "s16", "u32", "s32", "bit")
_T_S16 = const(1)
_T_S32 = const(3)
_T_BIT = const(4)


# A point, a block and a write are read-only once the map is loaded: tuples with names
# (collections.namedtuple), not instances. A Point instance held its attributes in a table of
# its own (80-96 B each, 32-bit), a 14-field tuple is 64 B, and the class with its methods and
# class-level defaults is one small type. decode reads a point by index (_P_*: the hot path);
# the loader, the bridge and the tools by name.
#
# One value polled from the controller. width: registers (1, or 2 for 32-bit types); offset:
# its place in its block's buffer; mul/div: the scale as raw * mul, or raw / div when the scale
# is 1/div (mapload._scaling); enum: {code: (state, plugged, charging, error or None)} or None.
Point = namedtuple("Point", ("index", "kind", "address", "type", "field", "interval", "width", "offset",
                             "lo_first", "mask", "scale", "mul", "div", "enum"))
_P_INDEX = const(0)
_P_TYPE = const(3)
_P_FIELD = const(4)
_P_WIDTH = const(6)
_P_OFFSET = const(7)
_P_LO_FIRST = const(8)
_P_MASK = const(9)
_P_MUL = const(11)
_P_DIV = const(12)
_P_ENUM = const(13)

# One read request in the poll plan: function code, first address, count, how often, the points
# it feeds and the buffer the master reads into (allocated once).
Block = namedtuple("Block", ("kind", "fc", "address", "count", "interval", "points", "regs"))

# A register or coil the bridge writes: fc 5 (coil), 6 or 16 (holding)
Write = namedtuple("Write", ("kind", "address", "fc", "value"))


def raw(p, regs, off):
    # the unsigned value of the point's registers (or bit) at regs[off:]
    if p[_P_WIDTH] == 1:
        return regs[off]
    if p[_P_LO_FIRST]:
        return (regs[off + 1] << 16) | regs[off]
    return (regs[off] << 16) | regs[off + 1]


def value(p, r):
    # raw value r -> model value (not for enum points)
    v = r
    if p[_P_MASK]:
        v &= p[_P_MASK]
    t = p[_P_TYPE]
    if t == _T_BIT:
        f = p[_P_FIELD]
        return bool(v) if f == F_PLUGGED or f == F_CHARGING else v
    if t == _T_S16 and v & 0x8000:
        v -= 0x10000
    elif t == _T_S32 and v & 0x80000000:
        v -= 0x100000000
    if p[_P_DIV]:
        return v / p[_P_DIV]
    if p[_P_MUL] != 1:
        return v * p[_P_MUL]
    return v


class Map:
    # Filled in by controller.mapload.load (the attributes its readers set), used by the
    # poller (decode, forget) and the bridge (encode_limit, init_writes). last[i] is the raw
    # value of points[i] last decoded (-1: none), so that unchanged registers cost one
    # comparison and no allocation; the only thing that changes after start-up.

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
        last = self.last
        for p in block.points:
            r = raw(p, regs, p[_P_OFFSET])
            i = p[_P_INDEX]
            if r == last[i]:
                continue
            last[i] = r
            e = p[_P_ENUM]
            if e is None:
                if model.set(p[_P_FIELD], value(p, r)):
                    changed = True
                continue
            if p[_P_MASK]:
                r &= p[_P_MASK]
            t = e.get(r)
            if t is None:
                self.unknown += 1
                self.last_unknown = r
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
        last = self.last
        for i in range(len(last)):
            last[i] = -1

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
