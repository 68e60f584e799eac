"""gw sim-ctl: send one command to a running simulator's control port (tools/sim.py) and print
its reply, e.g. `tools/gw sim-ctl plug`, `tools/gw sim-ctl fault timeout --count 8`,
`tools/gw sim-ctl set_ev_max --amps 10`, `tools/gw sim-ctl state`."""

import json
import socket
import sys


def configure(p):
    p.add_argument("cmd", choices=("plug", "unplug", "set_ev_max", "fault", "state"))
    p.add_argument("kind", nargs="?", help="fault kind: timeout, corrupt, exception, reboot")
    p.add_argument("--amps", type=float, help="set_ev_max: the EV's maximum current, A")
    p.add_argument("--count", type=int, default=1, help="fault: how many requests it hits")
    p.add_argument("--code", type=int, default=4, help="fault exception: the exception code")
    p.add_argument("--port", type=int, default=5021, help="control port on 127.0.0.1 (make run: 5021)")


def run(args):
    req = {"cmd": args.cmd}
    if args.cmd == "set_ev_max":
        req["amps"] = args.amps
    elif args.cmd == "fault":
        req.update(kind=args.kind, count=args.count, code=args.code)
    try:
        with socket.create_connection(("127.0.0.1", args.port), timeout=5) as c:
            c.sendall((json.dumps(req) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = c.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except OSError as e:
        print("gw sim-ctl: 127.0.0.1:%d: %s (is the simulator running? make run starts it)" % (args.port, e),
              file=sys.stderr)
        return 2
    reply = json.loads(buf)
    print(json.dumps(reply, indent=1 if args.cmd == "state" else None))
    return 0 if reply.get("ok") else 1
