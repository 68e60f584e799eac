"""The test CEM's use-case logic (tools/testcem/usecases.py, ucdata.py, ucrun.py) on data: captured
messages (eebus-captures 20-27 EVSE simulator with EV, 02-13 LPC, spine-go fixtures) and a synthetic
station built from spine.md 11.2 / 12 / 14. Accessors must return what eebus-go v0.7 returns, writers
must produce eebus-go's datagrams (compared byte for byte with the captures).

The SpineCem-level tests use an in-process stub transport (no SHIP, no sockets) that answers reads
from the synthetic tables; the real end to end against the gateway lives in the e2e tests.
"""

import asyncio
import copy
import datetime
import decimal
import json
import math
import os
import random

import pytest
from hypothesis import example, given, settings, strategies as st

from testcem import dialect
from testcem.shipmsg import data_message
from testcem.spine import SpineCem
from testcem.spinemodel import parse_detailed_discovery, parse_use_cases
from testcem.spinemsg import build_cmd, build_datagram, feature_address, parse_datagram
from testcem.ucdata import (RemoteData, format_duration, matches, parse_duration, scaled, scaled_number)
from testcem.ucrun import CemUseCases, parse_phase_values, parse_power_duration
from testcem.ucbase import WriteError
from testcem.usecases import (ALL_USE_CASES, CEVC, EVCC, EVCEM, EVCS, EVSECC, EVSOC, LPC, MPC, OPEV, OSCEV,
                              our_use_case_table)

from support.bounded import runner
from support.paths import CAPTURES, ROOT

EVSESIM = "d:_n:Demo_EVSESim-sim-0001"
CEMPEER = "d:_n:Demo_CEMPeer-cem-0001"
EVSE_DEV = "d:_n:Demo_EVSE-234567890"
CONTROLBOX = "d:_n:Demo_ControlBox-123456789"
GW = "d:_n:Test_GW-0001"
EV = (1, 1)
E1 = (1,)


def cap_text(name):
    with open(os.path.join(CAPTURES, name), encoding="utf-8") as f:
        return f.read().rstrip("\n")


def cap(name):
    return parse_datagram(cap_text(name))


def wire(plain):
    """Plain value -> dialect -> plain again (what a value looks like after the wire: {} becomes [])."""
    return dialect.to_plain(json.loads(dialect.dumps_compact(dialect.to_eebus(plain))))


def sn(n, s=0):
    return {"number": n, "scale": s}


# ------------------------------------------------------------------------------------------------
# the synthetic station (spine.md 11.2 layout, 12.x data, 14 wire examples)

R = {"read": {}}
RW = {"read": {}, "write": {"partial": {}}}

EVSE_FEATURES = [
    (1, "DeviceClassification", "server", {"deviceClassificationManufacturerData": R}),
    (2, "DeviceDiagnosis", "server", {"deviceDiagnosisStateData": R, "deviceDiagnosisHeartbeatData": R}),
    (3, "DeviceDiagnosis", "client", {}),
    (4, "LoadControl", "server", {"loadControlLimitDescriptionListData": R, "loadControlLimitListData": RW}),
    (5, "DeviceConfiguration", "server", {"deviceConfigurationKeyValueDescriptionListData": R,
                                          "deviceConfigurationKeyValueListData": RW}),
    (6, "ElectricalConnection", "server", {"electricalConnectionCharacteristicListData": R,
                                           "electricalConnectionDescriptionListData": R,
                                           "electricalConnectionParameterDescriptionListData": R}),
    (7, "Measurement", "server", {"measurementDescriptionListData": R, "measurementConstraintsListData": R,
                                  "measurementListData": R}),
    (8, "Bill", "server", {"billDescriptionListData": R, "billConstraintsListData": R, "billListData": RW}),
]
EV_FEATURES = [
    (1, "DeviceConfiguration", "server", {"deviceConfigurationKeyValueDescriptionListData": R,
                                          "deviceConfigurationKeyValueListData": R}),
    (2, "Identification", "server", {"identificationListData": R}),
    (3, "DeviceClassification", "server", {"deviceClassificationManufacturerData": R}),
    (4, "DeviceDiagnosis", "server", {"deviceDiagnosisStateData": R}),
    (5, "ElectricalConnection", "server", {"electricalConnectionDescriptionListData": R,
                                           "electricalConnectionParameterDescriptionListData": R,
                                           "electricalConnectionPermittedValueSetListData": R}),
    (6, "Measurement", "server", {"measurementDescriptionListData": R, "measurementListData": R}),
    (7, "LoadControl", "server", {"loadControlLimitDescriptionListData": R, "loadControlLimitListData": RW}),
    (8, "TimeSeries", "server", {"timeSeriesDescriptionListData": R, "timeSeriesConstraintsListData": R,
                                 "timeSeriesListData": RW}),
    (9, "IncentiveTable", "server", {"incentiveTableConstraintsData": R, "incentiveTableDescriptionData": RW,
                                     "incentiveTableData": RW}),
]


def discovery(with_ev=True, evse_features=EVSE_FEATURES, ev_features=EV_FEATURES, device_type="ChargingStation"):
    ents = [((0,), "DeviceInformation"), (E1, "EVSE")] + ([(EV, "EV")] if with_ev else [])
    feats = [((0,), 0, "NodeManagement", "special", {"nodeManagementDetailedDiscoveryData": R}),
             ((0,), 1, "DeviceClassification", "server", {"deviceClassificationManufacturerData": R})]
    feats += [(E1,) + f for f in evse_features]
    if with_ev:
        feats += [(EV,) + f for f in ev_features]
    fi = []
    for ent, n, t, role, fns in feats:
        d = {"featureAddress": feature_address(GW, ent, n), "featureType": t, "role": role}
        if role != "client":
            d["supportedFunction"] = [{"function": k, "possibleOperations": v} for k, v in fns.items()]
        fi.append({"description": d})
    return {"specificationVersionList": {"specificationVersion": ["1.3.0"]},
            "deviceInformation": {"description": {"deviceAddress": {"device": GW}, "deviceType": device_type,
                                                  "networkFeatureSet": "smart"}},
            "entityInformation": [{"description": {"entityAddress": {"device": GW, "entity": list(e)},
                                                   "entityType": t}} for e, t in ents],
            "featureInformation": fi}


def uc(name, version, scen, sub="release", available=True):
    return {"useCaseName": name, "useCaseVersion": version, "useCaseAvailable": available,
            "scenarioSupport": scen, "useCaseDocumentSubRevision": sub}


def usecase_data(with_ev=True):
    infos = [
        {"address": {"device": GW, "entity": [1]}, "actor": "EVSE",
         "useCaseSupport": [uc("evseCommissioningAndConfiguration", "1.0.1", [1, 2]),
                            uc("evChargingSummary", "1.0.1", [1])]},
        {"address": {"device": GW, "entity": [1]}, "actor": "ControllableSystem",
         "useCaseSupport": [uc("limitationOfPowerConsumption", "1.0.0", [1, 2, 3, 4])]},
        {"address": {"device": GW, "entity": [1]}, "actor": "MonitoredUnit",
         "useCaseSupport": [uc("monitoringOfPowerConsumption", "1.0.0", [1, 2, 3, 4, 5])]},
    ]
    if with_ev:
        infos.append({"address": {"device": GW, "entity": [1, 1]}, "actor": "EV", "useCaseSupport": [
            uc("evCommissioningAndConfiguration", "1.0.1", [1, 2, 3, 4, 5, 6, 7, 8]),
            uc("measurementOfElectricityDuringEvCharging", "1.0.1", [1, 2, 3]),
            uc("overloadProtectionByEvChargingCurrentCurtailment", "1.0.1", [1, 2, 3]),
            uc("optimizationOfSelfConsumptionDuringEvCharging", "1.0.1", [1, 2, 3]),
            uc("evStateOfCharge", "1.0.0", [1], sub="RC1"),
            uc("coordinatedEvCharging", "1.0.1", [1, 2, 3, 4, 5, 6, 7, 8])]})
    return {"useCaseInformation": infos}


def _mdesc(mid, mtype, unit, scope):
    return {"measurementId": mid, "measurementType": mtype, "commodityType": "electricity", "unit": unit,
            "scopeType": scope}


def _mval(mid, number, scale=0):
    return {"measurementId": mid, "valueType": "value", "value": sn(number, scale), "valueSource": "measuredValue"}


def _param(pid, mid, phases, scope=None, ref=None):
    p = {"electricalConnectionId": 0, "parameterId": pid}
    if mid is not None:
        p["measurementId"] = mid
    p["voltageType"] = "ac"
    if phases is not None:
        p["acMeasuredPhases"] = phases
    if ref:
        p["acMeasuredInReferenceTo"] = ref
    if scope:
        p["scopeType"] = scope
    return p


def _pvs(pid, lo, hi, value=None, scale=0):
    s = {}
    if value is not None:
        s["value"] = [value]
    s["range"] = [{"min": sn(lo, scale), "max": sn(hi, scale)}]
    return {"electricalConnectionId": 0, "parameterId": pid, "permittedValueSet": [s]}


def _limit(lid, number, active=False, changeable=True, scale=0):
    return {"limitId": lid, "isLimitChangeable": changeable, "isLimitActive": active, "value": sn(number, scale)}


