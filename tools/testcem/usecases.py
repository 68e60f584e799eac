"""The CEM side of the e-mobility and power use cases, as eebus-go v0.7 implements it (spine.md 9, 11, 12).

One class per use case. Each is built on a ``RemoteData`` (ucdata.py: the station's discovery, use cases
and feature data as received) and, for the parts that talk to the station, a ``CemUseCases`` manager
(ucrun.py) that owns the SpineCem. The accessors compute what eebus-go's API returns from the data alone,
so the tests feed them captured and synthetic replies without any connection:

    data = RemoteData(remote)                 # RemoteDevice with use cases
    data.put((1, 1), "Measurement", "measurementListData", {...})
    EVCEM(data).current_per_phase()           # -> [10.5, 10.5, 10.5] or None when eebus-go has no data

Conventions: an accessor returns None where eebus-go returns ErrDataNotAvailable / ErrNoCompatibleEntity;
``entity`` defaults to the entity the use case is available on (else the first entity of a compatible
type). ``available()`` follows eebus-go's ``useCaseDataUpdate`` exactly (actor, name, useCaseAvailable,
entity address with the EV [n] -> [n,1] fix-up, exact server-feature set per scenario) and in addition asks
that every mandatory scenario is among the available ones (eebus-go leaves that to the application).
``check()`` explains in words why a use case is not available - that is what an installer needs.

Writers build their datagram data with pure ``*_write`` methods (tests compare them with the captures) and
send it with the async ``write_*`` methods through the manager. Where this test CEM deliberately does more
than eebus-go v0.7 (reads it never sends: LPC nominal max characteristic, IncentiveTable constraints,
EVSOC's measurement subscription, EVCS which eebus-go lacks) the docstring says so.

Modules: ucbase.py (UseCaseBase, WriteError), ucevmon.py (EVSECC, EVCC, EVCEM, EVSOC), ucevctl.py (OPEV,
OSCEV, CEVC), ucgrid.py (LPC, MPC, EVCS); this module is their registry (ALL_USE_CASES, our use-case table).
"""

from .ucevctl import CEVC, OPEV, OSCEV
from .ucevmon import EVCC, EVCEM, EVSECC, EVSOC
from .ucgrid import EVCS, LPC, MPC

__all__ = ["ALL_USE_CASES", "GUARD_USE_CASES", "HEMS_USE_CASES", "ROLES", "our_use_case_table",
           "EVSECC", "EVCC", "EVCEM", "OPEV", "OSCEV", "EVSOC", "CEVC", "LPC", "MPC", "EVCS"]

ALL_USE_CASES = (EVSECC, EVCC, EVCEM, OPEV, OSCEV, EVSOC, CEVC, LPC, MPC, EVCS)

# the two managers of a real installation (``--role``): a grid control box announcing only the
# Energy Guard / Monitoring Appliance side (entity type GridGuard, as eebus-go's controlbox
# example), and a HEMS announcing the CEM / Energy Broker side of the e-mobility use cases
GUARD_USE_CASES = (LPC, MPC)
HEMS_USE_CASES = (EVSECC, EVCC, EVCEM, OPEV, OSCEV, CEVC)
ROLES = {"all": (ALL_USE_CASES, "CEM"), "guard": (GUARD_USE_CASES, "GridGuard"), "hems": (HEMS_USE_CASES, "CEM")}


def our_use_case_table(classes=ALL_USE_CASES):
    """(actor, useCaseName, version, scenarios, sub revision) the test CEM announces, as eebus-go's
    AddUseCase does for each use case (actor CEM / EnergyBroker / EnergyGuard / MonitoringAppliance)."""
    return [(c.our_actor, c.name, c.version, [s for s, _f, _m in c.scenarios], c.sub_revision) for c in classes]
