# The SPINE application of the gateway: the local device (DeviceInformation [0] and the
# charging point EVSE [1]), its use cases, and the endpoint each SHIP connection feeds.
# The use-case issue adds the EV entity and the e-mobility and power features on top.
import time

import log
from compat import ticks_diff, ticks_ms
from eejson.writer import Writer
from spine import datagram as D
from spine import nodemgmt as NM
from spine.datagram import Addr
from spine.device import CLIENT, OP_READ, SERVER, Device, Entity, Feature, Function
from spine.session import Session

_TAG = "spine"


def _manufacturer(ident):
    def emit(w):
        w.obj_begin()
        w.member("deviceName")
        w.string(ident["model"])
        w.member("deviceCode")
        w.string(ident["model"])
        w.member("serialNumber")
        w.string(ident["serial"])
        w.member("brandName")
        w.string(ident["brand"])
        w.member("powerSource")
        w.string("mains3Phase")
        w.obj_end()

    return emit


# heartbeatTimeout we promise; sent every timeout - 2 s (spine.md 10: some EVSE peers take the
# timeout as the receive deadline, and one sent exactly at the timeout made a peer disconnect)
HEARTBEAT_TIMEOUT_S = 4
_HB_PERIOD_MS = (HEARTBEAT_TIMEOUT_S - 2) * 1000


def clock_synced():
    """True once the RTC holds a real date; a 1970 or 2000 timestamp in a heartbeat makes
    CEMs silently ignore every limit (spine.md 10), so no heartbeat goes out before."""
    return time.gmtime()[0] >= 2024


def utc_timestamp():
    t = time.gmtime()
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (t[0], t[1], t[2], t[3], t[4], t[5])


def _diagnosis_state(app):
    def freeze():
        state = app.operating_state
        err = app.last_error

        def emit(w):
            w.obj_begin()
            w.member("operatingState")
            w.string(state)
            if err:
                w.member("lastErrorCode")
                w.string(err)
            w.obj_end()

        return emit

    return freeze


class SpineApp:
    """ident: dict with brand, model, serial (the SHIP identity); address: SPINE device address."""

    def __init__(self, address, ident):
        self.address = address
        self.operating_state = "normalOperation"
        self.last_error = None
        dev = Device(address)
        manu = Function("deviceClassificationManufacturerData", OP_READ, _manufacturer(ident))
        dev.add(Entity((0,), "DeviceInformation", [NM.node_management(), Feature(1, "DeviceClassification", SERVER, (manu,))]))
        dev.add(
            Entity(
                (1,),
                "EVSE",
                [
                    Feature(1, "DeviceClassification", SERVER, (manu,), "DeviceClassification Server"),
                    Feature(
                        2, "DeviceDiagnosis", SERVER,
                        (
                            Function("deviceDiagnosisStateData", OP_READ, freeze=_diagnosis_state(self)),
                            Function("deviceDiagnosisHeartbeatData", OP_READ, freeze=self._heartbeat_now),
                        ),
                        "DeviceDiagnosis Server",
                    ),
                    Feature(3, "DeviceDiagnosis", CLIENT, (), "DeviceDiagnosis Client"),
                ],
            )
        )
        self.device = dev
        self.sessions = []
        self.heartbeat_counter = 0
        self._hb_at = ticks_ms()
        self.clock_synced = clock_synced  # the device layer may replace it (NTP state)

    def _heartbeat_now(self):
        return self._heartbeat_emitter((utc_timestamp(), self.heartbeat_counter))

    def _heartbeat_emitter(self, snapshot):
        # snapshot: (timestamp, counter), frozen when the datagram is queued
        def emit(w):
            ts, n = snapshot
            w.obj_begin()
            w.member("timestamp")
            w.string(ts)
            w.member("heartbeatCounter")
            w.integer(n)
            w.member("heartbeatTimeout")
            w.string("PT%dS" % HEARTBEAT_TIMEOUT_S)
            w.obj_end()

        return emit

    def set_operating_state(self, state, error=None):
        """EVSE DeviceDiagnosis state (normalOperation, standby, failure + lastErrorCode),
        notified to subscribers on change; e.g. failure while the controller link is lost."""
        if state == self.operating_state and error == self.last_error:
            return
        self.operating_state = state
        self.last_error = error
        feature = self.device.feature((1,), 2)
        fn = feature.function("deviceDiagnosisStateData")
        for s in self.sessions:
            s.notify(feature, fn.name, fn.emitter())

    def tick(self, now):
        """Periodic work: write approvals that timed out, the heartbeat notify to every
        subscriber while the clock is synced."""
        for s in self.sessions:
            s.expire(now)
        if ticks_diff(now, self._hb_at) < _HB_PERIOD_MS:
            return
        self._hb_at = now
        if not self.clock_synced():
            return
        self.heartbeat_counter += 1
        feature = self.device.feature((1,), 2)
        emit = self._heartbeat_emitter((utc_timestamp(), self.heartbeat_counter))
        for s in self.sessions:
            s.notify(feature, "deviceDiagnosisHeartbeatData", emit)

    def usecases(self):
        """(entity, actor, [(name, version, scenarios, subrevision)]) of what is offered now."""
        return []

    # hooks the sessions call

    def on_result(self, session, inc):
        if inc.data is not None and isinstance(inc.data.result, dict):
            n = inc.data.result.get("errorNumber")
            if n:
                log.info(_TAG, "peer answered %s with error %s %s", inc.ref, n, inc.data.result.get("description", ""))

    def on_data(self, session, inc, feature):
        return D.E_OK

    def on_remote_discovery(self, session):
        # the peer is known: follow its entity and use case changes (spine.md 5.3 step 2-3)
        r = session.remote
        if r.device and not session.remote_known:
            session.remote_known = True
            nm = Addr(r.device, (0,), 0)
            session.subscribe_remote(Addr(self.address, (0,), 0), nm, "NodeManagement")
            session.read_remote(nm, NM.UCD)

    def endpoint(self, peer):
        return Endpoint(self, Session(self))


class Endpoint:
    """What the SHIP node sees of SPINE for one connection (ShipNode's spine_factory)."""

    def __init__(self, app, session):
        self.app = app
        self.session = session
        # a send runs emit once to measure and again per window, with awaits in between:
        # the writer is this connection's own
        self.writer = Writer(1024)
        s = session
        self.spine_begin = s.spine_begin
        self.spine_data = s.spine_data
        self.spine_end = s.spine_end
        self.spine_abort = s.spine_abort

    async def ready(self, peer):
        self.app.sessions.append(self.session)
        # every SPINE node opens with a detailed-discovery read of the new partner; its
        # device address is not known yet, so the destination has none (spine.md 2)
        self.session.read_remote(Addr(None, (0,), 0), NM.DD)
        await self.poll(peer)

    async def poll(self, peer):
        self.app.tick(ticks_ms())
        out = self.session.out
        w = self.writer
        while out:
            o = out.pop(0)
            emit = o.emit
            n = w.measure(emit)

            async def write(ws, _):
                off = 0
                while off < n:
                    k = w.window(emit, off)
                    await ws.write(w.mv[:k])
                    off += k

            await peer.send_datagram_stream(n, write, None)
            self.session.stats["out"] += 1

    def closed(self, peer):
        self.session.closed()
        if self.session in self.app.sessions:
            self.app.sessions.remove(self.session)
