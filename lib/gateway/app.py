# The gateway application: configuration, identity, trust store and the SHIP node.
# On the device main.py calls main(); on the host tools/host_run.py calls run().
import asyncio
import time

import log
from charger import F_CHARGING, F_ERROR, F_LINK, F_PLUGGED, F_STATE
from gateway import config
from gateway.datatap import DataTap
from ship.cert import peer_ski
from ship.node import ShipNode
from ship.trust import TrustStore
from spine.app import SpineApp

_TAG = "app"
_M_STATE = (1 << F_STATE) | (1 << F_PLUGGED) | (1 << F_CHARGING) | (1 << F_ERROR)

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
        self.charger = None  # the charger model (charger.py), for the front ends and diag
        self.bridge = None
        if self.cfg["charger"] is not None:
            self._charger(self.cfg["charger"])

    def _charger(self, c):
        from bridge import Bridge
        from charger import Charger
        from modbus import regmap
        from modbus.master import Master

        try:
            rm = regmap.load_file(c["map"])
        except OSError as e:
            raise config.ConfigError("charger.map: cannot read %s (%s)" % (c["map"], e))
        except regmap.MapError as e:
            raise config.ConfigError("charger.map: %s: %s" % (c["map"], e))
        l = c["link"]
        if l["kind"] in ("rtu-over-tcp", "serial", "uart") and rm.kind != "rtu":
            raise config.ConfigError("charger.link.kind: %s, but the map speaks Modbus TCP" % l["kind"])
        if l["kind"] == "tcp" and rm.kind != "tcp":
            # an RTU controller behind a Modbus TCP gateway is common: allowed, said once
            log.info(_TAG, "charger: map %s is RTU, reached over Modbus TCP", rm.name)
        unit = rm.unit if l["unit"] is None else l["unit"]
        try:
            self.charger_link = _link(l, rm)
        except OSError as e:
            raise config.ConfigError("charger.link: cannot open %s (%s)" % (l.get("path") or l["kind"], e))
        self.charger = Charger(c["hw_min"], c["hw_max"], c["phases"], c["nominal_v"], rm.limit_scale)
        master = Master(self.charger_link, timeout_ms=c["timeout_ms"], retries=c["retries"])
        self.bridge = Bridge(rm, master, self.charger, unit=unit, fail_limit=c["fail_limit"])
        self.charger.subscribe(self._charger_event)
        where = l.get("host") or l.get("path") or "UART%d" % l.get("uart", 0)
        self.charger_where = "%s %s%s unit %d" % (l["kind"], where, ":%d" % l["port"] if "port" in l else "", unit)

    def _charger_event(self, mask):
        # the console and the log ring say what a user needs to see: link and state changes
        ch = self.charger
        if mask & (1 << F_LINK):
            log.info(_TAG, "charger link %s", "up" if ch.get(F_LINK) else "down")
        if mask & ((1 << F_LINK) | (1 << F_ERROR)):
            # EEBUS sees the EVSE in failure while the controller is unreachable or in error
            if not ch.get(F_LINK):
                self.spine.set_operating_state("failure", "controller link lost")
            elif ch.get(F_ERROR):
                self.spine.set_operating_state("failure", "controller error %s" % ch.get(F_ERROR))
            else:
                self.spine.set_operating_state("normalOperation")
        if mask & _M_STATE:
            log.info(_TAG, "charger state %s plugged %d charging %d error %s", ch.get(F_STATE),
                     1 if ch.get(F_PLUGGED) else 0, 1 if ch.get(F_CHARGING) else 0, ch.get(F_ERROR))

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
        if self.bridge is not None:
            print("charger: %s via %s" % (self.bridge.map.name, self.charger_where))
            asyncio.create_task(self.bridge.run())
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


def _link(l, rm):
    # the transport for the charger section's link (config.py has checked it)
    from modbus import transport

    kind = l["kind"]
    baud = l["baudrate"] or rm.baudrate
    if kind == "rtu-over-tcp":
        return transport.RtuOverTcp(l["host"], l["port"])
    if kind == "tcp":
        return transport.Tcp(l["host"], l["port"])
    if kind == "serial":
        return transport.Serial(l["path"], baud)
    from machine import UART, Pin

    parity = {"N": None, "E": 0, "O": 1}[rm.parity]
    # rxbuf: a 255-byte reply must fit; timeout 0: reads never block (transport.Uart)
    u = UART(l["uart"], baudrate=baud, bits=8, parity=parity, stop=rm.stopbits, tx=l["tx"], rx=l["rx"],
             rxbuf=512, timeout=0, timeout_char=0)
    de = None if l["de"] is None else Pin(l["de"], Pin.OUT)
    return transport.Uart(u, baud, de)


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
