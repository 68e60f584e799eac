# WebSocket connection over MicroPython asyncio streams: the codec and upgrade cores plus the
# I/O. One block per connection (given, e.g. lent by a ws.pool set made at start-up, or made
# here) holds the tx buffer and behind it the rx buffer; the opening handshake reads its head
# into the block's first rx_size bytes, before either is in use. Received payload goes to a
# sink in chunks of at most rx_size bytes, sent messages go out as one frame through the fixed
# tx buffer; a producer may also render a frame's payload straight into the tx buffer (room(),
# advance()), so that it needs no buffer of its own and nothing is copied twice. A sink that needs
# a small message whole (SHIP's control messages) has it kept in the rx part (keep()), and needs
# no buffer of its own either.
import asyncio
import os

from compat import const, detached
from ws_mask import xor_mask
from ws import upgrade
from ws.codec import Decoder, WsError, close_payload, encode_header

# the opcodes (RFC 6455 5.2), inlined as ws.codec keeps them
_OP_BINARY = const(2)
_OP_CLOSE = const(8)
_OP_PING = const(9)
_OP_PONG = const(10)
_ETIMEDOUT = const(110)
_CTL_MAX = const(131)  # 2 header + 4 mask + 125 payload


async def within(coro, ms, status):
    """Await coro, raising UpgradeError(status, "timeout") once ms have passed. Not wait_for_ms:
    that runs coro in a task of its own, and a TLS handshake inside coro must stay in the
    caller's task, by which the verify callback attributes the peer certificate
    (asyncio.current_task())."""
    me = asyncio.current_task()
    fired = [False]

    async def dog():
        await asyncio.sleep_ms(ms)
        fired[0] = True
        me.cancel()

    wd = asyncio.create_task(detached(dog()))
    try:
        return await coro
    except asyncio.CancelledError:
        if fired[0]:
            raise upgrade.UpgradeError(status, "timeout")
        raise
    finally:
        wd.cancel()


class WsClosed(Exception):
    # code 1006: the connection dropped without a close frame.
    def __init__(self, code, reason=""):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class _Discard:
    def ws_begin(self):
        pass

    def ws_data(self, buf, off, n):
        pass

    def ws_end(self):
        pass


