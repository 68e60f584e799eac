# What we keep of a peer's detailed discovery (spine.md section 5.2; a SMA Home Manager 2
# sends 9.6 KB): device address, entity addresses/types, feature addresses/types/roles —
# built while the message streams past, nothing else.
from compat import const
from eejson.dialect import Path

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

_MAX_ENTITIES = const(16)
_MAX_FEATURES = const(64)

# Values a peer's discovery and use case data repeat, as constants: one the reader hands over is
# kept as this object (in flash when frozen), not as the reader's new string, which would stay
# for the session (MicroPython interns only literals of at most 10 characters, so every
# "DeviceDiagnosis" or "limitationOfPowerConsumption" of a peer would be another 32-64 B).
_KNOWN = (
    # feature types
    "NodeManagement", "DeviceClassification", "DeviceDiagnosis", "DeviceConfiguration", "LoadControl",
    "Measurement", "ElectricalConnection", "Identification", "TimeSeries", "IncentiveTable", "ActuatorLevel",
    "ActuatorSwitch", "DataTunneling", "DirectControl", "NetworkManagement", "OperatingConstraints",
    "PowerSequences", "SmartEnergyManagementPs", "TaskManagement", "TimeInformation", "TimeTable",
    "SupplyCondition", "TariffInformation", "StateInformation", "Threshold", "Messaging", "Setpoint",
    # entity types
    "DeviceInformation", "GridGuard", "EnergyManagementSystem", "ControllableSystem", "Compressor",
    "HeatPumpAppliance", "Inverter", "SmartEnergyAppliance", "SubMeterElectricity", "BatterySystem",
    "ElectricityGenerationSystem", "ElectricityStorageSystem", "GridConnectionPointOfPremises", "Household",
    "PVSystem", "ChargingOutlet", "ElectricalImmersionHeater", "HeatingCircuit", "DHWCircuit",
    # actors
    "EnergyGuard", "EnergyBroker", "MonitoringAppliance", "MonitoredUnit", "VisualizationAppliance",
    "GridConnectionPoint", "HeatPump", "OutdoorTemperatureSensor",
    # use cases
    "limitationOfPowerConsumption", "limitationOfPowerProduction", "monitoringOfPowerConsumption",
    "monitoringOfGridConnectionPoint", "evseCommissioningAndConfiguration", "evCommissioningAndConfiguration",
    "measurementOfElectricityDuringEvCharging", "overloadProtectionByEvChargingCurrentCurtailment",
    "optimizationOfSelfConsumptionDuringEvCharging", "coordinatedEvCharging", "evChargingSummary",
    "evStateOfCharge", "visualizationOfAggregatedBatteryData", "visualizationOfAggregatedPhotovoltaicData",
    "monitoringAndControlOfSmartGridReadyConditions", "monitoringOfOutdoorTemperature",
)


def _known(v):
    # the constant equal to v, else v itself (a scan in C, only while discovery data is read)
    if v in _KNOWN:
        return _KNOWN[_KNOWN.index(v)]
    return v


class RemoteDevice:
    def __init__(self):
        self.device = None
        self.entities = {}  # entity tuple -> type
        self.features = {}  # (entity tuple, feature) -> (type, role)
        self.ucs = None  # its announced use cases (UseCaseReader); None: not read yet


