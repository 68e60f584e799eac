# The SHIP node: TLS server and client, one connection per peer SKI, trust decisions and
# pairing, reconnect back-off. It drives ShipConnection cores over WebSocket streams; the
# protocol logic itself stays in the cores.
import asyncio
import random
import socket
import time
from asyncio import core

import log
from compat import const, detached, sockaddr_host
from ship import admission as A
from ship import connection as C
from ship import pin as P
from ship import tlsctx
from ship import trust as T
from ship.backoff import DialBackoff
from ship.double import pick_double_loser
from ship.messages import DATA_PREFIX, DATA_SUFFIX
from ws.stream import WsConnection, WsClosed, within
from ws.upgrade import UpgradeError

_TAG = const("ship")
_UPGRADE_MS = const(10000)
_TRUST_POLL_MS = const(1000)
_CLOSE_DOUBLE = const(1000)
_TLS_MS = const(10000)  # TLS handshake + HTTP upgrade of an incoming connection
_MARGIN_MS = const(1000)  # admission deadlines back the protocol timers up, a little later
_SWEEP_MS = const(500)  # the admission deadlines are checked this often
_LEND_POLL_MS = const(20)
_PARSE_WAIT_MS = const(200)  # the longest a read waits for the shared SPINE parse state

# The buffers one connection borrows from the gateway's pool (ws.pool.Pool, made at start-up):
# the WebSocket block alone (tx, then rx; the upgrade head is read into its first rx-size
# bytes). The SPINE writer renders into the tx part; SHIP control messages are gathered in the
# rx part (WsConnection.keep).
BUFS = (2048,)


class _Admitted:
    # An incoming connection's hold on the admission table: its pre-auth slot (slot, gen),
    # or a session once its peer is proven trusted; and on the pool: its set (lent).
    def __init__(self, slot, gen, task, at):
        self.slot = slot
        self.gen = gen
        self.task = task
        self.at = at  # arrival: the oldest stranger holding a set is the first to give it up
        self.peer = None
        self.session = False
        self.trusted = False  # its certificate's claim (_on_cert)
        self.lent = -1


class Peer:
    """A live connection to one peer (SKI) as the rest of the gateway sees it."""

    rx_error = None  # close code once the transport has ended: the 12th entry of 12 slots

    def __init__(self, node, ski, addr, outgoing):
        self.node = node
        self.ski = ski
        self.addr = addr
        self.outgoing = outgoing
        self.started = time.ticks_ms()
        self.conn = None
        self.ws = None
        self.spine = None
        self.heard = self.started  # when the peer last sent anything
        self.id_checked = False
        # The connection loop (_run) sleeps with nothing to do; wake() brings its task forward.
        # None: no wake pending; True: one is (the next sleep is skipped); a Task: the loop's,
        # asleep in the task queue and only there. Not an asyncio.Event awaited through
        # wait_for_ms: that is a task, two coroutines and a TaskQueue more per connection for
        # as long as it lives, and a task, coroutines and two exceptions more every loop step.
        self.nap = None

    def wake(self):
        t = self.nap
        self.nap = True
        if t is not None and t is not True:
            # as Task.cancel() brings a sleeping task forward
            q = core._task_queue
            q.remove(t)
            q.push(t)

    @property
    def state(self):
        return C.STATE_NAMES[self.conn.state] if self.conn else "tls"

    async def send_datagram(self, datagram):
        """Send one SPINE datagram (bytes of {"datagram":[...]}) as a SHIP data message."""
        await self.send_datagram_stream(len(datagram), _write_bytes, datagram)

    async def send_datagram_stream(self, length, write, arg):
        # measure-then-emit: one frame of known length; write(ws, arg) streams the datagram.
        # The WebSocket adapter lets one frame out at a time, so concurrent senders queue.
        ws = self.ws
        await ws.begin(len(DATA_PREFIX) + length + len(DATA_SUFFIX))
        await ws.write(DATA_PREFIX)
        await write(ws, arg)
        await ws.write(DATA_SUFFIX)
        await ws.end()

    # The WebSocket's sink (ws.stream read_some): stamps the time on each incoming message
    # before the sans-IO core sees it.
    def ws_begin(self):
        self.conn.now = time.ticks_ms()
        self.conn.ws_begin()

    def ws_data(self, buf, off, n):
        self.conn.ws_data(buf, off, n)

    def ws_end(self):
        self.conn.ws_end()

    def close(self, reason="unspecific", code=C.CLOSE_NORMAL):
        if self.conn:
            self.conn.close(time.ticks_ms(), reason, code)
        self.node._wake(self)


