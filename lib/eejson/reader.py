# Streaming reader for the EEBUS JSON dialect (ship.md section 12), and for plain JSON.
#
# A push parser: feed(buf, off, n) takes the message in whatever chunks the WebSocket hands
# over (any token may be split), finish() ends the message. It calls a consumer, SAX style:
#   start_object() end_object() start_array() end_array()
#   key(k: str)   value(v)   v is str, int, (mantissa, scale), True, False or None
# Numbers: an integer (no fraction, no exponent) is an int of any size; any other number is
# a tuple (mantissa, scale) of ints with value mantissa * 10**scale ("1.50" -> (150, -2),
# "-2e3" -> (-2, 3)): exact, no float rounding (the ESP32 port has single-precision floats)
# and what SPINE's scaledNumber needs anyway. to_float() converts.
# Strings (keys and values) are delivered as str, with escapes, \u sequences and surrogate
# pairs resolved and the UTF-8 strictly checked (RFC 3629: no overlongs, no encoded
# surrogates, nothing above U+10FFFF), so both runtimes accept the same input.
# A string whose UTF-8 form is longer than max_str bytes is delivered cut to its first
# max_str bytes (on a character boundary) and `truncated` is true during that callback: a
# long description must not cost the whole message (ship.md 12.4). A number longer than
# max_str characters is an error. A lone surrogate escape (\ud83d not followed by a low
# surrogate escape, or a lone \ude00) is an error: it has no UTF-8 form.
# Nesting deeper than 32 containers is an error; whitespace may appear between any tokens;
# after the top-level value only whitespace and 0x00 bytes may follow.
# Every malformed input raises JsonError (a ValueError) with the byte position and a reason;
# after that the reader refuses input until reset(). reset() starts the next message (the
# buffers are reused); so does it after a consumer raised, which abandons the message.
#
# Memory: the state is one int array, one scratch buffer of max_str bytes and a cache of
# memoryviews of it, so a message allocates nothing but the values delivered. A string equal
# to an entry of a Names table (the keys and enumerations the SPINE layer knows), or to one
# the runtime has interned already, is handed out without any allocation at all.
# The lexer is viper (machine code) on MicroPython (native/eejson_lexer.py); under CPython the same code runs
# as plain Python.
from array import array

from compat import MICROPYTHON, const
from eejson_lexer import lex as _lex, same as _same, shash as _shash

_MAX_DEPTH = const(32)
# Strings up to this length decode through a cached memoryview: the short ones, which the
# runtime has often interned already (then nothing at all is allocated). A longer one is a new
# string anyway, and views of every length to 64 cost a reader up to 1.3 KB (32-bit).
_MV_CACHE = const(16)

# the state slots read here, named as eejson_lexer.py names them (its table lists them all)
_POS = const(0)
_LX = const(1)
_EX = const(2)
_N = const(4)
_CAP = const(5)
_TRUNC = const(7)
_MANT = const(11)
_NEG = const(12)
_ERR = const(16)
_KIND = const(24)  # one slot per open container from here
_STATE_LEN = const(_KIND + _MAX_DEPTH)

# lexer states (subset needed here)
_L_TOK = const(0)
_L_NUM = const(7)  # this and above: inside a number (lexer's _L_MINUS.._L_EXP)
_X_DONE = const(6)

# events
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

_REASONS = const((
    "",
    "unexpected character",
    "nesting deeper than 32",
    "control character in string",
    "invalid escape",
    "invalid \\u escape",
    "lone surrogate",
    "invalid UTF-8",
    "invalid literal",
    "invalid number",
    "number too long",
    "data after the top-level value",
))

NATIVE = MICROPYTHON  # the hot loops run as machine code
_SPACE = const(b" ")


class JsonError(ValueError):
    def __init__(self, pos, reason):
        super().__init__("%s at byte %d" % (reason, pos))
        self.pos = pos
        self.reason = reason


class Consumer:
    # Receives the reader's events; subclasses override what they need.
    def start_object(self):
        pass

    def end_object(self):
        pass

    def start_array(self):
        pass

    def end_array(self):
        pass

    def key(self, k):
        pass

    def value(self, v):
        pass


class Names:
    # Strings (ASCII) that the reader hands out as these very objects instead of new ones:
    # the keys and enumeration values a consumer knows. A message made of known strings then
    # allocates nothing, and consumers may compare with `is`. Lookup: open addressing on a
    # hash of the scratch bytes, so no temporary object is made to look one up.
    def __init__(self, strings):
        k = 8
        while k < 2 * len(strings):
            k <<= 1
        mask = k - 1
        tab = [None] * k
        # viper compares a str through its buffer; bytecode and CPython need bytes
        raw = tab if NATIVE else [None] * k
        for s in strings:
            b = s.encode()
            n = len(b)
            if n != len(s):
                continue
            h = _shash(b, n) & mask
            while tab[h] is not None and tab[h] != s:
                h = (h + 1) & mask
            tab[h] = s
            raw[h] = b if raw is not tab else s
        self._mask = mask
        self._tab = tab
        self._raw = raw

    def find(self, buf, n):
        tab = self._tab
        raw = self._raw
        mask = self._mask
        h = _shash(buf, n) & mask
        while True:
            s = tab[h]
            if s is None:
                return None
            if len(s) == n and _same(buf, raw[h], n):
                return s
            h = (h + 1) & mask


