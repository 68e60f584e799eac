# The gateway application: configuration, identity, trust store and the SHIP node.
# On the device main.py calls main(); on the host tools/host_run.py calls run().
import asyncio
import gc
import time

import log
from charger import F_CHARGING, F_ERROR, F_LINK, F_PLUGGED, F_STATE
from gateway.housekeeping import Housekeeping
from gateway.supervisor import Supervisor
from gateway.timesync import TimeSync
from ship.cert import peer_ski
from ship import pin as P
from ship.admission import pool_sets
from ship.node import BUFS, ShipNode
from ship.trust import TrustStore
from usecases.station import SpineApp
from ws.pool import Pool

_TAG = "app"
_M_STATE = (1 << F_STATE) | (1 << F_PLUGGED) | (1 << F_CHARGING) | (1 << F_ERROR)


def _packed():
    # A collection after each start-up step that leaves garbage (JSON parsed, texts formatted,
    # dict tables outgrown): the next step's long-lived objects then fill the heap from the
    # bottom, packed, instead of landing between the garbage of earlier steps that one late
    # collection (a full small heap) leaves as holes. Measured (32-bit frozen, a 140 KB heap,
    # listening): without, 303 free runs of at most 2.9 KB; with, 20, the largest 21.7 KB.
    gc.collect()


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _forget(*names):
    # Modules only start-up needs (the parsers of the configs and of the register map, the QR
    # text, the mDNS set-up): out of sys.modules and their package, so that their functions and tables are
    # freed once nothing else holds them; an import after start-up (a tool at the console)
    # loads them again.
    import sys

    for name in names:
        m = sys.modules.pop(name, None)
        pkg, _, leaf = name.rpartition(".")
        p = sys.modules.get(pkg)
        if m is not None and p is not None and getattr(p, leaf, None) is m:
            delattr(p, leaf)


