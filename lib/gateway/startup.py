# The gateway's start-up (gateway.app.Gateway): the board and device configs, the identity, the
# trust store, the charger link, the SPINE application and the SHIP node, then the server, the
# tasks and the front ends. Start-up only: start() lets this module go with the other start-up
# modules (_forget), so that its functions do not stay resident while the gateway runs.
import gc
import time

import log
from compat import const
from gateway.housekeeping import Housekeeping
from gateway.timesync import TimeSync
from ship import pin as P
from ship.admission import pool_sets
from ship.cert import peer_ski
from ship.node import BUFS, ShipNode
from ship.trust import TrustStore
from usecases.station import SpineApp
from ws.pool import Pool

_TAG = const("app")


def _packed():
    # A collection after each start-up step that leaves garbage (JSON parsed, texts formatted,
    # dict tables outgrown): the next step's long-lived objects then fill the heap from the
    # bottom, packed, instead of landing between the garbage of earlier steps that one late
    # collection (a full small heap) leaves as holes. Measured (32-bit frozen, a 140 KB heap,
    # listening): without, 303 free runs of at most 2.9 KB; with, 20, the largest 21.7 KB.
    gc.collect()


def _forget(*names):
    # Modules only start-up needs (this set-up, the parsers of the configs and of the register
    # map with their checks, the QR text, the mDNS set-up): out of sys.modules and their package,
    # so that their functions and tables are freed once nothing else holds them; an import after
    # start-up (a tool at the console) loads them again.
    import sys

    for name in names:
        m = sys.modules.pop(name, None)
        pkg, _, leaf = name.rpartition(".")
        p = sys.modules.get(pkg)
        if m is not None and p is not None and getattr(p, leaf, None) is m:
            delattr(p, leaf)


def build(gw, board_path, data_dir, host_files, sup):
    """Gateway.__init__: the configuration read and checked, then every long-lived object,
    each step packed low on the heap (_packed)."""
    from gateway import config, devconfig

    _packed()  # the imports' outgrown dict tables
    gw.cfg = config.load(board_path)
    devconfig.load(data_dir + "/device.json", gw.cfg)  # the device's own settings win
    log.ring(gw.cfg["log"]["ring"])  # first: before every long-lived buffer (None: log.RING)
    # then every connection's buffers (ship.node.BUFS), on a heap rid of the configuration's
    # parsing leftovers, before anything transient
    _packed()
    gw.pool = Pool(pool_sets(gw.cfg["ship"]), BUFS)
    gw.data_dir = data_dir
    # device runtime: crash handling and watchdog, the clock, memory housekeeping
    gw.sup = sup
    gw.sup.configure(gw.cfg["watchdog_ms"])
    gw.clock = TimeSync(gw.cfg["ntp"]["servers"], gw.cfg["ntp"]["retries"])
    gw.house = Housekeeping()
    if gw.cfg["log"]["file_kb"]:
        log.to_file(data_dir + "/log.txt", gw.cfg["log"]["file_kb"])
    gw.cert = _read(data_dir + "/cert.der")
    key = _read(data_dir + "/key.der")
    # our own certificate must carry SKI = SHA-1(public key), or modern peers refuse it
    gw.ski = peer_ski(gw.cert)
    gw.ship = config.ship_settings(gw.cfg, gw.ski)
    _packed()
    ident = gw.cfg["identity"]
    gw.device_address = "d:_n:%s_%s-%s" % (ident["brand"], ident["model"], gw.ship["serial"])
    # trusted SKIs are loaded before the server starts, so early reconnects are served
    gw.trust = TrustStore(
        data_dir + "/trust.json", data_dir + "/pending.json" if host_files else None
    )
    if gw.trust.error:
        log.error(_TAG, gw.trust.error)
    _packed()
    log.level = gw.cfg["log"]["level"]
    b = gw.cfg["pair_button"]
    gw._pair_s = b["window_s"] if b else 120
    gw.charger = None  # the charger model (charger.py), for the front ends and diag
    gw.bridge = None
    gw.mdns = None  # the mDNS responder/browser (mdns.udp.Mdns) once started
    gw.echonet = None  # the ECHONET Lite adapter (echonet.udp.EchonetUdp) once started
    c = gw.cfg["charger"]
    if c is not None:
        _charger(gw, c)
        _packed()
    gw.spine = SpineApp(
        gw.device_address, {"brand": ident["brand"], "model": ident["model"], "serial": gw.ship["serial"]},
        gw.charger, _spine_options(gw.cfg, data_dir),
    )
    gw.spine.clock_synced = gw.clock.synced  # no heartbeat before NTP
    _packed()
    gw.pin = _pin_policy(gw.ship, data_dir)
    gw.node = ShipNode(gw.ship, gw.cert, key, gw.ski, gw.trust, gw._spine, gw.pin,
                         data_dir + "/pinstate.json", gw.pool)
    config = devconfig = None
    _forget("gateway.devconfig", "gateway.config", "controller.mapload", "doccheck")
    _packed()