def _ldesc(lid, cat, mid, scope):
    return {"limitId": lid, "limitType": "maxValueLimit", "limitCategory": cat, "measurementId": mid, "unit": "A",
            "scopeType": scope}


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def station_tables():
    """{(entity, feature type): {function: plain data}} of the synthetic station."""
    evse = {
        "DeviceClassification": {"deviceClassificationManufacturerData": {
            "deviceName": "Gateway", "deviceCode": "GW1", "serialNumber": "0001", "softwareRevision": "0.1",
            "vendorName": "Open", "brandName": "Open"}},
        "DeviceDiagnosis": {"deviceDiagnosisStateData": {"operatingState": "normalOperation"},
                            "deviceDiagnosisHeartbeatData": {"timestamp": now_utc(), "heartbeatCounter": 1,
                                                             "heartbeatTimeout": "PT4S"}},
        "LoadControl": {
            "loadControlLimitDescriptionListData": {"loadControlLimitDescriptionData": [
                {"limitId": 0, "limitType": "signDependentAbsValueLimit", "limitCategory": "obligation",
                 "limitDirection": "consume", "measurementId": 0, "unit": "W", "scopeType": "activePowerLimit"}]},
            "loadControlLimitListData": {"loadControlLimitData": [_limit(0, 4200)]}},
        "DeviceConfiguration": {
            "deviceConfigurationKeyValueDescriptionListData": {"deviceConfigurationKeyValueDescriptionData": [
                {"keyId": 0, "keyName": "failsafeConsumptionActivePowerLimit", "valueType": "scaledNumber",
                 "unit": "W"},
                {"keyId": 1, "keyName": "failsafeDurationMinimum", "valueType": "duration"}]},
            "deviceConfigurationKeyValueListData": {"deviceConfigurationKeyValueData": [
                {"keyId": 0, "value": {"scaledNumber": sn(4200)}, "isValueChangeable": True},
                {"keyId": 1, "value": {"duration": "PT2H"}, "isValueChangeable": True}]}},
        "ElectricalConnection": {
            "electricalConnectionCharacteristicListData": {"electricalConnectionCharacteristicData": [
                {"electricalConnectionId": 0, "parameterId": 0, "characteristicId": 0,
                 "characteristicContext": "entity", "characteristicType": "powerConsumptionNominalMax",
                 "value": sn(11000), "unit": "W"}]},
            "electricalConnectionDescriptionListData": {"electricalConnectionDescriptionData": [
                {"electricalConnectionId": 0, "powerSupplyType": "ac", "acConnectedPhases": 3,
                 "positiveEnergyDirection": "consume"}]},
            "electricalConnectionParameterDescriptionListData": {"electricalConnectionParameterDescriptionData": [
                _param(0, 0, "abc", "acPowerTotal"),
                _param(1, 1, "a"), _param(2, 2, "b"), _param(3, 3, "c"),
                _param(4, 4, "a"), _param(5, 5, "b"), _param(6, 6, "c"),
                _param(7, 7, "abc"), _param(8, 8, "abc"),
                _param(9, 9, "a", ref="neutral"), _param(10, 10, "b", ref="neutral"),
                _param(11, 11, "c", ref="neutral"), _param(12, 12, "ab"),
                _param(13, 13, "abc")]}},
        "Measurement": {
            "measurementDescriptionListData": {"measurementDescriptionData": [
                _mdesc(0, "power", "W", "acPowerTotal"),
                _mdesc(1, "power", "W", "acPower"), _mdesc(2, "power", "W", "acPower"),
                _mdesc(3, "power", "W", "acPower"),
                _mdesc(4, "current", "A", "acCurrent"), _mdesc(5, "current", "A", "acCurrent"),
                _mdesc(6, "current", "A", "acCurrent"),
                _mdesc(7, "energy", "Wh", "acEnergyConsumed"), _mdesc(8, "energy", "Wh", "acEnergyProduced"),
                _mdesc(9, "voltage", "V", "acVoltage"), _mdesc(10, "voltage", "V", "acVoltage"),
                _mdesc(11, "voltage", "V", "acVoltage"), _mdesc(12, "voltage", "V", "acVoltage"),
                _mdesc(13, "frequency", "Hz", "acFrequency")]},
            "measurementListData": {"measurementData": [
                _mval(0, 7245), _mval(1, 2415), _mval(2, 2415), _mval(3, 2415),
                _mval(4, 105, -1), _mval(5, 105, -1), _mval(6, 105, -1),
                _mval(7, 123456), _mval(8, 0), _mval(9, 2301, -1), _mval(10, 2302, -1), _mval(11, 2303, -1),
                _mval(12, 400), _mval(13, 4998, -2)]}},
        "Bill": {
            "billDescriptionListData": {"billDescriptionData": [
                {"billId": 1, "billWriteable": False, "supportedBillType": ["chargingSummary"]}]},
            "billConstraintsListData": {"billConstraintsData": [
                {"billId": 1, "positionCountMin": 0, "positionCountMax": 2}]},
            "billListData": {"billData": [{
                "billId": 1, "billType": "chargingSummary",
                "total": {"timePeriod": {"startTime": "2026-01-01T10:00:00Z", "endTime": "2026-01-01T12:00:00Z"},
                          "value": [{"value": sn(12300), "unit": "Wh"}],
                          "cost": [{"costType": "absolutePrice", "cost": sn(345, -2), "currency": "EUR"}]},
                "position": [
                    {"positionId": 1, "positionType": "gridElectricEnergy",
                     "value": [{"valuePercentage": sn(60)}], "cost": [{"costPercentage": sn(60)}]},
                    {"positionId": 2, "positionType": "selfProducedElectricEnergy",
                     "value": [{"valuePercentage": sn(40)}], "cost": [{"costPercentage": sn(40)}]}]}]}},
    }
    ev = {
        "DeviceConfiguration": {
            "deviceConfigurationKeyValueDescriptionListData": {"deviceConfigurationKeyValueDescriptionData": [
                {"keyId": 1, "keyName": "communicationsStandard", "valueType": "string"},
                {"keyId": 2, "keyName": "asymmetricChargingSupported", "valueType": "boolean"}]},
            "deviceConfigurationKeyValueListData": {"deviceConfigurationKeyValueData": [
                {"keyId": 1, "value": {"string": "iec61851"}, "isValueChangeable": False},
                {"keyId": 2, "value": {"boolean": False}, "isValueChangeable": False}]}},
        "Identification": {"identificationListData": {"identificationData": [
            {"identificationId": 0, "identificationType": "eui48", "identificationValue": "02:00:00:00:00:01"}]}},
        "DeviceClassification": {"deviceClassificationManufacturerData": {}},
        "DeviceDiagnosis": {"deviceDiagnosisStateData": {"operatingState": "normalOperation"}},
        "ElectricalConnection": {
            "electricalConnectionDescriptionListData": {"electricalConnectionDescriptionData": [
                {"electricalConnectionId": 0, "powerSupplyType": "ac", "acConnectedPhases": 3,
                 "positiveEnergyDirection": "consume"}]},
            "electricalConnectionParameterDescriptionListData": {"electricalConnectionParameterDescriptionData": [
                _param(0, 3, "abc", "acPowerTotal"),
                _param(1, 0, "a", ref="neutral"), _param(2, 1, "b", ref="neutral"), _param(3, 2, "c", ref="neutral"),
                _param(4, 4, "a", ref="neutral"), _param(5, 5, "b", ref="neutral"), _param(6, 6, "c", ref="neutral"),
                _param(7, 7, "abc"), _param(8, None, "abc", "acPower")]},
            "electricalConnectionPermittedValueSetListData": {"electricalConnectionPermittedValueSetData": [
                _pvs(0, 1380, 11040, value=sn(0)),
                _pvs(1, 6, 16, value=sn(1, -1)), _pvs(2, 6, 16, value=sn(1, -1)), _pvs(3, 6, 16, value=sn(1, -1)),
                _pvs(8, 4140, 11040)]}},
        "Measurement": {
            "measurementDescriptionListData": {"measurementDescriptionData": [
                _mdesc(0, "current", "A", "acCurrent"), _mdesc(1, "current", "A", "acCurrent"),
                _mdesc(2, "current", "A", "acCurrent"), _mdesc(3, "power", "W", "acPowerTotal"),
                _mdesc(4, "power", "W", "acPower"), _mdesc(5, "power", "W", "acPower"),
                _mdesc(6, "power", "W", "acPower"), _mdesc(7, "energy", "Wh", "charge"),
                {"measurementId": 8, "measurementType": "percentage", "commodityType": "electricity", "unit": "pct",
                 "scopeType": "stateOfCharge"}]},
            "measurementListData": {"measurementData": [
                _mval(0, 105, -1), _mval(1, 105, -1), _mval(2, 105, -1), _mval(3, 7245),
                _mval(4, 2415), _mval(5, 2415), _mval(6, 2415), _mval(7, 1234), _mval(8, 57)]}},
        "LoadControl": {
            "loadControlLimitDescriptionListData": {"loadControlLimitDescriptionData": [
                _ldesc(0, "obligation", 0, "overloadProtection"), _ldesc(1, "obligation", 1, "overloadProtection"),
                _ldesc(2, "obligation", 2, "overloadProtection"),
                _ldesc(3, "recommendation", 0, "selfConsumption"), _ldesc(4, "recommendation", 1, "selfConsumption"),
                _ldesc(5, "recommendation", 2, "selfConsumption")]},
            "loadControlLimitListData": {"loadControlLimitData": [_limit(i, 16) for i in range(6)]}},
        "TimeSeries": {
            "timeSeriesDescriptionListData": {"timeSeriesDescriptionData": [
                {"timeSeriesId": 1, "timeSeriesType": "singleDemand", "timeSeriesWriteable": False, "unit": "Wh"},
                {"timeSeriesId": 2, "timeSeriesType": "constraints", "timeSeriesWriteable": True,
                 "updateRequired": True, "unit": "W"},
                {"timeSeriesId": 3, "timeSeriesType": "plan", "timeSeriesWriteable": False, "unit": "W"}]},
            "timeSeriesConstraintsListData": {"timeSeriesConstraintsData": [
                {"timeSeriesId": 2, "slotCountMin": 1, "slotCountMax": 3, "slotDurationMin": "PT1M",
                 "slotDurationMax": "PT24H", "slotDurationStepSize": "PT1S"}]},
            "timeSeriesListData": {"timeSeriesData": [
                {"timeSeriesId": 1, "timePeriod": {"startTime": "PT0S"}, "timeSeriesSlot": [
                    {"timeSeriesSlotId": 0, "duration": "PT8H", "minValue": sn(0), "value": sn(20000),
                     "maxValue": sn(40000)}]},
                {"timeSeriesId": 3, "timePeriod": {"startTime": "PT0S"}, "timeSeriesSlot": [
                    {"timeSeriesSlotId": 0, "duration": "PT1H", "value": sn(11000)},
                    {"timeSeriesSlotId": 1, "duration": "PT2H", "value": sn(4000)}]}]}},
        "IncentiveTable": {
            "incentiveTableDescriptionData": {"incentiveTableDescription": [{
                "tariffDescription": {"tariffId": 0, "tariffWriteable": True, "updateRequired": True,
                                      "scopeType": "simpleIncentiveTable"}}]},
            "incentiveTableConstraintsData": {"incentiveTableConstraints": [{
                "tariff": {"tariffId": 0}, "incentiveSlotConstraints": {"slotCountMin": 1, "slotCountMax": 24}}]},
            "incentiveTableData": {"incentiveTable": []}},
    }
    out = {}
    for ent, tbl in ((E1, evse), (EV, ev)):
        for ftype, fns in tbl.items():
            out[(ent, ftype)] = fns
    return out


