# Diagnostics: diag.status(), diag.pending(), diag.approve(), ... At the gateway's console
# `diag` is Diag(gw), bound to the running gateway (the app hands itself to the console); the
# module's own functions, with no gateway (gw None: the plain REPL in safe mode or after
# Ctrl-C, where main.py makes `import diag` give this module), act on the trust store and the
# crash files on flash, so pairing can also be settled before the application starts.
import gc

import jsonfile
import log

_DATA = "/data"


def _trust(gw):
    if gw is not None:
        return gw.trust
    from ship.trust import TrustStore

    return TrustStore(_DATA + "/trust.json")


def _one_pending(t, ski):
    if ski is not None:
        return ski
    if len(t.pending) == 1:
        for k in t.pending:
            return k
    raise ValueError("say which SKI: %s" % ", ".join(t.pending) if t.pending else "no pairing request pending")


def pair(seconds=None, gw=None):
    """Open the pairing window (as holding the pairing button does): an unknown energy manager
    that connects while it is open is trusted. seconds: default pair_button.window_s or 120."""
    if gw is None:
        print("gateway not running")
        return
    gw.pair(seconds)


def pin(gw=None):
    """The SHIP PIN, its mode and the wrong-PIN counters."""
    if gw is None:
        print("gateway not running")
        return
    import time

    p = gw.pin
    g = p.guard
    now = time.ticks_ms()
    print("PIN mode %s%s; wrong PINs %d in a row, %d in all; %s" % (
        p.mode, " PIN " + p.secret if p.secret else "", g.fails, g.total,
        "input locked %d s" % (g.ms_left(now) // 1000) if g.locked(now) else "input open"))


def pending(gw=None):
    """Pairing requests waiting for approval."""
    t = _trust(gw)
    if not t.pending:
        print("no pairing requests")
    for ski in t.pending:
        print("%s  from %s" % (ski, t.pending[ski] or "?"))
    if t.dropped:
        print("%d dropped for newer ones" % t.dropped)


def approve(ski=None, gw=None):
    """Trust a peer (the only pending one when no SKI is given)."""
    t = _trust(gw)
    ski = _one_pending(t, ski)
    t.add(ski)
    print("trusted", ski)


def deny(ski=None, gw=None):
    t = _trust(gw)
    ski = _one_pending(t, ski)
    t.deny(ski)
    print("denied", ski)


def trusted(gw=None):
    t = _trust(gw)
    for ski in t.trusted:
        e = t.trusted[ski]
        print("%s  id=%s  by=%s" % (ski, e["id"] or "-", e["by"]))
    for ski in t.denied:
        print("%s  denied" % ski)


def untrust(ski, gw=None):
    """Forget a peer; a live connection to it is closed (SHIP close 4500)."""
    if gw is not None:
        gw.node.unregister(ski)
    else:
        _trust(gw).remove(ski)
    print("removed", ski)


def peers(gw=None):
    if gw is None:
        print("gateway not running")
        return
    if not gw.node.peers:
        print("no SHIP peers connected")
    for ski in gw.node.peers:
        for p in gw.node.peers[ski]:
            c = p.conn
            print("%s  %s  %s  %s  id=%s" % (
                ski, p.addr, "out" if p.outgoing else "in", p.state, (c and c.peer_id) or "-"))


def status(gw=None):
    """Network, time, memory, tasks and crashes, then SHIP: one screen."""
    from gateway import netup
    from gateway.housekeeping import idf_heap

    n = netup.status
    if n["kind"] == "none":
        print("net: not brought up by boot.py (network.kind none)")
    else:
        print("net: %s %s%s%s" % (n["kind"], "up" if n["up"] else "down", " " + n["ip"] if n["ip"] else "",
                                  "  (" + n["error"] + ")" if n["error"] else ""))
    if netup.safe:
        print("SAFE MODE: %s  (diag.resume() leaves it)" % netup.safe)
    gc.collect()
    hk = gw and gw.house
    print("heap: %d used, %d free%s" % (
        gc.mem_alloc(), gc.mem_free(),
        "  (least free %s, most used %d, threshold %d)" % (hk.low_free, hk.high_alloc, hk.threshold) if hk else ""))
    idf = idf_heap()
    if idf:
        print("IDF heap: %d free, largest block %d, least free %d" % idf)
    if gw is None:
        print("gateway not running")
        return
    c = gw.clock
    s = c.sched
    print("time: %s  %s" % (
        log.stamp(),
        "host clock" if c.host_clock()
        else "synced from %s, %d syncs" % (c.last_server, s.syncs) if s.synced
        else "NOT SYNCED (no heartbeats): %d tries, %s" % (s.attempts, c.last_error)))
    sup = gw.sup
    from compat import ticks_ms

    now = ticks_ms()
    ages = {}
    for name, age, most in sup.live.ages(now):
        ages[name] = "%d/%d s" % (age // 1000, most // 1000)
    print("tasks: %s" % "  ".join("%s %s%s" % (k, sup.tasks[k], " " + ages[k] if k in ages else "") for k in sup.tasks))
    print("watchdog: %s  feeds %d%s  crashes %d in a row, %d in all%s" % (
        "%d ms" % sup.wd_ms if sup.wdt else ("software %d ms" % sup.wd_ms if sup.wd_ms else "off"), sup.feeds,
        "  STARVED by " + sup.starving[0] if sup.starving else "", sup.state.count, sup.state.total,
        "  last: " + sup.state.last if sup.state.last else ""))
    print("SHIP %s:%d  SKI %s  ID %s" % (gw.ship["host"], gw.node.port or 0, gw.ski, gw.ship["ship_id"]))
    print("SHIP stats: %s" % gw.node.stats)
    peers(gw)
    pending(gw)


def charger(gw=None):
    """The charger model and its bridge: state, measurements, effective limit, link, Modbus."""
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
    sp = getattr(gw, "spine", None)
    if sp is not None and sp.lpc is not None:
        # who holds which role: the LPC guard (binding / EnergyGuard actor), OPEV's writer
        g = sp.lpc_guard()
        o = sp.ev.opev.owner
        print("%s; lpc %s (in force %s W, failsafe %s W) guard %s; opev/oscev by %s" % (
            sp.limit_text() or "no limit", sp.lpc.state, sp.lpc.limit_w, sp.lpc.failsafe_w,
            g.remote.device if g else "-", o.remote.device if o else "-"))
        for s in sp.sessions:
            print("  peer %s %s" % (
                s.remote.device, "silent" if s.silent else "heard" if s.hb_at is not None else "no heartbeat"))
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


def modbus(gw=None):
    """The charger link's Modbus figures: polls, errors, timeouts, the last exception."""
    br = gw and gw.bridge
    if br is None:
        print("no charger bridge")
        return
    s = br.stats()
    m = s["modbus"]
    print("link %s via %s  polls %d  errors %d (%d in a row)  ups %d downs %d" % (
        s["link"], gw.charger_where, s["polls"], s["errors"], s["fails_in_row"], s["ups"], s["downs"]))
    print("requests %d  retried %d  timeouts %d  crc %d  bad frames %d  discarded %d" % (
        m["requests"], m["retried"], m["timeouts"], m["crc_errors"], m["bad_frames"], m["discarded"]))
    print("exceptions %d (last code %d)  link errors %d (last errno %d)" % (
        m["exceptions"], m["last_exception"], m["link_errors"], m["last_link_error"]))
    print("limit writes %d  watchdog feeds %d  controller reboots %d  last error %s" % (
        s["writes"], s["feeds"], s["reboots"], s["last_error"] or "-"))


def echonet(gw=None):
    """ECHONET Lite: sockets, frames in/out, dropped, errors, announcements, the last peer."""
    u = gw and gw.echonet
    if u is None:
        print("ECHONET off (echonet.enabled in the board config) or gateway not running")
        return
    from compat import sockaddr_host

    s = u.stats()
    peer = "-" if u.last_peer is None else "%s:%d" % sockaddr_host(u.last_peer)
    print("ECHONET %s:%d EOJ %06X  multicast %s  last peer %s" % (
        u.host, u.port, u.e.eoj, "joined" if s["multicast"] else "off", peer))
    print("frames in %d  out %d  dropped %d  ignored %d  SNA %d  sets %d  INF %d  errors %d  send failures %d" % (
        s["rx"], s["tx"], s["dropped"], s["ignored"], s["sna"], s["sets"], s["inf"], s["errors"], s["send_fail"]))


def crashes(data=None, gw=None):
    """The crash log on flash (both files, oldest first) and the crash count."""
    d = data or _DATA
    text = log.Rotating(d + "/crash.log", 1).read()
    print(text or "no crashes logged")
    from gateway.supervisor import CrashState

    st = gw.sup.state if gw is not None else CrashState(jsonfile.read(d + "/crash.json", None))
    print("%d in a row, %d in all%s" % (st.count, st.total, ", last: " + st.last if st.last else ""))


def resume(data=None):
    """Leave safe mode: the flag file goes and the crash series starts afresh; then reset."""
    from gateway import netup
    from gateway.supervisor import CrashState

    d = data or _DATA
    netup.leave_safe()
    st = CrashState(jsonfile.read(d + "/crash.json", None))
    st.count = 0
    try:
        jsonfile.write(d + "/crash.json", st.doc())
    except OSError:
        pass
    print("safe mode off: machine.reset() (or Ctrl-D) starts the application")


def _bound(f):
    return lambda self, *a, **k: f(*a, gw=self.gw, **k)


class Diag:
    """`diag` at the console: the screens above for one gateway (gateway.app.Gateway);
    diag.approve(ski) is approve(ski, gw=gw)."""

    def __init__(self, gw):
        self.gw = gw

    status = _bound(status)
    pair = _bound(pair)
    pin = _bound(pin)
    pending = _bound(pending)
    approve = _bound(approve)
    deny = _bound(deny)
    trusted = _bound(trusted)
    untrust = _bound(untrust)
    peers = _bound(peers)
    charger = _bound(charger)
    modbus = _bound(modbus)
    echonet = _bound(echonet)
    crashes = _bound(crashes)
    logs = staticmethod(logs)
    resume = staticmethod(resume)
