# Streaming writer for the EEBUS JSON dialect: compact, byte for byte as ship-go/spine-go
# (Go encoding/json) write it, straight into one fixed buffer.
#
# The caller writes one function emit(w) that drives the writer:
#   obj_begin() member(key) ... obj_end()   dialect object  [{"a":1},{"b":2}]  ([] if empty)
#   plain_begin() member(key) ... plain_end()  plain object  {"a":1,"b":2}  (the outermost
#                                           message object, the SHIP data payload)
#   list_begin() ... list_end()             list            [1,2] / [[{..}],[{..}]]
#   string(s) integer(i) boolean(b) null()  scalars
#   decimal(m, scale)   m * 10**scale, exact: positional ("1.50" for (150, -2)) unless that
#                       needs more than 20 padding zeros ("15e-300" for (15, -300))
#   floating(f)         a float as Go writes a float64 (shortest digits, exponent form below
#                       1e-6 and from 1e21 on); on MicroPython repr() decides the digits
#   raw(b)              pre-encoded JSON bytes as one value
#   value(v)            any of the above chosen by type (tuple = decimal)
# and runs it twice: n = w.measure(emit) counts the bytes without writing anything, then
# w.stream(emit, sink) writes them through the buffer, calling sink(mv) with each full
# buffer and once with the tail; mv is only valid during the call. emit must produce the
# same output both times (take a snapshot of changing state first).
#
# How the SHIP layer sends a data message as one WebSocket frame of known length:
#   n = w.measure(emit)
#   await ws.begin(1 + n); await ws.write(b"\x02")
#   then either, with a sync sink: w.stream(emit, sink) where sink hands the chunk to the
#   socket without awaiting (asyncio Stream.write keeps what the socket did not take) and
#   await ws.end() drains; or, never holding more than the buffer:
#   off = 0
#   while off < n: k = w.window(emit, off); await ws.write(w.mv[:k]); off += k
#   await ws.end()
#   window() re-runs emit, keeps bytes off..off+size and only counts the rest: the k
#   windows of a message cost k runs of emit, for memory that never grows and no
#   allocation.
# render(emit) writes a message that fits the buffer into buf and returns its length.
# ValueError: nesting deeper than 32, a NaN or infinite float, render() overflowing.
# The calls must nest properly; the writer does not check the grammar.
#
# Strings are escaped as Go's encoding/json does (Go >= 1.22, the stacks CEMs run today):
# \" \\ \b \f \n \r \t, other control characters as \u00xx, < > & as \u003c \u003e \u0026,
# U+2028/U+2029 as \u2028/\u2029, all other UTF-8 passed through. (Go before 1.22 wrote
# \b and \f as \u0008 and \u000c; readers decode both alike.) Keys are strings likewise.
# Strings are str (under CPython without lone surrogates: they have no UTF-8 form).
# Escaping, copying and integers up to 9 digits run in viper (native/eejson_escape.py); a message allocates
# nothing but the sink's tail view, integers beyond 9 digits (str()) and floats.
from array import array

from compat import MICROPYTHON, const
from eejson_escape import copy as _copy, esc_copy as _esc_copy, esc_len as _esc_len, itoa as _itoa

_MAX_DEPTH = const(32)
_DOBJ = const(1)
_POBJ = const(2)
_LIST = const(3)
# esc_len/esc_copy state slots, as eejson_escape.py names them
_IN = const(0)
_LEFT = const(1)
_OUT = const(2)
_OUT_END = const(3)

NATIVE = MICROPYTHON  # the hot loops run as machine code
# viper reads a str through its buffer (UTF-8 bytes); plain Python indexes characters
_ENC = not NATIVE


