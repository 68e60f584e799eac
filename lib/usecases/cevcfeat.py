# CEVC's two features on the EV entity (spine.md 12.8): TimeSeries and IncentiveTable over
# the sans-IO usecases.cevc.Cevc, which holds the demand, the energy broker's power limits and
# incentives, and hands the plan to the charger model.
from spine.device import OP_READ, OP_READ_PARTIAL, OP_WRITE, OP_WRITE_PARTIAL, SERVER, Feature, Function
from spine.table import Table

_R = OP_READ | OP_READ_PARTIAL
_RW = _R | OP_WRITE | OP_WRITE_PARTIAL


class CevcFeatures:
    def __init__(self, cevc, now):
        self.cevc = cevc
        self.now = now  # ms ticks
        self.fids = None

    def features(self, f_series, f_incentive):
        c = self.cevc
        self.fids = (f_series, f_incentive)
        return [
            Feature(f_series, "TimeSeries", SERVER, (
                Function("timeSeriesDescriptionListData", _R, table=Table("timeSeriesDescriptionListData", c.description_rows, ("timeSeriesId",))),
                Function("timeSeriesConstraintsListData", _R, table=Table("timeSeriesConstraintsListData", c.constraints_rows, ("timeSeriesId",))),
                Function("timeSeriesListData", _RW, write=self._write_series,
                         table=Table("timeSeriesListData", lambda: c.series_rows(self.now()), ("timeSeriesId",))),
            ), "TimeSeries Server"),
            Feature(f_incentive, "IncentiveTable", SERVER, (
                Function("incentiveTableConstraintsData", OP_READ, freeze=c.incentive_constraints_emit),
                Function("incentiveTableDescriptionData", OP_READ | OP_WRITE | OP_WRITE_PARTIAL,
                         write=self._write_description, freeze=c.incentive_description_emit),
                Function("incentiveTableData", OP_READ | OP_WRITE | OP_WRITE_PARTIAL,
                         write=self._write_incentives, freeze=lambda: c.incentive_data_emit(self.now())),
            ), "IncentiveTable Server"),
        ]

    def _tree(self, inc):
        return inc.data.result if inc.data is not None else None

    def _write_series(self, session, inc):
        return self.cevc.write_series(self._tree(inc), inc.partial, self.now())

    def _write_description(self, session, inc):
        return self.cevc.write_incentive_description(self._tree(inc), inc.partial, self.now())

    def _write_incentives(self, session, inc):
        return self.cevc.write_incentive_data(self._tree(inc), inc.partial, self.now())

    def tick(self, now):
        return self.cevc.tick(now)

    def reset(self, now):
        self.cevc.reset(now)

    def notify_changes(self, app):
        from usecases.ev import ADDRESS

        app.notify(ADDRESS, self.fids[0], "timeSeriesListData")
        app.notify(ADDRESS, self.fids[1], "incentiveTableData")
