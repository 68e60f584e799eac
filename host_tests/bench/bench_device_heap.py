"""Bench: the gateway's GC heap measured the device's way (reference/micropython.md 3a).

Run: GW_MPY32=/path/to/micropython make bench   (skipped without GW_MPY32)

GW_MPY32 names a 32-bit MicroPython unix port with lib/ frozen into it (built locally, outside
the repository, as micropython.md 3a describes; nothing here builds it). The gateway runs from
that binary with MICROPYPATH=.frozen alone, so the frozen lib/ is what is imported, exactly
as tools/host_run.py runs it for `make run`, with the charging-station simulator (pymodbus)
as its controller. For each configuration the bench bisects the smallest `-X heapsize`
(2 KB steps) at which the whole scenario passes:

  start -> ECHONET Get -> EV plugged in -> CEM session 1 (SHIP/TLS + SPINE start-up, OPEV
  write on the EV, LPC write on the station, heartbeats) -> CEM session 2 (or two CEMs
  connected at the same time) -> ECHONET Get again -> the gateway is still alive.

A run fails on any timeout, a traceback, a MemoryError anywhere in the gateway's output
(also one the gateway caught and survived) or a gateway that died. At the smallest passing
heap one more run with the step probe on (GW_HEAP_PROBE=1) gives, at every stage, the live
heap after a full collection, the largest free block (micropython.mem_info(): max free sz)
and the live-heap high-water over the connections' steps. Stages are read through the
gateway's console (GW_CONSOLE=pipe; the device always runs its console).

mDNS multicasts, so every configuration runs inside a private network namespace
(`unshare -rn`, loopback only, 224.0.0.0/4 routed on lo) when unshare works; without it the
mDNS configurations are skipped. Outside a namespace of its own each gateway run holds
/tmp/gw-e2e.lock (ECHONET's fixed port 3610 is shared with the end-to-end tests); inside one
no port is shared and the runs do not queue behind other users of the lock. GW_DEVHEAP_CONFIGS=all,minimal picks
configurations; GW_DEVHEAP_WHEEL=0 skips the 64-bit wheel comparison (config "all" run
from source on .venv's wheel, for the ratio).

The stock-firmware truth: GW_MPY32_STOCK names a second 32-bit unix port of the same version
with only asyncio frozen, as micropython.org's ESP32_GENERIC firmware has it. The bench then
compiles lib/ with the repository's own `gw build` (--all, -march of that binary, read from its
sys.implementation._mpy) into a temporary tree and bisects the same configurations with
MICROPYPATH=.frozen:<tree>/lib, so lib/ loads as .mpy files from the file system the way
`gw deploy` puts it on a stock board: bytecode, constants and qstrs copied into the GC heap at
import. The stock binary is built locally like the frozen one (a variant whose manifest
includes only $(MPY_DIR)/extmod/asyncio).

ROMFS (the custom firmware's ROMFS variants, `gw deploy --romfs`): GW_MPY32_ROMFS names a third
build of that kind whose frozen module _gwromfs holds a ROMFS image of lib/ (the tree `gw build
--all` makes, packed by the pinned mpremote's romfs builder) as a bytes constant, in the
binary's read-only data as a flash partition is, and on import mounts it at /rom (vfs.VfsRom)
and puts /rom on sys.path, as the firmware does at boot. The gateway is started after
`import _gwromfs`; .mpy bytecode, strings and qstr text are then used in place from the image.
The image is the lib/ of the binary's build time, as with GW_MPY32. Each of GW_MPY32,
GW_MPY32_STOCK and GW_MPY32_ROMFS runs its part alone or with the others.
"""

import asyncio
import fcntl
import os
import re
import subprocess
import sys
import time

if __name__ == "__main__":  # re-run as a script inside unshare -rn: no conftest set the path
    _HT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:0] = [_HT, os.path.join(os.path.dirname(_HT), "lib"), os.path.join(os.path.dirname(_HT), "native"),
                    os.path.join(os.path.dirname(_HT), "tools")]

