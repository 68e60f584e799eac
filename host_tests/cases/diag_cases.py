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