class Reader:
    def __init__(self, consumer=None, max_str=256, names=None):
        if max_str < 32:
            max_str = 32
        self._sc = bytearray(max_str)
        self._mv = memoryview(self._sc)
        # memoryview slices cost an allocation each; one per length, made on first use
        self._mvs = [None] * (min(max_str, _MV_CACHE) + 1)
        self._st = array("i", [0] * _STATE_LEN)
        self._st[_CAP] = max_str
        self.names = names
        self.reset(consumer)

    def reset(self, consumer=None):
        # Ready for a new message; the consumer stays unless another is given.
        if consumer is not None:
            self.c = consumer
        st = self._st
        cap = st[_CAP]
        for i in range(_STATE_LEN):
            st[i] = 0
        st[_CAP] = cap
        self._base = 0
        self._failed = None

    @property
    def truncated(self):
        # True inside key()/value() for a string that was cut to max_str bytes.
        return self._st[_TRUNC] != 0

    @property
    def pos(self):
        # bytes consumed in this message (after feed() returns)
        return self._base

    @property
    def done(self):
        # the top-level value is complete (only whitespace/0x00 may follow)
        st = self._st
        return st[_EX] == _X_DONE and st[_LX] == _L_TOK

    def feed(self, buf, off=0, n=-1):
        if self._failed:
            raise self._failed
        if n < 0:
            n = len(buf) - off
        st = self._st
        st[_POS] = off
        end = off + n
        lex = _lex
        sc = self._sc
        c = self.c
        while True:
            ev = lex(buf, end, st, sc)
            if ev == 0:
                break
            # most frequent first: the dialect is mostly {"key":...} wrapped in arrays
            if ev == _EV_KEY:
                c.key(self._str())
            elif ev == _EV_OBJ:
                c.start_object()
            elif ev == _EV_END_OBJ:
                c.end_object()
            elif ev == _EV_STR:
                c.value(self._str())
            elif ev == _EV_ARR:
                c.start_array()
            elif ev == _EV_END_ARR:
                c.end_array()
            elif ev == _EV_INT:
                v = st[_MANT]
                c.value(-v if st[_NEG] else v)
            elif ev == _EV_NUM:
                c.value(self._number())
            elif ev == _EV_TRUE:
                c.value(True)
            elif ev == _EV_FALSE:
                c.value(False)
            elif ev == _EV_NULL:
                c.value(None)
            else:
                self._fail(self._base + st[_POS] - off, _REASONS[st[_ERR]])
        self._base += n

    def finish(self):
        # End of the message: raises JsonError unless exactly one complete value was read.
        if self._failed:
            raise self._failed
        st = self._st
        if st[_LX] >= _L_NUM:
            # a number at the top level ends only here; a space terminates it
            self.feed(_SPACE, 0, 1)
            self._base -= 1
        if st[_LX] != _L_TOK or st[_EX] != _X_DONE:
            self._fail(self._base, "unexpected end of message")

    def _fail(self, pos, reason):
        self._failed = JsonError(pos, reason)
        raise self._failed

    def _str(self):
        st = self._st
        n = st[_N]
        if st[_TRUNC]:
            n = _cut(self._sc, n)
        names = self.names
        if names is not None:
            s = names.find(self._sc, n)
            if s is not None:
                return s
        mvs = self._mvs
        if n < len(mvs):
            m = mvs[n]
            if m is None:
                m = mvs[n] = self._mv[:n]
        else:
            m = self._mv[:n]
        return str(m, "utf-8")

    def _number(self):
        # Rare path (fraction, exponent or more than 9 digits): the text is in the scratch.
        sc = self._sc
        n = self._st[_N]
        i = 0
        neg = sc[0] == 0x2D
        if neg:
            i = 1
        m = 0
        scale = 0
        exact = True
        while i < n:
            c = sc[i]
            if c == 0x2E:
                exact = False
            elif c == 0x65 or c == 0x45:
                break
            else:
                m = m * 10 + c - 0x30
                if not exact:
                    scale -= 1
            i += 1
        if neg:
            m = -m
        if i < n:
            i += 1
            eneg = sc[i] == 0x2D
            if eneg or sc[i] == 0x2B:
                i += 1
            e = 0
            while i < n:
                e = e * 10 + sc[i] - 0x30
                i += 1
            scale += -e if eneg else e
            exact = False
        if exact:
            return m
        return (m, scale)


def _cut(sc, n):
    # The last character may have lost its tail bytes; drop the partial character.
    j = n
    while j > 0 and (sc[j - 1] & 0xC0) == 0x80:
        j -= 1
    if j == 0:
        return 0
    lead = sc[j - 1]
    if lead < 0x80:
        return n
    need = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    if n - (j - 1) >= need:
        return n
    return j - 1


def to_float(v):
    # A number as delivered (int or (mantissa, scale)) as a float; out of range: +-inf or 0.0.
    if isinstance(v, tuple):
        m, s = v
    else:
        m = v
        s = 0
    if m == 0:
        return 0.0
    # bound the work: the digits are few (max_str), the scale may be huge
    k = len(str(abs(m)))
    try:
        if s + k > 400:
            raise OverflowError
        if s + k < -400:
            return 0.0 if m > 0 else -0.0
        if s >= 0:
            return float(m * 10**s)
        # int / int is correctly rounded in CPython
        return m / 10**-s
    except OverflowError:
        return float("inf") if m > 0 else float("-inf")


def parse(data, consumer, max_str=256, chunk=0):
    # Convenience for tests and tools: the whole message at once (or in chunks of `chunk`).
    r = Reader(consumer, max_str)
    n = len(data)
    if chunk <= 0:
        chunk = n or 1
    off = 0
    while off < n:
        k = chunk if chunk < n - off else n - off
        r.feed(data, off, k)
        off += k
    r.finish()
    return consumer
