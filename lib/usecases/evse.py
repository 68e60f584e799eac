# EVSECC, evseCommissioningAndConfiguration 1.0.1 (spine.md 12.1) on the EVSE entity [1]: the
# manufacturer data (scenario 1) and the operating state (scenario 2). The state follows the
# charger model: failure while the controller link is down or the controller reports an
# error, normalOperation otherwise. The entity's DeviceDiagnosis server also carries the
# station's heartbeat (the station sends it), its client the peer's (LPC supervises it).
import charger as C
from compat import const
from spine import device as DV
from spine.table import emit_object

EVSECC = ("evseCommissioningAndConfiguration", "1.0.1", (1, 2), "release")

ADDRESS = (1,)
_FT_CLASS = const(1)
FT_DIAG = const(2)
FT_DIAG_CLIENT = const(3)

_M_STATE = (1 << C.F_LINK) | (1 << C.F_ERROR)


def manufacturer(ident):
    """deviceClassificationManufacturerData of the station (also on DeviceInformation [0])."""

    model = ident["model"]
    row = ("deviceName", model, "deviceCode", model, "serialNumber", ident["serial"], "brandName", ident["brand"],
           "powerSource", "mains3Phase")
    return DV.Function("deviceClassificationManufacturerData", DV.OP_READ, lambda w: emit_object(w, row))


class Evse:
    """app: the station (notify). The state and the vendor code are the class's until they
    change (fewer entries in the instance's attribute table)."""

    operating_state = "normalOperation"
    last_error = None
    vendor = None  # vendorStateCode: the effective limit and its source (app.limit_text)

    def __init__(self, app):
        self.app = app

    def features(self, manu, heartbeat):
        """manu: manufacturer(); heartbeat: (name, freeze) of the heartbeat function the station
        serves on our DeviceDiagnosis server."""
        return [
            DV.Feature(_FT_CLASS, "DeviceClassification", "server", (manu,), "DeviceClassification Server"),
            DV.Feature(
                FT_DIAG, "DeviceDiagnosis", "server",
                (
                    DV.Function("deviceDiagnosisStateData", DV.OP_READ, freeze=self._state_freeze),
                    DV.Function(heartbeat[0], DV.OP_READ, freeze=heartbeat[1]),
                ),
                "DeviceDiagnosis Server",
            ),
            DV.Feature(FT_DIAG_CLIENT, "DeviceDiagnosis", "client", (), "DeviceDiagnosis Client"),
        ]

    def _state_freeze(self):
        row = ("operatingState", self.operating_state, "vendorStateCode", self.vendor, "lastErrorCode",
               self.last_error or None)
        return lambda w: emit_object(w, row)

    def set_operating_state(self, state, error=None):
        """DeviceDiagnosis state (normalOperation, standby, failure + lastErrorCode), notified
        to subscribers on change."""
        if state == self.operating_state and error == self.last_error:
            return
        self.operating_state = state
        self.last_error = error
        self.app.notify(ADDRESS, FT_DIAG, "deviceDiagnosisStateData")

    def charger_event(self, ch, mask):
        if mask & (1 << C.F_LIMIT):
            v = self.app.limit_text()
            if v != self.vendor:
                self.vendor = v
                self.app.notify(ADDRESS, FT_DIAG, "deviceDiagnosisStateData")
        # EEBUS sees the EVSE in failure while the controller is unreachable or in error
        if not mask & _M_STATE:
            return
        if not ch.get(C.F_LINK):
            self.set_operating_state("failure", "controller link lost")
        elif ch.get(C.F_ERROR):
            self.set_operating_state("failure", "controller error %s" % ch.get(C.F_ERROR))
        else:
            self.set_operating_state("normalOperation")
