# The power features of the EVSE entity [1] (spine.md 11, 12.9, 12.11, 12.12): LPC (and LPP
# on a charger that discharges) as the controllable system, MPC as the monitored unit, and
# EVCS's Bill. The LPC/LPP policy lives in usecases.lpc; here are the features, their rows and
# the writes a guard sends, checked whole before anything is applied.
#
# Numbering: LoadControl limit 0 = LPC, 1 = LPP; DeviceConfiguration key 0 = failsafe
# consumption limit, 1 = failsafe duration minimum (shared by LPC and LPP, LPP-TS-041),
# 2 = failsafe production limit; characteristic 0 = consumption nominal max, 1 = production.
# MPC measurements: 0 total power, 1+p power per phase, 4 energy consumed, 5+p current per
# phase, 8+p voltage per phase; parameter ids equal the measurement ids.
from charger import F_I1, F_POWER, F_TOTAL_WH, F_U1
from spine import datagram as D
from spine.device import OP_READ, OP_READ_PARTIAL, OP_WRITE, OP_WRITE_PARTIAL, SERVER, Feature, Function
from spine.table import Table, entries, scaled

_R = OP_READ | OP_READ_PARTIAL
_RW = _R | OP_WRITE | OP_WRITE_PARTIAL
PHASES = ("a", "b", "c")

F_LOAD = 4
F_CONFIG = 5
F_ELEC = 6
F_MEAS = 7
F_BILL = 8

LIMIT_LPC = 0
LIMIT_LPP = 1
KEY_LPC = 0
KEY_DURATION = 1
KEY_LPP = 2


def _m(mid, mtype, unit, scope):
    return ("measurementId", mid, "measurementType", mtype, "commodityType", "electricity", "unit", unit, "scopeType", scope)


def _p(pid, phases, scope=None, extra=()):
    return ("electricalConnectionId", 0, "parameterId", pid, "measurementId", pid, "voltageType", "ac",
            "acMeasuredPhases", phases) + extra + (("scopeType", scope) if scope else ())


