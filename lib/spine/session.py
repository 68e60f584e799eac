# One SPINE conversation with one peer (spine.md sections 2-9), sans-IO: datagrams are fed in
# as SHIP delivers them, answers and notifies queue up in .out as datagram.Out objects; the
# async poll() at the end sends them through SHIP, one frame each, measured then streamed.
import log
from compat import const, ticks_add, ticks_diff
from eejson import reader as ER
from spine import datagram as D
from spine import nodemgmt as NM
from spine import remote as R

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

_NM = const((0,))  # NodeManagement's entity
# the possibleOperations flags (spine.device)
_OP_READ = const(1)
_OP_READ_PARTIAL = const(2)
_OP_WRITE = const(4)
_OP_WRITE_PARTIAL = const(8)


_SKIP = ER.Consumer()  # keeps nothing: reads carry an empty element

# Strings every datagram (and a peer's discovery) is made of: the reader hands these out as
# they are instead of allocating one per occurrence (MicroPython interns only short literals).
_NAMES = ER.Names(
    D.CLASSIFIERS
    + (
        D.SPEC_VERSION, "datagram", "header", "specificationVersion", "addressSource", "addressDestination",
        "device", "entity", "feature", "msgCounter", "msgCounterReference", "cmdClassifier", "ackRequest",
        "payload", "cmd", "function", "filter", "cmdControl", "partial", "delete", "resultData", "errorNumber",
        "description", NM.DD, NM.UCD, NM.SUB_REQ, NM.BIND_REQ, "subscriptionRequest", "bindingRequest",
        "clientAddress", "serverAddress", "serverFeatureType", "specificationVersionList", "deviceInformation",
        "deviceAddress", "deviceType", "networkFeatureSet", "entityInformation", "entityAddress", "entityType",
        "lastStateChange", "featureInformation", "featureAddress", "featureType", "role", "supportedFunction",
        "possibleOperations", "server", "client", "special", "deviceDiagnosisHeartbeatData", "timestamp",
        "heartbeatCounter", "heartbeatTimeout",
    )
)


# What reading one datagram takes: the reader, the header consumer and the tree of a write's
# data (~2.2 KB 32-bit, and the reader's view cache grows with use). A session borrows it from
# spine_begin to the end of that datagram, which is processed whole inside spine_end, so
# sessions seldom read at the same time and two sessions keep one of these instead of two. The
# application makes it at start-up (reserve()); a session that begins while it is lent makes
# its own, dropped when it is done. The SHIP node holds a read back for a while when that
# would happen (parse_wait()).
# [the parse state not lent (None: lent, or none reserved), parse states made after reserve()
# (-1: none reserved, each session makes its own)]
_spare = [None, -1]


def reserve():
    """Makes the parse state the sessions borrow, once (the application, at start-up)."""
    if _spare[0] is None:
        _spare[0] = _new()
        _spare[1] = 0


def _new():
    inc = D.Incoming(_route)
    return ER.Reader(inc, names=_NAMES), inc, D.BoundedTree()


def _lend():
    p = _spare[0]
    if p is None:
        if _spare[1] >= 0:
            _spare[1] += 1
        return _new()
    _spare[0] = None
    return p


def _route(inc, name):
    return inc.owner._route(inc, name)


def _body_data(w, arg):
    # arg: (function name, emit(w) of its value)
    w.member(arg[0])
    arg[1](w)


def _body_partial_data(w, arg):
    w.member("function")
    w.string(arg[0])
    w.member("filter")
    w.list_begin()
    w.obj_begin()
    w.member("cmdControl")
    w.obj_begin()
    w.member("partial")
    w.obj_begin()
    w.obj_end()
    w.obj_end()
    w.obj_end()
    w.list_end()
    w.member(arg[0])
    arg[1](w)


def _body_link_request(w, arg):
    # arg: (function, inner key, client Addr, server Addr, server feature type)
    w.member(arg[0])
    w.obj_begin()
    w.member(arg[1])
    w.obj_begin()
    w.member("clientAddress")
    D.emit_addr(w, arg[2])
    w.member("serverAddress")
    D.emit_addr(w, arg[3])
    w.member("serverFeatureType")
    w.string(arg[4])
    w.obj_end()
    w.obj_end()


