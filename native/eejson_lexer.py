# The EEBUS JSON reader's hot loops (lib/eejson/reader.py): viper functions, machine code on MicroPython.
# A MicroPython module of native code: from source the native emitter compiles it at import;
# frozen (firmware/manifest.py) or built (tools/gw build) mpy-cross compiles it with the
# target's -march. Under CPython compat's no-op @micropython.viper and ptr8/ptr32 run the same
# code as plain Python (property tests). The names below are const(): folded to literals at
# compile time, they cost nothing in the .mpy or in RAM (reader.py names the slots it reads
# alike; host_tests/test_eejson.py checks that the two agree).
from compat import MICROPYTHON, const
from utf8 import scan as utf8_scan

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

if not MICROPYTHON:
    from compat import micropython, ptr8, ptr32

# lex(buf, end, st, sc): one call consumes buf[st[_POS]:end] until a token completes (returns
# its event, st[_POS] just past it) or the input runs out (returns 0). All state lives in the
# int array st, so a token may span calls (reader.py names the slots it reads alike):
#   _POS    next byte of buf              _LIM    bytes of this string kept (<= _CAP)
#   _LX     lexer state, _L_*             _TRUNC  the string was cut at _LIM
#   _EX     what the grammar expects, _X_*  _UVAL, _UDIG  \u: value so far, digits read
#   _DEPTH  open containers               _UHI    high surrogate awaiting its low half
#   _N      bytes in the scratch sc       _MANT, _NEG  integer magnitude and sign
#   _CAP    scratch size (max_str)        _SMALL  the number is still an int of <= 9 digits
#   _KEY    the string is a key           _DIGS   its digits so far
#   _ERR    error code, _E_* (after _EV_ERR)  _LIT  literal bytes still due, 7 bits each,
#   _U8..+2 utf8.scan's state                   first lowest; _LITEV its event
#   _KIND + d - 1  kind of the d-th open container (_K_OBJ, _K_ARR)
# Lexer states _L_*: between tokens, in a string, after a backslash, in \u digits, expecting
# the backslash and the u of a low surrogate, in a literal, then the number states from the
# minus sign to the exponent digits.
_POS = const(0)
_LX = const(1)
_EX = const(2)
_DEPTH = const(3)
_N = const(4)
_CAP = const(5)
_KEY = const(6)
_TRUNC = const(7)
_UVAL = const(8)
_UDIG = const(9)
_UHI = const(10)
_MANT = const(11)
_NEG = const(12)
_SMALL = const(13)
_LIT = const(14)
_LITEV = const(15)
_ERR = const(16)
_LIM = const(17)
_U8 = const(18)
_DIGS = const(21)
_KIND = const(24)

_L_TOK = const(0)
_L_STR = const(1)
_L_ESC = const(2)
_L_HEX = const(3)
_L_LOBS = const(4)
_L_LOU = const(5)
_L_LIT = const(6)
_L_MINUS = const(7)
_L_ZERO = const(8)
_L_INT = const(9)
_L_DOT = const(10)
_L_FRAC = const(11)
_L_E = const(12)
_L_ESIGN = const(13)
_L_EXP = const(14)

_X_VAL = const(0)
_X_VAL_END = const(1)
_X_KEY_END = const(2)
_X_KEY = const(3)
_X_COLON = const(4)
_X_NEXT = const(5)
_X_DONE = const(6)

_K_OBJ = const(1)
_K_ARR = const(2)
_MAX_DEPTH = const(32)

_EV_OBJ = const(1)
_EV_END_OBJ = const(2)
_EV_ARR = const(3)
_EV_END_ARR = const(4)
_EV_KEY = const(5)
_EV_STR = const(6)
_EV_INT = const(7)
_EV_NUM = const(8)
_EV_TRUE = const(9)
_EV_FALSE = const(10)
_EV_NULL = const(11)
_EV_ERR = const(12)

_E_CHAR = const(1)
_E_DEEP = const(2)
_E_CTRL = const(3)
_E_ESC = const(4)
_E_HEX = const(5)
_E_SURR = const(6)
_E_UTF8 = const(7)
_E_LIT = const(8)
_E_NUM = const(9)
_E_LONG = const(10)
_E_AFTER = const(11)