def synthetic(with_ev=True, tables=None, disc=None, ucd=None, raw=False):
    """RemoteData of the synthetic station; values go through the wire dialect like real replies
    (``raw``: stored as given, for values the dialect cannot carry)."""
    remote = parse_detailed_discovery(wire(disc or discovery(with_ev)))
    remote.use_cases = parse_use_cases(wire(ucd or usecase_data(with_ev)), GW)
    d = RemoteData(remote)
    for (ent, ftype), fns in (tables or station_tables()).items():
        if not with_ev and ent == EV:
            continue
        for fn, data in fns.items():
            d.put(ent, ftype, fn, data if raw else wire(data))
    return d


# ------------------------------------------------------------------------------------------------
# availability (eebus-go useCaseDataUpdate)

def test_every_use_case_available_on_the_synthetic_station():
    d = synthetic()
    want = {"evsecc": E1, "evcc": EV, "evcem": EV, "opev": EV, "oscev": EV, "evsoc": EV, "cevc": EV, "lpc": E1,
            "mpc": E1, "evcs": E1}
    for cls in ALL_USE_CASES:
        u = cls(d)
        assert u.available() == want[u.key], (u.label, u.check())
        assert "available" in u.check()[0] and "NOT" not in u.check()[0]
        assert u.summaries() and u.warnings == [], (u.label, u.warnings)
    assert CEVC(d).entity_scenarios() == {EV: [1, 2, 3, 4, 6, 8]}   # 5, 7 are not eebus-go's
    assert MPC(d).entity_scenarios() == {E1: [1, 2, 3, 4, 5]}
    # without the EV only the station's own use cases remain
    d = synthetic(with_ev=False)
    assert [c.key for c in ALL_USE_CASES if c(d).available()] == ["evsecc", "lpc", "mpc", "evcs"]
    assert EVCC(d).check() == ["EVCC (evCommissioningAndConfiguration 1.0.1): not announced by the station"]


def test_availability_rules_of_eebus_go():
    # a second server feature of the same type breaks the exact set match (spine.md 15.11)
    feats = EV_FEATURES + [(10, "LoadControl", "server", {"loadControlLimitListData": RW})]
    d = synthetic(disc=discovery(ev_features=feats))
    assert OPEV(d).entity_scenarios() == {EV: [2, 3]} and OPEV(d).available() is None
    assert "scenario 1: several LoadControl servers on 1.1" in OPEV(d).check()[0]
    # a missing feature
    feats = [f for f in EV_FEATURES if f[1] != "ElectricalConnection"]
    d = synthetic(disc=discovery(ev_features=feats))
    assert OPEV(d).available() is None
    assert "scenario 1: no ElectricalConnection server on 1.1" in OPEV(d).check()[0]
    assert EVCC(d).entity_scenarios() == {EV: [1, 2, 3, 4, 5, 7, 8]} and EVCC(d).available() == EV
    # useCaseAvailable false: eebus-go skips the entry
    ucd = usecase_data()
    ucd["useCaseInformation"][3]["useCaseSupport"][2]["useCaseAvailable"] = False
    d = synthetic(ucd=ucd)
    assert OPEV(d).entity_scenarios() == {} and OPEV(d).available() is None
    assert "useCaseAvailable false" in OPEV(d).check()[0]
    # an EV actor on the EVSE address [1] is mapped to [1,1] (Porsche PMCP)
    ucd = usecase_data()
    ucd["useCaseInformation"][3]["address"]["entity"] = [1]
    assert OPEV(synthetic(ucd=ucd)).available() == EV
    # no address at all: every entity is checked
    ucd = usecase_data()
    for info in ucd["useCaseInformation"]:
        del info["address"]
    d = synthetic(ucd=ucd)
    assert OPEV(d).available() == EV and LPC(d).available() == E1
    # a mandatory scenario not announced
    ucd = usecase_data()
    ucd["useCaseInformation"][3]["useCaseSupport"][2]["scenarioSupport"] = [1, 2]
    d = synthetic(ucd=ucd)
    assert OPEV(d).entity_scenarios() == {EV: [1, 2]} and OPEV(d).available() is None
    assert "mandatory scenario 3 not announced" in OPEV(d).check()[0]
    # wrong actor for the use case
    ucd = usecase_data()
    ucd["useCaseInformation"][1]["actor"] = "EnergyGuard"
    assert "with actor EnergyGuard (expected ControllableSystem)" in LPC(synthetic(ucd=ucd)).check()[0]


def test_captured_evse_simulator_availability_and_plug_out():
    d = RemoteData()
    for n in ("20_evsesim_reply_detaileddiscovery_evse_only.raw.json",
              "21_evsesim_notify_usecasedata_with_ev.raw.json"):
        d.feed(cap(n))
    # the use-case notify came before the EV entity: nothing is available on it yet
    assert EVCC(d).available() is None and EVSECC(d).available() == E1
    assert d.feed(cap("22_evsesim_notify_detaileddiscovery_ev_added.raw.json")) == [("added", EV, None, None)]
    for cls, ok in ((EVCC, True), (EVCEM, True), (OPEV, True), (OSCEV, True), (EVSOC, False), (CEVC, False)):
        assert (cls(d).available() == EV) is ok, cls.label
    d.feed(cap("23_evsesim_reply_loadcontrol_limitlist.raw.json"))
    assert d.has(EV, "LoadControl", "loadControlLimitListData")
    # no deviceDiagnosisStateData from this EV: eebus-go reports it as not connected (spine.md 15.3)
    assert EVCC(d).connected() is False and EVCC(d).charge_state() is None
    d.put(EV, "DeviceDiagnosis", "deviceDiagnosisStateData", {"operatingState": "normalOperation"})
    assert EVCC(d).connected() is True and EVCC(d).charge_state() == "active"
    assert d.feed(cap("27_evsesim_notify_detaileddiscovery_ev_removed.raw.json")) == [("removed", EV, None, None)]
    assert not any(k[0] == EV for k in d.values)
    assert EVCC(d).connected() is False and EVCC(d).charge_state() == "unplugged"


