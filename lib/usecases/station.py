# The station: the SPINE application of the gateway. It lays out the local device
# (DeviceInformation [0], the charging point EVSE [1], the EV [1,1] while plugged in), wires
# the use cases (usecases.*) to the charger model, and does the plumbing they share: the
# charger model's events, notifies to subscribers, the heartbeat, the use case list, and the
# endpoint each SHIP connection feeds.
import time

import charger as C
import log
from compat import const, ticks_diff, ticks_ms
from eejson.writer import Writer
from spine import datagram as D
from spine import device as DV
from spine import nodemgmt as NM
from spine import table as T
from spine.remote import announced
from spine.session import Session, reserve
from usecases import evse as EVSE

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

_FT_DEVICE_CLASS = const(1)  # DeviceClassification on DeviceInformation [0]

# heartbeatTimeout we promise; sent every timeout - 2 s (spine.md 10: some EVSE peers take the
# timeout as the receive deadline, and one sent exactly at the timeout made a peer disconnect)
_HB_TIMEOUT_S = const(4)
_HB_PERIOD_MS = const((_HB_TIMEOUT_S - 2) * 1000)
_HB_TIMEOUT = T.duration_text(_HB_TIMEOUT_S)


def clock_synced():
    """True once the RTC holds a real date; a 1970 or 2000 timestamp in a heartbeat makes
    CEMs silently ignore every limit (spine.md 10), so no heartbeat goes out before."""
    return time.gmtime()[0] >= 2024


def utc_timestamp():
    t = time.gmtime()
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (t[0], t[1], t[2], t[3], t[4], t[5])


_M_MEASURE = C.M_MEASURE | C.M_ENERGY
_M_RANGE = (1 << C.F_HW_MIN) | (1 << C.F_HW_MAX) | (1 << C.F_EV_MAX)
_M_EVSTATE = (1 << C.F_STATE) | (1 << C.F_CHARGING) | (1 << C.F_ERROR)
_NOTIFY_MIN_MS = const(1000)  # measurement notifies at most once a second (spine.md 12.3)
# notifies pending from charger model events (SpineApp._dirty)
_D_MEASURE = const(1)
_D_RANGE = const(2)
_D_EVSTATE = const(4)
# the name and tuples below are const(): frozen, they stay out of the globals table (30 names
# grew it to 37 slots; 27 fit 29 with the free one) and off the heap
_HB_FN = const("deviceDiagnosisHeartbeatData")
_FT_LPC = const(4)  # usecases.lpc._FT_LOADCONTROL: the EVSE LoadControl the guard binds
_LPC_NAMES = const(("limitationOfPowerConsumption", "limitationOfPowerProduction"))