@micropython.viper
def lex(b, end: int, s, sc: ptr8) -> int:
    buf = ptr8(b)
    st = ptr32(s)
    i = st[_POS]
    lx = st[_LX]
    ex = st[_EX]
    d = st[_DEPTH]
    n = st[_N]
    lim = st[_LIM]
    trunc = st[_TRUNC]
    ev = 0
    err = 0
    while i < end:
        c = buf[i]
        if lx == _L_STR:
            # plain bytes up to a quote, backslash or control character; UTF-8 checked by
            # utf8.scan when one is >= 0x80 or a character continues from the last call
            j = i
            a = 0
            while i < end:
                c = buf[i]
                if c == 0x22 or c == 0x5C or c < 0x20:
                    break
                a |= c
                if n < lim:
                    sc[n] = c
                    n += 1
                else:
                    trunc = 1
                i += 1
            if a >= 0x80 or st[_U8] != 0:
                k = int(utf8_scan(b, j, i, s, _U8))
                if k < i or (st[_U8] != 0 and i < end):
                    i = k
                    err = _E_UTF8
                    break
            if i >= end:
                break
            i += 1
            if c == 0x22:
                lx = _L_TOK
                if st[_KEY]:
                    ev = _EV_KEY
                else:
                    ev = _EV_STR
                break
            if c == 0x5C:
                lx = _L_ESC
                continue
            i -= 1
            err = _E_CTRL
            break
        if lx == _L_TOK:
            if c == 0x20 or c == 0x0A or c == 0x0D or c == 0x09:
                i += 1
                continue
            if ex == _X_DONE:
                if c == 0:
                    i += 1
                    continue
                err = _E_AFTER
                break
            if c == 0x22:
                if ex == _X_KEY_END or ex == _X_KEY:
                    st[_KEY] = 1
                    ex = _X_COLON
                elif ex <= _X_VAL_END:
                    st[_KEY] = 0
                    if d:
                        ex = _X_NEXT
                    else:
                        ex = _X_DONE
                else:
                    err = _E_CHAR
                    break
                lx = _L_STR
                n = 0
                lim = st[_CAP]
                trunc = 0
                i += 1
                continue
            if c == 0x7B or c == 0x5B:
                if ex > _X_VAL_END:
                    err = _E_CHAR
                    break
                if d >= _MAX_DEPTH:
                    err = _E_DEEP
                    break
                i += 1
                if c == 0x7B:
                    st[_KIND + d] = _K_OBJ
                    ex = _X_KEY_END
                    ev = _EV_OBJ
                else:
                    st[_KIND + d] = _K_ARR
                    ex = _X_VAL_END
                    ev = _EV_ARR
                d += 1
                break
            if c == 0x7D or c == 0x5D:
                if d == 0:
                    err = _E_CHAR
                    break
                k = st[_KIND + d - 1]
                if c == 0x7D:
                    if k != _K_OBJ or (ex != _X_KEY_END and ex != _X_NEXT):
                        err = _E_CHAR
                        break
                    ev = _EV_END_OBJ
                else:
                    if k != _K_ARR or (ex != _X_VAL_END and ex != _X_NEXT):
                        err = _E_CHAR
                        break
                    ev = _EV_END_ARR
                d -= 1
                if d:
                    ex = _X_NEXT
                else:
                    ex = _X_DONE
                i += 1
                break
            if c == 0x3A:
                if ex != _X_COLON:
                    err = _E_CHAR
                    break
                ex = _X_VAL
                i += 1
                continue
            if c == 0x2C:
                if ex != _X_NEXT:
                    err = _E_CHAR
                    break
                if st[_KIND + d - 1] == _K_OBJ:
                    ex = _X_KEY
                else:
                    ex = _X_VAL
                i += 1
                continue
            if ex > _X_VAL_END:
                err = _E_CHAR
                break
            if c == 0x2D or 0x30 <= c <= 0x39:
                sc[0] = c
                n = 1
                st[_SMALL] = 1
                if c == 0x2D:
                    lx = _L_MINUS
                    st[_MANT] = 0
                    st[_NEG] = 1
                    st[_DIGS] = 0
                else:
                    if c == 0x30:
                        lx = _L_ZERO
                    else:
                        lx = _L_INT
                    st[_MANT] = c - 0x30
                    st[_NEG] = 0
                    st[_DIGS] = 1
                if d:
                    ex = _X_NEXT
                else:
                    ex = _X_DONE
                i += 1
                continue
            # true, false, null: the bytes after the first, 7 bits each, first lowest (8 bits
            # would pass 2**30, the ESP32's small-int limit that viper needs)
            if c == 0x74:
                st[_LIT] = 0x197AF2
                st[_LITEV] = _EV_TRUE
            elif c == 0x66:
                st[_LIT] = 0xCBCF661
                st[_LITEV] = _EV_FALSE
            elif c == 0x6E:
                st[_LIT] = 0x1B3675
                st[_LITEV] = _EV_NULL
            else:
                err = _E_CHAR
                break
            lx = _L_LIT
            if d:
                ex = _X_NEXT
            else:
                ex = _X_DONE
            i += 1
            continue
        if lx >= _L_MINUS:
            if 0x30 <= c <= 0x39:
                if lx == _L_MINUS:
                    if c == 0x30:
                        lx = _L_ZERO
                    else:
                        lx = _L_INT
                elif lx == _L_ZERO:
                    err = _E_NUM
                    break
                elif lx == _L_DOT:
                    lx = _L_FRAC
                elif lx == _L_E or lx == _L_ESIGN:
                    lx = _L_EXP
                if lx <= _L_INT and st[_SMALL]:
                    k = st[_DIGS] + 1
                    if k > 9:
                        st[_SMALL] = 0
                    else:
                        st[_DIGS] = k
                        st[_MANT] = st[_MANT] * 10 + c - 0x30
            elif c == 0x2E:
                if lx != _L_ZERO and lx != _L_INT:
                    err = _E_NUM
                    break
                lx = _L_DOT
                st[_SMALL] = 0
            elif c == 0x65 or c == 0x45:
                if lx != _L_ZERO and lx != _L_INT and lx != _L_FRAC:
                    err = _E_NUM
                    break
                lx = _L_E
                st[_SMALL] = 0
            elif (c == 0x2B or c == 0x2D) and lx == _L_E:
                lx = _L_ESIGN
            else:
                if lx == _L_MINUS or lx == _L_DOT or lx == _L_E or lx == _L_ESIGN:
                    err = _E_NUM
                    break
                lx = _L_TOK
                if st[_SMALL]:
                    ev = _EV_INT
                else:
                    ev = _EV_NUM
                break
            if n >= st[_CAP]:
                err = _E_LONG
                break
            sc[n] = c
            n += 1
            i += 1
            continue
        if lx == _L_ESC:
            o = 0
            if c == 0x22 or c == 0x5C or c == 0x2F:
                o = c
            elif c == 0x6E:
                o = 0x0A
            elif c == 0x74:
                o = 0x09
            elif c == 0x72:
                o = 0x0D
            elif c == 0x62:
                o = 0x08
            elif c == 0x66:
                o = 0x0C
            elif c == 0x75:
                lx = _L_HEX
                st[_UVAL] = 0
                st[_UDIG] = 0
                i += 1
                continue
            else:
                err = _E_ESC
                break
            if n < lim:
                sc[n] = o
                n += 1
            else:
                trunc = 1
            lx = _L_STR
            i += 1
            continue
        if lx == _L_HEX:
            h = 0
            if 0x30 <= c <= 0x39:
                h = c - 0x30
            elif 0x61 <= c <= 0x66:
                h = c - 0x57
            elif 0x41 <= c <= 0x46:
                h = c - 0x37
            else:
                err = _E_HEX
                break
            u = (st[_UVAL] << 4) | h
            k = st[_UDIG] + 1
            if k < 4:
                st[_UVAL] = u
                st[_UDIG] = k
                i += 1
                continue
            hi = st[_UHI]
            if hi:
                if u < 0xDC00 or u > 0xDFFF:
                    err = _E_SURR
                    break
                u = 0x10000 + ((hi - 0xD800) << 10) + (u - 0xDC00)
                st[_UHI] = 0
            elif 0xD800 <= u <= 0xDBFF:
                st[_UHI] = u
                lx = _L_LOBS
                i += 1
                continue
            elif 0xDC00 <= u <= 0xDFFF:
                err = _E_SURR
                break
            k = 1
            if u >= 0x10000:
                k = 4
            elif u >= 0x800:
                k = 3
            elif u >= 0x80:
                k = 2
            if n + k <= lim:
                if k == 1:
                    sc[n] = u
                elif k == 2:
                    sc[n] = 0xC0 | (u >> 6)
                    sc[n + 1] = 0x80 | (u & 0x3F)
                elif k == 3:
                    sc[n] = 0xE0 | (u >> 12)
                    sc[n + 1] = 0x80 | ((u >> 6) & 0x3F)
                    sc[n + 2] = 0x80 | (u & 0x3F)
                else:
                    sc[n] = 0xF0 | (u >> 18)
                    sc[n + 1] = 0x80 | ((u >> 12) & 0x3F)
                    sc[n + 2] = 0x80 | ((u >> 6) & 0x3F)
                    sc[n + 3] = 0x80 | (u & 0x3F)
                n += k
            else:
                # keep the delivered text a prefix: nothing more is stored once cut
                lim = n
                trunc = 1
            lx = _L_STR
            i += 1
            continue
        if lx == _L_LOBS or lx == _L_LOU:
            if (lx == _L_LOBS and c != 0x5C) or (lx == _L_LOU and c != 0x75):
                err = _E_SURR
                break
            if lx == _L_LOBS:
                lx = _L_LOU
            else:
                lx = _L_HEX
                st[_UVAL] = 0
                st[_UDIG] = 0
            i += 1
            continue
        # lx == _L_LIT
        v = st[_LIT]
        if c != (v & 0x7F):
            err = _E_LIT
            break
        v = v >> 7
        i += 1
        if v == 0:
            lx = _L_TOK
            ev = st[_LITEV]
            break
        st[_LIT] = v
    if err:
        st[_ERR] = err
        ev = _EV_ERR
    st[_POS] = i
    st[_LX] = lx
    st[_EX] = ex
    st[_DEPTH] = d
    st[_N] = n
    st[_LIM] = lim
    st[_TRUNC] = trunc
    return ev


@micropython.viper
def shash(s: ptr8, n: int) -> int:
    h = 5381
    i = 0
    while i < n:
        h = ((h << 5) + h + s[i]) & 0xFFFFFF
        i += 1
    return h


@micropython.viper
def same(a: ptr8, b: ptr8, n: int) -> int:
    i = 0
    while i < n:
        if a[i] != b[i]:
            return 0
        i += 1
    return 1
