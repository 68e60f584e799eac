# The EV entity [1,1] (spine.md 11, 12.2-12.8), present while a vehicle is plugged in, and
# EVCC, evCommissioningAndConfiguration 1.0.1 (12.2): configuration, identification,
# manufacturer, diagnosis and the permitted values. The entity also carries EVCEM's
# measurements (usecases.evcem), OPEV's and OSCEV's limits (usecases.opev) and, when enabled,
# CEVC's TimeSeries and IncentiveTable (usecases.cevc).
import charger as C
from compat import const
from spine import device as DV
from spine import table as T
from usecases import evcem as EM
from usecases import measurement as M
from usecases import opev as OP

EVCC = ("evCommissioningAndConfiguration", "1.0.1", (1, 2, 3, 4, 5, 6, 7, 8), "release")

# what the EV entity announces (CEVC, when on, adds its own)
USECASES = (EVCC, EM.EVCEM, OP.OPEV, OP.OSCEV)

ADDRESS = (1, 1)
_FT_CONFIG = const(1)
_FT_IDENT = const(2)
_FT_CLASS = const(3)
_FT_DIAG = const(4)
_FT_ELECTRICAL = const(5)  # EVCC's permitted values, EVCEM's parameters


class Ev:
    """The EV entity's data over the charger model. now(): ms ticks (for limit requests);
    cevc: usecases.cevc.CevcFeatures when CEVC is on."""

    comm = "iec61851"  # the communication standard: IEC 61851 (control pilot) is all we have

    def __init__(self, charger, phases, voltage, now, cevc):
        self.ch = charger
        self.np = phases
        self.voltage = voltage
        self.evcem = EM.Evcem(charger, phases, voltage)
        self.opev = OP.Opev(charger, phases, now)
        self.cevc = cevc
        self.entity = self._entity()

    # ---- the entity ---------------------------------------------------------------------

    def _entity(self):
        feats = [
            DV.Feature(_FT_CONFIG, "DeviceConfiguration", "server", (
                T.Table("deviceConfigurationKeyValueDescriptionListData", (
                    ("keyId", 1, "keyName", "communicationsStandard", "valueType", "string"),
                    ("keyId", 2, "keyName", "asymmetricChargingSupported", "valueType", "boolean"),
                )),
                T.Table("deviceConfigurationKeyValueListData", self._config_rows),
            ), "DeviceConfiguration Server"),
            # IEC 61851 tells no identification: an empty list (spine.md 12.2)
            DV.Feature(_FT_IDENT, "Identification", "server", (
                T.Table("identificationListData", ()),
            ), "Identification Server"),
            DV.Feature(_FT_CLASS, "DeviceClassification", "server", (
                DV.Function("deviceClassificationManufacturerData", DV.OP_READ, emit=lambda w: T.emit_object(w, ())),
            ), "DeviceClassification Server"),
            # without stateData on the EV, eebus-go reports the EV as not connected (15.3)
            DV.Feature(_FT_DIAG, "DeviceDiagnosis", "server", (
                DV.Function("deviceDiagnosisStateData", DV.OP_READ, freeze=self._state_freeze),
            ), "DeviceDiagnosis Server"),
            M.electrical_connection(_FT_ELECTRICAL, self.np, self.evcem.param_desc, None, self._permitted_rows),
            self.evcem.feature(),
            self.opev.feature(),
        ]
        if self.cevc is not None:
            feats.extend(self.cevc.features())
        return DV.Entity(ADDRESS, "EV", feats)

    # ---- notifies (the station calls them while the EV is plugged in) -----------------------

    def notify_state(self, app):
        app.notify(ADDRESS, _FT_DIAG, "deviceDiagnosisStateData")

    def notify_range(self, app):
        app.notify(ADDRESS, _FT_ELECTRICAL, "electricalConnectionPermittedValueSetListData")
        self.opev.notify(app, ADDRESS)

    def notify_measurements(self, app):
        self.evcem.notify(app, ADDRESS)

    # ---- data -----------------------------------------------------------------------------

    def operating_state(self):
        ch = self.ch
        if ch.get(C.F_ERROR):
            return "failure"
        # charging -> normalOperation; plugged and waiting (state B, paused) -> standby, which a
        # CEM reads as "EV sleeping / paused" (EVCC scenario 7)
        return "normalOperation" if ch.get(C.F_CHARGING) or ch.get(C.F_STATE) == "C" else "standby"

    def _state_freeze(self):
        row = ("operatingState", self.operating_state())
        return lambda w: T.emit_object(w, row)

    def _config_rows(self):
        return (
            ("keyId", 1, "value", ["string", self.comm], "isValueChangeable", False),
            # one control-pilot duty cycle for all phases: no asymmetric charging with IEC 61851
            ("keyId", 2, "value", ["boolean", False], "isValueChangeable", False),
        )

    def _permitted_rows(self):
        lo, hi = M.current_range(self.ch)
        n = self.np
        v = self.voltage
        rows = []
        # the discrete value 0: a request below the minimum pauses (eebus-go replaces a
        # value under range.min with it, spine.md 12.10); one value set serves every phase
        vs = _value_set(0, T.scaled(lo), T.scaled(hi))
        for p in range(n):
            rows.append(("electricalConnectionId", 0, "parameterId", p, "permittedValueSet", vs))
        rows.append(("electricalConnectionId", 0, "parameterId", 3, "permittedValueSet",
                     _value_set(0, T.scaled(int(lo * v * n)), T.scaled(int(hi * v * n)))))
        vs = _value_set(None, (0, 0), T.scaled(int(hi * v)))
        for p in range(n):
            rows.append(("electricalConnectionId", 0, "parameterId", 4 + p, "permittedValueSet", vs))
        return tuple(rows)

    def unplugged(self):
        """The EV left: its limits go with it; the next EV's first measurement notify is full."""
        self.opev.unplugged()
        self.evcem.delta.reset()


def _value_set(discrete, lo, hi):
    # permittedValueSet: [{value: [discrete]?, range: [{min, max}]}]
    return T.Items([["value", None if discrete is None else T.Items([(discrete, 0)]),
                   "range", T.Items([["min", lo, "max", hi]])]])
