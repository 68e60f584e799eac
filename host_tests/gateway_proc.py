"""Start the gateway under the MicroPython unix port for end-to-end tests and benchmarks."""

import json
import os
import subprocess
import re
import threading

import certs
import mpyrun

SKI_LINE = r"^SHIP (\S+):(\d+) SKI ([0-9a-f]{40}) ID (\S+)"

# SHIP timers shortened for tests (ms); the defaults are the SHIP values
FAST_TIMERS = {"cmi": 2000, "hello": 3000, "prolong_threshold": 1000, "close": 300}


class Gateway:
    """A running gateway process; output lines are collected in the background."""

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
        self._cv = threading.Condition()

    def start(self, timeout=20.0):
        script = os.path.join(mpyrun.ROOT, "tools", "host_run.py")
        env_extra = {"GW_HEAP_PROBE": "1"} if self.env_probe else {}
        if self.console:
            env_extra["GW_CONSOLE"] = "pipe"
        old = {k: os.environ.get(k) for k in env_extra}
        os.environ.update(env_extra)
        try:
            self.proc = mpyrun.start(script, heapsize=self.heapsize, args=(self.config_path, self.data_dir),
                                     stdin=subprocess.PIPE if self.console else None)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        threading.Thread(target=self._pump, daemon=True).start()
        m = self.wait_for(SKI_LINE, timeout)
        self.host, self.port, self.ski, self.ship_id = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        return self

    def _pump(self):
        for line in self.proc.stdout:
            with self._cv:
                self.lines.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self.lines.append(None)  # EOF marker
            self._cv.notify_all()

    def wait_for(self, pattern, timeout=10.0, start=0):
        """Wait for an output line (from index start on) matching pattern; returns the match."""
        rx = re.compile(pattern)
        with self._cv:
            i = start
            end = __import__("time").monotonic() + timeout
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        raise AssertionError("gateway exited; output:\n" + self.output())
                    m = rx.search(line)
                    if m:
                        return m
                    i += 1
                left = end - __import__("time").monotonic()
                if left <= 0:
                    raise AssertionError("no line matching %r; output:\n%s" % (pattern, self.output()))
                self._cv.wait(left)

    def mark(self):
        with self._cv:
            return len(self.lines)

    def output(self):
        return "\n".join(l for l in self.lines if l is not None)

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
