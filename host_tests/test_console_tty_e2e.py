"""gw run in a terminal (a pty): the gateway's console is on (GW_CONSOLE=tty, as make run sets
it), its first prompt comes without a keystroke, and Ctrl-D restarts the gateway (the host's
form of the device's soft reset) while the simulator keeps running."""

import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time

from support import mpyrun

HOST_SIM = os.path.join(mpyrun.ROOT, "board_configs", "host-sim.json")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pty:
    def __init__(self, fd):
        self.fd = fd
        self.text = ""

    def wait(self, needle, start=0, timeout=60):
        # a guard against a hang, not a timing assertion
        deadline = time.monotonic() + timeout
        while needle not in self.text[start:]:
            left = deadline - time.monotonic()
            assert left > 0, "no %r in:\n%s" % (needle, self.text)
            if select.select([self.fd], [], [], left)[0]:
                try:
                    self.text += os.read(self.fd, 4096).decode(errors="replace")
                except OSError:  # the pty closed
                    assert needle in self.text[start:], self.text
        return self.text.index(needle, start) + len(needle)


def test_run_in_a_terminal_has_the_console_and_ctrl_d_restarts(tmp_path):
    doc = json.load(open(HOST_SIM))
    doc["ship"]["port"] = _free_port()
    modbus = _free_port()
    doc["charger"]["link"]["port"] = modbus
    doc["charger"]["map"] = os.path.join(mpyrun.ROOT, "board_configs", "chargers", "sim.json")
    doc["echonet"] = {"enabled": False}
    board = tmp_path / "board.json"
    board.write_text(json.dumps(doc))
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "GW_CONSOLE"}
    p = subprocess.Popen([sys.executable, os.path.join(mpyrun.ROOT, "tools", "gw.py"), "run", str(board),
                          str(tmp_path / "data")], stdin=slave, stdout=slave, stderr=slave, env=env,
                         start_new_session=True)
    os.close(slave)
    t = Pty(master)
    try:
        at = t.wait("console: ")
        at = t.wait("gw> ", at)  # before anything was typed
        os.write(master, b"diag.status()\n")
        at = t.wait("gw> ", t.wait("heap: ", at))
        os.write(master, b"\x04")  # Ctrl-D on an empty line: EOF in cooked mode
        at = t.wait("Ctrl-D: soft reset, the gateway restarts", at)
        at = t.wait("gateway restarting", at)
        at = t.wait("SHIP 127.0.0.1:%d" % doc["ship"]["port"], at)
        t.wait("charger link up", at)  # the simulator stayed
        assert p.poll() is None
    finally:
        os.killpg(p.pid, signal.SIGINT)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        os.close(master)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", modbus)) != 0