class Writer:
    # buf: the output buffer (a bytearray of size bytes, e.g. lent from a start-up pool); None:
    # one is made. Size 0: a writer that measures and renders into others' buffers only
    # (window_into)
    def __init__(self, size=1024, buf=None):
        self.buf = bytearray(size) if buf is None else buf
        self.mv = memoryview(self.buf)
        self._size = size
        self._kind = bytearray(_MAX_DEPTH)
        self._st = array("i", [0, 0, 0, 0])
        self._num = bytearray(12)
        self._begin(True, None)

    def _begin(self, meas, sink):
        self._meas = meas
        self._sink = sink
        self._p = 0  # measure: bytes counted; otherwise: bytes in buf
        self._out = 0  # bytes handed to the sink
        self._skip = 0
        self._win = False
        self._d = 0
        self._nc = False  # a value was written: the next value needs a comma

    # running an emit function

    def measure(self, emit):
        self._begin(True, None)
        emit(self)
        return self._p

    def stream(self, emit, sink):
        # Returns the number of bytes written; the last sink call gets the tail.
        self._begin(False, sink)
        emit(self)
        p = self._p
        if p:
            sink(self.mv[:p])
        return self._out + p

    def render(self, emit):
        # For messages that fit the buffer: returns n, the bytes are in buf[:n].
        self._begin(False, None)
        emit(self)
        return self._p

    def window(self, emit, off):
        # Bytes off.. of the output into buf (as many as fit); returns their count. Once the
        # buffer is full the rest of emit runs in measuring mode: stopping emit with an
        # exception would cost a traceback allocation per window on MicroPython.
        self._begin(False, None)
        self._skip = off
        self._win = True
        emit(self)
        return self._size if self._win is None else self._p

    def window_into(self, emit, off, buf, start, end):
        # window(), but into buf[start:end] (another's buffer, e.g. the WebSocket's tx buffer:
        # the writer then needs none of its own and its output is not copied again); returns
        # where its bytes end in buf
        own = self.buf
        size = self._size
        self.buf = buf
        self._size = end
        self._begin(False, None)
        self._p = start
        self._skip = off
        self._win = True
        try:
            emit(self)
        finally:
            self.buf = own
            self._size = size
        return end if self._win is None else self._p

    # output primitives

    def _flush(self):
        sink = self._sink
        if sink is None:
            if self._win:
                self._win = None  # full: window() reports the buffer size
                self._meas = True
                return
            raise ValueError("output larger than the buffer")
        sink(self.mv)
        self._out += self._p
        self._p = 0

    def _put(self, src, off, n):
        if self._meas:
            self._p += n
            return
        skip = self._skip
        if skip:
            if skip >= n:
                self._skip = skip - n
                return
            self._skip = 0
            off += skip
            n -= skip
        size = self._size
        buf = self.buf
        p = self._p
        while n:
            k = size - p
            if k == 0:
                self._flush()
                if self._meas:
                    return  # a full window
                p = 0
                k = size
            if k > n:
                k = n
            _copy(buf, p, src, off, k)
            p += k
            off += k
            n -= k
            self._p = p

    def _text(self, s):
        # the escaped body of a string, without quotes
        st = self._st
        nch = len(s)
        if _ENC:
            s = s.encode()
        k = _esc_len(s, nch, st)
        nb = st[_IN]
        if self._meas:
            self._p += k
            return
        if k == nb:
            self._put(s, 0, nb)
            return
        if self._skip:
            # the window starts inside or after this string: escape it piece by piece
            # through the number scratch so that _put skips exactly
            self._esc_skip(s, nch)
            return
        st[_IN] = 0
        st[_LEFT] = nch
        buf = self.buf
        num = self._num
        size = self._size
        while True:
            st[_OUT] = self._p
            st[_OUT_END] = size
            left = _esc_copy(s, buf, st)
            self._p = st[_OUT]
            if not left:
                return
            # the next character's escape does not fit in the room left: escape it alone
            # into the scratch and let _put split it across the flush
            st[_LEFT] = 1
            st[_OUT] = 0
            st[_OUT_END] = 12
            _esc_copy(s, num, st)
            st[_LEFT] = left - 1
            self._put(num, 0, st[_OUT])
            if left == 1 or self._meas:
                return  # done, or the window is full

    def _esc_skip(self, s, nch):
        st = self._st
        num = self._num
        st[_IN] = 0
        st[_LEFT] = nch
        while True:
            st[_OUT] = 0
            st[_OUT_END] = 12
            left = _esc_copy(s, num, st)
            self._put(num, 0, st[_OUT])
            if not left:
                return

    def _val(self):
        if self._nc:
            self._put(b",", 0, 1)

    def _open(self, kind, b):
        self._val()
        d = self._d
        if d >= _MAX_DEPTH:
            raise ValueError("nesting deeper than 32")
        self._kind[d] = kind
        self._d = d + 1
        self._put(b, 0, 1)
        self._nc = False

    # the caller's API

    def obj_begin(self):
        self._open(_DOBJ, b"[")

    def obj_end(self):
        self._d -= 1
        if self._nc:
            self._put(b"}]", 0, 2)
        else:
            self._put(b"]", 0, 1)
        self._nc = True

    def plain_begin(self):
        self._open(_POBJ, b"{")

    def plain_end(self):
        self._d -= 1
        self._put(b"}", 0, 1)
        self._nc = True

    def list_begin(self):
        self._open(_LIST, b"[")

    def list_end(self):
        self._d -= 1
        self._put(b"]", 0, 1)
        self._nc = True

    def member(self, key):
        self._key()
        self._text(key)
        self._put(b'":', 0, 2)
        self._nc = False

    def member_cut(self, key, n, tail):
        """The member named key[:n] + tail (tail bytes), for a key with nothing to escape
        (ASCII names): "loadControlLimitData" of "loadControlLimitListData" without
        building the name (spine.table's list functions keep only theirs)."""
        self._key()
        if _ENC:
            key = key.encode()
        self._put(key, 0, n)
        self._put(tail, 0, len(tail))
        self._put(b'":', 0, 2)
        self._nc = False

    def _key(self):
        if self._kind[self._d - 1] == _DOBJ:
            if self._nc:
                self._put(b'},{"', 0, 4)
            else:
                self._put(b'{"', 0, 2)
        elif self._nc:
            self._put(b',"', 0, 2)
        else:
            self._put(b'"', 0, 1)

    def string(self, s):
        self._val()
        self._put(b'"', 0, 1)
        self._text(s)
        self._put(b'"', 0, 1)
        self._nc = True

    def integer(self, v):
        self._val()
        if -1000000000 < v < 1000000000:
            self._put(self._num, 0, _itoa(v, self._num))
        else:
            t = str(v)
            if _ENC:
                t = t.encode()
            self._put(t, 0, len(t))
        self._nc = True

    def boolean(self, b):
        self._val()
        if b:
            self._put(b"true", 0, 4)
        else:
            self._put(b"false", 0, 5)
        self._nc = True

    def null(self):
        self._val()
        self._put(b"null", 0, 4)
        self._nc = True

    def raw(self, b):
        self._val()
        self._put(b, 0, len(b))
        self._nc = True

    def decimal(self, m, scale):
        self.raw(_decimal(m, scale))

    def floating(self, f):
        self.raw(_go_float(f))

    def value(self, v):
        if v is None:
            self.null()
        elif v is True or v is False:
            self.boolean(v)
        elif isinstance(v, int):
            self.integer(v)
        elif isinstance(v, str):
            self.string(v)
        elif isinstance(v, tuple):
            self.decimal(v[0], v[1])
        elif isinstance(v, float):
            self.floating(v)
        else:
            raise TypeError("not a JSON scalar")


