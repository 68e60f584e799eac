"""host_tests/mpy/echonet_node.py as a process: lib/echonet's engine and UDP adapter under the
MicroPython unix port on a charger model that stdin drives."""

import json
import re
import subprocess
import threading
import time

import mpyrun

NODE = mpyrun.ROOT + "/host_tests/mpy/echonet_node.py"
DEV = "127.0.0.2"


class Node:
    """host_tests/mpy/echonet_node.py: the engine and adapter on a stdin-driven model."""

    def __init__(self, host=DEV, multicast=False, discharges=False, announce_ms=200, heapsize="256K"):
        args = (host, "1" if multicast else "0", "1" if discharges else "0", str(announce_ms))
        self.p = subprocess.Popen(
            mpyrun.argv(NODE, heapsize, args), env=mpyrun.mpy_env(), cwd=mpyrun.ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()
        self.ready = self.wait(r"^READY (\S+) EOJ (\S+) multicast (\d)", 10)

    def _pump(self):
        for line in self.p.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)
            self.cv.notify_all()

    def output(self):
        return "\n".join(l for l in self.lines if l is not None)

    def wait(self, pattern, timeout, start=0):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        with self.cv:
            i = start
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    assert line is not None, "node exited:\n" + self.output()
                    assert "Traceback" not in line, self.output()
                    m = rx.search(line)
                    if m:
                        return m
                    i += 1
                left = end - time.monotonic()
                assert left > 0, "no line %r:\n%s" % (pattern, self.output())
                self.cv.wait(left)

    def cmd(self, text, answer=r"^OK"):
        with self.cv:
            mark = len(self.lines)
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()
        return self.wait(answer, 5, mark)

    def stats(self):
        return json.loads(self.cmd("stats", r"^STATS (.*)$").group(1))

    def heap(self):
        return int(self.cmd("heap", r"^HEAP (\d+)$").group(1))

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            self.p.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()
        assert "Traceback" not in self.output(), self.output()
