# Property value encoders (big-endian, written in place into the TX buffer: no allocation)
# and property-map encoding (Appendix 1: list below 16 entries, bitmap from 16).

_ANCHOR = ...  # the constant table is not empty (compat.py, "A module's constant table")


def u8(b, o, v):
    b[o] = v & 0xFF
    return 1


def u16(b, o, v):
    b[o] = (v >> 8) & 0xFF
    b[o + 1] = v & 0xFF
    return 2


def u32(b, o, v):
    # v within +-2**30 stays a small int on a 32-bit port; >> on a negative v gives two's
    # complement bytes, so this also writes int32 values
    b[o] = (v >> 24) & 0xFF
    b[o + 1] = (v >> 16) & 0xFF
    b[o + 2] = (v >> 8) & 0xFF
    b[o + 3] = v & 0xFF
    return 4


def raw(b, o, src):
    n = len(src)
    for i in range(n):
        b[o + i] = src[i]
    return n


def clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


def bitmap(epcs):
    """16-byte membership bitmap of EPCs 0x80..0xFF, the layout of the map's bitmap form."""
    m = bytearray(16)
    for e in epcs:
        m[e & 0x0F] |= 1 << ((e >> 4) - 8)
    return m


def has(m, e):
    return e >= 0x80 and (m[e & 0x0F] >> ((e >> 4) - 8)) & 1


def encode_map(epcs):
    """EDT of a property map (0x9D/0x9E/0x9F): [count, EPC...] below 16 properties,
    [count] + 16-byte bitmap (byte 1 + low nibble, bit high nibble - 8) from 16 on."""
    n = len(epcs)
    if n < 16:
        return bytes([n] + sorted(epcs))
    return bytes([n]) + bytes(bitmap(epcs))
