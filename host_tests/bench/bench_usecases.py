"""Bench: a full SPINE session with every use case under the MicroPython unix port.

Run: .venv/bin/python -m pytest host_tests/bench/bench_usecases.py -q -s   (or make bench)

host_tests/mpy/usecase_session.py builds the gateway's SpineApp over a charger model with the
EV plugged in (EVSECC, EVCS, LPC, MPC; EVCC, EVCEM, OPEV, OSCEV, CEVC), subscribes and binds
what eebus-go's CEM does, then runs 100 cycles of one OPEV limit write (notify + result) and
ten measurement ticks (1000 in all, each notifying the EV's and the EVSE's Measurement
subscribers), every datagram rendered window by window into a 1 KB buffer, as the connection's
writer renders into its WebSocket's tx part.
Figures: the live heap after a full collection at the end of every cycle (its high-water and
its growth after the first 10 cycles; target: no growth), and what sending the full EVSE+EV
detailed discovery allocates beyond that buffer (target: 2 KB or less).
"""

import json
import os
import re

from support import mpyrun
from support.paths import MPY_SCRIPTS

SCRIPT = os.path.join(MPY_SCRIPTS, "usecase_session.py")


def test_full_session_heap():
    r = mpyrun.run(SCRIPT, heapsize="512K", args=("100", "1000")).check()
    disc = re.search(r"^DISCOVERY (\d+) (\d+)$", r.stdout, re.M)
    res = json.loads(re.search(r"^RESULT (.*)$", r.stdout, re.M).group(1))
    size, alloc = int(disc.group(1)), int(disc.group(2))
    print()
    print("use-case session (MicroPython unix port, 64-bit; %s)" % SCRIPT[len(mpyrun.ROOT) + 1:])
    print("  full EVSE+EV discovery reply: %d bytes, %d B allocated beyond the 1 KB tx buffer (target <= 2048)"
          % (size, alloc))
    print("  %d limit writes, 1000 measurement ticks, %d datagrams sent, %d errors" % (
        res["writes"], res["datagrams_sent"], res["errors"]))
    print("  live heap: %d B after set-up; high-water %d B (+%d); growth after the first 10 cycles: %d B (target 0)" % (
        res["base"], res["high_water"], res["high_water"] - res["base"], res["growth_after_10"]))
    assert res["errors"] == 0
    assert res["datagrams_sent"] >= 2 * res["writes"] + 1000
