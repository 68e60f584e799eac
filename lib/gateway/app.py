# The gateway application: configuration, identity, trust store and the SHIP node.
# On the device main.py calls main(); on the host tools/host_run.py calls run().
import asyncio
import time

import log
from gateway import config
from gateway.datatap import DataTap
from ship.cert import peer_ski
from ship.node import ShipNode
from ship.trust import TrustStore
from spine.app import SpineApp

_TAG = "app"

# the running gateway, for the REPL diagnostics (diag.py)
current = None


def _read(path):
    with open(path, "rb") as f:
        return f.read()


class Gateway:
    def __init__(self, board_path, data_dir, host_files=False):
        self.cfg = config.load(board_path)
        self.data_dir = data_dir
        self.cert = _read(data_dir + "/cert.der")
        key = _read(data_dir + "/key.der")
        # our own certificate must carry SKI = SHA-1(public key), or modern peers refuse it
        self.ski = peer_ski(self.cert)
        self.ship = config.ship_settings(self.cfg, self.ski)
        ident = self.cfg["identity"]
        self.device_address = "d:_n:%s_%s-%s" % (ident["brand"], ident["model"], self.ship["serial"])
        # trusted SKIs are loaded before the server starts, so early reconnects are served
        self.trust = TrustStore(
            data_dir + "/trust.json", data_dir + "/pending.json" if host_files else None
        )
        if self.trust.error:
            log.error(_TAG, self.trust.error)
        log.level = self.cfg["log"]["level"]
        self.spine = SpineApp(self.device_address, {"brand": ident["brand"], "model": ident["model"], "serial": self.ship["serial"]})
        self.node = ShipNode(self.ship, self.cert, key, self.ski, self.trust, self._spine)

    def _spine(self, peer):
        ep = self.spine.endpoint(peer)
        return DataTap(ep) if log.level >= 3 else ep

    async def start(self):
        port = await self.node.start()
        host = self.ship["host"]
        print("SHIP %s:%d SKI %s ID %s" % (host, port, self.ski, self.ship["ship_id"]))
        window = self.cfg["ship"]["pairing_window_s"]
        if window:
            self.trust.open_window(time.ticks_ms(), window)
            print("pairing window open for %d s: unknown peers are trusted on first contact" % window)
        print("pair: 1. enter SKI %s at the energy manager (evcc: ski of the eebus charger)" % self.ski)
        print("      2. trust the manager's SKI here: 'tools/gw trust add <SKI>' on the host,")
        print("         diag.approve() at the REPL; until then it is held pending, then refused")
        print("try:  tools/gw cem --host %s --port %d --ski %s" % (host, port, self.ski))
        return port

    async def serve_forever(self, probe=None):
        global current
        current = self
        self.node.probe = probe
        await self.start()
        if probe:
            probe("base")
        while True:
            await asyncio.sleep(3600)


def run(board_path, data_dir, host_files=True, probe=None):
    if probe:
        probe("imports")
    try:
        gw = Gateway(board_path, data_dir, host_files)
    except config.ConfigError as e:
        print("config error:", e)
        raise SystemExit(2)
    except OSError as e:
        print("cannot read the device identity in %s (%s); create it with 'tools/gw certs'" % (data_dir, e))
        raise SystemExit(2)
    try:
        asyncio.run(gw.serve_forever(probe))
    except KeyboardInterrupt:
        print("stopped")


def main():
    run("/board.json", "/data", host_files=False)
