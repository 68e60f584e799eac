"""Sans-IO cases of the charger bridge (host_tests/cases/bridge_cases.py) under CPython; the
same file runs under MicroPython in test_cases_mpy."""

import json

import pytest

from cases import bridge_cases, caserun
from gateway import config


@pytest.mark.parametrize("name", caserun.names(bridge_cases))
def test_bridge_case(name):
    getattr(bridge_cases, name)()


SECTION = {"map": "chargers/sim.json", "link": {"kind": "rtu-over-tcp", "host": "127.0.0.1", "port": 5020}}


def _parse(charger):
    return config.parse({"board": "t", "charger": charger})


def test_charger_section_defaults():
    c = _parse(SECTION)["charger"]
    assert c["hw_min"] == 6 and c["hw_max"] == 16 and c["phases"] == 3 and c["nominal_v"] == 230
    assert c["link"] == {"kind": "rtu-over-tcp", "host": "127.0.0.1", "port": 5020, "unit": None, "baudrate": None}
    assert config.parse({"board": "t"})["charger"] is None


@pytest.mark.parametrize("section,key", [
    ({"link": {"kind": "tcp", "host": "h"}}, "charger.map"),
    (dict(SECTION, mapp="x"), "charger.mapp"),
    (dict(SECTION, link={"kind": "rs485"}), "charger.link.kind"),
    (dict(SECTION, link={"kind": "tcp"}), "charger.link.host"),
    (dict(SECTION, link={"kind": "tcp", "host": "h", "port": 70000}), "charger.link.port"),
    (dict(SECTION, link={"kind": "serial"}), "charger.link.path"),
    (dict(SECTION, link={"kind": "serial", "path": "/dev/ttyUSB0", "port": 1}), "charger.link.port"),
    (dict(SECTION, link={"kind": "tcp", "host": "h", "tx": 1}), "charger.link.tx"),
    (dict(SECTION, link={"kind": "uart", "de": "x"}), "charger.link.de"),
    (dict(SECTION, link={"kind": "uart", "unit": 300}), "charger.link.unit"),
    (dict(SECTION, hw_max=200), "charger.hw_max"),
    (dict(SECTION, hw_min=20), "charger.hw_min"),
    (dict(SECTION, phases=4), "charger.phases"),
    (dict(SECTION, retries=True), "charger.retries"),
    ("sim.json", "charger"),
])
def test_charger_section_errors_name_the_key(section, key):
    with pytest.raises(config.ConfigError) as e:
        _parse(section)
    assert str(e.value).startswith(key + ":"), str(e.value)


def test_map_path_relative_to_the_board_config(tmp_path):
    p = tmp_path / "board.json"
    p.write_text(json.dumps({"board": "t", "charger": SECTION}))
    assert config.load(str(p))["charger"]["map"] == str(tmp_path) + "/chargers/sim.json"
    p.write_text(json.dumps({"board": "t", "charger": dict(SECTION, map="/abs/m.json")}))
    assert config.load(str(p))["charger"]["map"] == "/abs/m.json"


def test_host_sim_board_config_points_at_the_sim_map():
    import os

    from support import mpyrun

    c = config.load(os.path.join(mpyrun.ROOT, "board_configs", "host-sim.json"))["charger"]
    assert os.path.samefile(c["map"], os.path.join(mpyrun.ROOT, "board_configs", "chargers", "sim.json"))
    assert c["link"]["kind"] == "rtu-over-tcp" and c["link"]["port"] == 5020