def test_real_wallbox_fixtures_availability():
    # Elli: use cases with a device-level address, EV added by a partial notify
    d = RemoteData()
    d.feed(cap("spine-go_spine_wallbox_detaileddiscoverydata_recv_reply.json"))
    d.feed(cap("spine-go_spine_wallbox_detaileddiscoverydata_recv_notify.json"))
    d.feed(cap("spine-go_spine_nm_usecaseinformationlistdata_recv_reply.json"))
    assert EV in d.remote.entities
    assert {c.label for c in ALL_USE_CASES if c(d).available()} == {"EVCC", "EVCEM", "OPEV", "OSCEV", "CEVC"}
    # this (anonymised) EVSE entity has no server features for EVSECC: eebus-go finds no scenario
    assert EVSECC(d).entity_scenarios() == {E1: []}
    assert "scenario 2: no DeviceDiagnosis server on 1" in EVSECC(d).check()[0]
    assert EVCS(d).entity_scenarios() == {E1: []}   # the Elli EVSE entity has no Bill server
    # Porsche: full notifies, feature addresses without device
    d = RemoteData()
    d.feed(cap("spine-go_spine_wallbox_detaileddiscoverydata_recv_reply_full.json"))
    before = set(d.remote.entities)
    changes = d.feed(cap("spine-go_spine_wallbox_detaileddiscoverydata_recv_notify_full.json"))
    added = [e for c, e, _t, _f in changes if c == "added"]
    assert added and all(e not in before for e in added)
    changes = d.feed(cap("spine-go_spine_wallbox_detaileddiscoverydata_recv_notify_remove_full.json"))
    assert [c for c, _e, _t, _f in changes] == ["removed"] * len(added)


# ------------------------------------------------------------------------------------------------
# EVSECC / EVCC

def test_evsecc_and_evcc_accessors():
    d = synthetic()
    e = EVSECC(d)
    assert e.manufacturer()["deviceName"] == "Gateway" and e.operating_state() == ("normalOperation", "")
    d.put(E1, "DeviceDiagnosis", "deviceDiagnosisStateData", {"operatingState": "failure", "lastErrorCode": "E12"})
    assert e.operating_state() == ("failure", "E12")
    assert ("state", "EVSECC: EVSE failure (E12)") in e.summaries()
    c = EVCC(d)
    assert c.connected() and c.charge_state() == "active" and c.sleeping() is False
    assert c.communication_standard() == "iec61851" and c.asymmetric() is False
    assert c.identifications() == [("eui48", "02:00:00:00:00:01")]
    assert c.manufacturer() == {}           # the EV's empty object came as [] over the wire
    assert c.power_limits() == (1380.0, 11040.0, 0.0)
    d.put(EV, "DeviceDiagnosis", "deviceDiagnosisStateData", {"operatingState": "standby"})
    assert c.sleeping() is True and c.charge_state() == "paused"
    for state, want in (("failure", "error"), ("finished", "finished"), ("off", "unknown")):
        d.put(EV, "DeviceDiagnosis", "deviceDiagnosisStateData", {"operatingState": state})
        assert c.charge_state() == want
    # the EVCC document's spelling is accepted too (deviation U1)
    descs = d.get(EV, "DeviceConfiguration", "deviceConfigurationKeyValueDescriptionListData")
    descs["deviceConfigurationKeyValueDescriptionData"][0]["keyName"] = "communicationStandard"
    assert c.communication_standard() == "iec61851"
    # the key with the wrong value type is "not available"
    descs["deviceConfigurationKeyValueDescriptionData"][0]["valueType"] = "boolean"
    assert c.communication_standard() is None
    # power limits need exactly one set with exactly one range
    pv = d.get(EV, "ElectricalConnection", "electricalConnectionPermittedValueSetListData")
    pv["electricalConnectionPermittedValueSetData"][0]["permittedValueSet"].append({"value": [sn(5)]})
    assert c.power_limits() is None
    # EV stateData missing -> not connected (eebus-go), the entity is still there
    del d.values[(EV, "DeviceDiagnosis")]["deviceDiagnosisStateData"]
    assert not c.connected() and c.charge_state() is None
    texts = [t for _k, t in c.summaries()]
    assert "EVCC: EV entity 1.1 present, not connected for eebus-go yet (no deviceDiagnosisStateData)" in texts


# ------------------------------------------------------------------------------------------------
# EVCEM / EVSOC / MPC

def test_evcem_phase_mapping():
    d = synthetic()
    m = EVCEM(d)
    assert m.phases_connected() == 3
    assert m.current_per_phase() == [10.5, 10.5, 10.5]
    assert m.power_per_phase() == [2415.0, 2415.0, 2415.0]
    assert m.energy_charged() == 1234.0
    assert ("current", "EVCEM: I = 10.5/10.5/10.5 A") in m.summaries()
    # values come in phase order a, b, c whatever the order of the data and parameter lists
    md = d.get(EV, "Measurement", "measurementListData")["measurementData"]
    md[0]["value"], md[2]["value"] = sn(6), sn(8)          # m0 = phase a, m2 = phase c
    md.reverse()
    pd = d.get(EV, "ElectricalConnection", "electricalConnectionParameterDescriptionListData")
    pd["electricalConnectionParameterDescriptionData"].reverse()
    assert m.current_per_phase() == [6.0, 10.5, 8.0]
    # a 1-phase EV: only phase a
    p = pd["electricalConnectionParameterDescriptionData"]
    for x in p:
        if x.get("acMeasuredPhases") in ("b", "c"):
            x["acMeasuredPhases"] = "abc"
    assert m.current_per_phase() == [6.0]
    # a per-phase power parameter without acMeasuredPhases: eebus-go v0.7 panics, we warn
    for x in p:
        if x.get("measurementId") == 4:
            del x["acMeasuredPhases"]
    m.power_per_phase()
    assert any("panics" in w for w in m.warnings)
    assert EVSOC(d).soc() == 57.0 and EVSOC(d).summaries() == [("soc", "EVSOC: SoC 57 %")]


def test_evcem_with_real_wallbox_fixtures():
    """spine-go integration fixtures (1-phase wallbox): current, power, energy on phase a; the partial
    permitted-value notify merges into what is there."""
    d = synthetic()
    for n, ftype in (("spine-go_integration_ec_descriptionListData_recv_reply.json", "ElectricalConnection"),
                     ("spine-go_integration_ec_parameterDescriptionListData_recv_reply.json", "ElectricalConnection"),
                     ("spine-go_integration_m_descriptionListData_recv_reply.json", "Measurement"),
                     ("spine-go_integration_m_measurementListData_recv_notify.json", "Measurement")):
        dg = cap(n)
        d.put(EV, ftype, dg.function, dg.data)
    m = EVCEM(d)
    assert (m.phases_connected(), m.current_per_phase(), m.power_per_phase(), m.energy_charged()) == \
        (1, [5.0], [1185.0], 1825.0)
    dg = cap("spine-go_integration_ec_permittedvaluesetlistdata_recv_notify_partial.json")
    assert dg.partial
    d.put(EV, "ElectricalConnection", dg.function, dg.data, partial=True)
    sets = d.entries(EV, "ElectricalConnection", dg.function)
    assert [s["parameterId"] for s in sets] == [0, 1, 2, 3, 8]       # merged, ours 0 and 8 kept
    assert scaled(sets[1]["permittedValueSet"][0]["range"][0]["min"]) == 6.0
    assert "value" not in sets[1]["permittedValueSet"][0]               # replaced by the notify's entry
    # OPEV's per-phase current limits only take current parameters (measurement 1 is acCurrent)
    assert OPEV(d).current_limits() == ([6.0], [16.0], [0.0])


def test_mpc_accessors():
    d = synthetic()
    p = MPC(d)
    assert p.power() == 7245.0 and p.power_per_phase() == [2415.0] * 3
    assert p.energy_consumed() == 123456.0 and p.energy_produced() == 0.0
    assert p.current_per_phase() == [10.5] * 3
    assert p.voltage_per_phase() == [230.1, 230.2, 230.3]      # the a-b voltage (phases "ab") drops out
    assert p.frequency() == 49.98
    texts = [t for _k, t in p.summaries()]
    assert texts == ["MPC: P = 7245 W (2415/2415/2415 W)", "MPC: energy consumed 123456 Wh, produced 0 Wh",
                     "MPC: I = 10.5/10.5/10.5 A", "MPC: U = 230.1/230.2/230.3 V", "MPC: f = 49.98 Hz"]
    # positiveEnergyDirection must be consume, else eebus-go returns nothing (spine.md 12.12)
    ec = d.get(E1, "ElectricalConnection", "electricalConnectionDescriptionListData")
    ec["electricalConnectionDescriptionData"][0]["positiveEnergyDirection"] = "produce"
    assert p.power() is None and p.current_per_phase() is None
    assert p.voltage_per_phase() == [230.1, 230.2, 230.3]      # voltage is direction-free
    assert any("positiveEnergyDirection" in w for w in p.warnings)


# ------------------------------------------------------------------------------------------------
# OPEV / OSCEV (spine.md 12.10)

