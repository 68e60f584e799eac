"""Start the gateway under the MicroPython unix port for end-to-end tests and benchmarks."""

import json
import os
import subprocess

import certs
from support import mpyrun

SKI_LINE = r"^SHIP (\S+):(\d+) SKI ([0-9a-f]{40}) ID (\S+)"

# SHIP timers shortened for tests (ms); the defaults are the SHIP values
FAST_TIMERS = {"cmi": 2000, "hello": 3000, "prolong_threshold": 1000, "close": 300}


class Gateway(mpyrun.LineProc):
    """A running gateway process; output lines are collected in the background."""

    what = "gateway"

    def __init__(self, data_dir, ship=None, heapsize=None, env_probe=False, identity=None, charger=None, extra=None,
                 console=False):
        self.data_dir = str(data_dir)
        os.makedirs(self.data_dir, exist_ok=True)
        if not os.path.exists(os.path.join(self.data_dir, "cert.der")):
            cert, key = certs.create(cn="gw-test")
            with open(os.path.join(self.data_dir, "cert.der"), "wb") as f:
                f.write(cert)
            with open(os.path.join(self.data_dir, "key.der"), "wb") as f:
                f.write(key)
        cfg = {
            "board": "test",
            "ship": {"host": "127.0.0.1", "port": 0, "timers_ms": FAST_TIMERS},
            "identity": identity or {"brand": "Test", "model": "GW", "type": "ChargingStation", "serial": "0001"},
            # debug: the SPINE tap logs each datagram's length and CRC (reassembly checks)
            "log": {"level": 3},
        }
        for k, v in (ship or {}).items():
            cfg["ship"][k] = v
        if charger is not None:
            cfg["charger"] = charger
        for k, v in (extra or {}).items():
            cfg[k] = v
        self.config_path = os.path.join(self.data_dir, "board.json")
        with open(self.config_path, "w") as f:
            json.dump(cfg, f)
        self.heapsize = heapsize
        self.env_probe = env_probe
        self.console = console  # the gateway's console on a pipe: write lines with type()
        self.lines = []
        self.proc = None

    def start(self, timeout=20.0):
        script = os.path.join(mpyrun.ROOT, "tools", "host_run.py")
        env = {"GW_HEAP_PROBE": "live" if self.env_probe == "live" else "1"} if self.env_probe else {}
        if self.console:
            env["GW_CONSOLE"] = "pipe"
        self.proc = mpyrun.start(script, heapsize=self.heapsize, args=(self.config_path, self.data_dir),
                                 stdin=subprocess.PIPE if self.console else None, env=env)
        self.follow(self.proc.stdout)
        m = self.wait_for(SKI_LINE, timeout)
        self.host, self.port, self.ski, self.ship_id = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        return self

    def wait_for(self, pattern, timeout=10.0, start=0):
        """Wait for an output line (from index start on) matching pattern; returns the match."""
        return self.wait(pattern, timeout, start)

    def trust(self, ski):
        """Trust a peer as `tools/gw trust add` does (the gateway polls the file)."""
        path = os.path.join(self.data_dir, "trust.json")
        try:
            with open(path) as f:
                doc = json.load(f)
        except FileNotFoundError:
            doc = {"trusted": {}, "denied": []}
        doc["trusted"][ski] = {"id": None, "by": "user"}
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)

    def type(self, line):
        """A line to the gateway's console (console=True)."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except Exception:
                    self.proc.kill()
                    self.proc.wait()
        assert "Traceback" not in self.output(), self.output()