from support import mpyrun
from support.gateway_proc import Gateway
from support.paths import ROOT

MPY32 = os.environ.get("GW_MPY32")
MPY32_STOCK = os.environ.get("GW_MPY32_STOCK")
MPY32_ROMFS = os.environ.get("GW_MPY32_ROMFS")
INSIDE = os.environ.get("GW_IN_NETNS") == "1"
LOCK = "/tmp/gw-e2e.lock"
HOST = "127.0.0.1"
ECHO_DEV = "127.0.0.2"
EVC = 0x02A101
EV = (1, 1)
MAP = os.path.join(ROOT, "board_configs", "chargers", "sim.json")
SETUP = "ip link set lo up && ip route add 224.0.0.0/4 dev lo src 127.0.0.1 && exec \"$@\""
STEP = 2048
HOLD_S = 2.0  # each CEM session stays connected this long after its writes (heartbeats flow)

# name -> (mDNS, ECHONET, concurrent CEM sessions, bisection bracket in KB for the 32-bit build)
CONFIGS = {
    "all": (True, True, False, (64, 192)),
    "wroom": (True, False, False, (64, 192)),
    "make-run": (False, True, False, (64, 192)),
    "minimal": (False, False, False, (48, 192)),
    "all-2cem": (True, True, True, (64, 224)),
    # the WROOM board's front ends (mDNS, no ECHONET) with two energy managers at once: what
    # the two-session goal means on the board that needs it most
    "wroom-2cem": (True, False, True, (64, 224)),
}
WHEEL_CONFIG = "all"
WHEEL_BRACKET = (192, 896)
STOCK_BRACKET = (128, 512)  # lib/ as .mpy files: its code lives in the GC heap as well
ROMFS_BRACKET = (96, 384)
ROMFS_MODULE = "_gwromfs"  # frozen into the GW_MPY32_ROMFS binary: mounts its image at /rom

_STAGE_RE = re.compile(r"^STAGE (\S+) (\d+) (\d+)$")
_MAXFREE_RE = re.compile(r"max free sz: (\d+)")


class DevGateway(Gateway):
    """gateway_proc.Gateway, started from a chosen binary and import path, console on a pipe."""

    def __init__(self, data_dir, binary, path, prelude=None, **kw):
        super().__init__(data_dir, console=True, **kw)
        self.binary = binary
        self.path = path
        self.prelude = prelude

    def start(self, timeout=30.0):
        env = dict(os.environ, MICROPYPATH=self.path, GW_CONSOLE="pipe")
        if self.env_probe:
            env["GW_HEAP_PROBE"] = "1"
        cmd = [self.binary]
        if self.heapsize:
            cmd += ["-X", "heapsize=%d" % self.heapsize]
        run = [os.path.join(ROOT, "tools", "host_run.py"), self.config_path, self.data_dir]
        if self.prelude:
            # the prelude first (it mounts the ROMFS image), then host_run.py as the script
            cmd += ["-c", "%s\nimport sys\nsys.argv[:] = %r\nexec(open(sys.argv[0]).read())" % (self.prelude, run)]
        else:
            cmd += run
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.follow(self.proc.stdout)
        m = self.wait_for(r"^SHIP (\S+):(\d+) SKI ([0-9a-f]{40}) ID (\S+)", timeout)
        self.host, self.port, self.ski, self.ship_id = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        return self

    def stage(self, name, timeout=10.0):
        """Live heap, free heap and largest free block now (console line, full collection)."""
        mark = self.mark()
        self.type("gc.collect();print('STAGE','%s',gc.mem_alloc(),gc.mem_free());"
                  "__import__('micropython').mem_info()" % name)
        m = self.wait_for(r"^STAGE %s (\d+) (\d+)$" % re.escape(name), timeout, start=mark)
        blk = self.wait_for(r"max free sz: (\d+)", timeout, start=mark)
        return int(m.group(1)), int(m.group(2)), int(blk.group(1))


