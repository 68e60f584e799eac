"""ECHONET Lite multicast inside a private network namespace (`unshare -rn`): passive
discovery from the start-up INF 0xD5, pychonet's multicast discovery through its discovery
callback, and a status announcement when the EV plugs in (host_tests/support/echonet_netns.py)."""

import json
import os
import re
import shutil
import subprocess
import sys

from support import mpyrun
from support.paths import SUPPORT
import pytest

DRIVER = os.path.join(SUPPORT, "echonet_netns.py")
SETUP = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo"


def _netns_ok():
    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    r = subprocess.run(["unshare", "-rn", "sh", "-c", SETUP], capture_output=True)
    return r.returncode == 0


pytestmark = pytest.mark.skipif(not _netns_ok(), reason="no unprivileged network namespace (unshare -rn)")


def test_multicast_discovery_and_announcements_in_a_namespace():
    r = subprocess.run(
        ["unshare", "-rn", "sh", "-c", SETUP + " && exec %s %s" % (sys.executable, DRIVER)],
        cwd=mpyrun.ROOT, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    res = json.loads(re.search(r"^RESULT (.*)$", r.stdout, re.M).group(1))
    assert res["joined"] is True
    assert res["passive"] == "127.0.0.2"  # heard from the start-up INF 0xD5 alone
    assert res["callback"] == "127.0.0.2"  # the multicast Get answered by unicast from the node
    assert res["discovered"] is True and res["instances"] == {"02a1": [1]}
    assert res["maps"] is True
    assert res["c7_before"] in ("", "30") and res["c7_after"] == "41" and res["pushed"] is True
    st = res["stats"]
    assert st["inf"] >= 2 and st["errors"] == 0 and st["send_fail"] == 0, st