class SpineApp:
    """ident: dict with brand, model, serial (the SHIP identity); address: SPINE device address.
    charger: the charger model (None: the EVSE entity without power features, SHIP tests);
    options: phases, voltage, discharges, lpc (dict for usecases.lpc.PowerLimit), evcs, cevc,
    clock (ms ticks, default compat.ticks_ms: tests pass their own)."""

    def __init__(self, address, ident, charger=None, options=None):
        self.address = address
        self.charger = charger
        opts = options or {}
        self.now = opts.get("clock", ticks_ms)
        dev = DV.Device(address)
        manu = EVSE.manufacturer(ident)
        dev.add(DV.Entity((0,), "DeviceInformation", [
            NM.node_management(),
            DV.Feature(_FT_DEVICE_CLASS, "DeviceClassification", "server", (manu,)),
        ]))
        self.evse = EVSE.Evse(self)
        evse = self.evse.features(manu, (_HB_FN, self._heartbeat_now))
        self.ev = self.lpc = self.lpp = self.cs = self.mpc = self.evcs = self.cevc = None
        # what each actor announces (usecases()): fixed once the station is wired
        self._evse_ucs = (EVSE.EVSECC,)
        self._cs_ucs = self._mpc_ucs = self._ev_ucs = ()
        if charger is not None:
            self._power(charger, opts, evse)
        dev.add(DV.Entity(EVSE.ADDRESS, "EVSE", evse))
        self.device = dev
        reserve()  # the datagram parse state the sessions borrow: made at start-up, kept
        self.sessions = []
        self.endpoints = []
        self.heartbeat_counter = 0
        self._hb_at = self.now()
        self._meas_at = self._hb_at
        self._dirty = 0  # bit per pending notify (_D_*)
        self.clock_synced = clock_synced  # the device layer may replace it (NTP state)
        if charger is not None:
            charger.subscribe(self._charger_event)
            if charger.get(C.F_PLUGGED):
                dev.add(self.ev.entity)

    def _power(self, charger, opts, evse):
        from usecases.ev import USECASES, Ev
        from usecases.lpc import Lpc, PowerLimit
        from usecases.mpc import MPC, Mpc

        phases = opts.get("phases", 3)
        volts = opts.get("voltage", 230)
        clock = self.now
        now = clock()
        lpc_opts = opts.get("lpc") or {}
        self.lpc = PowerLimit(charger, now, **lpc_opts)
        if opts.get("discharges"):
            self.lpp = PowerLimit(charger, now, produce=True, duration_from=self.lpc, **lpc_opts)
        self.cs = Lpc(self.lpc, self.lpp, clock)
        self.cs.guard = self.lpc_guard
        self.mpc = Mpc(charger, phases, volts)
        self._cs_ucs = self.cs.usecases
        self._mpc_ucs = (MPC,)
        self._ev_ucs = USECASES
        if opts.get("evcs", True):
            from usecases.evcs import EVCS, Evcs

            self.evcs = Evcs(charger, lambda: utc_timestamp() if self.clock_synced() else None)
            self._evse_ucs = (EVSE.EVSECC, EVCS)
        if opts.get("cevc"):
            from usecases.cevc import CEVC, Cevc, CevcFeatures

            c = opts["cevc"] if isinstance(opts["cevc"], dict) else {}
            self.cevc = CevcFeatures(Cevc(charger, now, **c), clock)
            self._ev_ucs = USECASES + (CEVC,)
        evse.extend(self.cs.features())
        evse.extend(self.mpc.features(self.cs.characteristic_rows))
        if self.evcs is not None:
            evse.append(self.evcs.feature())
        self.ev = Ev(charger, phases, volts, clock, self.cevc)
        self.ev.opev.fallback_a = opts.get("ev_fallback_a")

    def _heartbeat_now(self):
        # a read before the clock is set gets no timestamp rather than a 1970/2000 one
        return self._heartbeat_emitter(utc_timestamp() if self.clock_synced() else None)

    def _heartbeat_emitter(self, ts):
        # the data frozen when the datagram is queued: timestamp ts (None: left out), counter
        row = ("timestamp", ts, "heartbeatCounter", self.heartbeat_counter, "heartbeatTimeout", _HB_TIMEOUT)
        return lambda w: T.emit_object(w, row)

    def set_operating_state(self, state, error=None):
        """EVSE DeviceDiagnosis state (normalOperation, standby, failure + lastErrorCode),
        notified to subscribers on change (EVSECC: usecases.evse follows the charger model)."""
        self.evse.set_operating_state(state, error)

    def notify(self, entity, fid, name, emit=None, partial=False):
        """Notify one function's current data to every subscriber of its feature: one
        snapshot, shared by all sessions; or emit's data (partial: cmdControl partial, the
        changed entries only, usecases.measurement.Delta)."""
        feature = self.device.feature(entity, fid)
        if feature is None:
            return
        sent = False
        for s in self.sessions:
            if s.subscribed(entity, fid):
                if emit is None:
                    emit = feature.function(name).emitter()
                s.notify(entity, fid, name, emit, partial)
                sent = True
        if sent:
            self._wake()

    def sub_epoch(self):
        """Changes whenever a session makes a subscription (spine.session.Session.sub_epoch)."""
        return Session.sub_epoch

    def subscribers(self, entity, fid):
        """Sessions subscribed to a feature of ours."""
        f = self.device.feature(entity, fid)
        n = 0
        if f is not None:
            for s in self.sessions:
                if s.subscribed(entity, fid):
                    n += 1
        return n

    def _wake(self):
        for ep in self.endpoints:
            ep.wake()

    # ---- the charger model's events -----------------------------------------------------------

    def _charger_event(self, mask):
        ch = self.charger
        self.evse.charger_event(ch, mask)
        if mask & (1 << C.F_PLUGGED):
            self._plug(bool(ch.get(C.F_PLUGGED)))
        if mask & _M_MEASURE:
            self._dirty |= _D_MEASURE
        if mask & _M_RANGE:
            self._dirty |= _D_RANGE
        if mask & _M_EVSTATE:
            self._dirty |= _D_EVSTATE

    def _plug(self, plugged):
        ev = self.ev
        present = self.device.entity(ev.entity.address) is not None
        if plugged == present:
            return
        now = self.now()
        if plugged:
            self.device.add(ev.entity)
            if self.evcs is not None:
                self.evcs.session_started(now)
        else:
            self.device.remove(ev.entity.address)
            ev.unplugged()
            if self.cevc is not None:
                self.cevc.reset(now)
            if self.evcs is not None and self.evcs.session_ended(now):
                self.evcs.notify(self, EVSE.ADDRESS)
        log.info("spine", "EV %s", "plugged in" if plugged else "unplugged")
        for s in self.sessions:
            s.entity_changed(ev.entity, plugged)
        self._wake()

    def tick(self, now):
        """Periodic work: write approvals that timed out, LPC/LPP and CEVC timers, notifies
        of changed data (measurements at most once a second), the heartbeat to every
        subscriber while the clock is synced."""
        for s in self.sessions:
            s.expire(now)
            t = s.hb_at
            if t is not None and not s.silent and ticks_diff(now, t) > s.hb_ms:
                # silent past its announced heartbeatTimeout (OPEV/OSCEV/CEVC scenario 2)
                s.silent = True
                log.warn("spine", "peer %s: no heartbeat for %d ms", s.remote.device, ticks_diff(now, t))
                self.peer_lost(s, now)
        if self.charger is not None:
            self._tick_power(now)
        if ticks_diff(now, self._hb_at) < _HB_PERIOD_MS:
            return
        self._hb_at = now
        if not self.clock_synced():
            return
        self.heartbeat_counter += 1
        emit = self._heartbeat_emitter(utc_timestamp())
        for s in self.sessions:
            s.notify(EVSE.ADDRESS, EVSE.FT_DIAG, _HB_FN, emit, False)
        self._wake()

    def _tick_power(self, now):
        self.cs.tick(self, EVSE.ADDRESS, now)
        ev = self.ev
        plugged = self.device.entity(ev.entity.address) is not None
        if self.cevc is not None and plugged and self.cevc.tick(now):
            self.cevc.notify_changes(self)
        d = self._dirty
        if not d:
            return
        if d & _D_EVSTATE and plugged:
            ev.notify_state(self)
        if d & _D_RANGE and plugged:
            ev.notify_range(self)
        d &= _D_MEASURE
        if d and ticks_diff(now, self._meas_at) >= _NOTIFY_MIN_MS:
            self._meas_at = now
            self.mpc.notify(self, EVSE.ADDRESS)
            if plugged:
                ev.notify_measurements(self)
            d = 0
        self._dirty = d

    def usecases(self):
        """(entity, actor, [(name, version, scenarios, subrevision)]) of what is offered now."""
        ucs = [(EVSE.ADDRESS, "EVSE", self._evse_ucs)]
        if self.charger is None:
            return ucs
        ucs.append((EVSE.ADDRESS, "ControllableSystem", self._cs_ucs))
        ucs.append((EVSE.ADDRESS, "MonitoredUnit", self._mpc_ucs))
        if self.device.entity(self.ev.entity.address) is not None:
            ucs.append((self.ev.entity.address, "EV", self._ev_ucs))
        return ucs

    # hooks the sessions call

    def on_result(self, session, inc):
        if inc.data is not None and isinstance(inc.data.result, dict):
            n = inc.data.result.get("errorNumber")
            if n:
                log.info("spine", "peer answered %s with error %s %s", inc.ref, n,
                         inc.data.result.get("description", ""))

    def on_data(self, session, inc, feature):
        # a peer's heartbeat, to our DeviceDiagnosis client (spine.md 10): its arrival counts,
        # by our monotonic clock, not its timestamp; only the LPC guard's supervises LPC
        if inc.data_name == _HB_FN and feature.type == "DeviceDiagnosis":
            now = self.now()
            if inc.classifier == D.NOTIFY:
                # supervision starts with the first heartbeat sent by itself (not our read's reply)
                session.hb_at = now
            r = inc.data.result if inc.data is not None else None
            t = T.duration_s(r.get("heartbeatTimeout")) if isinstance(r, dict) else None
            if t is not None and 1 <= t <= 60:
                session.hb_ms = int(t * 1000)
            if session.silent:
                session.silent = False
                log.info("spine", "peer %s: heartbeat again", session.remote.device)
            session.stats["heartbeats"] = session.stats.get("heartbeats", 0) + 1
            if self.cs is not None and self.lpc_guard() is session:
                self.cs.heartbeat(now)
        return D.E_OK

    def limit_text(self):
        """The effective limit and its source ("limit 6A lpc init", "limit 6A opev fallback",
        "limit 8A oscev"), None without one: diag and the EVSE's vendorStateCode."""
        amps, src, paused = self.charger.effective()
        if src is None:
            return None
        if src == C.SRC_FAILSAFE:
            name = "lpc " + self.lpc.state if self.charger.in_failsafe(C.SRC_LPC) else "opev fallback"
        else:
            name = C.SOURCE_NAMES[src]
        return "limit %sA %s%s" % (min(amps), name, " (paused)" if paused else "")

    def lpc_guard(self):
        """The session of the energy guard whose heartbeat supervises LPC/LPP and who may write
        its limits: holding the binding of our LoadControl (SPINE-TS-RT-02), one that announced
        actor EnergyGuard with LPC or LPP first; without a binding the first EnergyGuard; else a
        lone peer that announced no use cases at all; None when no peer qualifies."""
        ss = self.sessions
        bound = None
        for s in ss:
            for b in s.binds:
                if b[2].feature == _FT_LPC and b[2].entity == EVSE.ADDRESS:
                    if s.remote.ucs and announced(s.remote, "EnergyGuard", _LPC_NAMES):
                        return s
                    if bound is None:
                        bound = s
        if bound is not None:
            return bound
        for s in ss:
            if s.remote.ucs and announced(s.remote, "EnergyGuard", _LPC_NAMES):
                return s
        if len(ss) == 1 and not ss[0].remote.ucs:
            return ss[0]
        return None

    def peer_lost(self, session, now):
        """A peer fell silent or disconnected: the OPEV/OSCEV limits and the CEVC plan it wrote
        fall back (usecases.opev.Opev.fallback; CEVC's recommendation is withdrawn), with a
        notify to the remaining subscribers. LPC keeps its own timers (120 s)."""
        if self.charger is None:
            return
        ev = self.ev
        plugged = self.device.entity(ev.entity.address) is not None
        if ev.opev.owner is session and ev.opev.fallback(now) and plugged:
            ev.opev.notify(self, ev.entity.address)
        c = self.cevc
        if c is not None and c.owner is session:
            c.owner = None
            c.reset(now)
            if plugged:
                c.notify_changes(self)
        self._wake()

    def on_remote_discovery(self, session, notify):
        # the peer is known: follow its entity and use case changes (spine.md 5.3 step 2-3),
        # and its heartbeat (LPC scenario 3, OPEV/OSCEV scenario 2); a discovery notify
        # (its entities changed) reads its use cases again and follows the heartbeat server
        r = session.remote
        if not r.device:
            return
        nm = D.Addr(r.device, (0,), 0)
        if not session.remote_known:
            session.remote_known = True
            session.subscribe_remote(D.Addr(self.address, (0,), 0), nm, "NodeManagement")
            session.read_remote(nm, NM.UCD)
        elif notify:
            session.read_remote(nm, NM.UCD)
        self._follow_heartbeat(session)

    def on_remote_usecases(self, session):
        r = session.remote
        # a line per use case: the line of them all (its format, arguments and text, ~0.5 KB
        # for a CEM's list) was a session start-up's largest allocations at its peak, and the
        # first to fail on a short heap; the log ring keeps 120 characters of a line anyway
        for u in r.ucs:
            log.info("spine", "peer %s use case %s/%s", r.device, u[0], u[1])
        self._follow_heartbeat(session)

    def _follow_heartbeat(self, session):
        r = session.remote
        hb = _guard_heartbeat(r)
        if hb is None or hb == session.hb_server or self.charger is None or not r.device:
            return
        session.hb_server = hb
        client = D.Addr(self.address, EVSE.ADDRESS, EVSE.FT_DIAG_CLIENT)
        server = D.Addr(r.device, hb[0], hb[1])
        session.subscribe_remote(client, server, "DeviceDiagnosis")
        session.request(client, server, D.READ, D.body_empty_read, _HB_FN, False)

    def endpoint(self, peer):
        return Endpoint(self)