def test_opev_oscev_limits_read_path():
    d = synthetic()
    o = OPEV(d)
    # inactive limits report the phase's permitted maximum
    assert o.limits() == [("a", 16.0, False, True), ("b", 16.0, False, True), ("c", 16.0, False, True)]
    assert o.current_limits() == ([6.0] * 3, [16.0] * 3, [0.1] * 3)
    lim = d.get(EV, "LoadControl", "loadControlLimitListData")["loadControlLimitData"]
    lim[0].update(isLimitActive=True, value=sn(10))
    lim[1].update(isLimitActive=True, value=sn(105, -1))
    lim[2].update(isLimitActive=True, value=sn(8))
    assert [v for _p, v, _a, _c in o.limits()] == [10.0, 10.5, 8.0]
    assert o.summaries()[0] == ("limits", "OPEV: limits 10/10.5/8 A active")
    lim[2].update(isLimitActive=False)
    assert o.summaries()[0][1] == "OPEV: limits 10/10.5/16 A active/active/inactive"
    # OSCEV reads its own limits (3-5)
    lim[3].update(isLimitActive=True, value=sn(6))
    assert OSCEV(d).limits()[0] == ("a", 6.0, True, True)
    # no permitted value set for a phase: that phase is skipped when its limit is inactive
    pv = d.get(EV, "ElectricalConnection", "electricalConnectionPermittedValueSetListData")
    pv["electricalConnectionPermittedValueSetData"] = [s for s in pv["electricalConnectionPermittedValueSetData"]
                                                        if s["parameterId"] != 3]
    assert [p for p, _v, _a, _c in o.limits()] == ["a", "b"]
    # a limit without data: eebus-go gives up
    d.get(EV, "LoadControl", "loadControlLimitListData")["loadControlLimitData"] = lim[1:]
    assert o.limits() is None


def test_opev_write_matches_capture_24_byte_for_byte():
    d = synthetic()
    d.put(EV, "LoadControl", "loadControlLimitListData", cap("23_evsesim_reply_loadcontrol_limitlist.raw.json").data)
    data, partial, notes = OPEV(d).limits_write([10, 10, 10])
    assert partial and notes == []
    ref = cap("24_cem_write_opev_loadcontrol_limitlist.raw.json")
    assert wire(build_cmd("loadControlLimitListData", data, partial=True)) == ref.cmd
    body = build_datagram(ref.source, ref.destination, "write", build_cmd("loadControlLimitListData", data,
                                                                         partial=True), 31, ack_request=True)
    assert data_message(body) == b"\x02" + cap_text("24_cem_write_opev_loadcontrol_limitlist.raw.json").encode()
    # after the station's notify (capture 25) the read path reports the written limits
    d.put(EV, "LoadControl", "loadControlLimitListData", cap("25_evsesim_notify_loadcontrol_after_write.raw.json").data)
    assert OPEV(d).limits() == [(p, 10.0, True, True) for p in "abc"]
    assert OSCEV(d).limits() == [(p, 16.0, False, True) for p in "abc"]


def test_opev_write_rules():
    d = synthetic()
    o = OPEV(d)

    def entries(data):
        return [(e["limitId"], e["isLimitActive"], scaled(e["value"])) for e in data["loadControlLimitData"]]

    # below min with a discrete value -> that value (pause); above max -> max; in range unchanged
    data, partial, notes = o.limits_write([3, 20, 10.5])
    assert entries(data) == [(0, True, 0.1), (1, True, 16.0), (2, True, 10.5)]
    assert data["loadControlLimitData"][0]["value"] == {"number": 1, "scale": -1}
    assert len(notes) == 2 and "adjusted to 0.1 A" in notes[0]
    # without a discrete value a request below min is sent unchanged
    pv = d.get(EV, "ElectricalConnection", "electricalConnectionPermittedValueSetListData")
    for s in pv["electricalConnectionPermittedValueSetData"]:
        s["permittedValueSet"][0].pop("value", None)
    data, _p, _n = o.limits_write([3, 0, 6])
    assert entries(data) == [(0, True, 3.0), (1, True, 0.0), (2, True, 6.0)]
    # OSCEV writes its recommendation limits with the same phase mapping
    data, _p, _n = OSCEV(d).limits_write([7, 7, 7], active=[True, False, True])
    assert entries(data) == [(3, True, 7.0), (4, False, 7.0), (5, True, 7.0)]
    # a limit that is not changeable is skipped
    d.get(EV, "LoadControl", "loadControlLimitListData")["loadControlLimitData"][1]["isLimitChangeable"] = False
    data, _p, notes = o.limits_write([10, 10, 10])
    assert [e[0] for e in entries(data)] == [0, 2] and "limit 1 is not changeable" in notes[0]
    # first parameter per phase wins: a power parameter listed before the current one hides the phase
    pd = d.get(EV, "ElectricalConnection", "electricalConnectionParameterDescriptionListData")
    lst = pd["electricalConnectionParameterDescriptionData"]
    lst.insert(0, lst.pop(4))                     # parameter 4 (power, phase a) first
    data, _p, notes = o.limits_write([10, 10, 10])
    assert [e[0] for e in entries(data)] == [2] and "no limit for measurement 4" in notes[0]
    # nothing writable at all
    d.get(EV, "LoadControl", "loadControlLimitListData")["loadControlLimitData"][2]["isLimitChangeable"] = False
    with pytest.raises(WriteError):
        o.limits_write([10, 10, 10])
    # a station without partial writes gets the merged full list (Porsche)
    feats = [f if f[1] != "LoadControl" else (7, "LoadControl", "server", {
        "loadControlLimitDescriptionListData": R, "loadControlLimitListData": {"read": {}, "write": {}}})
        for f in EV_FEATURES]
    d = synthetic(disc=discovery(ev_features=feats))
    data, partial, _n = OPEV(d).limits_write([10, 10, 10])
    assert not partial and [(e["limitId"], e["isLimitActive"], scaled(e["value"]), e["isLimitChangeable"])
                            for e in data["loadControlLimitData"]] == \
        [(0, True, 10.0, True), (1, True, 10.0, True), (2, True, 10.0, True)] + [(i, False, 16.0, True) for i in
                                                                                 (3, 4, 5)]


# ------------------------------------------------------------------------------------------------
# LPC

def test_lpc_from_captures_and_write_matches_capture_10():
    d = RemoteData()
    for n in ("02_evse_reply_detaileddiscovery.raw.json", "04_evse_reply_usecasedata.raw.json",
              "06_evse_reply_loadcontrol_limitdescription.raw.json", "07_evse_reply_loadcontrol_limitlist.raw.json",
              "08_evse_reply_deviceconfig_keyvaluelist.raw.json", "09_evse_notify_heartbeat.raw.json"):
        d.feed(cap(n))
    lpc = LPC(d)
    assert lpc.available() == E1
    assert lpc.consumption_limit() == {"value": 4200.0, "active": False, "changeable": True, "duration": None}
    # the key descriptions of capture 08 are given in spine.md 12.9 (plain)
    d.put(E1, "DeviceConfiguration", "deviceConfigurationKeyValueDescriptionListData",
          {"deviceConfigurationKeyValueDescriptionData": [
              {"keyId": 0, "keyName": "failsafeConsumptionActivePowerLimit", "valueType": "scaledNumber",
               "unit": "W"}, {"keyId": 1, "keyName": "failsafeDurationMinimum", "valueType": "duration"}]})
    assert lpc.failsafe_limit() == 4200.0 and lpc.failsafe_duration() == 7200.0
    assert lpc.heartbeat()[1]["heartbeatCounter"] == 2
    # capture 09's timestamp lies in 2026-11: judged against now, like eebus-go
    ts = datetime.datetime(2026, 11, 21, 19, 56, 0, tzinfo=datetime.timezone.utc)
    assert lpc.heartbeat_within(now=ts) and not lpc.heartbeat_within(now=ts + datetime.timedelta(minutes=3))
    data, partial, delete = lpc.limit_write(100, True, 3723)
    assert partial and delete is None
    ref = cap("10_cb_write_loadcontrol_limitlist.raw.json")
    cmd = build_cmd("loadControlLimitListData", data, partial=True)
    assert wire(cmd) == ref.cmd
    body = build_datagram(ref.source, ref.destination, "write", cmd, 22, ack_request=True)
    assert data_message(body) == b"\x02" + cap_text("10_cb_write_loadcontrol_limitlist.raw.json").encode()
    # the station's notify (capture 11): active with a duration
    d.feed(cap("11_evse_notify_loadcontrol_limitlist.raw.json"))
    assert lpc.consumption_limit() == {"value": 100.0, "active": True, "changeable": True, "duration": 3723.0}
    assert ("limit", "LPC: limit 100 W active for 1h2m3s") in lpc.summaries()
    # a new limit without duration removes the old one with eebus-go's delete filter (spine.md 3.2)
    data, partial, delete = lpc.limit_write(4200, True)
    cmd = build_cmd("loadControlLimitListData", data, partial=True, delete=delete)
    assert cmd["filter"] == [{"cmdControl": {"delete": {}}, "loadControlLimitListDataSelectors": {"limitId": 0},
                              "loadControlLimitDataElements": {"timePeriod": {}}}, {"cmdControl": {"partial": {}}}]
    assert cmd["loadControlLimitListData"] == {"loadControlLimitData": [
        {"limitId": 0, "isLimitActive": True, "value": {"number": 4200, "scale": 0}}]}
    assert lpc.limit_write(4200, True, delete_duration=False)[2] is None


