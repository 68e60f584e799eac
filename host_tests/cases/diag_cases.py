# REPL diagnostics without a running gateway: they act on the trust store on flash.
import os

from gateway import diag
from ship.trust import TrustStore

SKI = "12" * 20


def _fresh():
    d = "/tmp/diag_case"
    try:
        os.mkdir(d)
    except OSError:
        pass
    try:
        os.remove(d + "/trust.json")
    except OSError:
        pass
    diag._DATA = d
    return d


def case_approve_and_untrust_on_flash():
    d = _fresh()
    diag.approve(SKI)
    assert TrustStore(d + "/trust.json").is_trusted(SKI)
    diag.trusted()
    diag.untrust(SKI)
    assert not TrustStore(d + "/trust.json").is_trusted(SKI)


def case_approve_without_pending_says_so():
    _fresh()
    try:
        diag.approve()
    except ValueError as e:
        assert "no pairing request" in str(e)
        return
    raise AssertionError("approve() without a pending request")


def case_status_without_gateway():
    _fresh()
    diag.status()
    diag.peers()
    diag.logs()


class _Gw:
    # what the bound screens use of a running gateway (gateway.app.Gateway)
    def __init__(self):
        self.windows = []
        self.trust = TrustStore(_fresh() + "/trust.json")

    def pair(self, seconds):
        self.windows.append(seconds)


def case_bound_diag_takes_keywords():
    # the console's `diag` is Diag(gw): diag.pair(seconds=60) reaches pair(seconds=60, gw=gw)
    gw = _Gw()
    d = diag.Diag(gw)
    d.pair(seconds=60)
    d.pair(30)
    d.pair()
    assert gw.windows == [60, 30, None]
    d.approve(ski=SKI)
    assert gw.trust.is_trusted(SKI)
