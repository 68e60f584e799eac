"""The pairing button and window watch under CPython; the same cases run under MicroPython in
test_cases_mpy."""

import pytest

from cases import caserun
from cases import pairing_cases as cases

NAMES = caserun.names(cases)


@pytest.mark.parametrize("name", NAMES)
def test_pairing(name):
    getattr(cases, name)()


def test_adapter_button_opens_window_and_blinks_led(tmp_path):
    """gateway/pairing.run under MicroPython polling the machine stub's Pin: GPIO0 held low opens
    the window; the LED (GPIO2) blinks while it is open and is dark after it closes."""
    import os

    from support import mpyrun
    from support.paths import HOST_TESTS

    code = """
import asyncio, machine
from gateway import pairing
from ship.trust import TrustStore
class GW:
    trust = TrustStore(%r)
leds = []
orig = machine.Pin.value
def value(self, v=None):
    if v is not None and self.id == 2:
        leds.append(v)
    return orig(self, v)
machine.Pin.value = value
async def go():
    t = asyncio.create_task(pairing.run(GW(), 0, 300, 1, 2))
    machine.levels[0] = 0
    await asyncio.sleep_ms(600)
    machine.levels[0] = 1
    await asyncio.sleep_ms(1600)
    t.cancel()
asyncio.run(go())
print("LEDS", leds)
""" % str(tmp_path / "trust.json")
    r = mpyrun.run_code(code, tmp_path, extra_path=(os.path.join(HOST_TESTS, "machine_stub"),)).check()
    assert "pairing window open for 1 s (button held" in r.stdout, r.stdout
    assert "pairing window closed; trusted meanwhile: nobody" in r.stdout
    leds = r.stdout.split("LEDS ")[1]
    assert "1" in leds and leds.strip().endswith("0]"), leds