_GUARDS = const(("GridGuard", "CEM", "EnergyManagementSystem"))


def _guard_heartbeat(remote):
    """(entity, feature) of the peer's DeviceDiagnosis server that carries the heartbeat we
    supervise: on the entity of an announced EnergyGuard/CEM actor first, then on a grid
    guard or CEM entity, else the first one."""
    best = None
    pref = None
    for u in remote.ucs or ():
        if u[3] and u[0] in ("EnergyGuard", "CEM"):
            pref = u[3]
            break
    for k in remote.features:
        t = remote.features[k]
        if t[0] == "DeviceDiagnosis" and t[1] == "server":
            if k[0] == pref:
                return k
            if best is None or (remote.entities.get(k[0]) in _GUARDS and remote.entities.get(best[0]) not in _GUARDS):
                best = k
    return best


class Endpoint(Session):
    """One connection's SPINE session as the SHIP node sees it (ShipNode's spine_factory): the
    data sink is the Session's (spine_begin, spine_data, spine_end, spine_abort), the sends are
    ours. One object per connection, not a session and a wrapper holding its bound methods."""

    peer = None

    def __init__(self, app):
        Session.__init__(self, app)
        # a send runs emit once to measure and again per window, with awaits in between:
        # the writer is this connection's own; it has no buffer, its windows are rendered
        # straight into the WebSocket's tx part (ws.room/advance)
        self.writer = Writer(0)

    def wake(self):
        if self.peer is not None and self.out:
            self.peer.wake()

    async def ready(self, peer):
        self.peer = peer
        self.app.sessions.append(self)
        self.app.endpoints.append(self)
        # every SPINE node opens with a detailed-discovery read of the new partner; its
        # device address is not known yet, so the destination has none (spine.md 2)
        self.read_remote(D.Addr(None, (0,), 0), NM.DD)
        await self.poll(peer)

    async def poll(self, peer):
        self.app.tick(self.app.now())
        out = self.out
        w = self.writer
        while out:
            o = out.pop(0)
            emit = o.emit
            n = w.measure(emit)

            async def write(ws, _):
                off = 0
                while off < n:
                    t = ws.room()
                    k = w.window_into(emit, off, ws.buf, t, ws.tx_end) - t
                    await ws.advance(k)
                    off += k

            await peer.send_datagram_stream(n, write, None)
            self.stats["out"] += 1

    def closed(self, peer):
        app = self.app
        Session.closed(self)
        if self in app.sessions:
            app.sessions.remove(self)
        if self in app.endpoints:
            app.endpoints.remove(self)
        app.peer_lost(self, app.now())
