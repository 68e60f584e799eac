# Streams a SHIP data message to the SPINE layer without holding it: a byte scanner that
# follows the JSON structure of {"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":X}]}
# and forwards the raw bytes of X (the datagram object) in the chunks they arrive in.
# It is no validator: the SPINE reader parses X; this only needs to find where X starts and ends.
from compat import const

_MAX_DEPTH = const(32)
_KEY_CAP = const(16)

# scanner states
_S_VALUE = const(0)  # between tokens
_S_STRING = const(1)
_S_ESCAPE = const(2)

_Q = const(0x22)  # "
_BS = const(0x5C)  # backslash
_COLON = const(0x3A)


class DataError(ValueError):
    pass


class DataScanner:
    def __init__(self, sink):
        self._sink = sink
        self._key = bytearray(_KEY_CAP)
        self.reset()

    def reset(self):
        self._depth = 0
        self._state = _S_VALUE
        self._klen = 0  # length of the string being read (capped), -1 once over the cap
        self._last_key = 0  # 1 = "payload", 2 = "protocolId", 3 = other key
        self._pending_key = 0  # the key whose value comes next (after its colon), else 0
        self._fwd_depth = -1  # depth at which the payload value started; -1 = not forwarding
        self._payload_done = False
        self._proto_ok = False
        self._ended = False  # the top-level object has closed

    @property
    def complete(self):
        return self._payload_done and self._proto_ok

    def feed(self, buf, off, n):
        sink = self._sink
        end = off + n
        i = off
        start = off if self._fwd_depth >= 0 else -1
        key = self._key
        while i < end:
            c = buf[i]
            st = self._state
            if st == _S_STRING:
                if c == _Q:
                    self._state = _S_VALUE
                    self._end_string()
                elif c == _BS:
                    self._state = _S_ESCAPE
                    self._klen = -1
                else:
                    k = self._klen
                    if 0 <= k < _KEY_CAP:
                        key[k] = c
                        self._klen = k + 1
                    else:
                        self._klen = -1
            elif st == _S_ESCAPE:
                self._state = _S_STRING
            elif c == _Q:
                self._state = _S_STRING
                self._klen = 0
            elif c == 0x7B or c == 0x5B:  # { [
                if self._ended:
                    raise DataError("data after the message")
                d = self._depth + 1
                if d > _MAX_DEPTH:
                    raise DataError("nesting too deep")
                self._depth = d
                if self._pending_key == 1 and self._fwd_depth < 0:
                    if self._payload_done:
                        raise DataError("two payloads")
                    self._fwd_depth = d
                    start = i
                    sink.spine_begin()
                self._pending_key = 0
            elif c == 0x7D or c == 0x5D:  # } ]
                d = self._depth
                if d == 0:
                    raise DataError("unbalanced")
                if d == self._fwd_depth:
                    sink.spine_data(buf, start, i + 1 - start)
                    start = -1
                    self._fwd_depth = -1
                    self._payload_done = True
                    sink.spine_end()
                self._depth = d - 1
                if d == 1:
                    self._ended = True
                self._pending_key = 0
            elif c == _COLON:
                self._pending_key = self._last_key
            elif c == 0x2C:  # ,
                self._pending_key = 0
            elif c == 0 or c == 0x20 or c == 0x0A or c == 0x0D or c == 0x09:
                pass
            elif self._pending_key == 1 and self._fwd_depth < 0:
                raise DataError("payload is not an object")
            elif self._depth == 0 or self._ended:
                raise DataError("not a JSON object")
            i += 1
        if start >= 0 and end > start:
            sink.spine_data(buf, start, end - start)

    def _end_string(self):
        k = self._klen
        pk = self._pending_key
        self._pending_key = 0
        if pk == 2:
            self._proto_ok = k == 5 and self._key[:5] == b"ee1.0"
            self._last_key = 0
            return
        # a string is a key when a colon follows; remember what it was until then
        if self._fwd_depth >= 0:
            self._last_key = 3
        elif k == 7 and self._key[:7] == b"payload":
            self._last_key = 1
        elif k == 10 and self._key[:10] == b"protocolId":
            self._last_key = 2
        else:
            self._last_key = 3

    def finish(self):
        """Called at the end of the message; raises DataError unless one payload was seen."""
        if self._state != _S_VALUE or self._depth != 0 or not self._ended:
            raise DataError("truncated data message")
        if not self._payload_done:
            raise DataError("data message without payload")
        if not self._proto_ok:
            raise DataError("protocolId is not ee1.0")
