# Strict UTF-8 (RFC 3629: no overlongs, no encoded surrogates, nothing above U+10FFFF), so
# that MicroPython, whose str decoding checks only the byte structure, agrees with CPython.
# One validator for the layers above: the WebSocket close reason (ws/codec.py) and the
# strings of the JSON reader (native/eejson_lexer.py, whose lexer calls scan() from its viper code
# on a run of string bytes that holds a byte >= 0x80).
#
# scan(buf, i, end, st, k) checks buf[i:end] as the continuation of the state in st[k:k+3]
# (an int array the caller owns; all 0 at the start of a text) and leaves the state there at
# the end, so a text may arrive in pieces: st[k] is the number of continuation bytes still
# due, st[k+1] and st[k+2] the range the next one must lie in. It returns end, or the index
# of the first byte that cannot continue valid UTF-8. The text is complete and valid when
# scan returned end and st[k] is 0. Viper on MicroPython (native code: compiled at import
# from source, by mpy-cross -march when frozen or built), the same code as plain Python under
# CPython (compat's no-op decorator and casts); it allocates nothing.
from array import array

from compat import MICROPYTHON, const

if not MICROPYTHON:
    from compat import micropython, ptr8, ptr32

NATIVE = MICROPYTHON  # scan is machine code

_NEED = const(0)
_LO = const(1)
_HI = const(2)


@micropython.viper
def scan(buf: ptr8, i: int, end: int, st: ptr32, k: int) -> int:
    n = st[k + _NEED]
    lo = st[k + _LO]
    hi = st[k + _HI]
    while i < end:
        c = buf[i]
        if n:
            if c < lo or c > hi:
                break
            n -= 1
            lo = 0x80
            hi = 0xBF
        elif c >= 0x80:
            lo = 0x80
            hi = 0xBF
            if 0xC2 <= c <= 0xDF:
                n = 1
            elif c == 0xE0:
                n = 2
                lo = 0xA0
            elif 0xE1 <= c <= 0xEF:
                n = 2
                if c == 0xED:
                    hi = 0x9F
            elif c == 0xF0:
                n = 3
                lo = 0x90
            elif 0xF1 <= c <= 0xF3:
                n = 3
            elif c == 0xF4:
                n = 3
                hi = 0x8F
            else:
                break
        i += 1
    st[k + _NEED] = n
    st[k + _LO] = lo
    st[k + _HI] = hi
    return i


_st = array("i", (0, 0, 0))


def valid(b, i, end):
    # b[i:end] is one whole text of valid UTF-8
    _st[0] = 0
    return scan(b, i, end, _st, 0) == end and _st[0] == 0
