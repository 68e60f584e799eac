"""The simulator's direction of a register map (lib/controller/regmap.py): model value -> raw
register value -> registers, and a limit register back to amps. Host only (tools/sim.py and the
tests); plain MicroPython too, so the shared case files can use it under the unix port."""

from controller.regmap import TYPES

_S16 = TYPES.index("s16")
_S32 = TYPES.index("s32")
_BIT = TYPES.index("bit")


def encode(p, value):
    """Point p's model value -> raw unsigned register value (also the round-trip property).
    ValueError when it does not fit the type."""
    if p.type == _BIT:
        return 1 if value else 0
    if p.div:
        v = value * p.div
    elif p.mul != 1:
        v = value / p.mul
    else:
        v = value
    v = int(v + 0.5) if v >= 0 else -int(-v + 0.5)
    bits = 16 if p.width == 1 else 32
    if p.type == _S16 or p.type == _S32:
        if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
            raise ValueError("value out of range")
        v &= (1 << bits) - 1
    elif not 0 <= v < (1 << bits):
        raise ValueError("value out of range")
    if p.mask and v & ~p.mask:
        raise ValueError("value outside mask")
    return v


def store(p, raw, regs, off):
    """Put point p's raw value into regs[off:] (its word order)."""
    if p.width == 1:
        regs[off] = raw & 0xFFFF
        return
    hi = (raw >> 16) & 0xFFFF
    lo = raw & 0xFFFF
    if p.lo_first:
        regs[off] = lo
        regs[off + 1] = hi
    else:
        regs[off] = hi
        regs[off + 1] = lo


def decode_limit(m, raw):
    """The current (A) a limit register value of map m stands for; 0 = paused."""
    if m._lim_mul:
        return raw / m._lim_mul if raw % m._lim_mul else raw // m._lim_mul
    return raw * m.limit_scale