class Gateway:
    def __init__(self, board_path, data_dir, host_files=False, sup=None):
        from gateway import config, devconfig

        _packed()  # the imports' outgrown dict tables
        self.cfg = config.load(board_path)
        devconfig.load(data_dir + "/device.json", self.cfg)  # the device's own settings win
        log.ring(self.cfg["log"]["ring"])  # first: before every long-lived buffer (None: log.RING)
        # then every connection's buffers (ship.node.BUFS), on a heap rid of the configuration's
        # parsing leftovers, before anything transient
        _packed()
        self.pool = Pool(pool_sets(self.cfg["ship"]), BUFS)
        self.data_dir = data_dir
        # device runtime: crash handling and watchdog, the clock, memory housekeeping
        self.sup = sup or Supervisor(data_dir, _machine())
        self.sup.configure(self.cfg["watchdog_ms"])
        self.clock = TimeSync(self.cfg["ntp"]["servers"], self.cfg["ntp"]["retries"])
        self.house = Housekeeping()
        if self.cfg["log"]["file_kb"]:
            log.to_file(data_dir + "/log.txt", self.cfg["log"]["file_kb"])
        self.cert = _read(data_dir + "/cert.der")
        key = _read(data_dir + "/key.der")
        # our own certificate must carry SKI = SHA-1(public key), or modern peers refuse it
        self.ski = peer_ski(self.cert)
        self.ship = config.ship_settings(self.cfg, self.ski)
        _packed()
        ident = self.cfg["identity"]
        self.device_address = "d:_n:%s_%s-%s" % (ident["brand"], ident["model"], self.ship["serial"])
        # trusted SKIs are loaded before the server starts, so early reconnects are served
        self.trust = TrustStore(
            data_dir + "/trust.json", data_dir + "/pending.json" if host_files else None
        )
        if self.trust.error:
            log.error(_TAG, self.trust.error)
        _packed()
        log.level = self.cfg["log"]["level"]
        b = self.cfg["pair_button"]
        self._pair_s = b["window_s"] if b else 120
        self.charger = None  # the charger model (charger.py), for the front ends and diag
        self.bridge = None
        self.mdns = None  # the mDNS responder/browser (mdns.udp.Mdns) once started
        self.echonet = None  # the ECHONET Lite adapter (echonet.udp.EchonetUdp) once started
        c = self.cfg["charger"]
        if c is not None:
            self._charger(c)
            _packed()
        self.spine = SpineApp(
            self.device_address, {"brand": ident["brand"], "model": ident["model"], "serial": self.ship["serial"]},
            self.charger, _spine_options(self.cfg, data_dir),
        )
        self.spine.clock_synced = self.clock.synced  # no heartbeat before NTP
        _packed()
        self.pin = _pin_policy(self.ship, data_dir)
        self.node = ShipNode(self.ship, self.cert, key, self.ski, self.trust, self._spine, self.pin,
                             data_dir + "/pinstate.json", self.pool)
        config = devconfig = None
        _forget("gateway.devconfig", "gateway.config", "controller.mapload")
        _packed()

    def _charger(self, c):
        from charger import Charger
        from controller import mapload, regmap
        from controller.bridge import Bridge
        from gateway.config import ConfigError
        from modbus.master import Master

        try:
            rm = mapload.load_file(c["map"])
        except OSError as e:
            raise ConfigError("charger.map: cannot read %s (%s)" % (c["map"], e))
        except regmap.MapError as e:
            raise ConfigError("charger.map: %s: %s" % (c["map"], e))
        lk = c["link"]
        if lk["kind"] in ("rtu-over-tcp", "serial", "uart") and rm.kind != "rtu":
            raise ConfigError("charger.link.kind: %s, but the map speaks Modbus TCP" % lk["kind"])
        if lk["kind"] == "tcp" and rm.kind != "tcp":
            # an RTU controller behind a Modbus TCP gateway is common: allowed, said once
            log.info(_TAG, "charger: map %s is RTU, reached over Modbus TCP", rm.name)
        unit = rm.unit if lk["unit"] is None else lk["unit"]
        try:
            tr = _link(lk, rm)
        except OSError as e:
            raise ConfigError("charger.link: cannot open %s (%s)" % (lk.get("path") or lk["kind"], e))
        self.charger = Charger(c["hw_min"], c["hw_max"], c["phases"], c["nominal_v"], rm.limit_scale)
        master = Master(tr, timeout_ms=c["timeout_ms"], retries=c["retries"])
        self.bridge = Bridge(rm, master, self.charger, unit=unit, fail_limit=c["fail_limit"])
        self.charger.subscribe(self._charger_event)
        where = lk.get("host") or lk.get("path") or "UART%d" % lk.get("uart", 0)
        self.charger_where = "%s %s%s unit %d" % (lk["kind"], where, ":%d" % lk["port"] if "port" in lk else "", unit)

    def _charger_event(self, mask):
        # the console and the log ring say what a user needs to see: link and state changes
        ch = self.charger
        # (the EVSE's operating state in EEBUS follows the model by itself: usecases.evse)
        if mask & (1 << F_LINK):
            log.info(_TAG, "charger link %s", "up" if ch.get(F_LINK) else "down")
        if mask & _M_STATE:
            log.info(_TAG, "charger state %s plugged %d charging %d error %s", ch.get(F_STATE),
                     1 if ch.get(F_PLUGGED) else 0, 1 if ch.get(F_CHARGING) else 0, ch.get(F_ERROR))

    def _spine(self, peer):
        # after the TLS handshake's garbage, before the session's long-lived objects: packed
        # low, as at start-up (_packed), not between that garbage
        _packed()
        ep = self.spine.endpoint(peer)
        if log.level < 3:
            return ep
        # the debug tap only at log level 3: the module is not resident otherwise (~0.5 KB)
        from gateway.datatap import DataTap

        return DataTap(ep)

    async def start(self):
        port = await self.node.start()
        _packed()
        host = self.ship["host"]
        print("SHIP %s:%d SKI %s ID %s" % (host, port, self.ski, self.ship["ship_id"]))
        pol = self.pin
        if pol.mode != "none":
            print("SHIP PIN %s (%s): a new energy manager pairs by typing it" % (pol.secret, pol.mode))
            if pol.guard.locked(time.ticks_ms()):
                print("PIN input locked for %d s after wrong PINs" % (pol.guard.ms_left(time.ticks_ms()) // 1000))
        ident = self.cfg["identity"]
        from ship.qrtext import qr_text

        print("QR " + qr_text(self.ski, self.ship["ship_id"], ident["brand"], ident["type"], ident["model"],
                              self.ship["serial"], pin=pol.secret if pol.mode != "none" else None))
        window = self.cfg["ship"]["pairing_window_s"]
        if window:
            self.trust.open_window(time.ticks_ms(), window)
            print("pairing window open for %d s: unknown peers are trusted on first contact" % window)
        for line in banner(self.ski, host, port, _on_device(), pol.mode, self.cfg["pair_button"]):
            print(line)
        # after the SHIP line, which tools and tests read first
        sup = self.sup
        sup.spawn("supervisor", sup.run())
        sup.spawn("housekeeping", self.house.run(sup.live), 60000)
        sup.spawn("time", self.clock.run())
        from gateway import pairing

        b = self.cfg["pair_button"]
        sup.spawn("pairing", pairing.run(self, b and b["pin"], b["hold_ms"] if b else 3000,
                                          self.pair_window_s(), self.cfg["status_led"]))
        if self.bridge is not None:
            print("charger: %s via %s" % (self.bridge.map.name, self.charger_where))
            # every Modbus transaction it starts shows the bridge at work, link up or down
            m = self.bridge.master
            self.sup.spawn("bridge", self.bridge.run(), 60000, lambda: m.requests)
        if self.charger is not None:
            self.sup.spawn("spine", self._spine_timers(), 60000)
        if self.cfg["mdns"]["enabled"]:
            from gateway import mdns_service

            self.mdns = mdns_service.start(self, port)  # announce _ship._tcp; browse for a CEM
            _packed()
        if self.cfg["echonet"]["enabled"]:
            self._echonet()
            _packed()
        from gateway import netup

        if netup.iface is not None:
            sup.spawn("net", self._net_watch(netup))
        from gateway import console

        kind = console.mode()
        if kind:
            print("console: diag.status(), diag.pair(), diag.pending(), diag.approve(), diag.charger(), ..."
                  " while running")
            sup.spawn("console", console.run(kind, self))
        # the configuration's tree of dicts (~1 KB) is for start-up: what runs on has its own
        # values (the SHIP settings, the pairing window); so are these modules (what of
        # mdns_service runs on, the CEM browse, holds its functions; mdns.setup encodes the names;
        # netboot is boot.py's)
        self.cfg = None
        _forget("ship.qrtext", "gateway.mdns_service", "mdns.setup", "gateway.netboot")
        _packed()
        return port

    def pair_window_s(self):
        return self._pair_s

    def pair(self, seconds=None):
        """Open the pairing window (the console's equivalent of holding the pairing button)."""
        from gateway import pairing

        pairing.open_window(self, seconds or self.pair_window_s(), "console")

    def _echonet(self):
        from gateway import echonet_service

        u = echonet_service.build(self.cfg, self.charger, self.data_dir, self.ski, self.ship["serial"])
        try:
            u.open()
        except OSError as e:  # port 3610 taken: the rest of the gateway keeps serving
            log.error(_TAG, "ECHONET off: cannot bind %s:%d (%s)", u.host, u.port, e)
            return
        self.echonet = u
        print("ECHONET %s:%d EOJ %06X" % (u.host, u.port, u.e.eoj))
        self.sup.spawn("echonet", u.run())

    net_poll_ms = 2000

    async def _net_watch(self, netup):
        # after a Wi-Fi rejoin or a new DHCP address the multicast memberships and the
        # announced address are stale: join and announce again
        lw = netup.LinkWatch(netup.status["up"], netup.status["ip"])
        while True:
            await asyncio.sleep_ms(self.net_poll_ms)
            ev = lw.step(*netup.sample(netup.iface))
            if ev is None:
                continue
            log.info(_TAG, "network %s%s", ev, " " + lw.ip if ev == "up" else "")
            if ev == "up":
                if self.mdns is not None and self.mdns.responder is not None:
                    self.mdns.responder.configure(ip=lw.ip)
                    self.mdns.changed()
                if self.echonet is not None:
                    self.echonet.rejoin()

    async def _spine_timers(self):
        # LPC/LPP supervision, CEVC slots and rate-limited notifies run without a connection too
        live = self.sup.live
        while True:
            now = time.ticks_ms()
            self.spine.tick(now)
            live.beat("spine", now)
            await asyncio.sleep_ms(250)

    async def shutdown(self, wait_ms=2000):
        """An orderly stop (Ctrl-C, SIGTERM through the host runners, the console's soft
        reset): the mDNS goodbye, so that peers drop the service instead of redialling, then
        every SHIP session closed with connectionClose, bounded by wait_ms."""
        if self.mdns is not None:
            self.mdns.goodbye()
            self.mdns = None
        await self.node.stop(wait_ms)

    async def serve_forever(self, probe=None):
        self.node.probe = probe
        await self.start()
        if probe:
            probe("base")
        await self.sup.wait_fatal()  # a task that died ends the run (main() restarts)


def _on_device():
    import sys

    return sys.platform != "linux"


def _pin_policy(ship, data_dir):
    """The PIN policy from the settings: the configured PIN, else one generated once and kept
    in the data directory; the attempt counters as they were at the last run."""
    import os

    mode = ship["pin_mode"]
    guard = P.PinGuard(ship["pin_tries"], ship["pin_lock_s"] * 1000)
    guard.load(P.load_state(data_dir + "/pinstate.json"), time.ticks_ms())
    if mode == "none":
        return P.PinPolicy("none", None, guard)
    secret = ship["pin"] or P.load_or_make_secret(data_dir + "/pin.json", os.urandom)
    return P.PinPolicy(mode, secret, guard)


def banner(ski, host, port, device, pin_mode="none", button=None):
    """The pairing hints after the SHIP line: what works where the user reads them. On the
    device there is no tools/gw: approve at its console, and dial its own address."""
    if device:
        from gateway import netup

        host = netup.status["ip"] or "<the gateway's IP>"
    elif host == "0.0.0.0":
        host = "127.0.0.1"
    out = ["pair: 1. enter SKI %s at the energy manager (evcc: ski of the eebus charger)" % ski]
    if pin_mode != "none":
        out.append("      2. type the SHIP PIN above at the energy manager when it asks (or scan the QR text)")
    if button:
        out.append("      or hold the pairing button (GPIO%d) %d s: the next new energy manager is trusted" % (
            button["pin"], button["hold_ms"] // 1000))
    else:
        out.append("      or diag.pair() at the console: the next new energy manager is trusted")
    if device:
        out.append("      2. trust the manager's SKI: diag.approve() at this console (tools/gw repl);")
        out.append("         until then it is held pending, then refused")
        out.append("try:  tools/gw cem --host %s --port %d --ski %s (on a PC in this network)" % (host, port, ski))
    else:
        out.append("      2. trust the manager's SKI here: 'tools/gw trust add <SKI>' on the host,")
        out.append("         diag.approve() at the console; until then it is held pending, then refused")
        out.append("try:  tools/gw cem --host %s --port %d --ski %s" % (host, port, ski))
    return out


def _spine_options(cfg, data_dir):
    # what the SPINE use cases need from the board config (usecases.station.SpineApp options)
    c = cfg["charger"]
    if c is None:
        return None
    from usecases.lpc import JsonStore

    uc = cfg["usecases"]
    phases = c["phases"]
    volts = c["nominal_v"]
    lpc = {"nominal_max_w": int(c["hw_max"] * phases * volts), "store": JsonStore(data_dir + "/lpc.json")}
    for k in ("failsafe_w", "failsafe_s", "hb_timeout_s", "lpc_timeout_s"):
        if uc[k] is not None:
            lpc[k] = uc[k]
    lpc["init"] = uc["lpc_init"]
    return {"phases": phases, "voltage": volts, "discharges": c["discharges"], "lpc": lpc,
            "evcs": uc["evcs"], "cevc": uc["cevc"], "ev_fallback_a": uc["ev_fallback_a"]}


def _link(lk, rm):
    # the transport for the charger section's link (config.py has checked it); each link is a
    # module of its own: only the one in use is imported
    kind = lk["kind"]
    baud = lk["baudrate"] or rm.baudrate
    if kind == "rtu-over-tcp" or kind == "tcp":
        from modbus.net import RtuOverTcp, Tcp

        return (RtuOverTcp if kind == "rtu-over-tcp" else Tcp)(lk["host"], lk["port"])
    if kind == "serial":
        from modbus.tty import Serial

        return Serial(lk["path"], baud)
    from machine import UART, Pin
    from modbus.uart import Uart

    parity = {"N": None, "E": 0, "O": 1}[rm.parity]
    # rxbuf: a 255-byte reply must fit; timeout 0: reads never block (modbus.uart.Uart)
    u = UART(lk["uart"], baudrate=baud, bits=8, parity=parity, stop=rm.stopbits, tx=lk["tx"], rx=lk["rx"],
             rxbuf=512, timeout=0, timeout_char=0)
    de = None if lk["de"] is None else Pin(lk["de"], Pin.OUT)
    return Uart(u, baud, de)


def run(board_path, data_dir, host_files=True, probe=None):
    if probe:
        probe("imports")
    from gateway.config import ConfigError

    try:
        gw = Gateway(board_path, data_dir, host_files)
    except ConfigError as e:
        print("config error:", e)
        raise SystemExit(2)
    except OSError as e:
        print("cannot read the device identity in %s (%s); create it with 'tools/gw certs'" % (data_dir, e))
        raise SystemExit(2)
    try:
        asyncio.run(gw.serve_forever(probe))
    except KeyboardInterrupt:
        _stop(gw)
        print("stopped")


def _stop(gw):
    # after Ctrl-C left asyncio.run: the tasks are still queued, run the loop again for the
    # goodbyes (a second Ctrl-C ends it at once)
    try:
        asyncio.run(gw.shutdown())
    except KeyboardInterrupt:
        pass


def _machine():
    try:
        import machine

        return machine
    except ImportError:
        return None


def main(board_path="/board.json", data_dir="/data", flag=None):
    """The device: safe mode, the back-off after crashes, then the gateway; an exception out
    of it (or out of one of its tasks) is logged to flash and restarts the board."""
    from gateway import netboot, netup, supervisor
    from gateway.config import ConfigError

    flag = flag or netup.SAFE_FLAG
    supervisor.early_feed(_machine())  # when boot.py did not (it does, with the config's value)
    sup = Supervisor(data_dir, _machine(), flag)  # counts a watchdog reset, may enter safe mode
    safe = netup.safe or netboot.safe_reason(flag=flag)
    netboot = None  # start() lets the module go (_forget): this frame lives as long as the run
    if safe:
        print("safe mode (%s): the application is not started; diag.resume() leaves it" % safe)
        return
    d = sup.delay_s()
    try:
        if d:
            print("crash %d in a row (%s): starting in %d s, Ctrl-C for the REPL" % (
                sup.state.count, sup.state.last, d))
            sup.sleep(d)
        gw = Gateway(board_path, data_dir, False, sup)
    except KeyboardInterrupt:
        print("stopped")
        return
    except ConfigError as e:
        # restarting cannot fix a configuration: say it and leave the REPL to the user
        print("config error:", e)
        return
    except OSError as e:
        print("cannot read the device identity in %s (%s); create it with 'tools/gw certs'" % (data_dir, e))
        return
    except Exception as e:  # a bug met while setting up counts as a crash too
        sup.crash(e)
        return
    try:
        asyncio.run(gw.serve_forever())
    except KeyboardInterrupt:
        _stop(gw)
        print("stopped")
        sup.release()
    except Exception as e:
        sup.crash(e)