def echonet_get(ctrl):
    from support import echonet_peer as peer

    f = ctrl.ask(ECHO_DEV, EVC, 0x62, [peer.Prop(0x80), peer.Prop(0xDA)], timeout=3.0)
    assert f is not None and f.esv == 0x72, "no ECHONET Get_Res: %r" % (f,)


def mdns_query():
    """A one-shot (legacy unicast) mDNS query for _ship._tcp.local; the gateway must answer."""
    import socket

    import dns.message

    q = dns.message.make_query("_ship._tcp.local.", "PTR")
    q.id = 0
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((HOST, 0))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(HOST))
        s.settimeout(1.0)
        for _ in range(8):  # the responder answers once its probing (about 1 s) is over
            s.sendto(q.to_wire(), ("224.0.0.251", 5353))
            try:
                data, _ = s.recvfrom(2048)
            except socket.timeout:
                continue
            r = dns.message.from_wire(data)
            assert any("_ship._tcp" in str(a.name) for a in r.answer), r
            return
        raise AssertionError("no mDNS answer")
    finally:
        s.close()


def server(remote, ftype, entity):
    for f in remote.features.values():
        if f.type == ftype and f.role == "server" and tuple(f.entity) == tuple(entity):
            return f
    raise AssertionError("no %s server on %s" % (ftype, entity))


async def cem_session(gw, ident, ship_id, hold_s, at_hold=None, lpc=True):
    """One CEM: SHIP + SPINE start-up, heartbeat, an OPEV write on the EV and (lpc) an LPC write
    on the station (both bound first), connected for hold_s more, then a SHIP close. Only one
    energy guard may hold the station's LoadControl binding, so of two CEMs connected at once the
    second is a HEMS: OPEV only."""
    from testcem.ship import ShipPeer
    from testcem.spine import SpineCem

    peer = ShipPeer(ident, ship_id=ship_id, timeout=8)
    await peer.dial(HOST, gw.port, expected_ski=gw.ski)
    cem = SpineCem(peer, timeout=8)
    try:
        remote = await cem.startup()
        cem.start_heartbeat(0.5)
        ev_load = server(remote, "LoadControl", EV)
        assert (await cem.bind(ev_load.spec)).ok
        opev = [{"limitId": p, "isLimitActive": True, "value": {"number": 10, "scale": 0}} for p in range(3)]
        r = await cem.write(ev_load.spec, "loadControlLimitListData", {"loadControlLimitData": opev}, partial=True)
        assert r.ok, r
        if not lpc:
            return await _hold(hold_s, at_hold)
        lpc_load = server(remote, "LoadControl", (1,))
        assert (await cem.bind(lpc_load.spec)).ok
        lim = {"loadControlLimitData": [{"limitId": 0, "isLimitActive": True, "value": {"number": 4500, "scale": 0}}]}
        r = await cem.write(lpc_load.spec, "loadControlLimitListData", lim, partial=True)
        assert r.ok, r
        await _hold(hold_s, at_hold)
    finally:
        await cem.close()


async def _hold(hold_s, at_hold):
    if at_hold is not None:
        await at_hold()
    await asyncio.sleep(hold_s)