def test_lpc_accessors_and_writers_on_synthetic_data():
    d = synthetic()
    lpc = LPC(d)
    assert lpc.nominal_max() == 11000.0
    assert lpc.heartbeat_within()
    texts = dict(lpc.summaries())
    assert texts["limit"] == "LPC: limit 4200 W inactive"
    assert texts["failsafe"] == "LPC: failsafe 4200 W for at least 2h"
    assert texts["nominal_max"] == "LPC: nominal max 11000 W"
    assert texts["heartbeat"] == "LPC: station heartbeat (timeout PT4S)"
    lim = d.get(E1, "LoadControl", "loadControlLimitListData")["loadControlLimitData"][0]
    lim.update(isLimitActive=True, timePeriod={"endTime": "PT2H"})
    assert dict(lpc.summaries())["limit"] == "LPC: limit 4200 W active for 2h"
    # failsafe writes: one per key, as eebus-go
    data, partial = lpc.failsafe_limit_write(3000)
    assert partial and data == {"deviceConfigurationKeyValueData": [
        {"keyId": 0, "value": {"scaledNumber": {"number": 3000, "scale": 0}}}]}
    data, partial = lpc.failsafe_duration_write(7200)
    assert data == {"deviceConfigurationKeyValueData": [{"keyId": 1, "value": {"duration": "PT2H"}}]}
    with pytest.raises(WriteError):
        lpc.failsafe_duration_write(3600)
    data, _p = lpc.failsafe_duration_write(3600, check=False)
    assert data["deviceConfigurationKeyValueData"][0]["value"] == {"duration": "PT1H"}
    assert lpc.failsafe_duration_write(86400)[0]["deviceConfigurationKeyValueData"][0]["value"] == \
        {"duration": "PT24H"}
    # not changeable -> eebus-go refuses to write
    lim["isLimitChangeable"] = False
    with pytest.raises(WriteError):
        lpc.limit_write(1000)
    # a station announcing full writes only gets the whole key list
    feats = [f if f[1] != "DeviceConfiguration" else (5, "DeviceConfiguration", "server", {
        "deviceConfigurationKeyValueDescriptionListData": R,
        "deviceConfigurationKeyValueListData": {"read": {}, "write": {}}}) for f in EVSE_FEATURES]
    d = synthetic(disc=discovery(evse_features=feats))
    data, partial = LPC(d).failsafe_limit_write(3000)
    assert not partial and data["deviceConfigurationKeyValueData"] == [
        {"keyId": 0, "value": {"scaledNumber": {"number": 3000, "scale": 0}}, "isValueChangeable": True},
        {"keyId": 1, "value": {"duration": "PT2H"}, "isValueChangeable": True}]
    # energy manager device type -> contractual nominal max is what eebus-go looks for
    d = synthetic(disc=discovery(device_type="EnergyManagementSystem"))
    assert LPC(d).nominal_max() is None


# ------------------------------------------------------------------------------------------------
# CEVC / EVCS

def test_cevc_reads_and_writes():
    d = synthetic()
    c = CEVC(d)
    assert c.energy_demand() == {"min": 0.0, "opt": 20000.0, "max": 40000.0, "duration_until_start": 0.0,
                                 "duration_until_end": 28800.0}
    assert c.charge_strategy() == "timedCharging"
    assert c.time_slot_constraints() == {"min_slots": 1, "max_slots": 3, "min_slot_duration": 60.0,
                                         "max_slot_duration": 86400.0, "slot_duration_step": 1.0}
    assert c.incentive_constraints() == {"min_slots": 1, "max_slots": 24}
    assert c.charge_plan() == [(0.0, 3600.0, 11000.0), (3600.0, 10800.0, 4000.0)]
    assert c.update_required() == (True, True)
    data = c.power_limits_write([(3600, 11000), (1800, 4200.5)])
    assert data == {"timeSeriesData": [{
        "timeSeriesId": 2, "timePeriod": {"startTime": "PT0S", "endTime": "PT1H30M"},
        "timeSeriesSlot": [
            {"timeSeriesSlotId": 0, "timePeriod": {"startTime": "P0D"}, "maxValue": {"number": 11000, "scale": 0}},
            {"timeSeriesSlotId": 1, "timePeriod": {"startTime": "PT1H", "endTime": "PT1H30M"},
             "maxValue": {"number": 42005, "scale": -1}}]}]}
    # eebus-go's default: 7 days at the acPower parameter's permitted maximum
    data = c.power_limits_write([])
    slot = data["timeSeriesData"][0]["timeSeriesSlot"]
    assert slot == [{"timeSeriesSlotId": 0, "timePeriod": {"startTime": "P0D", "endTime": "PT168H"},
                     "maxValue": {"number": 11040, "scale": 0}}]
    with pytest.raises(WriteError):
        c.power_limits_write([(60, 1000)] * 4)          # more than slotCountMax
    data = c.incentives_write([(3600, 0.25), (7200, 0.3)])
    assert data == {"incentiveTable": [{"tariff": {"tariffId": 0}, "incentiveSlot": [
        {"timeInterval": {"startTime": {"relative": "P0D"}},
         "tier": [{"tier": {"tierId": 0}, "boundary": [{"boundaryId": 0, "lowerBoundaryValue": sn(0)}],
                   "incentive": [{"incentiveId": 0, "value": {"number": 25, "scale": -2}}]}]},
        {"timeInterval": {"startTime": {"relative": "PT1H"}, "endTime": {"relative": "PT3H"}},
         "tier": [{"tier": {"tierId": 0}, "boundary": [{"boundaryId": 0, "lowerBoundaryValue": sn(0)}],
                   "incentive": [{"incentiveId": 0, "value": {"number": 3, "scale": -1}}]}]}]}]}
    desc = c.incentive_descriptions_write()
    tier = desc["incentiveTableDescription"][0]["tier"][0]
    assert desc["incentiveTableDescription"][0]["tariffDescription"]["scopeType"] == "simpleIncentiveTable"
    assert tier["tierDescription"] == {"tierId": 0, "tierType": "dynamicCost"}
    assert tier["incentiveDescription"] == [{"incentiveId": 0, "incentiveType": "absoluteCost", "currency": "EUR"}]
    texts = dict(c.summaries())
    assert texts["demand"] == "CEVC: demand min 0 / opt 20000 / max 40000 Wh, timedCharging, departure in 8h"
    assert texts["update_required"] == "CEVC: EV asks for power limits and incentives"
    # what the EV shows back after the write
    d.put(EV, "TimeSeries", "timeSeriesListData", c.power_limits_write([(3600, 11000), (1800, 4200)]), partial=True)
    # eebus-go's ChargePlanConstraints reads slot times as absolute times: relative ones count as 0 s
    assert c.charge_plan_constraints() == [(0.0, 11000.0), (0.0, 4200.0)]
    d.get(EV, "TimeSeries", "timeSeriesListData")["timeSeriesData"][-1]["timeSeriesSlot"] = [
        {"timeSeriesSlotId": 0, "duration": "PT1H", "maxValue": sn(11000)}]
    assert c.charge_plan_constraints() == [(3600.0, 11000.0)]


def test_evcs_bills():
    d = synthetic()
    b = EVCS(d)
    assert b.bills() == [{"id": 1, "type": "chargingSummary", "start": "2026-01-01T10:00:00Z",
                          "end": "2026-01-01T12:00:00Z", "energy": 12300.0, "cost": 3.45, "currency": "EUR",
                          "grid": 60.0, "self": 40.0}]
    assert b.summaries() == [("bill 1", "EVCS: bill 1 12300 Wh, 3.45 EUR (grid 60 %, self-produced 40 %) "
                                        "2026-01-01T10:00:00Z - 2026-01-01T12:00:00Z")]
    # spine-go's model has a single value object instead of a list
    bill = d.get(E1, "Bill", "billListData")["billData"][0]
    bill["total"]["value"] = {"value": sn(5), "unit": "Wh"}
    assert b.bills()[0]["energy"] == 5.0


# ------------------------------------------------------------------------------------------------
# value helpers (hypothesis) and robustness against odd station data (mutation corpus)

@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=-10 ** 9, max_value=10 ** 9), st.integers(min_value=0, max_value=4))
# 128.004 * 1000 = 128003.99999999999 -> 128003 (eebus-go truncates); 128.003 and 128.004 in binary are
# 0.0010000000000047748 apart, one unit of the last decimal plus their float rounding
@example(n=128004, decimals=3)
# 0.290 is 0.29: two decimals, 0.29 * 100 = 28.999999999999996 -> 28, one unit of the second decimal
@example(n=290, decimals=3)
def test_scaled_number_round_trip(n, decimals):
    x = n / 10 ** decimals
    s = scaled_number(x)
    assert s["scale"] <= 0 and s["scale"] >= -4
    # exact decimal arithmetic: number * 10^scale is the value truncated toward zero at the chosen scale,
    # at most one unit of its last decimal below the value (the float product value * 10^n may land just
    # under the integer, as eebus-go's int64(value * math.Pow(10, n)) does)
    value, got = decimal.Decimal(n).scaleb(-decimals), decimal.Decimal(s["number"]).scaleb(s["scale"])
    assert 0 <= abs(value) - abs(got) <= decimal.Decimal(10) ** s["scale"] and value * got >= 0
    # in floats that unit is 10^scale (not 10^-decimals: 0.290 has two decimals), plus the binary
    # rounding of the two values (half an ulp each)
    assert abs(scaled(s) - x) <= 10 ** s["scale"] + math.ulp(x)