class EvseSide:
    def __init__(self, charger, phases, voltage, now, lpc, lpp=None, evcs=None):
        self.ch = charger
        self.np = phases
        self.voltage = voltage
        self.now = now
        self.lpc = lpc
        self.lpp = lpp
        self.evcs = evcs
        n = phases
        allp = "abc"[:n]
        neutral = ("acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real")
        self._meas_desc = tuple(
            [_m(0, "power", "W", "acPowerTotal")]
            + [_m(1 + p, "power", "W", "acPower") for p in range(n)]
            + [_m(4, "energy", "Wh", "acEnergyConsumed")]
            + [_m(5 + p, "current", "A", "acCurrent") for p in range(n)]
            + [_m(8 + p, "voltage", "V", "acVoltage") for p in range(n)]
        )
        self._param_desc = tuple(
            [_p(0, allp, "acPowerTotal", ("acMeasurementType", "real"))]
            + [_p(1 + p, PHASES[p], "acPower", neutral) for p in range(n)]
            + [_p(4, allp, "acEnergyConsumed")]
            + [_p(5 + p, PHASES[p], "acCurrent", neutral) for p in range(n)]
            + [_p(8 + p, PHASES[p], "acVoltage", ("acMeasuredInReferenceTo", "neutral", "acMeasurementType", "apparent")) for p in range(n)]
        )

    def features(self):
        t = Table
        limit_desc = [self.lpc.limit_description(LIMIT_LPC)]
        if self.lpp is not None:
            limit_desc.append(self.lpp.limit_description(LIMIT_LPP))
        feats = [
            Feature(F_LOAD, "LoadControl", SERVER, (
                Function("loadControlLimitDescriptionListData", _R, table=t("loadControlLimitDescriptionListData", tuple(limit_desc), ("limitId",))),
                Function("loadControlLimitListData", _RW, write=self._write_limits, table=t("loadControlLimitListData", self._limit_rows, ("limitId",))),
            ), "LoadControl Server"),
            Feature(F_CONFIG, "DeviceConfiguration", SERVER, (
                Function("deviceConfigurationKeyValueDescriptionListData", _R, table=t(
                    "deviceConfigurationKeyValueDescriptionListData", self._key_desc_rows(), ("keyId",))),
                Function("deviceConfigurationKeyValueListData", _RW, write=self._write_keys, table=t(
                    "deviceConfigurationKeyValueListData", self._key_rows, ("keyId",))),
            ), "DeviceConfiguration Server"),
            Feature(F_ELEC, "ElectricalConnection", SERVER, (
                Function("electricalConnectionCharacteristicListData", _R, table=t(
                    "electricalConnectionCharacteristicListData", self._characteristic_rows, ("characteristicId",))),
                Function("electricalConnectionDescriptionListData", _R, table=t(
                    "electricalConnectionDescriptionListData",
                    (("electricalConnectionId", 0, "powerSupplyType", "ac", "acConnectedPhases", self.np,
                      "positiveEnergyDirection", "consume"),), ("electricalConnectionId",))),
                Function("electricalConnectionParameterDescriptionListData", _R, table=t(
                    "electricalConnectionParameterDescriptionListData", self._param_desc, ("electricalConnectionId", "parameterId"))),
            ), "ElectricalConnection Server"),
            Feature(F_MEAS, "Measurement", SERVER, (
                Function("measurementDescriptionListData", _R, table=t("measurementDescriptionListData", self._meas_desc, ("measurementId",))),
                Function("measurementListData", _R, table=t("measurementListData", self._measurement_rows, ("measurementId",))),
            ), "Measurement Server"),
        ]
        if self.evcs is not None:
            feats.append(Feature(F_BILL, "Bill", SERVER, (
                Function("billDescriptionListData", _R, table=t("billDescriptionListData", self.evcs.description_rows, ("billId",))),
                Function("billConstraintsListData", _R, table=t("billConstraintsListData", self.evcs.constraints_rows, ("billId",))),
                Function("billListData", _RW, write=self._write_bills, table=t("billListData", self.evcs.bill_rows, ("billId",))),
            ), "Bill Server"))
        return feats

    # ---- rows -------------------------------------------------------------------------------

    def _limit_rows(self):
        now = self.now()
        rows = [self.lpc.limit_data(LIMIT_LPC, now)]
        if self.lpp is not None:
            rows.append(self.lpp.limit_data(LIMIT_LPP, now))
        return tuple(rows)

    def _key_desc_rows(self):
        rows = tuple(self.lpc.key_descriptions(KEY_LPC, KEY_DURATION))
        if self.lpp is not None:
            rows += tuple(self.lpp.key_descriptions(KEY_LPP, None))
        return rows

    def _key_rows(self):
        rows = tuple(self.lpc.key_values(KEY_LPC, KEY_DURATION))
        if self.lpp is not None:
            rows += tuple(self.lpp.key_values(KEY_LPP, None))
        return rows

    def _characteristic_rows(self):
        rows = [self.lpc.characteristic(0)]
        if self.lpp is not None:
            rows.append(self.lpp.characteristic(1))
        return tuple(rows)

    def _measurement_rows(self):
        ch = self.ch
        v = self.voltage
        rows = []
        n = self.np
        cur = [ch.get(F_I1 + p) for p in range(n)]
        pw = ch.get(F_POWER)
        if pw is not None:
            rows.append(("measurementId", 0, "valueType", "value", "value", scaled(int(pw)), "valueSource", "measuredValue"))
        for p in range(n):
            i = cur[p]
            if i is not None:
                u = ch.get(F_U1 + p)
                rows.append(("measurementId", 1 + p, "valueType", "value", "value",
                             scaled(int(i * (u if u and 180 <= u <= 260 else v) + 0.5)), "valueSource", "calculatedValue"))
        e = ch.get(F_TOTAL_WH)
        if e is not None:
            rows.append(("measurementId", 4, "valueType", "value", "value", scaled(int(e)), "valueSource", "measuredValue"))
        for p in range(n):
            i = cur[p]
            if i is not None:
                rows.append(("measurementId", 5 + p, "valueType", "value", "value",
                             scaled(round(i, 1) if isinstance(i, float) else i), "valueSource", "measuredValue"))
        for p in range(n):
            u = ch.get(F_U1 + p)
            if u is not None:
                rows.append(("measurementId", 8 + p, "valueType", "value", "value",
                             scaled(round(u, 1) if isinstance(u, float) else u), "valueSource", "measuredValue"))
        return tuple(rows)

    # ---- the guard's writes --------------------------------------------------------------------

    def _write_limits(self, session, inc):
        ents = entries(inc.data.result if inc.data is not None else None, "loadControlLimitData")
        if ents is None:
            return D.E_GENERAL, "malformed loadControlLimitData"
        # a delete filter removing timePeriod (the guard drops a limit's duration, spine.md 3.2)
        dele = inc.del_elements is not None and "timePeriod" in inc.del_elements
        dsel = inc.del_selectors.get("limitId") if inc.del_selectors else None
        now = self.now()
        work = []
        err = None
        for e in ents:
            lid = e.get("limitId")
            pl = self.lpc if lid == LIMIT_LPC else self.lpp if lid == LIMIT_LPP else None
            if pl is None or isinstance(lid, bool):
                err = (D.E_REJECTED, "unknown limitId %s" % (lid,))
                break
            d = dele and (dsel is None or dsel == lid)
            work.append((pl, e, d))
            err = pl.check_limit(e, d, now)
            if err[0]:
                break
            err = None
        if err is not None:
            # a refused limit has consequences of its own in init/failsafe (LPC-TS-018, 031)
            for pl, e, d in work:
                pl.reject_limit(now)
            return err
        if dele and not work:
            for pl, lid in ((self.lpc, LIMIT_LPC), (self.lpp, LIMIT_LPP)):
                if pl is not None and (dsel is None or dsel == lid):
                    work.append((pl, {"limitId": lid}, True))
        for pl, e, d in work:
            pl.apply_limit(e, d, now)
        return D.E_OK, None

    def _write_keys(self, session, inc):
        ents = entries(inc.data.result if inc.data is not None else None, "deviceConfigurationKeyValueData")
        if ents is None:
            return D.E_GENERAL, "malformed deviceConfigurationKeyValueData"
        by = {}
        for e in ents:
            k = e.get("keyId")
            if isinstance(k, bool) or not (k in (KEY_LPC, KEY_DURATION) or (k == KEY_LPP and self.lpp is not None)):
                return D.E_REJECTED, "unknown keyId %s" % (k,)
            by[k] = e
        now = self.now()
        # the duration minimum is LPC's data point, shared by LPP (LPP-TS-041)
        lpc = (by.get(KEY_LPC), by.get(KEY_DURATION))
        lpp = by.get(KEY_LPP)
        if lpc[0] is not None or lpc[1] is not None:
            err = self.lpc.check_keys(lpc[0], lpc[1], now)
            if err[0]:
                return err
        if lpp is not None:
            err = self.lpp.check_keys(lpp, None, now)
            if err[0]:
                return err
        if lpc[0] is not None or lpc[1] is not None:
            self.lpc.apply_keys(lpc[0], lpc[1], now)
        if lpp is not None:
            self.lpp.apply_keys(lpp, None, now)
        return D.E_OK, None

    def _write_bills(self, session, inc):
        return self.evcs.write_bills(inc.data.result if inc.data is not None else None, inc.partial)
