"""gw run: the gateway under the MicroPython unix port with the simulator, as make run, with the
board config and data directory as arguments (127.0.0.1 only, free ports)."""

import json
import os
import signal
import socket
import subprocess
import sys

import gw
from support import mpyrun
import runcli

HOST_SIM = os.path.join(mpyrun.ROOT, "board_configs", "host-sim.json")


def test_sim_command_follows_the_board():
    argv = runcli.sim_command(HOST_SIM)
    assert argv[1:] == [os.path.join(mpyrun.ROOT, "tools", "gw.py"), "sim", "--map",
                        os.path.join(mpyrun.ROOT, "board_configs", "chargers", "sim.json"),
                        "--port", "5020", "--rtu-over-tcp", "--control-port", "5021"]
    # a device config (UART) has nothing to simulate
    assert runcli.sim_command(os.path.join(mpyrun.ROOT, "board_configs", "esp32-wroom.json")) is None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_starts_gateway_and_simulator(tmp_path):
    doc = json.load(open(HOST_SIM))
    ship, modbus = _free_port(), _free_port()
    doc["ship"]["port"] = ship
    doc["charger"]["link"]["port"] = modbus
    doc["charger"]["map"] = os.path.join(mpyrun.ROOT, "board_configs", "chargers", "sim.json")
    board = tmp_path / "board.json"
    board.write_text(json.dumps(doc))
    data = tmp_path / "data"
    p = subprocess.Popen([sys.executable, os.path.join(mpyrun.ROOT, "tools", "gw.py"), "run", str(board), str(data)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        text = mpyrun.output_until(p, "charger link up", 60)
        assert (data / "cert.der").exists() and "SKI " in text
        assert "SHIP 127.0.0.1:%d" % ship in text
        assert "charger link up" in text, text
    finally:
        os.killpg(p.pid, signal.SIGINT)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    # the simulator went with the gateway
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", modbus)) != 0
    assert (data / "sim.log").exists()


def test_run_errors(capsys, tmp_path):
    assert gw.main(["run", str(tmp_path / "none.json")]) == 2
    assert "no such board config" in capsys.readouterr().err
