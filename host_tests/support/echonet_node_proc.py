"""host_tests/mpy/echonet_node.py as a process: lib/echonet's engine and UDP adapter under the
MicroPython unix port on a charger model that stdin drives."""

import json
import subprocess

from support import mpyrun
from support.paths import MPY_SCRIPTS

NODE = MPY_SCRIPTS + "/echonet_node.py"
DEV = "127.0.0.2"


class Node(mpyrun.LineProc):
    """host_tests/mpy/echonet_node.py: the engine and adapter on a stdin-driven model."""

    what = "node"

    def __init__(self, host=DEV, multicast=False, discharges=False, announce_ms=200, heapsize="256K"):
        args = (host, "1" if multicast else "0", "1" if discharges else "0", str(announce_ms))
        self.p = mpyrun.start(NODE, heapsize, args, stdin=subprocess.PIPE)
        self.follow(self.p.stdout)
        self.ready = self.wait(r"^READY (\S+) EOJ (\S+) multicast (\d)", 10)

    def cmd(self, text, answer=r"^OK"):
        mark = self.mark()
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()
        return self.wait(answer, 5, mark)

    def stats(self):
        return json.loads(self.cmd("stats", r"^STATS (.*)$").group(1))

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            self.p.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()
        assert "Traceback" not in self.output(), self.output()
