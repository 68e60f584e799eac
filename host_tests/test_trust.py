"""Trust store: shared cases under CPython, plus a real crash test under MicroPython."""

import json
import os
import random
import signal
import subprocess
import time

from support import mpyrun
import pytest

from cases import caserun
from cases import trust_cases as cases

NAMES = caserun.names(cases)


@pytest.mark.parametrize("name", NAMES)
def test_trust(name):
    getattr(cases, name)()


WRITER = """
import sys
from ship.trust import TrustStore
s = TrustStore(sys.argv[1])
i = 0
print('READY')
while True:
    i += 1
    s.add('%040x' % i, 'CEM-%d' % i)
    if len(s.trusted) > 20:
        s.trusted.clear()
"""


def test_killed_writer_never_leaves_a_broken_store(tmp_path):
    """SIGKILL a MicroPython process while it rewrites the store: every file left behind loads."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    store = tmp_path / "trust.json"
    rng = random.Random(7)
    for _ in range(15):
        proc = mpyrun.start(str(script), args=(str(store),))
        assert proc.stdout.readline().strip() == "READY"
        time.sleep(rng.uniform(0.005, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        if store.exists():
            doc = json.loads(store.read_text())
            assert isinstance(doc["trusted"], dict)


def test_gw_trust_cli_edits_store(tmp_path):
    gw = os.path.join(mpyrun.ROOT, "tools", "gw")
    ski = "ab" * 20

    def run(*a):
        return subprocess.run([gw, "trust", "--dir", str(tmp_path), *a], capture_output=True, text=True)

    r = run("add", ski.upper())
    assert r.returncode == 0, r.stderr
    r = run("list")
    assert ski in r.stdout
    (tmp_path / "pending.json").write_text(json.dumps({"cd" * 20: "127.0.0.1:40000"}))
    assert "cd" * 20 in run("list").stdout
    assert run("deny", "cd" * 20).returncode == 0
    doc = json.loads((tmp_path / "trust.json").read_text())
    assert ski in doc["trusted"] and "cd" * 20 in doc["denied"]
    assert run("remove", ski).returncode == 0
    assert run("remove", ski).returncode == 1
    r = run("add", "xyz")
    assert r.returncode == 2 and "40 hex" in r.stderr
