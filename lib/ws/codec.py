# RFC 6455 framing without I/O. The decoder is a push parser that unmasks payload in the
# caller's buffer and hands the sink views of it, so a message of any size passes through a
# fixed receive buffer; control frames are gathered into a 125-byte buffer owned here.
from compat import const
from utf8 import valid as utf8_valid  # the close reason: strict, as CPython decodes
from ws_mask import xor_mask

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

# opcodes (RFC 6455 5.2)
_OP_CONT = const(0)
_OP_TEXT = const(1)
_OP_BINARY = const(2)
_OP_CLOSE = const(8)
_OP_PING = const(9)
_OP_PONG = const(10)

_HDR = const(0)
_PAY = const(1)
_CLOSED = const(2)
_FAILED = const(3)


class WsError(Exception):
    def __init__(self, code, reason=""):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


def close_code_valid(code):
    # 1004-1006 and 1015 are reserved for reporting and must never appear on the wire;
    # 1016-2999 are unassigned; >= 5000 is undefined by RFC 6455.
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class Decoder:
    # feed() returns early after each complete control frame: `control` then holds its opcode,
    # ctl[:ctl_len] its unmasked payload and, for a close frame, close_code its code (0 if
    # none). They stay valid until the next feed(), which clears `control`.
    def __init__(self, client, max_message):
        self.client = client
        self.max_message = max_message
        self.hdr = bytearray(14)
        self.key = bytearray(4)
        self.ctl = bytearray(125)
        self.control = 0
        self.ctl_len = 0
        self.close_code = 0
        self._state = _HDR
        self._hn = 0
        self._need = 2
        self._op = 0
        self._fin = 0
        self._masked = 0
        self._rem = 0
        self._pos = 0
        self._inmsg = False
        self._total = 0
        self._err = 0

    def _fail(self, code, reason):
        self._state = _FAILED
        self._err = code
        raise WsError(code, reason)

    def feed(self, buf, off, n, sink):
        self.control = 0
        state = self._state
        if state == _FAILED:
            raise WsError(self._err, "decoder failed")
        if state == _CLOSED:
            # Nothing may follow a close frame; whatever does is dropped.
            return n
        start = off
        end = off + n
        hdr = self.hdr
        while off < end:
            if self._state == _HDR:
                hn = self._hn
                need = self._need
                while hn < need and off < end:
                    hdr[hn] = buf[off]
                    hn += 1
                    off += 1
                self._hn = hn
                if hn < need:
                    break
                if hn == 2:
                    self._first()
                    if self._need > 2:
                        continue
                if self._header(sink):
                    return off - start
            else:
                take = self._rem
                if take > end - off:
                    take = end - off
                self._rem -= take
                if self._op >= _OP_CLOSE:
                    ctl = self.ctl
                    j = self.ctl_len
                    for i in range(off, off + take):
                        ctl[j] = buf[i]
                        j += 1
                    if self._masked:
                        xor_mask(ctl, self.ctl_len, take, self.key, self._pos)
                    self.ctl_len = j
                    self._pos = (self._pos + take) & 3
                    off += take
                    if not self._rem:
                        self._control_done()
                        return off - start
                else:
                    if self._masked:
                        xor_mask(buf, off, take, self.key, self._pos)
                        self._pos = (self._pos + take) & 3
                    if not self._rem:
                        self._next()
                    sink.ws_data(buf, off, take)
                    off += take
                    if not self._rem and self._fin:
                        self._inmsg = False
                        sink.ws_end()
        return off - start

    def _next(self):
        self._state = _HDR
        self._hn = 0
        self._need = 2

    def _first(self):
        b0 = self.hdr[0]
        b1 = self.hdr[1]
        if b0 & 0x70:
            self._fail(1002, "reserved bits set")
        op = b0 & 0x0F
        ln = b1 & 0x7F
        if op >= _OP_CLOSE:
            if op > _OP_PONG:
                self._fail(1002, "reserved opcode")
            if not b0 & 0x80:
                self._fail(1002, "fragmented control frame")
            if ln > 125:
                self._fail(1002, "control frame too long")
            if op == _OP_CLOSE and ln == 1:
                self._fail(1002, "close payload of 1 byte")
        elif op == _OP_TEXT:
            self._fail(1003, "text frames not accepted")
        elif op == _OP_BINARY:
            if self._inmsg:
                self._fail(1002, "new message inside a fragmented one")
        elif op == _OP_CONT:
            if not self._inmsg:
                self._fail(1002, "continuation without a message")
        else:
            self._fail(1002, "reserved opcode")
        masked = b1 & 0x80
        if masked:
            if self.client:
                self._fail(1002, "masked frame from server")
        elif not self.client:
            self._fail(1002, "unmasked frame from client")
        need = 2
        if ln == 126:
            need = 4
        elif ln == 127:
            need = 10
        if masked:
            need += 4
        self._need = need
        self._op = op
        self._fin = b0 & 0x80
        self._masked = masked

    # True when the header completed a zero-length control frame.
    def _header(self, sink):
        h = self.hdr
        ln = h[1] & 0x7F
        i = 2
        if ln == 126:
            ln = (h[2] << 8) | h[3]
            i = 4
        elif ln == 127:
            if h[2] & 0x80:
                self._fail(1002, "64-bit length with the top bit set")
            # Beyond 2^30 the length would not be a small int on the ESP32 (heap allocation),
            # and no such message fits anyway.
            if h[2] | h[3] | h[4] | h[5] or h[6] & 0xC0:
                self._fail(1009, "message too big")
            ln = (h[6] << 24) | (h[7] << 16) | (h[8] << 8) | h[9]
            i = 10
        if self._masked:
            k = self.key
            k[0] = h[i]
            k[1] = h[i + 1]
            k[2] = h[i + 2]
            k[3] = h[i + 3]
        self._pos = 0
        self._rem = ln
        op = self._op
        if op >= _OP_CLOSE:
            self.ctl_len = 0
            if not ln:
                self._control_done()
                return True
            self._state = _PAY
            return False
        if op == _OP_BINARY:
            self._total = 0
        if self._total + ln > self.max_message:
            self._fail(1009, "message too big")
        self._total += ln
        if op == _OP_BINARY:
            self._inmsg = True
            sink.ws_begin()
        if ln:
            self._state = _PAY
            return False
        self._next()
        if self._fin:
            self._inmsg = False
            sink.ws_end()
        return False

    def _control_done(self):
        op = self._op
        self._next()
        if op == _OP_CLOSE:
            n = self.ctl_len
            code = 0
            if n:
                c = self.ctl
                code = (c[0] << 8) | c[1]
                if not close_code_valid(code):
                    self._fail(1002, "invalid close code")
                if not utf8_valid(c, 2, n):
                    self._fail(1007, "close reason not UTF-8")
            self.close_code = code
            self._state = _CLOSED
        self.control = op


def encode_header(buf, off, opcode, length, mask_key=None, fin=True):
    buf[off] = (0x80 | opcode) if fin else opcode
    m = 0 if mask_key is None else 0x80
    if length < 126:
        buf[off + 1] = m | length
        h = 2
    elif length < 65536:
        buf[off + 1] = m | 126
        buf[off + 2] = length >> 8
        buf[off + 3] = length & 0xFF
        h = 4
    else:
        buf[off + 1] = m | 127
        for i in range(8):
            buf[off + 9 - i] = (length >> (i << 3)) & 0xFF
        h = 10
    if m:
        for i in range(4):
            buf[off + h + i] = mask_key[i]
        h += 4
    return h


# Writes a close payload (code + reason, cut to fit 125 bytes at a character boundary) and
# returns its length.
def close_payload(buf, off, code, reason=""):
    buf[off] = code >> 8
    buf[off + 1] = code & 0xFF
    if isinstance(reason, str):
        reason = reason.encode()
    n = len(reason)
    if n > 123:
        n = 123
        while n and reason[n] & 0xC0 == 0x80:
            n -= 1
    for i in range(n):
        buf[off + 2 + i] = reason[i]
    return n + 2