def scenario(gw, sim, cems, echonet, two_at_once, stages, mdns=False):
    """The whole scenario against a started gateway; stages[name] = (live, free, max free blocks)."""
    loop_run = asyncio.run
    ctrl = None
    if echonet:
        from support import echonet_peer as peer

        ctrl = peer.Controller(HOST)
    try:
        stages["start"] = gw.stage("start")
        if mdns:
            mdns_query()
            stages["mdns-query"] = gw.stage("mdns-query")
        if echonet:
            echonet_get(ctrl)
            stages["echonet-1"] = gw.stage("echonet-1")
        sim.plug()
        gw.wait_for(r"plugged 1", 10)

        async def probe(name):
            stages[name] = await asyncio.get_running_loop().run_in_executor(None, gw.stage, name)

        async def one(i, ident, name):
            await cem_session(gw, ident, "Bench-CEM-%d" % i, HOLD_S, lambda: probe(name))

        if two_at_once:
            async def both():
                # the second CEM connects while the first one's session runs
                t1 = asyncio.ensure_future(cem_session(gw, cems[0], "Bench-CEM-1", HOLD_S + 1.5))
                try:
                    await asyncio.sleep(0.3)
                    await cem_session(gw, cems[1], "Bench-CEM-2", HOLD_S, lambda: probe("2-sessions"), lpc=False)
                    await t1
                finally:
                    if not t1.done():
                        t1.cancel()
                    await asyncio.gather(t1, return_exceptions=True)

            loop_run(asyncio.wait_for(both(), 60))
            stages["after-2-sessions"] = gw.stage("after-2-sessions")
        else:
            loop_run(asyncio.wait_for(one(1, cems[0], "session-1"), 40))
            stages["after-session-1"] = gw.stage("after-session-1")
            loop_run(asyncio.wait_for(one(2, cems[1], "session-2"), 40))
            stages["after-session-2"] = gw.stage("after-session-2")
        if echonet:
            echonet_get(ctrl)
            stages["echonet-2"] = gw.stage("echonet-2")
        time.sleep(0.3)
        assert gw.alive(), "gateway died"
        stages["end"] = gw.stage("end")
    finally:
        if ctrl is not None:
            ctrl.close()


def _stop(gw):
    # terminate; the output pump (gateway_proc's LineProc) keeps reading until the end marker
    if gw.proc is None:
        return
    if gw.proc.poll() is None:
        gw.proc.terminate()
        try:
            gw.proc.wait(5)
        except subprocess.TimeoutExpired:
            gw.proc.kill()
            gw.proc.wait()
    end = time.monotonic() + 3
    while time.monotonic() < end and not (gw.lines and gw.lines[-1] is None):
        time.sleep(0.02)


def run_once(tmp, name, binary, path, heapsize, cems, probe=False, prelude=None):
    """One full scenario; (passed, stages, heap probe lines, reason)."""
    from sim import Simulator

    mdns, echonet, two, _ = CONFIGS[name]
    stages = {}
    extra = {"usecases": {"failsafe_w": 4500}, "log": {"level": 2},
             "mdns": {"enabled": mdns, "ip": HOST} if mdns else {"enabled": False}}
    if echonet:
        extra["echonet"] = {"enabled": True, "host": ECHO_DEV, "multicast": INSIDE}
    with open(LOCK, "a") as lk:
        if not INSIDE:
            # in a namespace of our own no port is shared: the lock is for the host namespace
            fcntl.flock(lk, fcntl.LOCK_EX)
        sim = Simulator(MAP, port=0, framing="rtu", seed=11).start()
        gw = DevGateway(os.path.join(tmp, "%s-%s-%d-%d" % (name, os.path.basename(binary), heapsize, probe)),
                        binary, path, prelude, heapsize=heapsize, env_probe=probe,
                        charger={"map": MAP, "link": {"kind": "rtu-over-tcp", "host": HOST, "port": sim.port},
                                 "timeout_ms": 300, "retries": 1},
                        extra=extra)
        for c in cems:
            gw.trust(c.ski)
        reason = ""
        try:
            gw.start()
            gw.wait_for(r"charger link up", 10)
            if mdns:
                gw.wait_for(r"^mDNS .*_ship._tcp.local", 10)
            if echonet:
                gw.wait_for(r"^ECHONET 127\.0\.0\.2:3610", 10)
            scenario(gw, sim, cems, echonet, two, stages, mdns and INSIDE)
            ok = True
        except BaseException as e:  # noqa: BLE001 - any failure means: too small (or broken)
            if isinstance(e, KeyboardInterrupt):
                raise
            ok, reason = False, "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:160] if str(e) else "")
        finally:
            _stop(gw)
            sim.stop()
        out = gw.output()
        if ok and ("MemoryError" in out or "Traceback" in out):
            ok, reason = False, "MemoryError/Traceback in the gateway's output"
        if not ok and "MemoryError" in out:
            i = out.find("MemoryError")
            reason += " | gw: " + out[max(0, i - 200):i + 80].replace("\n", " / ")
        heap = {}
        for line in out.splitlines():
            m = re.match(r"HEAP (imports|base|max) (\d+)$", line)
            if m:
                heap[m.group(1)] = int(m.group(2))
        return ok, stages, heap, reason