def test_scaled_number_is_eebus_go_s():
    assert scaled_number(10) == {"number": 10, "scale": 0}
    assert scaled_number(10.5) == {"number": 105, "scale": -1}
    assert scaled_number(0.1) == {"number": 1, "scale": -1}
    assert scaled_number(0.000012) == {"number": 0, "scale": 0}     # at most 4 decimals
    # NewScaledNumberType truncates value * 10^n: 4510.61 * 100 = 451060.99999... -> 451060
    assert scaled_number(4510.61) == {"number": 451060, "scale": -2}


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=3276 * 3600))
def test_duration_round_trip(secs):
    text = format_duration(secs)
    assert parse_duration(text) == secs
    assert text == "P0D" or (text.startswith("PT") and "D" not in text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20))
def test_parse_duration_never_raises(text):
    v = parse_duration(text)
    assert v is None or isinstance(v, float)


def _mutations(value, rng, n):
    """Yield n copies of ``value`` with one random change each: a member deleted, a scalar replaced by
    another type, a list emptied, an object replaced by []."""
    paths = []

    def walk(v, path):
        if isinstance(v, dict):
            for k, x in v.items():
                paths.append(path + (k,))
                walk(x, path + (k,))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                paths.append(path + (i,))
                walk(x, path + (i,))
    walk(value, ())
    odd = [None, [], {}, "x", -1, 1.5, True, {"number": "1"}, [{"a": 1}], 10 ** 12]
    for _ in range(n):
        if not paths:
            yield copy.deepcopy(rng.choice(odd))
            continue
        v = copy.deepcopy(value)
        path = rng.choice(paths)
        parent = v
        for p in path[:-1]:
            parent = parent[p]
        if rng.random() < 0.3 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = rng.choice(odd)
        yield v


def test_accessors_survive_mutated_station_data():
    """Odd or broken station data must never crash the test CEM: every accessor returns a value or None
    (bounded: a fixed number of mutations per function)."""
    rng = random.Random(5)
    tables = station_tables()
    accessors = []
    for cls in ALL_USE_CASES:
        for name in dir(cls):
            if name.startswith("_") or name in ("start", "check", "entity", "available", "entity_scenarios",
                                                 "mpc", "mgr", "data", "warnings", "our_scenarios", "mandatory"):
                continue
            attr = getattr(cls, name)
            if callable(attr) and not name.startswith("write_") and not name.endswith("_write"):
                accessors.append((cls, name))
    count = 0
    for (ent, ftype), fns in tables.items():
        for fn, data in fns.items():
            for mutated in _mutations(data, rng, 12):
                t = copy.deepcopy(tables)
                t[(ent, ftype)][fn] = mutated
                d = synthetic(tables=t, raw=True)
                for cls, name in accessors:
                    getattr(cls(d), name)()
                    count += 1
                for cls in ALL_USE_CASES:
                    cls(d).summaries()
    assert count > 10000


def test_filter_semantics_of_spine_go():
    assert matches({"a": 1, "b": 2}, {"a": 1})
    assert matches({"a": 1}, {"a": None})              # an unset filter field matches anything
    assert not matches({"b": 2}, {"a": 1})             # a set filter field must be present
    assert not matches({"a": 2}, {"a": 1})


# ------------------------------------------------------------------------------------------------
# SpineCem level: our announcement, our heartbeat server, the start sequences (stub transport)

class StubPeer:
    """Stands in for the SHIP connection: records what the CEM sends and lets the test answer it."""

    def __init__(self):
        self.sent = []
        self.closed = False
        self.identity = None
        self.on_send = None

    async def send_datagram(self, plain):
        dg = parse_datagram(plain)
        self.sent.append(dg)
        if self.on_send is not None:
            self.on_send(dg)

    async def close(self):
        self.closed = True
        return True


class Responder:
    """Answers the CEM's reads from the synthetic tables, its calls and writes with result 0 (a write
    also updates the table and sends the notify first, like spine-go)."""

    def __init__(self, cem, peer, with_ev=True):
        self.cem = cem
        self.tables = {}
        for (ent, ftype), fns in station_tables().items():
            if with_ev or ent != EV:
                self.tables[(ent, ftype)] = copy.deepcopy(fns)
        self.disc = discovery(with_ev)
        self.ucd = usecase_data(with_ev)
        self.types = {}
        for fi in self.disc["featureInformation"]:
            a = fi["description"]["featureAddress"]
            self.types[(tuple(a["entity"]), a["feature"])] = fi["description"]["featureType"]
        self.counter = 1000
        self.requests = []
        peer.on_send = self._on_send

    def _on_send(self, dg):
        if dg.classifier in ("read", "write", "call"):
            self.requests.append(dg)
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.answer(dg)))

    def _dg(self, src, dst, classifier, cmd, ref=None):
        self.counter += 1
        src = dict(src)
        src["device"] = GW
        return parse_datagram(build_datagram(src, dst, classifier, cmd, self.counter, reference=ref))

    async def inject(self, src_key, classifier, cmd, ref=None):
        src = feature_address(GW, src_key[0], src_key[1])
        dst = feature_address(self.cem.device, (0,), 0)
        await self.cem._handle(self._dg(src, dst, classifier, cmd, ref))

    async def answer(self, req):
        ent, f = req.destination_key
        fn = req.function
        if req.classifier == "read":
            if (ent, f) == ((0,), 0):
                data = {"nodeManagementDetailedDiscoveryData": self.disc,
                        "nodeManagementUseCaseData": self.ucd}.get(fn)
            else:
                data = self.tables.get((ent, self.types.get((ent, f))), {}).get(fn)
            if data is None:
                cmd = {"resultData": {"errorNumber": 6}}
                await self.cem._handle(self._dg(req.destination, req.source, "result", cmd, req.msg_counter))
                return
            await self.cem._handle(self._dg(req.destination, req.source, "reply", {fn: wire(data)}, req.msg_counter))
            return
        if req.classifier == "write":
            key = (ent, self.types.get((ent, f)))
            tbl = self.tables[key]
            rd = RemoteData()
            rd.put(ent, key[1], fn, tbl.get(fn, {}))
            tbl[fn] = rd.put(ent, key[1], fn, req.data, partial=req.partial)
            await self.cem._handle(self._dg(req.destination, req.source, "notify", {fn: wire(tbl[fn])}))
        await self.cem._handle(self._dg(req.destination, req.source, "result", {"resultData": {"errorNumber": 0}},
                                        req.msg_counter))


run = runner(15.0)


def test_our_use_case_announcement_and_client_features():
    async def go():
        peer = StubPeer()
        cem = SpineCem(peer, start=False, device="d:_i:TestCEM_1")
        CemUseCases(cem, heartbeat=None)
        ucs = parse_use_cases(cem.use_case_data())
        got = {(u.actor, u.name, u.version, tuple(u.scenarios), u.sub_revision) for u in ucs}
        assert got == {
            ("CEM", "evseCommissioningAndConfiguration", "1.0.1", (1, 2), "release"),
            ("CEM", "evCommissioningAndConfiguration", "1.0.1", (1, 2, 3, 4, 5, 6, 7, 8), "release"),
            ("CEM", "measurementOfElectricityDuringEvCharging", "1.0.1", (1, 2, 3), "release"),
            ("CEM", "overloadProtectionByEvChargingCurrentCurtailment", "1.0.1", (1, 2, 3), "release"),
            ("CEM", "optimizationOfSelfConsumptionDuringEvCharging", "1.0.1", (1, 2, 3), "release"),
            ("CEM", "evStateOfCharge", "1.0.0", (1,), "RC1"),
            ("EnergyBroker", "coordinatedEvCharging", "1.0.1", (1, 2, 3, 4, 6, 8), "release"),
            ("EnergyGuard", "limitationOfPowerConsumption", "1.0.0", (1, 2, 3, 4), "release"),
            ("MonitoringAppliance", "monitoringOfPowerConsumption", "1.0.0", (1, 2, 3, 4, 5), "release"),
            ("EnergyBroker", "evChargingSummary", "1.0.1", (1,), "release")}
        assert all(u.entity == E1 and u.available for u in ucs)
        assert len(ucs) == len(our_use_case_table())
        rd = parse_detailed_discovery(cem.detailed_discovery_data())
        clients = {f.type for f in rd.find(role="client", entity=E1)}
        assert clients >= {"LoadControl", "Measurement", "ElectricalConnection", "DeviceConfiguration",
                           "DeviceDiagnosis", "DeviceClassification", "Identification", "TimeSeries",
                           "IncentiveTable", "Bill"}
        assert len(rd.find("DeviceDiagnosis", "server", E1)) == 1
    run(go())