def _decimal(m, scale):
    neg = m < 0
    t = str(-m if neg else m)
    if m == 0 and scale >= 0:
        t = "0"
    elif scale > 20 or -scale > len(t) + 20:
        # extreme scales stay compact instead of turning into hundreds of zeros
        t = "%se%d" % (t, scale)
    elif scale > 0:
        t = t + "0" * scale
    elif scale < 0:
        k = -scale
        if len(t) <= k:
            t = "0" * (k + 1 - len(t)) + t
        t = t[:-k] + "." + t[-k:]
    if neg:
        t = "-" + t
    return t.encode()


def _go_float(f):
    # Go's strconv.AppendFloat(f, 'f' or 'e', -1, 64) as encoding/json uses it.
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError("NaN and infinity have no JSON form")
    r = repr(f)
    neg = r[0] == "-"
    if neg:
        r = r[1:]
    e = 0
    k = r.find("e")
    if k >= 0:
        e = int(r[k + 1 :])
        r = r[:k]
    k = r.find(".")
    if k < 0:
        k = len(r)
    digits = r[:k] + r[k + 1 :]
    point = k + e  # value = 0.digits * 10**point
    z = 0
    while z < len(digits) and digits[z] == "0":
        z += 1
    digits = digits[z:].rstrip("0")
    point -= z
    if not digits:
        t = "0"
    else:
        a = abs(f)
        if a < 1e-6 or a >= 1e21:
            x = point - 1
            t = digits[0]
            if len(digits) > 1:
                t += "." + digits[1:]
            if x < 0:
                t += "e-%02d" % -x
                if -10 < x:
                    t = t[:-2] + t[-1]  # encoding/json: e-07 -> e-7
            else:
                t += "e+%02d" % x
        elif point <= 0:
            t = "0." + "0" * -point + digits
        elif point >= len(digits):
            t = digits + "0" * (point - len(digits))
        else:
            t = digits[:point] + "." + digits[point:]
    if neg:
        t = "-" + t
    return t.encode()
