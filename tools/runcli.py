"""gw run: the gateway on this host under the MicroPython unix port, as 'make run' does, with
the board config and data directory as arguments.

1. the identity: DATA/cert.der and key.der are created when missing (gw certs)
2. the charging-station simulator, when the board config's charger link is Modbus over TCP to
   a loopback address: gw sim on that port, its control port one above, output in DATA/sim.log
   (--no-sim when another controller listens there)
3. MICROPYPATH=lib:native:.frozen micropython tools/host_run.py BOARD DATA, until Ctrl-C; the
   simulator is stopped with it. In a terminal the gateway's console runs (GW_CONSOLE=tty, as
   make run sets it): `gw>` takes diag.status() and the rest, and Ctrl-D restarts the gateway
   (it exits with RESTART_STATUS, the soft reset of the device)
"""

import json
import os
import signal
import subprocess
import sys

from devport import ROOT, ToolError, tool_path

DEFAULT_BOARD = os.path.join(ROOT, "board_configs", "host-sim.json")
RESTART_STATUS = 4  # lib/gateway/console.py: Ctrl-D at the console, start the gateway again


def sim_command(board):
    """The gw sim argv for the board's charger, or None when there is nothing to simulate."""
    with open(board) as f:
        doc = json.load(f)
    c = doc.get("charger")
    if not c:
        return None
    link = c.get("link", {})
    kind = link.get("kind")
    if kind not in ("rtu-over-tcp", "tcp") or not str(link.get("host", "")).startswith("127."):
        return None
    port = link.get("port", 502)
    m = c["map"]
    if not m.startswith("/"):
        m = os.path.join(os.path.dirname(os.path.abspath(board)), m)
    return [sys.executable, os.path.join(ROOT, "tools", "gw.py"), "sim", "--map", m, "--port", str(port),
            "--rtu-over-tcp" if kind == "rtu-over-tcp" else "--tcp", "--control-port", str(port + 1)]


def gateway_command(board, data, heapsize=None):
    cmd = [tool_path("micropython")]
    if heapsize:
        cmd += ["-X", "heapsize=" + heapsize]
    return cmd + [os.path.join(ROOT, "tools", "host_run.py"), board, data]


def configure(p):
    p.add_argument("board", nargs="?", default=DEFAULT_BOARD, metavar="BOARD_JSON",
                   help="board config (default: board_configs/host-sim.json)")
    p.add_argument("data", nargs="?", default=os.path.join(ROOT, ".run"), metavar="DATA_DIR",
                   help="identity, trust store and logs (default: .run)")
    p.add_argument("--no-sim", action="store_true", help="do not start the charging-station simulator")
    p.add_argument("--heapsize", metavar="N", help="MicroPython heap, e.g. 256K (as -X heapsize=N)")


def run(args):
    if not os.path.isfile(args.board):
        raise ToolError("%s: no such board config" % args.board)
    os.makedirs(args.data, exist_ok=True)
    if not os.path.exists(os.path.join(args.data, "cert.der")):
        import certs

        r = certs.run(certs_args(args.data, args.board))
        if r:
            return r
    sim = None
    argv = None if args.no_sim else sim_command(args.board)
    if argv:
        log = open(os.path.join(args.data, "sim.log"), "w")
        sim = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        print("charger simulator: %s (log %s)" % (" ".join(argv[2:]), log.name))
    env = dict(os.environ, MICROPYPATH="%s:%s:.frozen" % (os.path.join(ROOT, "lib"), os.path.join(ROOT, "native")))
    if "GW_CONSOLE" not in env and sys.stdin.isatty():
        env["GW_CONSOLE"] = "tty"  # the console in this terminal, as make run has it
    gw = [None]

    def term(signum, frame):
        # SIGTERM: the MicroPython unix port has no signal handlers, so the gateway would die
        # without closing its SHIP sessions; pass it on as Ctrl-C, its orderly stop
        if gw[0] is not None and gw[0].poll() is None:
            gw[0].send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, term)
    try:
        while True:
            gw[0] = subprocess.Popen(gateway_command(args.board, args.data, args.heapsize), env=env)
            r = gw[0].wait()
            if r != RESTART_STATUS:
                return r
            print("gateway restarting (Ctrl-D at the console)", flush=True)
    except KeyboardInterrupt:
        if gw[0] is not None:
            try:
                gw[0].wait(5)  # it got the Ctrl-C too (same process group): its goodbyes
            except subprocess.TimeoutExpired:
                gw[0].kill()
        return 130
    finally:
        if sim:
            sim.send_signal(signal.SIGTERM)
            try:
                sim.wait(5)
            except subprocess.TimeoutExpired:
                sim.kill()
                sim.wait()


def certs_args(out, board):
    import argparse

    import certs

    p = argparse.ArgumentParser()
    certs.configure(p)
    return p.parse_args(["--out", out, "--board", board])