def _charger(gw, c):
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
    gw.charger = Charger(c["hw_min"], c["hw_max"], c["phases"], c["nominal_v"], rm.limit_scale)
    # tx/rx buffers for this map's frames only (15-37 B for the shipped maps, not 262)
    master = Master(tr, timeout_ms=c["timeout_ms"], retries=c["retries"], size=mapload.frame_size(rm))
    gw.bridge = Bridge(rm, master, gw.charger, unit=unit, fail_limit=c["fail_limit"])
    gw.charger.subscribe(gw._charger_event)
    where = lk.get("host") or lk.get("path") or "UART%d" % lk.get("uart", 0)
    gw.charger_where = "%s %s%s unit %d" % (lk["kind"], where, ":%d" % lk["port"] if "port" in lk else "", unit)


async def start(gw):
    """Gateway.start: the SHIP server, what is printed for the user, the tasks, the front ends."""
    port = await gw.node.start()
    _packed()
    host = gw.ship["host"]
    print("SHIP %s:%d SKI %s ID %s" % (host, port, gw.ski, gw.ship["ship_id"]))
    pol = gw.pin
    if pol.mode != "none":
        print("SHIP PIN %s (%s): a new energy manager pairs by typing it" % (pol.secret, pol.mode))
        if pol.guard.locked(time.ticks_ms()):
            print("PIN input locked for %d s after wrong PINs" % (pol.guard.ms_left(time.ticks_ms()) // 1000))
    ident = gw.cfg["identity"]
    from ship.qrtext import qr_text

    print("QR " + qr_text(gw.ski, gw.ship["ship_id"], ident["brand"], ident["type"], ident["model"],
                          gw.ship["serial"], pin=pol.secret if pol.mode != "none" else None))
    window = gw.cfg["ship"]["pairing_window_s"]
    if window:
        gw.trust.open_window(time.ticks_ms(), window)
        print("pairing window open for %d s: unknown peers are trusted on first contact" % window)
    for line in banner(gw.ski, host, port, _on_device(), pol.mode, gw.cfg["pair_button"]):
        print(line)
    # after the SHIP line, which tools and tests read first
    sup = gw.sup
    sup.spawn("supervisor", sup.run())
    sup.spawn("housekeeping", gw.house.run(sup.live), 60000)
    sup.spawn("time", gw.clock.run())
    from gateway import pairing

    b = gw.cfg["pair_button"]
    sup.spawn("pairing", pairing.run(gw, b and b["pin"], b["hold_ms"] if b else 3000,
                                      gw.pair_window_s(), gw.cfg["status_led"]))
    if gw.bridge is not None:
        print("charger: %s via %s" % (gw.bridge.map.name, gw.charger_where))
        # every Modbus transaction it starts shows the bridge at work, link up or down (a method
        # of the gateway, not a function of this module: that would keep the module resident)
        gw.sup.spawn("bridge", gw.bridge.run(), 60000, gw._modbus_requests)
    if gw.charger is not None:
        gw.sup.spawn("spine", gw._spine_timers(), 60000)
    if gw.cfg["mdns"]["enabled"]:
        from gateway import mdns_service

        gw.mdns = mdns_service.start(gw, port)  # announce _ship._tcp; browse for a CEM
        _packed()
    if gw.cfg["echonet"]["enabled"]:
        _echonet(gw)
        _packed()
    from gateway import netup

    if netup.iface is not None:
        sup.spawn("net", gw._net_watch(netup))
    from gateway import console

    kind = console.mode()
    if kind:
        print("console: diag.status(), diag.pair(), diag.pending(), diag.approve(), diag.charger(), ..."
              " while running")
        sup.spawn("console", console.run(kind, gw))
    # the configuration's tree of dicts (~1 KB) is for start-up: what runs on has its own
    # values (the SHIP settings, the pairing window); so are these modules (what of
    # mdns_service runs on, the CEM browse, holds its functions; mdns.setup encodes the names;
    # echonet_service builds the engine, Gateway._echonet_location keeps its setting; netboot is
    # boot.py's; this module, once start() returns)
    gw.cfg = None
    _forget("ship.qrtext", "gateway.mdns_service", "mdns.setup", "gateway.echonet_service", "gateway.netboot",
            "gateway.startup")
    _packed()
    return port


def _echonet(gw):
    from gateway import echonet_service

    u = echonet_service.build(gw.cfg, gw.charger, gw.data_dir, gw.ski, gw.ship["serial"])
    # a method of the gateway, not a function of echonet_service: start() lets that module go
    u.e.on_location = gw._echonet_location
    try:
        u.open()
    except OSError as e:  # port 3610 taken: the rest of the gateway keeps serving
        log.error(_TAG, "ECHONET off: cannot bind %s:%d (%s)", u.host, u.port, e)
        return
    gw.echonet = u
    print("ECHONET %s:%d EOJ %06X" % (u.host, u.port, u.e.eoj))
    gw.sup.spawn("echonet", u.run())

net_poll_ms = 2000


def _read(path):
    with open(path, "rb") as f:
        return f.read()


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
