"""The charger bridge (lib/controller/bridge.py) end to end: host_tests/mpy/bridge_client.py runs the
Bridge task with lib/modbus and lib/charger under the MicroPython unix port against the
simulator (tools/sim.py) embedded here, on 127.0.0.1 only. Polling into the model and its
subscriber, a limit request reaching the limit register within one poll interval, a lost
controller reported and a recovered one given the limit again, and every injected fault
survived; RTU framing over TCP and Modbus TCP."""

import os
import subprocess
import threading
import time

from support import mpyrun
from support.paths import MPY_SCRIPTS
import pytest
from sim import Simulator

MAP = os.path.join(mpyrun.ROOT, "board_configs", "chargers", "sim.json")
CLIENT = os.path.join(MPY_SCRIPTS, "bridge_client.py")
POLL_S = 1.0  # sim.json's poll_ms


class BridgeProc(mpyrun.LineProc):
    """The MicroPython bridge client; its output lines are collected in the background."""

    what = "client"

    def __init__(self, kind, where, port, fail_limit=2):
        self.p = mpyrun.start(CLIENT, "256K", (MAP, kind, where, str(port), str(fail_limit)), stdin=subprocess.PIPE)
        self.follow(self.p.stdout)
        self.wait(r"^READY", 5)

    def cmd(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def stats(self):
        import json

        m = self.mark()
        self.cmd("stats")
        return json.loads(self.wait(r"^STATS (.*)$", 3, m).group(1))

    def close(self):
        try:
            self.cmd("quit")
            self.p.wait(3)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()
        assert "Traceback" not in self.output(), self.output()


class WriteLog:
    """Host times of the writes the simulator takes (wraps Station.on_request)."""

    def __init__(self, sim):
        self.sim = sim
        self.events = []
        self.cv = threading.Condition()
        st = sim.station
        orig = st.on_request

        def hook(fc, address, values, now):
            orig(fc, address, values, now)
            if fc in (5, 6, 15, 16):
                with self.cv:
                    for i, v in enumerate(values):
                        self.events.append((time.monotonic(), address + i, int(v)))
                    self.cv.notify_all()

        st.on_request = hook

    def wait(self, address, value, timeout, since=0.0):
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for t, a, v in self.events:
                    if t >= since and a == address and v == value:
                        return t
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("no write %d=%d within %ss: %r" % (address, value, timeout, self.events[-10:]))
                self.cv.wait(left)






@pytest.mark.parametrize("kind,framing", [("rtutcp", "rtu"), ("tcp", "tcp")])
def test_bridge_against_the_simulator(kind, framing):
    t0 = time.monotonic()
    sim = Simulator(MAP, port=0, framing=framing, seed=7).start()
    m = sim.m
    log = WriteLog(sim)
    c = None
    try:
        c = BridgeProc(kind, "127.0.0.1", sim.port)
        # connecting: init writes (failsafe, watchdog), link up, the effective limit (hw max)
        c.wait(r"^EV link up", 5)
        c.wait(r"^EV state A plugged 0 charging 0", 3)
        log.wait(m.failsafe.address, m.failsafe.value, 3)
        log.wait(m.watchdog.address, m.watchdog.value, 3)
        log.wait(m.limit.address, 160, 3)
        c.wait(r"^EV applied 16$", 3)

        # plug: B, then C (charging) reach the model's subscriber within a poll or two
        mk = c.mark()
        sim.plug()
        c.wait(r"^EV state C plugged 1 charging 1", 2 * POLL_S + 1, mk)

        # a limit request reaches the register within one poll interval
        for amps, raw in ((10, 100), (7.5, 75), (12, 120)):
            t = time.monotonic()
            c.cmd("request %s" % amps)
            tw = log.wait(m.limit.address, raw, POLL_S, since=t)
            assert tw - t < POLL_S
            sim.wait_state(lambda s, a=amps: s["limit_a"] == a)
        # below the controller minimum: paused (0), the EV stays plugged and stops
        mk = c.mark()
        t = time.monotonic()
        c.cmd("request 3")
        log.wait(m.limit.address, 0, POLL_S, since=t)
        c.wait(r"^EV state B plugged 1 charging 0", 2 * POLL_S + 1, mk)
        c.cmd("request 10")
        log.wait(m.limit.address, 100, POLL_S, since=t)
        sim.wait_state(lambda s: s["state"] == "C")

        # the watchdog stays fed by the polls: it never trips
        time.sleep(m.watchdog_ms / 1000.0 * 0.5)
        assert not sim.state()["tripped"]

        # injected faults, each survived without losing the link
        for kind_, count in (("timeout", 1), ("corrupt", 1), ("exception", 1)):
            sim.fault(kind_, count=count)
            sim.wait_state(lambda s: not s["faults_pending"], 3)
        time.sleep(0.3)
        st = c.stats()
        assert st["link"] == "up" and st["downs"] == 0, st
        assert st["errors"] >= 1, st  # the exception response at least

        # reboot: the controller forgets the limit; the readback notices, set-up and limit again
        t = time.monotonic()
        sim.fault("reboot")
        log.wait(m.watchdog.address, m.watchdog.value, 3, since=t)
        log.wait(m.limit.address, 100, 3, since=t)
        sim.wait_state(lambda s: s["limit_a"] == 10)
        assert c.stats()["reboots"] >= 1

        # many timeouts: the link goes down and is reported; then it comes back with the limit
        mk = c.mark()
        sim.fault("timeout", count=6)
        c.wait(r"^EV link down", 4, mk)
        t = time.monotonic()
        c.wait(r"^EV link up", 6, mk)
        log.wait(m.limit.address, 100, 3, since=t)
        c.wait(r"^EV applied 10$", 3, mk)

        # the controller gone (simulator stopped) -> down; back (restarted) -> up, limit again
        mk = c.mark()
        sim = _restart_after_down(sim, framing, c, mk)
        log = WriteLog(sim)
        c.wait(r"^EV link up", 8, mk)
        log.wait(m.limit.address, 100, 3)
        log.wait(m.watchdog.address, m.watchdog.value, 3)
        sim.wait_state(lambda s: s["limit_a"] == 10)
        st = c.stats()
        assert st["link"] == "up" and st["downs"] >= 2 and st["polls"] > 5, st
    finally:
        if c:
            c.close()
        sim.stop()
    assert time.monotonic() - t0 < 40


def _restart_after_down(sim, framing, c, mk):
    port = sim.port
    sim.stop()
    c.wait(r"^EV link down", 4, mk)
    new = Simulator(MAP, port=port, framing=framing, seed=3)
    for _ in range(30):
        try:
            return new.start()
        except OSError:
            time.sleep(0.1)
    raise AssertionError("could not re-bind port %d" % port)


def test_gateway_runs_the_bridge(tmp_path):
    """The gateway with a charger section (as board_configs/host-sim.json has it) starts the
    bridge next to SHIP: the SHIP line still comes first, then link and state reach the log."""
    from support.gateway_proc import Gateway

    sim = Simulator(MAP, port=0, framing="rtu", seed=5).start()
    log = WriteLog(sim)
    # LPC's init state holds the failsafe limit until an energy guard speaks (LPC-TS-017):
    # set it to the station's maximum so that the first write is the full 16 A
    gw = Gateway(tmp_path, charger={
        "map": MAP, "link": {"kind": "rtu-over-tcp", "host": "127.0.0.1", "port": sim.port},
        "timeout_ms": 200, "retries": 1, "fail_limit": 2}, extra={"usecases": {"failsafe_w": 100000}})
    try:
        gw.start()
        assert gw.lines[0].startswith("SHIP 127.0.0.1:"), gw.output()
        gw.wait_for(r"^charger: sim via rtu-over-tcp 127.0.0.1:%d unit 1" % sim.port, 5)
        gw.wait_for(r"charger link up", 5)
        log.wait(sim.m.limit.address, 160, 3)
        mk = gw.mark()
        sim.plug()
        gw.wait_for(r"charger state C plugged 1 charging 1", 4, mk)
        mk = gw.mark()
        sim.stop()
        gw.wait_for(r"charger link down", 5, mk)
    finally:
        gw.stop()
        sim.stop()


def test_bridge_over_a_pty_pair():
    """RTU on a tty: the client's pty pair and the simulator's are joined by the pass-through
    copier of test_modbus_e2e (no faults armed there; the simulator injects its own)."""
    import tty

    from test_modbus_e2e import FaultProxy

    t0 = time.monotonic()
    a_master, a_slave = os.openpty()
    b_master, b_slave = os.openpty()
    for fd in (a_slave, b_slave):
        tty.setraw(fd)
    proxy = FaultProxy(fds=(a_master, b_master)).start()
    sim = Simulator(MAP, serial=os.ttyname(b_slave), seed=9).start()
    m = sim.m
    log = WriteLog(sim)
    c = None
    try:
        c = BridgeProc("serial", os.ttyname(a_slave), 0)
        c.wait(r"^EV link up", 5)
        log.wait(m.limit.address, 160, 3)
        mk = c.mark()
        sim.plug()
        c.wait(r"^EV state C plugged 1 charging 1", 2 * POLL_S + 1, mk)
        t = time.monotonic()
        c.cmd("request 9")
        assert log.wait(m.limit.address, 90, POLL_S, since=t) - t < POLL_S
        for kind_ in ("timeout", "corrupt", "exception"):
            sim.fault(kind_)
            sim.wait_state(lambda s: not s["faults_pending"], 3)
        time.sleep(0.3)
        assert c.stats()["downs"] == 0
        mk = c.mark()
        sim.fault("timeout", count=6)
        c.wait(r"^EV link down", 4, mk)
        t = time.monotonic()
        c.wait(r"^EV link up", 6, mk)
        log.wait(m.limit.address, 90, 3, since=t)
    finally:
        if c:
            c.close()
        sim.stop()
        proxy.stop()
        for fd in (a_master, a_slave, b_master, b_slave):
            os.close(fd)
    assert time.monotonic() - t0 < 40
