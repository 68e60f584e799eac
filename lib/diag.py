# REPL diagnostics: `import diag`, then diag.status(), diag.pending(), diag.approve(), ...
# They act on the running gateway when there is one (gateway.app.current), otherwise on the
# trust store on flash, so pairing can also be settled before the application starts.
import gc

import log

_DATA = "/data"


def _gw():
    try:
        from gateway import app

        return app.current
    except ImportError:
        return None


def _trust():
    gw = _gw()
    if gw is not None:
        return gw.trust
    from ship.trust import TrustStore

    return TrustStore(_DATA + "/trust.json")


def _one_pending(ski):
    t = _trust()
    if ski is not None:
        return ski
    if len(t.pending) == 1:
        for k in t.pending:
            return k
    raise ValueError("say which SKI: %s" % ", ".join(t.pending) if t.pending else "no pairing request pending")


def pending():
    """Pairing requests waiting for approval."""
    t = _trust()
    if not t.pending:
        print("no pairing requests")
    for ski in t.pending:
        print("%s  from %s" % (ski, t.pending[ski] or "?"))


def approve(ski=None):
    """Trust a peer (the only pending one when no SKI is given)."""
    ski = _one_pending(ski)
    _trust().add(ski)
    print("trusted", ski)


def deny(ski=None):
    ski = _one_pending(ski)
    _trust().deny(ski)
    print("denied", ski)


def trusted():
    t = _trust()
    for ski in t.trusted:
        e = t.trusted[ski]
        print("%s  id=%s  by=%s" % (ski, e["id"] or "-", e["by"]))
    for ski in t.denied:
        print("%s  denied" % ski)


def untrust(ski):
    """Forget a peer; a live connection to it is closed (SHIP close 4500)."""
    gw = _gw()
    if gw is not None:
        gw.node.unregister(ski)
    else:
        _trust().remove(ski)
    print("removed", ski)


def peers():
    gw = _gw()
    if gw is None:
        print("gateway not running")
        return
    if not gw.node.peers:
        print("no SHIP peers connected")
    for ski in gw.node.peers:
        for p in gw.node.peers[ski]:
            c = p.conn
            print("%s  %s  %s  %s  id=%s" % (ski, p.addr, "out" if p.outgoing else "in", p.state, (c and c.peer_id) or "-"))


def status():
    gc.collect()
    print("heap: %d used, %d free" % (gc.mem_alloc(), gc.mem_free()))
    gw = _gw()
    if gw is None:
        print("gateway not running")
        return
    print("SHIP %s:%d  SKI %s  ID %s" % (gw.ship["host"], gw.node.port or 0, gw.ski, gw.ship["ship_id"]))
    print("SHIP stats: %s" % gw.node.stats)
    peers()
    pending()


def charger():
    """The charger model and its bridge: state, measurements, effective limit, link, Modbus."""
    gw = _gw()
    ch = gw and gw.charger
    if ch is None:
        print("no charger (board config without a charger section, or gateway not running)")
        return
    from charger import FIELD_NAMES, SOURCE_NAMES

    v = {}
    for i in range(len(FIELD_NAMES)):
        v[FIELD_NAMES[i]] = ch.get(i)
    print("state %s  plugged %s  charging %s  error %s %s" % (
        v["state"], v["plugged"], v["charging"], v["error"], v["error_text"] or ""))
    print("I %s/%s/%s A  U %s/%s/%s V  P %s W  session %s Wh  total %s Wh" % (
        v["i1"], v["i2"], v["i3"], v["u1"], v["u2"], v["u3"], v["power"], v["session_wh"], v["total_wh"]))
    print("phases %s  hw %s..%s A  ev max %s" % (v["phases"], v["hw_min"], v["hw_max"], v["ev_max"]))
    amps, src, paused = ch.effective()
    print("limit %s  source %s  paused %s  setpoint %s A  applied %s" % (
        amps or "none (hw max)", "-" if src is None else SOURCE_NAMES[src], paused, ch.setpoint(), ch.applied()))
    br = gw.bridge
    if br is not None:
        s = br.stats()
        mb = s.pop("modbus")
        print("link %s via %s" % (s.pop("link"), gw.charger_where))
        print("bridge: %s" % s)
        print("modbus: %s" % mb)


def logs():
    for line in log.recent():
        print(line)