def test_heartbeat_server_and_operating_state_notifies():
    async def go():
        peer = StubPeer()
        cem = SpineCem(peer, start=False, device="d:_i:TestCEM_1")
        resp = Responder(cem, peer)
        dd = cem.local_feature("DeviceDiagnosis", "server")
        # the station's DeviceDiagnosis client [1]/3 subscribes to our heartbeat server
        await resp.inject((E1, 3), "call", {"nodeManagementSubscriptionRequestCall": {"subscriptionRequest": {
            "clientAddress": feature_address(GW, E1, 3), "serverAddress": feature_address(cem.device, dd.entity,
                                                                                            dd.feature),
            "serverFeatureType": "DeviceDiagnosis"}}})
        assert peer.sent[-1].result.ok
        peer.sent.clear()
        cem.start_heartbeat(0.05)
        for _ in range(100):
            if len(peer.sent) >= 3:
                break
            await asyncio.sleep(0.01)
        cem.stop_heartbeat()
        beats = [d for d in peer.sent if d.function == "deviceDiagnosisHeartbeatData"]
        assert len(beats) >= 3
        assert [b.data["heartbeatCounter"] for b in beats] == list(range(1, len(beats) + 1))
        for b in beats:
            assert b.classifier == "notify" and b.source_key == (dd.entity, dd.feature)
            assert b.destination == feature_address(GW, E1, 3) and b.data["heartbeatTimeout"] == "PT4S"
            sent_at = datetime.datetime.fromisoformat(b.data["timestamp"].replace("Z", "+00:00"))
            assert abs((datetime.datetime.now(datetime.timezone.utc) - sent_at).total_seconds()) < 60
        n = len(peer.sent)
        await asyncio.sleep(0.15)
        assert len(peer.sent) == n and not cem.heartbeat_running     # stopped: the station's failsafe test
        # a read of the heartbeat is answered from our server
        peer.sent.clear()
        src = feature_address(GW, E1, 3)
        dst = feature_address(cem.device, dd.entity, dd.feature)
        await cem._handle(resp._dg(src, dst, "read", {"deviceDiagnosisHeartbeatData": {}}))
        assert peer.sent[-1].classifier == "reply" and peer.sent[-1].data["heartbeatCounter"] == len(beats)
        # OPEV/OSCEV scenario 3: our operating state, notified to subscribers
        peer.sent.clear()
        assert await cem.set_operating_state("failure") == 1
        assert peer.sent[-1].function == "deviceDiagnosisStateData"
        assert peer.sent[-1].data == {"operatingState": "failure"}
    run(go())


def test_use_case_start_sequences_and_events():
    async def go():
        peer = StubPeer()
        cem = SpineCem(peer, start=False, device="d:_i:TestCEM_1", timeout=2)
        events = []
        ucs = CemUseCases(cem, heartbeat=None, on_event=lambda e: events.append(e.text), timeout=2)
        resp = Responder(cem, peer)
        await ucs.start()
        assert ucs.problems == []
        assert ucs.notes == ["read 1 Measurement measurementConstraintsListData: result 6"]
        assert all(u.warnings == [] for u in ucs.usecases)
        texts = set(events)
        for want in ("EVCEM: I = 10.5/10.5/10.5 A", "OPEV: limits 16/16/16 A inactive (phase maximum)",
                     "LPC: limit 4200 W inactive", "EV connected (1.1)", "EVCC: communication standard iec61851",
                     "MPC: f = 49.98 Hz", "EVSOC: SoC 57 %", "EVSECC: EVSE normalOperation",
                     "LPC: failsafe 4200 W for at least 2h", "OPEV: available on 1.1, scenarios 1,2,3"):
            assert want in texts, (want, sorted(texts))
        # the LPC sequence of spine.md 5.3 (captured between eebus-go peers)
        lpc_seq = []
        for d in resp.requests:
            ent, _f = d.destination_key
            if d.function == "nodeManagementSubscriptionRequestCall":
                s = d.data["subscriptionRequest"]["serverAddress"]
                lpc_seq.append(("subscribe", tuple(s["entity"]), d.data["subscriptionRequest"]["serverFeatureType"]))
            elif d.function == "nodeManagementBindingRequestCall":
                s = d.data["bindingRequest"]["serverAddress"]
                lpc_seq.append(("bind", tuple(s["entity"]), d.data["bindingRequest"]["serverFeatureType"]))
            elif d.classifier == "read" and ent == E1:
                lpc_seq.append(("read", ent, d.function))
        lpc_part = [x for x in lpc_seq if x[1] == E1 and x[2] in (
            "LoadControl", "DeviceConfiguration", "DeviceDiagnosis", "loadControlLimitDescriptionListData",
            "deviceConfigurationKeyValueDescriptionListData", "deviceDiagnosisHeartbeatData",
            "loadControlLimitListData", "deviceConfigurationKeyValueListData")]
        assert lpc_part == [
            ("subscribe", E1, "LoadControl"), ("bind", E1, "LoadControl"),
            ("read", E1, "loadControlLimitDescriptionListData"),
            ("subscribe", E1, "DeviceConfiguration"), ("bind", E1, "DeviceConfiguration"),
            ("read", E1, "deviceConfigurationKeyValueDescriptionListData"),
            ("subscribe", E1, "DeviceDiagnosis"), ("read", E1, "deviceDiagnosisHeartbeatData"),
            ("read", E1, "loadControlLimitListData"), ("read", E1, "deviceConfigurationKeyValueListData")]
        # the EV: binds only LoadControl, TimeSeries, IncentiveTable (spine.md 8)
        assert sorted({x[2] for x in lpc_seq if x[0] == "bind" and x[1] == EV}) == [
            "IncentiveTable", "LoadControl", "TimeSeries"]
        # no selectors: the station does not announce partial reads (eebus-go drops them then)
        assert not any(d.filters for d in resp.requests if d.classifier == "read")
        # OPEV write through the manager: one partial write, the notify updates our copy
        events.clear()
        r, notes = await ucs.opev.write_limits([10, 10, 10])
        assert r.ok and notes == []
        w = [d for d in resp.requests if d.classifier == "write"][-1]
        assert w.partial and w.ack_request and w.destination_key == (EV, 7)
        assert w.source_key == ((1,), cem.local_feature("LoadControl", "client").feature)
        assert w.data == {"loadControlLimitData": [{"limitId": i, "isLimitActive": True, "value": sn(10)}
                                                   for i in range(3)]}
        assert "OPEV: limits 10/10/10 A active" in events
        # LPC limit with a duration, then failsafe values
        r = await ucs.lpc.write_limit(4200, True, 7200)
        assert r.ok and "LPC: limit 4200 W active for 2h" in events
        rs = await ucs.lpc.write_failsafe(3000, 3 * 3600)
        assert [x.ok for x in rs] == [True, True] and "LPC: failsafe 3000 W for at least 3h" in events
        # a description notify makes the CEM re-read the data (eebus-go)
        n = len(resp.requests)
        await resp.inject((EV, 6), "notify", {"measurementDescriptionListData": wire(
            resp.tables[(EV, "Measurement")]["measurementDescriptionListData"])})
        await ucs.settle(2)
        assert [d.function for d in resp.requests[n:]] == ["measurementListData"]
        # plug-out: use-case notify without the EV, then the entity-removed notify
        resp.ucd = usecase_data(with_ev=False)
        await resp.inject(((0,), 0), "notify", {"nodeManagementUseCaseData": wire(resp.ucd)})
        await resp.inject(((0,), 0), "notify", build_cmd("nodeManagementDetailedDiscoveryData", wire({
            "specificationVersionList": {"specificationVersion": ["1.3.0"]},
            "deviceInformation": {"description": {"deviceAddress": {"device": GW}, "deviceType": "ChargingStation"}},
            "entityInformation": [{"description": {"entityAddress": {"device": GW, "entity": [1, 1]},
                                                   "entityType": "EV", "lastStateChange": "removed"}}]}),
            partial=True))
        await ucs.settle(2)
        assert "EV disconnected (1.1)" in events
        assert not ucs.evcc.connected() and ucs.opev.available() is None
        assert not any(k[0] == EV for k in ucs.data.values)
        with pytest.raises(WriteError):
            await ucs.opev.write_limits([10, 10, 10])
        await ucs.close()
    run(go())


# ------------------------------------------------------------------------------------------------
# CLI

def test_cli_options_and_value_parsing():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gw.py"), "cem", "--help"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0
    for opt in ("--usecases", "--opev", "--oscev", "--lpc", "--lpc-failsafe", "--no-heartbeat", "--seconds",
                "--cem-state"):
        assert opt in out.stdout, opt
    assert parse_phase_values("10,10,10") == [10.0, 10.0, 10.0]
    assert parse_phase_values(" 16 ") == [16.0] and parse_phase_values("OFF") == "off"
    for bad in ("", "1,2,3,4", "-1", "a"):
        with pytest.raises(ValueError):
            parse_phase_values(bad)
    assert parse_power_duration("4200") == (4200.0, None)
    assert parse_power_duration("4200:3600") == (4200.0, 3600.0)
    assert parse_power_duration(":7200", need_power=False) == (None, 7200.0)
    assert parse_power_duration("3000:", need_power=False) == (3000.0, None)
    for bad in (":3600", "x", "-5"):
        with pytest.raises(ValueError):
            parse_power_duration(bad)


def test_usecase_modules_do_not_import_firmware_lib():
    for name in ("usecases.py", "ucbase.py", "ucevmon.py", "ucevctl.py", "ucgrid.py", "ucdata.py", "ucrun.py"):
        with open(os.path.join(ROOT, "tools", "testcem", name), encoding="utf-8") as f:
            src = f.read()
        for bad in ("import spine\n", "from spine", "import eejson", "from ship import", "import gateway",
                    "sys.path"):
            assert bad not in src, (name, bad)