class WsConnection:
    # buf: the block, a bytearray of tx_size + rx_size bytes (rx_size is then what is left
    # behind tx_size); None: one is made. The upgrade head may take up to rx_size bytes.

    # What most connections never change lives here, set on the instance only when it does:
    # a connection's attribute table then has 17 entries in data exchange (136 B 32-bit; 29, 232 B before).
    path = None
    close_sent = False
    close_code = 0  # set once the connection is closed for reading
    close_reason = ""
    pongs = 0
    _cn = 0  # length of the control frame in _cb still to be sent
    _key = None  # the mask of the frame being sent (client role only)
    _mpos = 0
    _txev = None  # made when a sender first has to wait for the writer role
    # Deadlines (ms): every wait to send (for the writer role, for the peer to take our
    # bytes) ends within send_ms; close() gives its closing frame close_ms. A peer that
    # does not read is dropped when they pass: OSError(ETIMEDOUT), nothing more is sent.
    send_ms = 10000
    close_ms = 1000

    def __init__(self, reader, writer, client, rx_size=1024, tx_size=1024, max_message=16384, buf=None):
        self._r = reader
        self._w = writer
        self.client = client
        if buf is None:
            buf = bytearray(tx_size + rx_size)
        # the block, tx its first tx_end bytes (encode_header and xor_mask index the bytearray):
        # a producer renders into buf[room():tx_end] (advance()), a kept message is in the rx part
        self.buf = buf
        mv = memoryview(buf)
        self._rxmv = mv[tx_size:]
        self._txmv = mv[:tx_size]
        self.tx_end = tx_size
        self._rxn = len(buf) - tx_size
        self._cb = bytearray(_CTL_MAX)
        self._dec = Decoder(client, max_message)
        self._busy = False  # a frame (and its drain) is being written
        # Received bytes not yet fed, buf[_po:_pe] (survive a cancelled read_some, and the bytes
        # that followed the upgrade head); always inside the rx part, so a send cannot touch them
        self._po = 0
        self._pe = 0
        # a message kept for the sink, buf[kept_at:kept_end] in the rx part (keep()); -1: none
        self.kept_at = -1
        self.kept_end = -1
        self._tn = 0
        self._left = -1  # payload bytes the open outgoing frame still needs; -1: none open

    # --- opening handshake

    async def _head(self, buf, parse, status):
        # Read into the block's first rx-size bytes only: whatever comes behind the head then
        # fits the rx part (_keep).
        mv = memoryview(buf)
        lim = len(self._rxmv)
        n = 0
        while True:
            r = await self._r.readinto(mv[n:lim])
            if r is None:
                continue
            if not r:
                raise upgrade.UpgradeError(0, "connection closed")
            n += r
            res = parse(buf, n)
            if res is not None:
                return res, n
            if n >= lim:
                raise upgrade.UpgradeError(status, "head too large")

    async def accept(self, timeout_ms=5000):
        buf = self.buf
        try:
            (path, key, hl), n = await within(self._head(buf, upgrade.parse_request, 431), timeout_ms, 408)
            self._w.write(upgrade.accept_response(key))
            await self._drain()
        except upgrade.UpgradeError as e:
            # no answer on a timeout: the TLS handshake may not have finished, and writing
            # would wait for the very peer that stalls
            if e.status and e.status != 408:
                try:
                    self._w.write(upgrade.error_response(e.status))
                    await self._drain()
                except OSError:
                    pass
            await self._shut()
            raise
        except OSError:
            await self._shut()
            raise
        self._keep(hl, n)
        self.path = path
        return path

    def _keep(self, hl, n):
        # Frames pipelined behind the head are fed before any read: moved into the rx part
        # (memmove on MicroPython and CPython alike), where no send overwrites them. The head
        # was read into rx-size bytes, so they fit, and no send has to wait for them.
        t = self.tx_end
        left = n - hl
        if left:
            mv = memoryview(self.buf)
            mv[t : t + left] = mv[hl:n]
        self._po = t
        self._pe = t + left

    async def connect(self, host, path, timeout_ms=5000):
        key = upgrade.new_key()
        try:
            hl, n = await within(self._dial(self.buf, host, path, key), timeout_ms, 0)
            self._keep(hl, n)
        except (upgrade.UpgradeError, OSError):
            await self._shut()
            raise
        self.path = path

    async def _dial(self, buf, host, path, key):
        self._w.write(upgrade.request(host, path, key))
        await self._w.drain()
        return await self._head(buf, lambda b, n: upgrade.parse_response(b, n, key), 0)

    # --- receiving

    async def read_some(self, sink):
        # One network read, fed to the decoder; returns the bytes read (0 when the transport
        # had nothing, e.g. a partial TLS record).
        n = await self.read_more()
        await self.feed(sink)
        return n

    async def read_more(self):
        """read_some's network read alone: into the rx part, fed by the next feed(); returns the
        bytes read (0 when the transport had nothing, or bytes read before are not fed yet). A
        caller may decide between the two (ship.node holds the feed back while its upper layer
        waits for a shared parse state); waiting in the read keeps this small frame alive, not
        feed()'s."""
        if self.close_code:
            raise WsClosed(self.close_code, self.close_reason)
        if self._po < self._pe:
            return 0
        at = self.tx_end
        mv = self._rxmv
        ka = self.kept_at
        if ka >= 0:
            # all received bytes are fed and a message is kept: it moves to the start of the
            # rx part, and the read lands behind it
            k = self.kept_end - ka
            mv = memoryview(self.buf)
            if ka != at:
                mv[at : at + k] = mv[ka : ka + k]
                self.kept_at = at
                self.kept_end = at + k
            at += k
            mv = mv[at:]
        n = 0
        try:
            n = await self._r.readinto(mv)
        except OSError:
            self._closed(1006, "connection reset")
        if n is None:
            return 0
        if not n:
            self._closed(1006, "connection lost")
        self._po = at
        self._pe = at + n
        return n

    async def feed(self, sink):
        """Feeds the bytes read and not fed yet to the decoder (sink: ws_begin/ws_data/ws_end);
        control frames are answered here. WsClosed once the connection is closed for reading."""
        buf = self.buf
        dec = self._dec
        while self._po < self._pe:
            try:
                used = dec.feed(buf, self._po, self._pe - self._po, sink)
            except WsError as e:
                self._po = self._pe
                self._mark(e.code, e.reason)
                if not self.close_sent:
                    self._queue_close(e.code, e.reason)
                    try:
                        # the close waits for the role (within send_ms): the peer is owed it
                        await self._send_ctl(True)
                    except OSError:  # the peer may be gone already
                        pass
                raise WsClosed(e.code, e.reason)
            self._po += used
            op = dec.control
            if op:
                dec.control = 0
                if op == _OP_PING:
                    if not self.close_sent:
                        self._queue_ctl(_OP_PONG, dec.ctl, 0, dec.ctl_len)
                        try:
                            await self._send_ctl(False)
                        except OSError:
                            self._closed(1006, "connection reset")
                elif op == _OP_PONG:
                    self.pongs += 1
                else:
                    self._po = self._pe
                    code = dec.close_code
                    reason = bytes(dec.ctl[2 : dec.ctl_len]).decode() if code else ""
                    self._mark(code or 1005, reason)
                    if not self.close_sent:
                        # Echo the code; an empty close is answered with an empty one.
                        self._queue_ctl(_OP_CLOSE, dec.ctl, 0, 2 if code else 0)
                        self.close_sent = True
                        try:
                            await self._send_ctl(True)
                        except OSError:  # the peer may be gone already
                            pass
                    raise WsClosed(code or 1005, reason)

    # --- a message kept whole in the rx part for the sink

    def keep(self, buf, off, n):
        """For a sink that needs a small message in one piece (SHIP's control messages): adds
        the chunk buf[off:off+n] that ws_data handed over (a view of the rx part) to the message
        kept there, buf[kept_at:kept_end]. Later chunks are moved down behind it and later
        reads land behind it, so it stays whole until the sink has read it at ws_end and called
        keep_reset() (also before each message). False when it would not leave a byte of the rx
        part free for the next read: a message kept must be shorter than the rx part."""
        at = self.kept_at
        if at < 0:
            if n >= self._rxn:
                return False
            self.kept_at = off
            self.kept_end = off + n
            return True
        e = self.kept_end
        if e - at + n >= self._rxn:
            return False
        if off != e:
            # forward in the rx part (behind a frame header, or a ping): bytes not yet fed lie
            # beyond off + n, untouched (memmove on MicroPython and CPython alike)
            mv = memoryview(self.buf)
            mv[e : e + n] = mv[off : off + n]
        self.kept_end = e + n
        return True

    def keep_reset(self):
        self.kept_at = -1
        self.kept_end = -1

    # Set before any await, so that a read_some cancelled while answering still reports it.
    def _mark(self, code, reason):
        self.close_code = code
        self.close_reason = reason

    def _closed(self, code, reason):
        self._mark(code, reason)
        raise WsClosed(code, reason)

    # --- control frames: built in _cb, sent by whoever holds the writer role (_busy)

    def _queue_ctl(self, op, src, off, n):
        cb = self._cb
        key = os.urandom(4) if self.client else None
        h = encode_header(cb, 0, op, n, key)
        for i in range(n):
            cb[h + i] = src[off + i]
        if key:
            xor_mask(cb, h, n, key, 0)
        self._cn = h + n

    def _queue_close(self, code, reason):
        p = bytearray(125)
        self._queue_ctl(_OP_CLOSE, p, 0, close_payload(p, 0, code, reason))
        self.close_sent = True

    async def _send_ctl(self, wait):
        # Without wait, a frame is left to the current writer, which sends it before it releases
        # the role (_drain_ctl), so the reader never blocks behind a large outgoing message.
        if self._busy:
            if not wait:
                return
            await self._wait_tx()
        self._busy = True
        try:
            await self._drain_ctl()
        finally:
            self._release()

    async def _drain_ctl(self):
        # Drains what the writer put; then once more for a pong the reader queued meanwhile
        # (_send_ctl without wait leaves it to the writer, which may be past _put() and in this
        # drain already). Once only: a peer flooding pings cannot keep the writer here. A close
        # does not rely on it: the reader waits for the role to send that one.
        if self._cn:
            self._w.write(memoryview(self._cb)[: self._cn])
            self._cn = 0
        await self._drain()
        if self._cn:
            self._w.write(memoryview(self._cb)[: self._cn])
            self._cn = 0
            await self._drain()

    async def ping(self, payload=b""):
        if self.close_sent:
            raise WsClosed(self.close_code or 1006, "closing")
        self._queue_ctl(_OP_PING, payload, 0, len(payload))
        await self._send_ctl(True)

    # --- sending: one frame per message, streamed through the fixed tx buffer. The stream
    # must see one writer at a time and no control frame inside a data frame, hence _busy;
    # an uncontended flag costs no allocation, unlike awaiting asyncio.Lock.acquire().

    async def _wait_tx(self):
        ev = self._txev
        if ev is None:
            ev = self._txev = asyncio.Event()
        while self._busy:
            ev.clear()
            try:
                await asyncio.wait_for_ms(ev.wait(), self.send_ms)
            except asyncio.TimeoutError:
                self._stalled()

    async def _drain(self):
        # The stream's drain under the send deadline. MicroPython's Stream keeps what the
        # socket did not take in out_buf; when that is empty there is nothing to wait for:
        # its drain only yields (as it always does), and no task is made.
        w = self._w
        if not getattr(w, "out_buf", True):
            return await w.drain()
        try:
            # in a task of wait_for_ms's own, which could outlive the connection holding the
            # stream and its unsent bytes: through compat.detached it ends keeping nothing
            await asyncio.wait_for_ms(detached(w.drain()), self.send_ms)
        except asyncio.TimeoutError:
            self._stalled()

    def _stalled(self):
        # The peer did not take our bytes in time (or the writer role was held that long by
        # a send that is stuck): the stream can carry nothing more.
        self.close_sent = True
        if not self.close_code:
            self._mark(1006, "send timeout")
        raise OSError(_ETIMEDOUT)

    def _release(self):
        self._busy = False
        if self._txev is not None:
            self._txev.set()

    def _open(self, total_len):
        if self.close_sent:
            raise WsClosed(self.close_code or 1006, "closing")
        key = None
        if self.client:
            key = self._key = os.urandom(4)
            self._mpos = 0
        self._tn = encode_header(self.buf, 0, _OP_BINARY, total_len, key)
        self._left = total_len

    def _fail_tx(self):
        # After a transport error mid-frame the stream can carry no further frame.
        self._left = -1
        self.close_sent = True
        self._release()

    async def begin(self, total_len):
        if self._busy:
            await self._wait_tx()
        self._busy = True
        try:
            self._open(total_len)
        except WsClosed:
            self._release()
            raise

    async def write(self, data):
        n = len(data)
        if self._left < 0:
            raise ValueError("ws: write() outside begin()/end()")
        if n > self._left:
            self._fail_tx()
            await self._shut()
            raise ValueError("ws: more bytes than announced")
        self._left -= n
        txmv = self._txmv
        size = self.tx_end
        src = data
        i = 0
        while i < n:
            t = self._tn
            k = size - t
            if k > n - i:
                k = n - i
            if k == n:
                txmv[t : t + k] = data
            else:
                if src is data:
                    src = memoryview(data)
                txmv[t : t + k] = src[i : i + k]
            i += k
            if self._placed(t, k):
                await self._send_full()

    def room(self):
        """Inside begin()/end(): the offset in self.buf where the frame's next payload bytes go,
        for a producer that puts them there itself (the SPINE writer renders its windows so);
        it may fill self.buf up to self.tx_end, then calls advance() with the count."""
        return self._tn

    async def advance(self, k):
        """k payload bytes have been put at self.buf[room():]. A producer that puts more than
        begin() announced, or nothing while some are still due (its output shrank, and it
        would never end), ends the connection as write() and end() do."""
        left = self._left
        if left < 0:
            raise ValueError("ws: advance() outside begin()/end()")
        if k > left or (k <= 0 and left):
            self._fail_tx()
            await self._shut()
            raise ValueError("ws: %s bytes than announced" % ("more" if k > left else "fewer"))
        self._left = left - k
        if self._placed(self._tn, k):
            await self._send_full()

    def _placed(self, t, k):
        # k payload bytes are at tx[t:]: masked (client role), counted; True once tx is full
        key = self._key
        if key:
            xor_mask(self.buf, t, k, key, self._mpos)
            self._mpos = (self._mpos + k) & 3
        t += k
        if t < self.tx_end:
            self._tn = t
            return False
        self._tn = 0
        return True

    async def _send_full(self):
        w = self._w
        try:
            # Stream.write() keeps what the socket did not take in a copy (out_buf), so tx is
            # free again at once; drain (under the deadline) only when it did so.
            w.write(self._txmv)
            if getattr(w, "out_buf", True):
                await self._drain()
        except BaseException:
            # Transport error or cancellation inside a frame: no frame may follow.
            self._fail_tx()
            raise

    async def end(self):
        if self._left:
            if self._left > 0:
                self._fail_tx()
            await self._shut()
            raise ValueError("ws: fewer bytes than announced")
        try:
            self._put()
            await self._drain_ctl()
        except OSError:
            self._fail_tx()
            raise
        finally:
            # Also when cancelled in drain: the whole frame is in the stream already.
            self._release()

    def _put(self):
        # The frame's tail; any control frame queued meanwhile follows it (_drain_ctl).
        self._left = -1
        if self._tn:
            self._w.write(self._txmv[: self._tn])
            self._tn = 0

    async def send_binary(self, data):
        n = len(data)
        if n + 14 > self.tx_end:
            await self.begin(n)
            await self.write(data)
            await self.end()
            return
        # Fits the tx buffer: no coroutine besides this one and the stream's drain.
        if self._busy:
            await self._wait_tx()
        self._busy = True
        try:
            self._open(n)
        except WsClosed:
            self._release()
            raise
        t = self._tn
        self._txmv[t : t + n] = data
        if self._key:
            xor_mask(self.buf, t, n, self._key, 0)
        self._tn = t + n
        try:
            self._put()
            await self._drain_ctl()
        except OSError:
            self._fail_tx()
            raise
        finally:
            self._release()

    # --- closing

    async def close(self, code=1000, reason="", wait_ms=0):
        # With wait_ms, and only if no other task is reading, waits for the peer's close
        # frame (discarding data) before dropping TCP. A message left half-sent by another
        # task (or a cancelled one) cannot be followed by a close frame: then TCP just drops.
        # The closing frame gets close_ms (to get the writer role and to go out); a peer that
        # does not read in that time gets the TCP close alone.
        if self.send_ms > self.close_ms:
            self.send_ms = self.close_ms
        try:
            if not self.close_sent and self._left < 0:
                self._queue_close(code, reason)
                await self._send_ctl(True)
            if wait_ms and not self.close_code:
                try:
                    # wait_for_ms runs it in a task of its own: one that ends keeping nothing
                    await asyncio.wait_for_ms(detached(self._until_closed()), wait_ms)
                except (WsClosed, asyncio.TimeoutError):
                    pass
        except OSError:
            pass
        finally:
            if not self.close_code:
                self.close_code = code
                self.close_reason = reason
            await self._shut()

    async def _until_closed(self):
        self.keep_reset()  # what the sink kept is no longer read
        sink = _Discard()
        while True:
            await self.read_some(sink)

    async def _shut(self):
        if not self.close_code:
            self.close_code = 1006
        try:
            self._w.close()
            await self._w.wait_closed()
        except OSError:
            pass
