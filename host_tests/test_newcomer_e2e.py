"""A charger controller that never answers is logged (the model's link never went from up to
down, so before this nothing said it): the gateway under the MicroPython unix port with its
charger link pointed at a loopback port where nothing listens."""

import os
import socket

from support import mpyrun
from support.gateway_proc import Gateway


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_silent_controller_is_logged(tmp_path):
    charger = {"map": os.path.join(mpyrun.ROOT, "board_configs", "chargers", "sim.json"),
               "link": {"kind": "rtu-over-tcp", "host": "127.0.0.1", "port": _free_port()},
               "timeout_ms": 200, "retries": 0}
    g = Gateway(tmp_path / "gw", charger=charger)
    g.start()
    try:
        g.wait_for(r"\[bridge\] I: charger link: connecting \(unit 1\)", 10)
        g.wait_for(r"\[bridge\] W: charger link down: the controller does not answer", 15)
    finally:
        g.stop()
