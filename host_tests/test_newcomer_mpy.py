"""Small start-up behaviours a newcomer meets first, under the MicroPython unix port: the
pairing banner names what works where it is read (host: tools/gw; device: its console and its
own address)."""

import mpyrun

BANNER = r'''
from gateway import app, netup
ski = "ab" * 20
host = "\n".join(app.banner(ski, "127.0.0.1", 4712, False))
assert "tools/gw trust add" in host and "--host 127.0.0.1 --port 4712" in host, host
netup.status["ip"] = "192.168.1.50"
dev = "\n".join(app.banner(ski, "0.0.0.0", 4712, True))
# the device has no tools/gw trust, and 0.0.0.0 is no address to dial
assert "trust add" not in dev and "diag.approve()" in dev, dev
assert "--host 192.168.1.50 --port 4712" in dev and "0.0.0.0" not in dev, dev
netup.status["ip"] = None
assert "<the gateway's IP>" in "\n".join(app.banner(ski, "0.0.0.0", 4712, True))
print("OK")
'''


def test_banner_says_what_works_where_it_is_read(tmp_path):
    r = mpyrun.run_code(BANNER, tmp_path).check()
    assert "OK" in r.stdout