class Session:
    """app: the SPINE application (usecases.station.SpineApp): device, use cases, write approval."""

    sub_epoch = 0  # counts subscriptions made in any session (SpineApp.sub_epoch, for usecases.measurement.Delta)
    # set on the instance only when they change: fewer entries in every session's attribute table
    silent = False  # the peer's heartbeat is overdue (usecases.station)
    # writes awaiting approval, [handle, deadline, src, dst, counter, feature, fn]: a list of
    # the session's own from the first (defer())
    deferred = ()
    _handle = 0
    _wctx = None  # (inc, feature, fn) of the write being handled

    def __init__(self, app):
        self.app = app
        self.out = []
        self.counter = 0
        self.subs = []  # [id, client Addr, server Addr]
        self.binds = []
        self.remote = R.RemoteDevice()
        self.remote_known = False  # set by the application once it followed up on discovery
        # the peer's heartbeat (our DeviceDiagnosis client): server we subscribed, last arrival
        # (ms ticks, None: none yet), its announced timeout (ms), silent past it
        self.hb_server = None
        self.hb_at = None
        self.hb_ms = 4000
        self.stats = {"in": 0, "out": 0, "errors": 0, "dropped": 0}
        self._link_id = 0
        self._p = None  # the parse state (_lend) while a datagram is read
        self._failed = None

    # ---- the SHIP data sink ----------------------------------------------------------------

    def parse_wait(self):
        """True while a datagram this session began now would find the shared parse state lent
        to another session's datagram and make one of its own (~2.2 KB at run time, and the
        heap's largest allocation then). A peer sends a datagram whole, so the other one is
        usually done within milliseconds: the SHIP node holds this session's next read back
        that long (bounded, ship.node _reader)."""
        return self._p is None and _spare[0] is None and _spare[1] >= 0

    def spine_begin(self):
        p = self._p
        if p is None:
            p = self._p = _lend()
        inc = p[1]
        inc.reset()
        inc.owner = self
        p[0].reset(inc)
        self._failed = None

    def spine_data(self, buf, off, n):
        if self._failed is None and self._p is not None:
            try:
                self._p[0].feed(buf, off, n)
            except (ER.JsonError, D.DatagramError) as e:
                self._failed = e

    def spine_end(self):
        p = self._p
        if p is None:
            return  # no datagram begun (or it was aborted)
        inc = p[1]
        try:
            if self._failed is None:
                try:
                    p[0].finish()
                    inc.check()
                except (ER.JsonError, D.DatagramError) as e:
                    self._failed = e
            self.stats["in"] += 1
            if self._failed is not None:
                self._malformed(inc, str(self._failed))
                return
            try:
                self._process(inc)
            except (D.DatagramError, ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
                # a handler tripped over odd but well-formed data: answer, never die
                self._malformed(inc, "cannot process: %r" % e)
        finally:
            self._give()

    def spine_abort(self, why):
        self.stats["dropped"] += 1
        self._give()

    def _give(self):
        p = self._p
        if p is not None:
            self._p = None
            # back to the spare (_lend), which keeps no session and nothing of the last
            # datagram's data
            p[1].release()
            p[2].reset()
            if _spare[0] is None:
                _spare[0] = p

    # ---- processing ------------------------------------------------------------------------

    def _route(self, inc, name):
        c = inc.classifier
        if c == D.READ:
            return _SKIP
        # the data tree is idle while the peer's discovery or use case data is read: the
        # reader made for it takes over the tree's path arrays
        t = self._p[2]
        if name == NM.DD and (c == D.REPLY or c == D.NOTIFY):
            return R.DiscoveryReader(self.remote, not (c == D.NOTIFY and inc.partial), t)
        if name == NM.UCD and (c == D.REPLY or c == D.NOTIFY):
            return R.UseCaseReader(self.remote, t)
        t.reset()
        return t

    def _malformed(self, inc, why):
        self.stats["errors"] += 1
        log.warn("spine", "datagram refused: %s", why)
        # answer when the header could be read, else drop (ship.md 12.4)
        if inc.counter is not None and inc.src.feature is not None and inc.src.entity and inc.classifier != D.RESULT:
            self._result(inc, D.E_GENERAL, "malformed datagram")

    def _next(self):
        self.counter += 1
        return self.counter

    def _src_of(self, inc):
        # our answering feature: the request's destination, or NodeManagement when that is
        # not one of ours (peers drop messages from features missing in our discovery)
        d = inc.dst
        if d.feature is None or self.app.device.feature(d.entity, d.feature) is None:
            return D.Addr(self.app.device.address, _NM, 0)
        return D.Addr(self.app.device.address, d.entity, d.feature)

    def _peer_addr(self, a):
        d = self.remote.device
        if d is not None:
            if a.device is None:
                return D.Addr(d, a.entity, a.feature)
            if a.device == d:
                a.device = d  # kept in a link: the peer's address once, not a copy per link
        return a

    def _result(self, inc, err, desc):
        self.out.append(
            D.Out(self._src_of(inc), self._peer_addr(inc.src), self._next(), D.RESULT, D.body_result, (err, desc),
                ref=inc.counter)
        )

    def _reply(self, inc, name, emit, body):
        self.out.append(
            D.Out(self._src_of(inc), self._peer_addr(inc.src), self._next(), D.REPLY, body, (name, emit),
                  ref=inc.counter)
        )

    def _process(self, inc):
        c = inc.classifier
        if c == D.RESULT:
            self.app.on_result(self, inc)
            return
        if inc.src.device is not None and self.remote.device is None:
            self.remote.device = inc.src.device
        if inc.dst.device is not None and inc.dst.device != self.app.device.address:
            self._result(inc, D.E_DEST_UNKNOWN, "unknown destination device")
            return
        feature = self.app.device.feature(inc.dst.entity, inc.dst.feature)
        if feature is None:
            if c != D.REPLY or inc.ack:
                self._result(inc, D.E_DEST_UNKNOWN, "unknown destination feature")
            return
        if feature.role == "special":
            self._node_management(inc)
            return
        name = inc.data_name
        fn = feature.function(name)
        if c == D.READ:
            if fn is None or not fn.ops & (_OP_READ | _OP_READ_PARTIAL) or not fn.readable():
                self._result(inc, D.E_NOT_SUPPORTED, "function not supported: %s" % name)
            elif inc.partial and fn.ops & _OP_READ_PARTIAL and fn.selects:
                # a restricted read: the matching entries, the asked elements (spine.md 3.1)
                self._reply(inc, name, fn.emitter(inc.selectors, inc.elements), _body_partial_data)
            else:
                self._reply(inc, name, fn.emitter(), _body_data)
        elif c == D.WRITE:
            self._write(inc, feature, fn)
        elif c == D.NOTIFY or c == D.REPLY:
            # data from the peer for one of our client features (heartbeats, ...)
            err = self.app.on_data(self, inc, feature)
            if inc.ack:
                self._result(inc, err or D.E_OK, None)
        else:
            self._result(inc, D.E_NOT_SUPPORTED, "call not supported on this feature")

    def _write(self, inc, feature, fn):
        name = inc.data_name
        if fn is None:
            self._result(inc, D.E_NOT_SUPPORTED, "function not supported: %s" % name)
            return
        if not fn.ops & (_OP_WRITE | _OP_WRITE_PARTIAL) or fn.write is None:
            self._result(inc, D.E_REJECTED, "write is not allowed on this function")
            return
        if inc.partial and not fn.ops & _OP_WRITE_PARTIAL:
            self._result(inc, D.E_RFE_COMBINATION, "partial write not supported")
            return
        if not self._bound(inc.src, inc.dst.entity, feature.fid):
            self._result(inc, D.E_BINDING_NEEDED, "write denied due to missing binding")
            return
        self._wctx = (inc, feature, fn)
        try:
            r = fn.write(self, inc)
        finally:
            self._wctx = None
        if r is None:
            return  # deferred: settle() or the timeout answers
        err, desc = r
        if err == D.E_OK:
            # notify first, then the result (the order spine-go uses)
            self.notify(inc.dst.entity, feature.fid, name, fn.emitter(), False)
        self._result(inc, err, desc)

    # ---- write approval: a write handler may defer its decision to the application --------

    def defer(self, now, timeout_ms=10000):
        """Called by a write handler that cannot decide at once (the application asks someone):
        returns a handle for settle(); the handler then returns None. Unsettled writes are
        refused at the timeout."""
        inc, feature, fn = self._wctx
        self._handle += 1
        if not self.deferred:
            self.deferred = []
        self.deferred.append(
            [self._handle, ticks_add(now, timeout_ms), self._src_of(inc), self._peer_addr(inc.src), inc.counter,
             feature, fn]
        )
        return self._handle

    def settle(self, handle, err, desc=None):
        """The application's decision on a deferred write (err 0: approved, already applied)."""
        for d in self.deferred:
            if d[0] == handle:
                self.deferred.remove(d)
                if err == D.E_OK:
                    self.notify(d[2].entity, d[5].fid, d[6].name, d[6].emitter(), False)
                self.out.append(D.Out(d[2], d[3], self._next(), D.RESULT, D.body_result, (err, desc), ref=d[4]))
                return True
        return False  # timed out already, or never deferred

    def expire(self, now):
        if not self.deferred:
            return  # runs every tick: copy the list only when there is something to expire
        for d in list(self.deferred):
            if ticks_diff(now, d[1]) >= 0:
                # the answer spine-go gives in this case
                self.settle(d[0], D.E_GENERAL, "write not approved in time by application")

    def _bound(self, client, entity, fid):
        for b in self.binds:
            s = b[2]
            if s.entity == entity and s.feature == fid and b[1].same(client):
                return True
        return False

    # ---- NodeManagement --------------------------------------------------------------------

    def _node_management(self, inc):
        c = inc.classifier
        name = inc.data_name
        if inc.dst.entity != _NM or inc.dst.feature != 0:
            self._result(inc, D.E_DEST_UNKNOWN, "NodeManagement is [0]/0")
            return
        dev = self.app.device
        if c == D.READ:
            # emitters run again for every window of the send: snapshot what can change
            if name == NM.DD:
                ents = tuple(dev.entities)
                self._reply(inc, name, lambda w: NM.emit_discovery(w, dev, ents, None), _body_data)
            elif name == NM.UCD:
                ucs = self.app.usecases()
                self._reply(inc, name, lambda w: NM.emit_usecases(w, dev.address, ucs), _body_data)
            elif name == NM.SUB_DATA:
                subs = tuple(self.subs)
                self._reply(inc, name, lambda w: NM.emit_links(w, "subscription", subs), _body_data)
            elif name == NM.BIND_DATA:
                binds = tuple(self.binds)
                self._reply(inc, name, lambda w: NM.emit_links(w, "binding", binds), _body_data)
            elif name == NM.DEST:
                self._reply(inc, name, lambda w: NM.emit_destinations(w, dev), _body_data)
            else:
                self._result(inc, D.E_NOT_SUPPORTED, "function not supported: %s" % name)
        elif c == D.CALL:
            if name == NM.SUB_REQ or name == NM.BIND_REQ:
                self._link_request(inc, name == NM.BIND_REQ)
            elif name == NM.SUB_DEL or name == NM.BIND_DEL:
                self._link_delete(inc, name == NM.BIND_DEL)
            else:
                self._result(inc, D.E_NOT_SUPPORTED, "function not supported: %s" % name)
        elif c == D.REPLY or c == D.NOTIFY:
            # the reader of the discovery or use case data applied it as it streamed: it goes
            # now, before the application acts on the data (the session start-up's peak)
            inc.data = None
            if name == NM.DD:
                self.app.on_remote_discovery(self, c == D.NOTIFY)
            elif name == NM.UCD:
                self.app.on_remote_usecases(self)
            if inc.ack:
                self._result(inc, D.E_OK, None)
        else:
            self._result(inc, D.E_NOT_SUPPORTED, "write not supported on NodeManagement")

    def _link_request(self, inc, binding):
        req = NM.link_request(inc.data.result if inc.data else None)
        what = "binding" if binding else "subscription"
        if req is None:
            self._result(inc, D.E_GENERAL, "malformed %s request" % what)
            return
        client, server, ftype = req
        if server.device is not None and server.device != self.app.device.address:
            self._result(inc, D.E_DEST_UNKNOWN, "server address is not this device")
            return
        f = self.app.device.feature(server.entity, server.feature)
        if f is None or (f.role != "server" and not (f.role == "special" and not binding)):
            # subscriptions to servers and NodeManagement; bindings to servers only
            self._result(inc, D.E_GENERAL, "no such server feature for a %s" % what)
            return
        if ftype is not None and ftype != f.type:
            self._result(inc, D.E_GENERAL, "server feature type mismatch")
            return
        client = self._peer_addr(client)
        lst = self.binds if binding else self.subs
        for e in lst:
            if e[1].same(client) and e[2].same(server):
                # what the installed base answers (captured from spine-go)
                self._result(inc, D.E_GENERAL, "requested %s is already present" % what)
                return
        if len(lst) >= 32:
            self._result(inc, D.E_GENERAL, "too many %ss" % what)
            return
        self._link_id += 1
        lst.append([self._link_id, client, D.Addr(self.app.device.address, server.entity, server.feature)])
        if not binding:
            Session.sub_epoch += 1  # a new subscription somewhere: change-only notifies start over
        self._result(inc, D.E_OK, None)

    def _link_delete(self, inc, binding):
        d = NM.link_delete(inc.data.result if inc.data else None)
        if d is None:
            self._result(inc, D.E_GENERAL, "malformed delete")
            return
        lid, client, server = d
        lst = self.binds if binding else self.subs
        keep = []
        for e in lst:
            gone = (lid is None or e[0] == lid) and (client is None or e[1].same(client)) and (
                server is None or e[2].same(server)
            )
            if not gone:
                keep.append(e)
        lst[:] = keep
        # deleting what is not there is fine (SPINE-TS-SUBS-02)
        self._result(inc, D.E_OK, None)

    # ---- what the application and the node call -------------------------------------------

    def subscribed(self, entity, fid):
        """Whether the peer subscribed to our feature fid on entity (an address tuple)."""
        for s in self.subs:
            srv = s[2]
            if srv.entity == entity and srv.feature == fid:
                return True
        return False

    def notify(self, entity, fid, name, emit, partial):
        """Queue a notify of one function's data to every subscriber of our feature fid on
        entity."""
        src = D.Addr(self.app.device.address, entity, fid)
        body = _body_partial_data if partial else _body_data
        for s in self.subs:
            srv = s[2]
            if srv.entity == entity and srv.feature == fid:
                self.out.append(D.Out(src, s[1], self._next(), D.NOTIFY, body, (name, emit)))

    def request(self, src, dst, classifier, body, arg, ack):
        self.out.append(D.Out(src, dst, self._next(), classifier, body, arg, ack=ack))

    def read_remote(self, dst, name):
        """Our read of a peer's function (from our NodeManagement unless said otherwise)."""
        self.request(D.Addr(self.app.device.address, _NM, 0), dst, D.READ, D.body_empty_read, name, False)

    def subscribe_remote(self, local, remote, ftype):
        """Our subscription of local (a client feature of ours) to a peer's server feature."""
        dst = D.Addr(remote.device, _NM, 0)
        self.request(D.Addr(self.app.device.address, _NM, 0), dst, D.CALL, _body_link_request,
                     (NM.SUB_REQ, "subscriptionRequest", local, remote, ftype), True)

    def entity_changed(self, entity, added):
        """EV plug-in/out: partial discovery notify, then the use-case notify (spine.md 6)."""
        ucs = self.app.usecases()
        dev = self.app.device.address
        if not added:
            self.notify(_NM, 0, NM.UCD, lambda w: NM.emit_usecases(w, dev, ucs), False)
            prefix = entity.address
            self.subs[:] = [s for s in self.subs if s[2].entity[: len(prefix)] != prefix]
            self.binds[:] = [b for b in self.binds if b[2].entity[: len(prefix)] != prefix]
        change = "added" if added else "removed"
        self.notify(_NM, 0, NM.DD, lambda w: NM.emit_discovery(w, self.app.device, (entity,), change), True)
        if added:
            self.notify(_NM, 0, NM.UCD, lambda w: NM.emit_usecases(w, dev, ucs), False)

    def closed(self):
        self._give()  # a connection that ended inside a datagram
        self.subs = []
        self.binds = []
        self.out = []
        self.deferred = ()
