# The gateway's use of mDNS: announce our SHIP service, and when no CEM is configured but
# ship.cem_browse is on, find a trusted CEM by browsing and have the SHIP node dial it.
import asyncio

import log
from mdns.responder import Responder
from mdns.setup import ship_txt
from mdns.udp import Mdns

_TAG = "mdns"
_PICK_MS = 1000


def start(gw, port):
    """Start mDNS for a gateway.Gateway whose SHIP server listens on port; returns the
    running Mdns or None (disabled, no address, or port 5353 held by the firmware)."""
    cfg = gw.cfg
    m = cfg["mdns"]
    if not m["enabled"]:
        return None
    ip = m["ip"] or _iface_ip()
    if not ip:
        log.warn(_TAG, "no IPv4 address to announce (mdns.ip): mDNS off")
        return None
    ident = cfg["identity"]
    ship = gw.ship
    txt = ship_txt(ship["ship_id"], gw.ski, ship["path"], ident["brand"], ident["model"], ident["type"], ship["serial"])
    instance, host = names(cfg, ship)
    rsp = Responder(instance, host, port, ip, txt)
    br = None
    if cfg["ship"]["cem"] is None and cfg["ship"]["cem_browse"]:
        # imported only to browse (off by default): the module costs ~1 KB of resident heap
        from mdns.browse import Browser

        br = Browser(own_ski=gw.ski)
    md = Mdns(rsp, br, ifip=ip)
    try:
        md.open()
    except OSError as e:
        # the stock ESP32 firmware's own responder holds 5353 (README, "mDNS")
        log.warn(_TAG, "cannot use UDP 5353 (%r): mDNS off; peers need our address, or set ship.cem", e)
        return None
    _spawn(gw, "mdns", md.run())
    print("mDNS %s._ship._tcp.local at %s.local %s:%d%s" % (instance, host, ip, port,
                                                             ", browsing for a CEM" if br else ""))
    if br is not None:
        _spawn(gw, "cem-browse", dial_browsed(gw, br))
    return md


def names(cfg, ship):
    """(instance, hostname): configured, else <brand>-<model>-<serial> (the SHIP ID, as
    eebus-go names the service) and the network hostname or <brand>-<serial>."""
    m = cfg["mdns"]
    host = m["hostname"] or cfg.get("network", {}).get("hostname")
    if not host:
        host = "%s-%s" % (cfg["identity"]["brand"], ship["serial"])
    out = ""
    for c in host.lower():
        out += c if ("a" <= c <= "z" or "0" <= c <= "9") else "-"
    return m["instance"] or ship["ship_id"], out.strip("-")[:63] or "gateway"


def _spawn(gw, name, coro):
    sup = getattr(gw, "sup", None)
    if sup is not None:
        sup.spawn(name, coro)
    else:
        asyncio.create_task(coro)


def _iface_ip():
    # the device: the address boot's network bring-up (gateway/netup.py) got
    try:
        from gateway import netup

        if netup.status.get("ip"):
            return netup.status["ip"]
        if netup.iface is not None and netup.iface.isconnected():
            return netup.iface.ifconfig()[0]
    except (ImportError, AttributeError, OSError):
        pass
    return None


def pick(browser, trust, chosen):
    """The CEM dial target from what the browser knows: the one already chosen (by SKI, its
    address kept current), else the first trusted one. A dict for ShipNode (host, port, ski,
    path), updated in place, or None."""
    f = browser.pick(ski=chosen["ski"] if chosen else None, trusted=trust.is_trusted)
    if f is None:
        return chosen
    if chosen is None:
        return {"host": f.ip, "port": f.port, "ski": f.ski, "path": f.path}
    if chosen["host"] != f.ip or chosen["port"] != f.port or chosen["path"] != f.path:
        log.info(_TAG, "CEM %s moved to %s:%d", f.ski, f.ip, f.port)
        chosen["host"] = f.ip
        chosen["port"] = f.port
        chosen["path"] = f.path
    return chosen


async def dial_browsed(gw, browser):
    """Hand the first trusted CEM found to the SHIP node's dial loop (which dials only
    trusted peers it is not connected to, with back-off); keep its address current.
    Uses ShipNode's dial loop, as start() does for a configured ship.cem."""
    chosen = None
    while True:
        c = pick(browser, gw.trust, chosen)
        if c is not None and chosen is None:
            chosen = c
            log.info(_TAG, "CEM found: %s:%d SKI %s", c["host"], c["port"], c["ski"])
            gw.node.dial_cem(c)
        await asyncio.sleep_ms(_PICK_MS)
