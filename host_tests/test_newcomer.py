"""Newcomer traps that need no MicroPython: one SHIP port default for the gateway and the test
CEM, and a .local CEM address refused at config load (nothing would ever resolve it)."""

import pytest

from gateway import config, devconfig
from testcem import cli, shipmsg


def test_one_ship_port_default():
    assert shipmsg.DEFAULT_PORT == config.SHIP_PORT == config.parse({})["ship"]["port"]
    import argparse

    p = argparse.ArgumentParser()
    cli.configure(p)
    assert p.parse_args(["--host", "192.168.1.50"]).port == config.SHIP_PORT


@pytest.mark.parametrize("host", ["evcc.local", "EVCC.Local.", "hems.local"])
def test_local_cem_host_refused(tmp_path, host):
    with pytest.raises(config.ConfigError, match=r"ship\.cem\.host: .*mDNS name"):
        config.parse({"ship": {"cem": {"host": host, "port": 4712, "ski": "ab" * 20}}})
    dev = tmp_path / "device.json"
    dev.write_text('{"ship": {"cem": {"host": "%s", "ski": "%s"}}}' % (host, "ab" * 20))
    with pytest.raises(config.ConfigError, match=r"device\.ship\.cem\.host: .*mDNS name"):
        devconfig.load(str(dev), config.parse({}))
    cfg = config.parse({"ship": {"cem": {"host": "192.168.1.5", "port": 4712, "ski": "ab" * 20}}})
    assert cfg["ship"]["cem"]["host"] == "192.168.1.5"
