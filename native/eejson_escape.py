# The EEBUS JSON writer's hot loops (lib/eejson/writer.py): string escaping, copying and small integers as
# viper functions, machine code on MicroPython (compiled at import from source, by mpy-cross
# with the target's -march when frozen or built); under CPython compat's no-op
# @micropython.viper and ptr8/ptr32 run the same code as plain Python. Viper reads a str
# argument through its buffer (UTF-8 bytes); plain Python indexes characters, so writer.py
# passes encoded bytes there.
from compat import MICROPYTHON, const

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

if not MICROPYTHON:
    from compat import micropython, ptr8, ptr32

# esc_len/esc_copy state st (writer.py names the slots alike): _IN the next byte of the
# string, _LEFT its characters still to escape, _OUT the output position, _OUT_END its end
_IN = const(0)
_LEFT = const(1)
_OUT = const(2)
_OUT_END = const(3)


@micropython.viper
def esc_len(s: ptr8, nch: int, st: ptr32) -> int:
    # escaped length of the first nch characters of s; their byte length -> st[_IN]
    i = 0
    k = 0
    while nch > 0:
        c = s[i]
        nch -= 1
        if c >= 0x80:
            if c == 0xE2 and s[i + 1] == 0x80 and (s[i + 2] == 0xA8 or s[i + 2] == 0xA9):
                k += 6
                i += 3
                continue
            if c >= 0xF0:
                i += 4
                k += 4
            elif c >= 0xE0:
                i += 3
                k += 3
            else:
                i += 2
                k += 2
            continue
        i += 1
        if c == 0x22 or c == 0x5C or c == 0x0A or c == 0x0D or c == 0x09 or c == 0x08 or c == 0x0C:
            k += 2
        elif c < 0x20 or c == 0x3C or c == 0x3E or c == 0x26:
            k += 6
        else:
            k += 1
    st[_IN] = i
    return k


@micropython.viper
def esc_copy(s: ptr8, dst: ptr8, st: ptr32) -> int:
    # escape characters from s[st[_IN]] into dst[st[_OUT]:st[_OUT_END]] until done or full;
    # returns the characters left
    i = st[_IN]
    nch = st[_LEFT]
    p = st[_OUT]
    e = st[_OUT_END]
    while nch > 0:
        c = s[i]
        if c >= 0x80:
            if c == 0xE2 and s[i + 1] == 0x80 and (s[i + 2] == 0xA8 or s[i + 2] == 0xA9):
                if p + 6 > e:
                    break
                dst[p] = 0x5C
                dst[p + 1] = 0x75
                dst[p + 2] = 0x32
                dst[p + 3] = 0x30
                dst[p + 4] = 0x32
                dst[p + 5] = 0x38 + (s[i + 2] - 0xA8)
                p += 6
                i += 3
                nch -= 1
                continue
            k = 2
            if c >= 0xF0:
                k = 4
            elif c >= 0xE0:
                k = 3
            if p + k > e:
                break
            j = 0
            while j < k:
                dst[p + j] = s[i + j]
                j += 1
            p += k
            i += k
            nch -= 1
            continue
        o = 0
        if c == 0x22 or c == 0x5C:
            o = c
        elif c == 0x0A:
            o = 0x6E
        elif c == 0x0D:
            o = 0x72
        elif c == 0x09:
            o = 0x74
        elif c == 0x08:
            o = 0x62
        elif c == 0x0C:
            o = 0x66
        elif c < 0x20 or c == 0x3C or c == 0x3E or c == 0x26:
            if p + 6 > e:
                break
            dst[p] = 0x5C
            dst[p + 1] = 0x75
            dst[p + 2] = 0x30
            dst[p + 3] = 0x30
            h = c >> 4
            dst[p + 4] = 0x30 + h
            h = c & 15
            if h < 10:
                dst[p + 5] = 0x30 + h
            else:
                dst[p + 5] = 0x57 + h
            p += 6
            i += 1
            nch -= 1
            continue
        if o:
            if p + 2 > e:
                break
            dst[p] = 0x5C
            dst[p + 1] = o
            p += 2
        else:
            if p >= e:
                break
            dst[p] = c
            p += 1
        i += 1
        nch -= 1
    st[_IN] = i
    st[_LEFT] = nch
    st[_OUT] = p
    return nch


@micropython.viper
def copy(dst: ptr8, doff: int, src: ptr8, soff: int, n: int):
    i = 0
    while i < n:
        dst[doff + i] = src[soff + i]
        i += 1


@micropython.viper
def itoa(v: int, dst: ptr8) -> int:
    # decimal digits of v (|v| < 10**9) into dst; returns their count
    k = 0
    if v < 0:
        dst[0] = 0x2D
        k = 1
        v = 0 - v
    t = v
    n = 1
    while t >= 10:
        t = t // 10
        n += 1
    end = k + n
    j = end
    while j > k:
        j -= 1
        dst[j] = 0x30 + v % 10
        v = v // 10
    return end
