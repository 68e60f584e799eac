"""Measurement notify volume per subscriber under the charging-station simulator's default noise
(tools/sim.py Station: phase voltages 230 V +- 2 V, currents up to 0.2 A under the offer, every
50 ms): its values go into the charger model as the bridge puts them, SpineApp notifies at most
once a second, and the bytes of the measurement notifies one subscriber of both Measurement
servers (MPC's on the EVSE, EVCEM's on the EV) gets in a minute are counted. The README's
performance section quotes the figure: pytest host_tests/test_measurement_volume.py -s"""

import os

from charger import Charger
from controller import mapload
from eejson.writer import Writer
from sim import Station
from spine.session import Session
from usecases.station import SpineApp

from cases import usecase_cases as U

MAP = os.path.join(U.__file__.rsplit("host_tests", 1)[0], "board_configs", "chargers", "sim.json")


def minute(seconds=60, seed=1):
    st = Station(mapload.load_file(MAP), seed=seed)
    clock = U.Clock()
    ch = Charger(6, 16, 3, 230)
    ch.tick(clock.t)
    ch.update(link=True)
    app = SpineApp(U.GW, {"brand": "Test", "model": "GW", "serial": "0001"}, ch,
                   {"phases": 3, "voltage": 230, "clock": clock, "lpc": {"nominal_max_w": 11040}})
    app.clock_synced = lambda: False  # no heartbeat: only what this counts
    s = Session(app)
    app.sessions.append(s)
    st.plug(0.0)
    t = 0.0
    for _ in range(20):  # charging
        t += 0.05
        st.step(t, 0.05)
    ch.update(**st.values())
    U.link(s, "sub", (U.EV, 6), ftype="Measurement")
    U.link(s, "sub", ([1], 7), ftype="Measurement")
    w = Writer(128)
    total = 0
    count = 0
    for k in range(seconds * 20):  # the simulator's 50 ms steps, the model polled each second
        t += 0.05
        st.step(t, 0.05)
        if k % 20 == 19:
            ch.update(**st.values())
            clock.t += 1000
            app.tick(clock.t)
            for o in s.out:
                total += w.measure(o.emit)
                count += 1
            s.out = []
    return total, count


def test_measurement_notify_volume_per_subscriber():
    total, count = minute()
    print("\nmeasurement notifies to one subscriber of MPC + EVCEM in 60 s: %d messages, %d bytes" % (count, total))
    # the whole lists every second: 120 notifies, 168 KB; partial ones of what moved a step: ~22 KB
    assert count <= 60, count
    assert total < 40000, total