async def _write_bytes(ws, data):
    await ws.write(data)


class ShipNode:
    """cfg: dict with ship_id, host, port, path, max_message, timers (Timers), cem (dict or None).

    spine_factory(peer) returns the upper layer of one connection: the SHIP data sink
    (spine_begin/data/end/abort) plus async ready(peer), async poll(peer), closed(peer), and
    parse_wait(): True while reading now would make it allocate what it otherwise borrows
    (a datagram's parse state, lent to another connection); the read then waits up to
    _PARSE_WAIT_MS for it.
    pool: a ws.pool.Pool of admission.pool_sets(cfg) sets of BUFS; a connection borrows one for the
    rest of its life once its TLS handshake is done, by admission.lend(), and one that finds none
    is closed. None: each connection makes its own.
    """

    def __init__(self, cfg, cert_der, key_der, ski, trust, spine_factory, pin=None, pin_path=None, pool=None):
        self.cfg = cfg
        self.pool = pool
        # PIN verification (ship.pin.PinPolicy or None); its attempt counters persist in pin_path
        self.pin = pin
        self.pin_path = pin_path
        self.unknown_logged = 0
        self.ski = ski
        self.trust = trust
        self.spine_factory = spine_factory
        self.peers = {}  # ski -> list of Peer (two only while a double connection is resolved)
        self.server = None
        self.port = None
        self.stats = {"accepted": 0, "refused_tls": 0, "no_cert": 0, "rejected": 0, "completed": 0, "no_buffers": 0,
                      "dropped": 0}
        # admission control (ship/admission.py): budgets from the board config (ship.admission
        # for the pre-auth slots, ship.max_sessions for the trusted sessions)
        t = cfg["timers"]
        b = cfg.get("admission") or {}
        self.adm = A.Admission(
            b.get("preauth", 2), cfg.get("max_sessions") or 2, b.get("reserve", 1), _TLS_MS + _MARGIN_MS,
            t.cmi + _MARGIN_MS, t.hello + _MARGIN_MS, b.get("grace_ms", 2000), self.stats,
        )
        self._slots = [None] * self.adm.size  # slot -> _Admitted
        self._wanted = 0  # trusted connections waiting for a set (_lend)
        self._share = b.get("stranger_sets", A.STRANGER_SETS)  # sets strangers may hold at once
        self._sweeper = None
        tlsctx.on_cert = self._on_cert
        self._server_ctx = tlsctx.server_context(cert_der, key_der)
        self._client_ctx = None
        self._cert = cert_der
        self._key = key_der
        self._dial_task = None
        self._stopping = False
        # benchmark hook: probe(event) as a connection is accepted ("open"), after every step of it
        # ("step") and once it is gone ("closed")
        self.probe = None

    # ---- server ---------------------------------------------------------------------------

    async def start(self):
        self.trust.reload_if_changed()
        port = self.cfg["port"] or _free_port(self.cfg["host"])
        self.server = asyncio.create_task(self._serve(_listen(self.cfg["host"], port)))
        self.port = port
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_loop())
        if self.cfg.get("cem"):
            self.dial_cem(self.cfg["cem"])
        return self.port

    def dial_cem(self, cem):
        """Keep a connection to a CEM (configured, or found by mDNS): dials while it is
        trusted and not connected, with back-off. cem: dict host, port, ski, path."""
        self.cfg["cem"] = cem
        if self._dial_task is None and not self._stopping:
            self._dial_task = asyncio.create_task(self._dial_loop(cem))

    async def stop(self, wait_ms=2000):
        """An orderly stop: no new connections, every session closed with connectionClose
        (announce; the peer confirms, or our close timer ends it), waiting at most wait_ms
        for them to end; the transport of a session still open then goes with the process."""
        self._stopping = True  # no new dial, no new session (_dial_loop, dial_cem, _run)
        if self._sweeper:
            self._sweeper.cancel()
            self._sweeper = None
        if self.server:
            self.server.cancel()
        for lst in list(self.peers.values()):
            for p in lst:
                p.close("unspecific")
        t0 = time.ticks_ms()
        while self.peers and time.ticks_diff(time.ticks_ms(), t0) < wait_ms:
            await asyncio.sleep_ms(20)
        if self._dial_task:  # after the wait: the dialled session has sent its goodbye
            self._dial_task.cancel()
            self._dial_task = None
        self.server = None

    # ---- admission ---------------------------------------------------------------------------

    def _on_cert(self, task, ski):
        # inside the TLS handshake (tlsctx's verify callback): must not raise
        for h in self._slots:
            if h is not None and h.task is task:
                t = self.trust
                ok = ski not in t.denied and (t.is_trusted(ski) or t.window_open(time.ticks_ms()))
                victim = self.adm.claim(h.slot, h.gen, ok)
                if victim == -2:
                    break
                h.trusted = ok
                if victim >= 0:
                    self._evict(victim, "slot reclaimed")  # (tlsctx catches what escapes)
                return True
        return False  # evicted meanwhile

    def _evict(self, i, why):
        h = self._slots[i]
        self._slots[i] = None
        if h is None:
            return
        p = h.peer
        log.info(_TAG, "%s: pre-auth closed: %s", p.addr if p else "tls", why)
        if p is None:
            h.task.cancel()  # in the TLS handshake or the upgrade: nothing to say
            return
        c = p.conn
        c.deny(time.ticks_ms(), why)  # pending: hello aborted, close 4452
        c.abort(C.CLOSE_NORMAL, why)  # any other stage (nothing once closed)
        self._wake(p)

    async def _sweep_loop(self):
        adm = self.adm
        while True:
            i = adm.expire(time.ticks_ms())
            if i >= 0:
                self._evict(i, "deadline")
            else:
                await asyncio.sleep_ms(_SWEEP_MS)

    def _promote(self, h, replacing):
        if not h.session:
            h.session = self.adm.promote(h.slot, h.gen, replacing)
            if self._slots[h.slot] is h:
                self._slots[h.slot] = None
            if h.session and h.lent >= 0:
                self.pool.held[h.lent] = A.SET_TRUSTED  # a stranger approved: no longer the share's
        return h.session

    def _release(self, h):
        # idempotent: a stale (slot, gen) is ignored by the policy
        if h.session:
            h.session = False
            self.adm.end_session()
        self.adm.leave(h.slot, h.gen)
        if h.slot >= 0 and self._slots[h.slot] is h:
            self._slots[h.slot] = None

    async def _serve(self, s):
        # Not asyncio.start_server: its accept loop ends for good when making a connection's
        # TLS socket, stream or task raises anything but OSError, as a MemoryError does on a
        # heap short of a block at that moment, and the gateway would never accept again.
        # Here that one connection is dropped.
        try:
            while True:
                yield core._io_queue.queue_read(s)
                try:
                    s2, addr = s.accept()
                except OSError:
                    continue
                except MemoryError:
                    self.stats["dropped"] += 1
                    await asyncio.sleep_ms(50)  # the connection waits in the backlog meanwhile
                    continue
                try:
                    self._start(s2, addr)
                except Exception as e:  # noqa: BLE001 - MemoryError above all
                    self.stats["dropped"] += 1
                    s2.close()
                    log.warn(_TAG, "connection dropped on accept: %r", e)
                s2 = addr = None  # this frame lives on: nothing of the connection stays in it
        finally:
            s.close()

    def _start(self, s2, addr):
        # A function of its own, not inline in _serve: the values a call leaves in a frame's
        # stack slots stay there until overwritten, and _serve's would have kept the last
        # connection's _accept coroutine, so all of that connection (Peer, SHIP core, SPINE
        # endpoint), until the next accept. This frame ends here.
        # TLS over the TCP socket, Nagle off underneath (tlsctx.wrap_socket)
        st = tlsctx.wrap_socket(s2, self._server_ctx, True, None, {"peername": addr})
        # the connection's task ends holding nothing of it (compat.detached)
        asyncio.create_task(detached(self._accept(st, st)))

    async def _accept(self, reader, writer):
        now = time.ticks_ms()
        slot, gen, victim = self.adm.arrive(now)
        if victim >= 0:
            self._evict(victim, "slot reclaimed")
        if slot < 0:
            # budget full of connections that may not be reclaimed: closed without a word
            await _quiet_close(writer)
            return
        h = _Admitted(slot, gen, asyncio.current_task(), now)
        self._slots[slot] = h
        if self.probe:
            self.probe("open")
        addr = _peer_text(writer)
        ski = None
        ws = None
        wait = min(self.cfg["timers"].cmi, _TLS_MS)  # TLS handshake and upgrade together
        try:
            # the TLS handshake, in this task, up to the peer's first byte: its certificate is
            # judged (_on_cert) before the connection borrows a set
            try:
                if not await within(reader.first(), wait, 408):
                    raise OSError(0)  # closed before a byte
            finally:
                ski = tlsctx.take_peer_ski()  # never leave an entry behind
            if ski is None:
                self.stats["no_cert"] += 1
                log.warn(_TAG, "%s: no client certificate, refused", addr)
                return
            bufs = None
            if self.pool:
                h.lent = await self._lend(h.trusted)
                if h.lent < 0:
                    # no set this peer may take (admission.lend): closed without a word
                    self.stats["no_buffers"] += 1
                    return
                bufs = self.pool.sets[h.lent]
            ws = WsConnection(reader, writer, False, max_message=self.cfg["max_message"],
                              buf=bufs and bufs[0])
            self._deadlines(ws)
            wait -= time.ticks_diff(time.ticks_ms(), now)
            await ws.accept(wait if wait > 0 else 1)
            self.stats["accepted"] += 1
            await self._run(ws, ski, addr, False, h)
        except asyncio.CancelledError:
            pass  # its slot was reclaimed (logged)
        except UpgradeError as e:
            log.info(_TAG, "%s: WebSocket upgrade failed: %d %s", addr, e.status, e.reason)
        except (OSError, WsClosed, asyncio.TimeoutError) as e:
            if ski is None:
                self.stats["refused_tls"] += 1
            log.info(_TAG, "%s: connection ended before SHIP: %r", addr, e)
        except MemoryError:
            # a heap short of a block for this connection's objects: it alone is closed
            self.stats["dropped"] += 1
            log.warn(_TAG, "%s: connection dropped, out of memory", addr)
        finally:
            self._release(h)
            await _quiet_close(writer)
            # after the close: the reader task is cancelled (it reads nothing more) and the
            # stream keeps its own copy of what is unsent, so the set may serve another
            if h.lent >= 0:
                self.pool.give(h.lent)
                h.lent = -1
            if self.probe:
                ws = None  # so the probe sees the connection's memory freed
                self.probe("closed")

    async def _lend(self, trusted):
        # A set of connection buffers, by admission.lend. A stranger evicted for it gives its
        # set back once its task has unwound (a pending peer gets its close frame first), so
        # the borrower waits that long; a trusted one waiting keeps strangers off the set.
        pool = self.pool
        tag = A.SET_TRUSTED if trusted else A.SET_STRANGER
        t0 = time.ticks_ms()
        waiting = 0
        try:
            while True:
                r = A.lend(trusted, pool.free, pool.count(A.SET_STRANGER), self._wanted, self._share)
                if r > 0:
                    return pool.take(tag)
                if r < 0 or time.ticks_diff(time.ticks_ms(), t0) > self.cfg["timers"].close + _MARGIN_MS:
                    return -1
                self._reclaim()
                if trusted and not waiting:
                    waiting = 1
                    self._wanted += 1
                await asyncio.sleep_ms(_LEND_POLL_MS)
        finally:
            self._wanted -= waiting

    def _reclaim(self):
        # The oldest stranger holding a set gives it up, unless a stranger's set is on its way
        # back already (its holder evicted, here or by the admission: gone from the pre-auth
        # table, still unwinding): that one is the set asked for.
        held = self.pool.held
        old = None
        n = 0
        for x in self._slots:
            if x is not None and x.lent >= 0 and held[x.lent] == A.SET_STRANGER:
                n += 1
                if old is None or time.ticks_diff(old.at, x.at) > 0:
                    old = x
        if old is not None and n == self.pool.count(A.SET_STRANGER):
            self.adm.leave(old.slot, old.gen)
            self.stats["evicted"] += 1
            self._evict(old.slot, "buffers reclaimed")

    # ---- client ---------------------------------------------------------------------------

    async def _dial_loop(self, cem):
        ski = T.normalize_ski(cem["ski"])
        backoff = DialBackoff(random.randint)
        while not self._stopping:
            await asyncio.sleep_ms(backoff.next_delay())
            if self._stopping:
                break
            if ski in self.peers or not self.trust.is_trusted(ski):
                # prefer being dialed; dial only trusted peers we are not connected to
                await asyncio.sleep_ms(_TRUST_POLL_MS)
                continue
            peer = await self.dial(cem["host"], cem["port"], ski, cem.get("path", "/ship/"), cem.get("pin"))
            conn = peer.conn if peer is not None else None
            backoff.outcome(conn is not None and conn.peer_id is not None, conn is not None and conn.peer_pending)
            peer = conn = None  # the ended connection is not kept through the back-off

    async def dial(self, host, port, ski, path="/ship/", pin=None):
        """Connect to a peer as SHIP client and run the connection until it ends."""
        if self._client_ctx is None:
            self._client_ctx = tlsctx.client_context(self._cert, self._key)
        addr = "%s:%d" % (host, port)
        writer = None
        got = None
        lent = -1
        bufs = None
        try:
            if self.pool:
                lent = await self._lend(True)  # our dial goes to a trusted CEM only
                if lent < 0:
                    self.stats["no_buffers"] += 1
                    return None
                bufs = self.pool.sets[lent]
            raw, _ = await asyncio.wait_for_ms(asyncio.open_connection(host, port), _UPGRADE_MS)
            writer = raw
            reader = writer = tlsctx.wrap(raw, self._client_ctx, False, host)
            ws = WsConnection(reader, writer, True, max_message=self.cfg["max_message"], buf=bufs and bufs[0])
            self._deadlines(ws)
            tlsctx.expect_peer_ski(ski)
            try:
                await ws.connect(host, path, self.cfg["timers"].cmi)
            finally:
                got = tlsctx.take_peer_ski()
            if got != ski:
                log.warn(_TAG, "%s: server SKI %s is not the expected %s", addr, got, ski)
                await ws.close(1008, "unexpected SKI")
                return None
            return await self._run(ws, ski, addr, True, peer_pin=pin)
        except (OSError, WsClosed, UpgradeError, asyncio.TimeoutError, MemoryError) as e:
            # MemoryError: a heap short of a block for the TLS socket; the dial loop goes on
            log.info(_TAG, "dial %s failed: %r", addr, e)
            return None
        finally:
            if writer is not None:
                await _quiet_close(writer)
            if bufs:
                self.pool.give(lent)

    # ---- one connection -------------------------------------------------------------------

    def _deadlines(self, ws):
        t = self.cfg["timers"]
        ws.send_ms = t.send
        ws.close_ms = t.close

    async def _run(self, ws, ski, addr, outgoing, h=None, peer_pin=None):
        if self._stopping:  # accepted or dialled before stop(), through TLS after it
            await ws.close(1001, "going away")
            return None
        now = time.ticks_ms()
        decision = self.trust.decide(ski, now, addr)
        if h is None:
            # our own dial (to the trusted ship.cem only): not counted against the budgets
            h = _Admitted(-1, 0, None, 0)
        elif decision == T.TRUSTED:
            if not self._promote(h, ski in self.peers):
                # ship.max_sessions trusted peers are served already: TLS memory is the limit
                log.warn(_TAG, "%s: SKI %s refused, %d sessions already", addr, ski, self.adm.sessions)
                self.stats["rejected"] += 1
                await ws.close(1013, "too many sessions")
                return None
        else:
            self.adm.stage(h.slot, h.gen, A.CMI, now)
        peer = Peer(self, ski, addr, outgoing)
        h.peer = peer
        peer.ws = ws
        peer.spine = self.spine_factory(peer)
        conn = C.ShipConnection(
            not outgoing, self.cfg["ship_id"], decision == T.TRUSTED, peer.spine, now, self.cfg["timers"],
            pin=self.pin, peer_pin=peer_pin, ctrl=ws,
        )
        peer.conn = conn
        self._register(peer)
        log.info(_TAG, "%s: %s connection from SKI %s", addr, "outgoing" if outgoing else "incoming", ski)
        conn.start(now)
        timers = self.cfg["timers"]
        pinged = False
        trust_at = now
        reader = asyncio.create_task(detached(self._reader(peer)))
        try:
            if self._due(peer):
                await self._flush(peer)
            while conn.state != C.CLOSED:
                now = time.ticks_ms()
                wait = conn.ms_to_deadline(now)
                # trust edits (REPL, host tool) and double connections are polled
                if wait is None or wait > _TRUST_POLL_MS:
                    wait = _TRUST_POLL_MS
                if conn.state >= C.DATA:
                    live = timers.idle + (timers.pong if pinged else 0) - time.ticks_diff(now, peer.heard)
                    if live < wait:
                        wait = live if live > 0 else 0
                if peer.nap is None:
                    peer.nap = asyncio.current_task()
                    try:
                        await asyncio.sleep_ms(wait)
                    finally:
                        # cleared before anything else runs: wake() must never take this task
                        # off the task queue while it waits anywhere else
                        peer.nap = None
                peer.nap = None
                if peer.rx_error is not None:
                    conn.ws_closed(peer.rx_error)
                    break
                now = time.ticks_ms()
                conn.tick(now)
                # what the peer's messages produced (a PIN pairing among them) is acted on
                # before the trust check below looks at the store
                if self._due(peer):
                    await self._flush(peer)
                if conn.state >= C.DATA and conn.state != C.CLOSED:
                    # liveness: a silent peer (even one stuck mid-frame) is pinged, then dropped
                    quiet = time.ticks_diff(now, peer.heard)
                    if quiet < timers.idle:
                        pinged = False
                    elif quiet >= timers.idle + timers.pong:
                        conn.abort(C.CLOSE_NORMAL, "peer unresponsive")
                    elif not pinged:
                        pinged = True
                        try:
                            await ws.ping(b"ship")
                        except WsClosed:
                            pass  # closing already; the reader reports it
                if time.ticks_diff(now, trust_at) >= _TRUST_POLL_MS or conn.state == C.HELLO:
                    trust_at = now
                    self._check_trust(peer, now)
                if h.slot >= 0 and not h.session and conn.state != C.CLOSED:
                    # a stranger typing the PIN stays pre-auth (its slot keeps the HELLO stage and
                    # deadline) until the PIN or an approval makes it trusted
                    if conn.state == C.HELLO:
                        self.adm.stage(h.slot, h.gen, A.HELLO, now)
                    elif conn.state > C.HELLO and not conn.awaiting_pin and not self._promote(
                            h, len(self.peers.get(ski, ())) > 1):
                        # approved while pending, but the trusted sessions are all taken
                        log.warn(_TAG, "%s: SKI %s refused, %d sessions already", peer.addr, ski, self.adm.sessions)
                        self.stats["rejected"] += 1
                        conn.abort(C.CLOSE_NORMAL, "too many sessions")
                self._resolve_double(peer)
                if self._due(peer):
                    await self._flush(peer)
                if conn.state in (C.DATA, C.CLOSING):
                    await peer.spine.poll(peer)
                if self.probe:
                    self.probe("step")
        except (OSError, WsClosed) as e:
            # a send that failed or timed out, or a close frame the reader answered meanwhile
            log.info(_TAG, "%s: connection lost: %r", addr, e)
            conn.ws_closed(1006)
        finally:
            reader.cancel()  # blocked in a read (or a bounded send), which is safe to cancel
            self._release(h)
            self._unregister(peer)
            peer.spine.closed(peer)
            if ski not in self.peers:  # a newer connection of the same peer keeps its request
                self.trust.forget_pending(ski)
            if conn.close_code == C.CLOSE_REJECTED:
                self.stats["rejected"] += 1
            log.info(_TAG, "%s: closed (%d %s)", addr, conn.close_code, conn.close_reason)
        return peer

    async def _reader(self, peer):
        # Feeds the core as bytes arrive and wakes the connection loop, which owns the timers
        # and all decisions. Runs until the connection ends or the transport fails.
        ws = peer.ws
        sp = peer.spine
        try:
            while True:
                n = await ws.read_more()
                # what was read is fed once the upper layer may take a datagram without
                # allocating for it, or _PARSE_WAIT_MS later (spine_factory, parse_wait)
                w = 0
                while w < _PARSE_WAIT_MS and sp.parse_wait():
                    await asyncio.sleep_ms(_LEND_POLL_MS)
                    w += _LEND_POLL_MS
                await ws.feed(peer)
                if n:
                    peer.heard = time.ticks_ms()
                peer.wake()
        except WsClosed as e:
            peer.rx_error = e.code
        except OSError:
            peer.rx_error = 1006
        peer.wake()

    def _due(self, peer):
        # Before each _flush; True when the core has actions for it. The step loop calls
        # _flush only then: a coroutine each, three times a step, is heap churn for nothing.
        conn = peer.conn
        ws = peer.ws
        self._save_pin()
        if conn.state == C.CLOSED and ws.send_ms > ws.close_ms:
            # the last words (hello aborted, the close frame) wait no longer than a close
            # does: a peer that does not read cannot keep the connection past its timer
            ws.send_ms = ws.close_ms
        return len(conn.out) > 0

    async def _flush(self, peer):
        conn = peer.conn
        ws = peer.ws
        while conn.out:
            act = conn.out.pop(0)
            kind = act[0]
            if kind == "send":
                await ws.send_binary(act[1])
            elif kind == "close":
                await ws.close(act[1], act[2][:100])
            elif kind == "pending":
                log.warn(
                    _TAG, "pairing request from SKI %s (%s): approve with diag.approve() or 'gw trust add %s'",
                    peer.ski, peer.addr, peer.ski,
                )
            elif kind == "pin_wait":
                log.info(_TAG, "%s: SKI %s may pair by typing this gateway's PIN", peer.addr, peer.ski)
            elif kind == "pin_ok":
                self._pin_trust(peer)
            elif kind == "pin_wrong":
                lock = ""
                if act[1]:
                    lock = "; PIN input locked for %d s" % (self.pin.guard.ms_left(time.ticks_ms()) // 1000)
                log.warn(_TAG, "%s: wrong PIN from SKI %s%s", peer.addr, peer.ski, lock)
            elif kind == "unknown":
                # ignored; logged for the first few, then only counted (diag.peers())
                if self.unknown_logged < 20:
                    self.unknown_logged += 1
                    log.info(_TAG, "%s: ignored unknown control message %s", peer.addr, act[1])
            elif kind == "ready":
                self.stats["completed"] += 1
                log.info(_TAG, "%s: SHIP handshake complete, data exchange", peer.addr)
                await peer.spine.ready(peer)

    def _pin_trust(self, peer):
        try:
            self.trust.add(peer.ski, by="pin")
            log.warn(_TAG, "%s: SKI %s paired by PIN, now trusted", peer.addr, peer.ski)
            print("pairing: trusted SKI %s (PIN)" % peer.ski)
        except (ValueError, OSError) as e:
            # the store is full or unreadable: trusted for this run (as decide() does), not kept
            self.trust.trusted[peer.ski] = {"id": None, "by": "pin"}
            log.error(_TAG, "%s: cannot keep SKI %s: %s", peer.addr, peer.ski, e)

    def _save_pin(self):
        pol = self.pin
        if pol is not None and pol.guard.dirty and self.pin_path:
            try:
                P.save_state(self.pin_path, pol.guard)
            except OSError as e:
                pol.guard.dirty = False  # do not retry on every step; the counters stay in RAM
                log.error(_TAG, "cannot save the PIN counters: %r", e)

    def _check_trust(self, peer, now):
        conn = peer.conn
        self.trust.reload_if_changed()
        trusted = self.trust.is_trusted(peer.ski)
        if conn.state == C.HELLO or conn.awaiting_pin:
            if trusted:
                conn.approve(now)
            elif peer.ski in self.trust.denied:
                conn.deny(now)
            elif not peer.outgoing and peer.ski not in self.trust.pending:
                # its pairing request yielded to newer ones (the pending list is bounded)
                conn.deny(now, "pairing request dropped")
        elif conn.state > C.HELLO and conn.state < C.CLOSING and not trusted:
            # the user removed the pairing: announce, then close with 4500 (ship.md 9.2)
            conn.close(now, "removedConnection", C.CLOSE_USER)
        if conn.peer_id is not None and not peer.id_checked:
            peer.id_checked = True
            if not self.trust.check_id(peer.ski, conn.peer_id):
                log.warn(_TAG, "%s: SKI %s presents SHIP ID %s, known as another", peer.addr, peer.ski, conn.peer_id)
                conn.close(now)

    # ---- double connections (ship.md 10) ----------------------------------------------------

    def _register(self, peer):
        lst = self.peers.get(peer.ski)
        if lst is None:
            self.peers[peer.ski] = [peer]
        else:
            lst.append(peer)
            log.warn(_TAG, "double connection with SKI %s", peer.ski)
            self._resolve_double(peer)

    def _unregister(self, peer):
        lst = self.peers.get(peer.ski)
        if lst and peer in lst:
            lst.remove(peer)
            if not lst:
                del self.peers[peer.ski]

    def _resolve_double(self, peer):
        lst = self.peers.get(peer.ski)
        if not lst or len(lst) < 2:
            return
        loser = pick_double_loser(self.ski, lst, time.ticks_ms())
        if loser is not None and loser.conn.state != C.CLOSED:
            log.info(_TAG, "double connection: closing the %s one", "outgoing" if loser.outgoing else "incoming")
            loser.conn.abort(_CLOSE_DOUBLE, "double connection")
            self._wake(loser)

    def _wake(self, peer):
        # a local decision (close, unpairing, double connection) is acted on at once
        peer.wake()

    def unregister(self, ski):
        """Forget a trusted peer and end its connection (close 4500, ship.md 9.2)."""
        self.trust.remove(ski)
        for p in self.peers.get(ski, ()):
            p.close("removedConnection", C.CLOSE_USER)


def _listen(host, port):
    s = socket.socket()
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(socket.getaddrinfo(host, port)[0][-1])
    s.listen(2)
    return s


def _free_port(host):
    # port 0 (tests, several gateways on one host): the unix port's socket does not tell
    # which port the OS chose, so probe random high ports
    for _ in range(64):
        port = random.randint(32768, 60999)
        s = socket.socket()
        try:
            s.bind(socket.getaddrinfo(host, port)[0][-1])
            return port
        except OSError:
            pass
        finally:
            s.close()
    raise OSError("no free port")


def _peer_text(writer):
    try:
        host, port = sockaddr_host(writer.get_extra_info("peername"))
        return "%s:%d" % (host, port)
    except Exception:
        return "?"


async def _quiet_close(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except Exception:
        pass