class DiscoveryReader(Path):
    """Consumer of a nodeManagementDetailedDiscoveryData value, applied to a RemoteDevice.
    share: an idle Path whose arrays it uses (eejson.dialect.Path).

    full: a reply or a notify without partial filter (entities absent from it are gone);
    a partial notify adds or removes the entities it lists (lastStateChange).
    """

    def __init__(self, remote, full, share):
        super().__init__(share)
        self.remote = remote
        self.full = full
        self._ent = []
        self._dev = None
        self._type = None
        self._role = None
        self._fid = None
        self._change = None
        if full:
            remote.entities = {}
            remote.features = {}

    def item_begin(self):
        if self.n != 1:
            return  # a nested list (supportedFunction) inside an entry
        del self._ent[:]
        self._type = self._role = self._fid = self._change = None

    def item_end(self):
        if self.n != 1:
            return
        r = self.remote
        ent = tuple(self._ent)
        for e in r.entities:
            if e == ent:
                ent = e  # the entity's features share its tuple
                break
        if self.keys[0] == "entityInformation" and ent and self._type:
            if self._change == "removed":
                r.entities.pop(ent, None)
                for k in list(r.features):
                    if k[0][: len(ent)] == ent:
                        del r.features[k]
            elif len(r.entities) < _MAX_ENTITIES:
                r.entities[ent] = self._type
        elif self.keys[0] == "featureInformation" and ent and self._fid is not None and self._type:
            if len(r.features) < _MAX_FEATURES:
                r.features[(ent, self._fid)] = (self._type, self._role)

    def leaf(self, v):
        n = self.n
        if n < 3 or self.keys[1] != "description":
            return
        k = self.keys[n - 1]
        top = self.keys[0]
        if top == "deviceInformation":
            if k == "device" and isinstance(v, str):
                self.remote.device = v
        elif k == "entity" and n == 4:
            if isinstance(v, int) and len(self._ent) < 8:
                self._ent.append(v)
        elif k == "feature" and n == 4:
            self._fid = v if isinstance(v, int) else None
        elif n == 3 and isinstance(v, str):
            if k == "entityType" or k == "featureType":
                self._type = _known(v)
            elif k == "role":
                self._role = v
            elif k == "lastStateChange":
                self._change = v


_MAX_UCS = const(16)


class UseCaseReader(Path):
    """Consumer of a nodeManagementUseCaseData value (spine.md 9): the peer's announced use
    cases into remote.ucs as [actor, name, scenario bit mask, entity tuple or None], at most
    16; entries with useCaseAvailable false are left out (as eebus-go does), scenarios outside
    1..30 are ignored. Always the full list (reply and notify alike). share: as for
    DiscoveryReader."""

    def __init__(self, remote, share):
        super().__init__(share)
        self.remote = remote
        remote.ucs = []
        self._actor = None
        self._ent = None
        self._name = None
        self._mask = 0
        self._avail = True
        self._pend = []

    def item_begin(self):
        n = self.n
        if n == 1:
            self._actor = None
            self._ent = None
            self._pend = []
        elif n == 2 and self.keys[1] == "useCaseSupport":
            self._name = None
            self._mask = 0
            self._avail = True

    def item_end(self):
        n = self.n
        if n == 2 and self.keys[1] == "useCaseSupport":
            if self._name is not None and self._avail and len(self._pend) < _MAX_UCS:
                self._pend.append([None, self._name, self._mask, None])
        elif n == 1:
            ucs = self.remote.ucs
            ent = tuple(self._ent) if self._ent else None
            for u in self._pend:
                if self._actor is not None and len(ucs) < _MAX_UCS:
                    u[0] = self._actor
                    u[3] = ent
                    ucs.append(u)
            self._pend = []

    def leaf(self, v):
        n = self.n
        if self.keys[0] != "useCaseInformation" or n < 2:
            return
        k = self.keys[n - 1]
        if n == 2:
            if k == "actor" and isinstance(v, str) and len(v) <= 40:
                self._actor = _known(v)
        elif n == 3 and self.keys[1] == "address":
            if k == "entity" and isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1000:
                if self._ent is None:
                    self._ent = []
                if len(self._ent) < 8:
                    self._ent.append(v)
        elif n == 3 and self.keys[1] == "useCaseSupport":
            if k == "useCaseName" and isinstance(v, str) and len(v) <= 64:
                self._name = _known(v)
            elif k == "useCaseAvailable" and v is False:
                self._avail = False
            elif k == "scenarioSupport" and isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 30:
                self._mask |= 1 << v


def announced(remote, actor, names):
    """True when the peer announced actor with one of names (a tuple of use case names)."""
    for u in remote.ucs:
        if u[0] == actor and u[1] in names:
            return True
    return False