def bisect(tmp, name, binary, path, bracket_kb, cems, log, prelude=None):
    lo, hi = bracket_kb[0] * 1024 // STEP, bracket_kb[1] * 1024 // STEP
    runs = []

    def passes(n):
        t = time.monotonic()
        ok, _, _, why = run_once(tmp, name, binary, path, n * STEP, cems, prelude=prelude)
        runs.append((n * STEP, ok))
        log("    %-10s heap %4d KB: %s (%.0f s)%s" % (name, n * STEP // 1024, "pass" if ok else "FAIL",
                                                   time.monotonic() - t, "" if ok else "  " + why))
        return ok

    if not passes(hi):
        return None, runs
    while lo < hi:
        mid = (lo + hi) // 2
        if passes(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi * STEP, runs


def word_bytes(binary, path):
    p = subprocess.run([binary, "-c", "import sys; print(sys.maxsize > 2**31)"], env=dict(os.environ, MICROPYPATH=path),
                       capture_output=True, text=True, timeout=30)
    return 8 if p.stdout.strip() == "True" else 4


def romfs_check(binary):
    """Where the ROMFS binary's gateway.app comes from: it must be the mounted image."""
    p = subprocess.run([binary, "-c", "import %s, gateway.app; print(gateway.app.__file__)" % ROMFS_MODULE],
                       env=dict(os.environ, MICROPYPATH=".frozen"), cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    where = p.stdout.strip()
    assert where.startswith("/rom/"), "GW_MPY32_ROMFS: gateway.app not from /rom: %r %s" % (where, p.stderr[-300:])
    return where


def module_costs(binary, path, prelude=""):
    """Live heap that importing each lib/ package or module alone adds, in a fresh process."""
    mods = ["compat", "log", "charger", "jsonfile", "bridge", "diag", "ws", "eejson", "modbus", "ship", "spine",
            "usecases", "echonet", "mdns", "gateway"]
    full = {"ws": "ws.stream", "eejson": "eejson.reader", "modbus": "modbus.master", "ship": "ship.node",
            "bridge": "controller.bridge", "diag": "gateway.diag", "spine": "spine.session",
            "usecases": "usecases.station", "echonet": "gateway.echonet_service", "mdns": "gateway.mdns_service",
            "gateway": "gateway.app"}
    out = {}
    for m in mods + ["ALL"]:
        target = "gateway.app" if m == "ALL" else full.get(m, m)
        code = (prelude + "import gc\ngc.collect()\na=gc.mem_alloc()\nimport %s\ngc.collect()\n"
                "print('COST', gc.mem_alloc()-a)\n" % target)
        p = subprocess.run([binary, "-c", code], env=dict(os.environ, MICROPYPATH=path), cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
        m2 = re.search(r"COST (-?\d+)", p.stdout)
        out["%s (%s)" % (m, target) if m != "ALL" else "gateway.app and all it imports"] = (
            int(m2.group(1)) if m2 else p.stdout.strip()[-120:] or p.stderr.strip()[-120:])
    return out


def report_config(log, name, smallest, stages, heap, blk):
    size = "%d KB (%d B)" % (smallest // 1024, smallest) if smallest else "none"
    log("  %s: smallest passing heap %s" % (name, size))
    if heap:
        log("    probe: live after imports %s B, listening %s B, high-water over all connection steps %s B"
            % (heap.get("imports"), heap.get("base"), heap.get("max")))
    log("    %-18s %9s %9s %16s" % ("stage", "live B", "free B", "largest free B"))
    for k, (live, free, mx) in stages.items():
        log("    %-18s %9d %9d %16d" % (k, live, free, mx * blk))


def stock_tree(tmp, binary):
    """lib/ compiled by `gw build --all` for binary's mpy version and arch; the MICROPYPATH entry."""
    import build

    p = subprocess.run([binary, "-c", "import sys; print(sys.implementation._mpy)"], capture_output=True,
                       text=True, timeout=30)
    target = build.decode_mpy(int(p.stdout.strip()))
    out = os.path.join(tmp, "stock-tree")
    s = build.build(out, march=target[2], target=target, source=binary, limit=1 << 30, all_features=True)
    return os.path.join(out, "lib"), s


def bisect_configs(tmp, names, binary, path, bracket, cems, log, t0, prelude=None):
    """Smallest passing heap per configuration, with the probed figures."""
    blk = 4 * word_bytes(binary, path)
    results = {}
    for name in names:
        smallest, _ = bisect(tmp, name, binary, path, bracket or CONFIGS[name][3], cems, log, prelude)
        stages, heap = {}, {}
        if smallest:
            for hs in (smallest, smallest + STEP, smallest + 2 * STEP):
                ok, stages, heap, why = run_once(tmp, name, binary, path, hs, cems, probe=True, prelude=prelude)
                if ok:
                    if hs != smallest:
                        log("    (figures run at %d KB: the probed run failed at the smallest heap)" % (hs // 1024))
                    break
        results[name] = smallest
        report_config(log, name, smallest, stages, heap, blk)
        log("    (%.0f s so far)" % (time.monotonic() - t0))
    return results


def main(tmp, only=None, wheel=True, netns=True):
    out = []

    def log(s):
        print(s, flush=True)
        out.append(s)

    from testcem.identity import Identity

    cems = [Identity.generate(common_name="BenchCEM1"), Identity.generate(common_name="BenchCEM2")]
    path32 = ".frozen"
    names = [n for n in CONFIGS if (only is None or n in only) and (netns or not CONFIGS[n][0])]
    results = {}
    t0 = time.monotonic()
    if MPY32:
        log("device-heap bench: %s (%d-bit, lib/ frozen, MICROPYPATH=.frozen), GC block %d B"
            % (MPY32, word_bytes(MPY32, path32) * 8, 4 * word_bytes(MPY32, path32)))
        results = bisect_configs(tmp, names, MPY32, path32, None, cems, log, t0)
    stock, romfs = {}, {}
    if MPY32_STOCK:
        lib, s = stock_tree(tmp, MPY32_STOCK)
        spath = ".frozen:" + lib
        log("stock-firmware bench: %s (%d-bit, asyncio frozen, lib/ as %d .mpy files, %.1f KB, -march=%s, "
            "MICROPYPATH=%s)" % (MPY32_STOCK, word_bytes(MPY32_STOCK, spath) * 8, s["lib_files"],
                                 s["total_mpy"] / 1024.0, s["march"], spath))
        stock = bisect_configs(tmp, names, MPY32_STOCK, spath, STOCK_BRACKET, cems, log, t0)
        log("resident after import, 32-bit, lib/ as .mpy files (live heap an import adds in a fresh process, B):")
        for k, v in module_costs(MPY32_STOCK, spath).items():
            log("    %-42s %s" % (k, v))
    if MPY32_ROMFS:
        where = romfs_check(MPY32_ROMFS)
        log("ROMFS bench: %s (%d-bit, asyncio frozen, lib/ as .mpy files in a ROMFS image mounted at /rom by "
            "the frozen module %s; gateway.app from %s)" % (MPY32_ROMFS, word_bytes(MPY32_ROMFS, ".frozen") * 8,
                                                           ROMFS_MODULE, where))
        romfs = bisect_configs(tmp, names, MPY32_ROMFS, ".frozen", ROMFS_BRACKET, cems, log, t0,
                               prelude="import " + ROMFS_MODULE)
        log("resident after import, 32-bit, lib/ in ROMFS (live heap an import adds in a fresh process, B):")
        for k, v in module_costs(MPY32_ROMFS, ".frozen", "import %s\n" % ROMFS_MODULE).items():
            log("    %-42s %s" % (k, v))
    if MPY32 and wheel and (only is None or WHEEL_CONFIG in only) and (netns or not CONFIGS[WHEEL_CONFIG][0]):
        wheel_bin = mpyrun.MICROPYTHON
        wpath = os.path.join(ROOT, "lib") + ":" + os.path.join(ROOT, "native") + ":.frozen"
        s64, _ = bisect(tmp, WHEEL_CONFIG, wheel_bin, wpath, WHEEL_BRACKET, cems, log)
        log("  64-bit wheel, lib/ from source, config %s: smallest passing heap %s" % (
            WHEEL_CONFIG, "%d KB" % (s64 // 1024) if s64 else "none"))
        if s64 and results.get(WHEEL_CONFIG):
            log("  ratio 32-bit frozen / 64-bit source: %.2f" % (results[WHEEL_CONFIG] / s64))
    if MPY32:
        log("resident after import, 32-bit frozen (live heap an import adds in a fresh process, B):")
        for k, v in module_costs(MPY32, path32).items():
            log("    %-42s %s" % (k, v))
    for label, res in (("lib/ frozen", results), ("lib/ as .mpy files, stock firmware", stock),
                       ("lib/ in ROMFS", romfs)):
        if res:
            log("summary (32-bit, %s, smallest -X heapsize, %d B steps):" % (label, STEP))
            for name in names:
                log("    %-10s %s" % (name, "%d KB" % (res[name] // 1024) if res[name] else "none"))
    return list(results.values()) + list(stock.values()) + list(romfs.values())


def _unshare_works():
    try:
        p = subprocess.run(["unshare", "-rn", "sh", "-c", "ip link set lo up"], capture_output=True, timeout=20)
        return p.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _only():
    v = os.environ.get("GW_DEVHEAP_CONFIGS")
    return [s for s in v.split(",") if s] if v else None


def test_device_heap(tmp_path):
    import pytest

    if not (MPY32 or MPY32_STOCK or MPY32_ROMFS):
        pytest.skip("GW_MPY32 (a 32-bit unix port with lib/ frozen, micropython.md 3a), GW_MPY32_STOCK "
                    "(only asyncio frozen) or GW_MPY32_ROMFS (lib/ in a frozen ROMFS image) not set")
    wheel = os.environ.get("GW_DEVHEAP_WHEEL", "1") != "0"
    if _unshare_works():
        cmd = ["unshare", "-rn", "sh", "-c", SETUP, "sh", sys.executable, os.path.abspath(__file__), str(tmp_path)]
        p = subprocess.run(cmd, env=dict(os.environ, GW_IN_NETNS="1"), cwd=ROOT, timeout=3600)
        assert p.returncode == 0
    else:
        print("\nunshare -rn not available: the mDNS configurations are skipped")
        res = main(str(tmp_path), _only(), wheel=wheel, netns=False)
        assert res and all(res)


if __name__ == "__main__":
    # the inner run, inside the network namespace (test_device_heap starts it)
    res = main(sys.argv[1], _only(), wheel=os.environ.get("GW_DEVHEAP_WHEEL", "1") != "0", netns=INSIDE)
    sys.exit(0 if res and all(res) else 1)
