"""`make run`, the README's first command, in a network namespace of its own (its ports are
fixed: SHIP 4712, the simulator's 5020/5021, ECHONET 127.0.0.2:3610): it prints the SKI and the
ports, brings the charger link up, and a SIGTERM to make stops the gateway in order (its
"stopped" line) and the simulator with it, leaving no process behind."""

import os
import signal
import subprocess
import time

import pytest
from support import mpyrun


def _unshare_works():
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _left(marker):
    p = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True)
    return [line for line in p.stdout.splitlines() if "pgrep" not in line]


def test_make_run_starts_and_stops_on_sigterm(tmp_path):
    if not _unshare_works():
        pytest.skip("unshare -rn (user and network namespaces) not available")
    run_dir = str(tmp_path / "run")
    cmd = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
           "make", "-s", "-o", ".venv/.stamp", "run", "RUN_DIR=" + run_dir]
    p = subprocess.Popen(cmd, cwd=mpyrun.ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        text = mpyrun.output_until(p, "charger link up", 90)
        assert "SKI " in text and "SHIP 127.0.0.1:4712" in text, text
        assert "ECHONET" in text and "3610" in text, text
        assert "charger link up" in text, text
        assert _left(run_dir), "the gateway does not show in the process list"
        p.send_signal(signal.SIGTERM)  # to make itself (unshare and sh exec'd it)
        rest, _ = p.communicate(timeout=30)
        assert "stopped" in rest.splitlines(), rest
        assert p.returncode != 0  # make reports the signal
        time.sleep(0.5)
        assert not _left(run_dir), _left(run_dir)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        for line in _left(run_dir):
            os.kill(int(line.split()[0]), signal.SIGKILL)
