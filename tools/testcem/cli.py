"""``gw cem``: a test CEM on the command line.

Dial the gateway (``--host H [--port P]``) or wait to be dialed (``--listen PORT``), do the SHIP
handshake, optionally send SPINE datagrams from a JSON file, print every message for ``--wait`` seconds,
close cleanly. Exit code 0 after a successful handshake, 1 when the connection or handshake failed,
2 for usage errors.

``--send FILE`` accepts a JSON file holding one message or a list of them; each may be a plain datagram
``{"datagram": {...}}``, a dialect datagram ``{"datagram": [...]}``, or a complete SHIP data message
``{"data": [...]}`` (sent verbatim, e.g. a capture file ``NN_*.raw.json``).
"""

import asyncio
import json
import os
import sys
import time

from . import dialect
from .identity import Identity, normalize_ski
from .ship import ShipError, ShipMessage, ShipPeer, ShipServer

DEFAULT_CERT_DIR = os.path.join(".run", "testcem")


def configure(parser):
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", help="dial the gateway at this address")
    where.add_argument("--listen", type=int, metavar="PORT", help="wait to be dialed on this TCP port")
    parser.add_argument("--port", type=int, default=4711, help="gateway SHIP port with --host (4711)")
    parser.add_argument("--bind", default="0.0.0.0", help="address to listen on with --listen (0.0.0.0)")
    parser.add_argument("--path", default="/ship/", help="WebSocket path when dialing (/ship/)")
    parser.add_argument("--cert", metavar="DIR", default=DEFAULT_CERT_DIR,
                        help="directory with cert.der/key.der; created with a fresh identity if missing "
                             "(default %s)" % DEFAULT_CERT_DIR)
    parser.add_argument("--ski", help="expected SKI of the gateway (checked before the upgrade when "
                                      "dialing; the only trusted SKI with --listen, else any is trusted)")
    parser.add_argument("--id", dest="ship_id", help="our SHIP ID (default TestCEM-<first 8 SKI chars>)")
    parser.add_argument("--send", metavar="FILE", action="append", default=[],
                        help="after the handshake send the datagram(s) in this JSON file (repeatable)")
    parser.add_argument("--wait", type=float, default=5.0, metavar="SECONDS",
                        help="stay connected this long after the handshake and print what arrives (5)")
    parser.add_argument("--timeout", type=float, default=10.0, help="bound for each handshake step (10 s)")
    parser.add_argument("--hello-timeout", type=float, default=60.0,
                        help="hello Wait-For-Ready timer; also how long an unknown SKI is held pending (60 s)")
    parser.add_argument("--accept-timeout", type=float, default=120.0,
                        help="with --listen: how long to wait for the gateway to dial (120 s)")
    parser.add_argument("--ping", type=float, default=None, metavar="SECONDS",
                        help="send WebSocket pings at this interval (ship-go: 50)")
    parser.add_argument("--plain", action="store_true", help="print data messages as plain JSON")


def _printer(plain, out):
    t0 = time.monotonic()

    def log(direction, what):
        arrow = {"send": "->", "recv": "<-"}.get(direction, "..")
        if isinstance(what, ShipMessage):
            if plain and what.plain is not None:
                text = "[%02x] %s %s" % (what.type, what.name, dialect.dumps_compact(what.plain))
            else:
                text = what.describe()
        else:
            text = str(what)
        print("%8.3f %s %s" % (time.monotonic() - t0, arrow, text), file=out, flush=True)

    return log


def load_send_file(path):
    """-> list of items accepted by ShipPeer.send_datagram, or bytes for complete data messages."""
    with open(path, "rb") as f:
        raw = f.read()
    value = dialect.loads(raw)
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            raise ValueError("%s: each entry must be {\"datagram\": ...} or {\"data\": ...}" % path)
        (key,) = item.keys()
        if key == "data":
            if len(items) == 1:
                out.append(b"\x02" + raw.rstrip(b"\x00 \t\r\n"))  # verbatim
            else:
                out.append(b"\x02" + dialect.dumps_compact(item).encode("utf-8"))
        elif key == "datagram":
            out.append(item)
        else:
            raise ValueError("%s: unknown top-level key %r" % (path, key))
    return out


def _explain(e, ident):
    msg = str(e)
    if e.local and e.close_code == 4452:
        peer_ski = e.peer.peer_ski if e.peer else "?"
        return ("%s: the peer's SKI %s is not trusted by the test CEM (give it with --ski)" % (msg, peer_ski))
    if e.close_code == 4452:
        return ("peer aborted the hello: not trusted (close 4452) - trust SKI %s on the gateway" % ident.ski)
    if e.phase == "hello" and any(h.get("phase") == "pending" for h in (e.peer.peer_hellos if e.peer else [])):
        return "%s - the gateway kept us pending: trust SKI %s on the gateway" % (msg, ident.ski)
    return msg


async def _session(peer, args, log):
    log("info", "handshake complete: peer SKI %s, SHIP ID %s, %s %s" % (
        peer.peer_ski, peer.peer_ship_id, peer.tls_version, peer.cipher))
    for path in args.send:
        for item in load_send_file(path):
            if isinstance(item, bytes):
                await peer.send_raw(item)
            else:
                await peer.send_datagram(item)
    deadline = time.monotonic() + args.wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            await peer.recv(left)  # printed by the logger
        except ShipError as e:
            if e.timeout:
                break
            log("info", "connection ended: %s" % e)
            return
    confirmed = await peer.close()
    log("info", "closed (%s)" % ("confirmed" if confirmed else "no confirm from the peer"))


async def _main(args, out):
    log = _printer(args.plain, out)
    ident, created = Identity.load_or_create(args.cert, common_name="TestCEM")
    ship_id = args.ship_id or "TestCEM-%s" % ident.ski[:8]
    print("test CEM SKI: %s%s" % (ident.ski, "  (new identity in %s)" % args.cert if created else ""),
          file=out, flush=True)
    print("test CEM SHIP ID: %s" % ship_id, file=out, flush=True)
    expected = normalize_ski(args.ski) if args.ski else None
    opts = dict(ship_id=ship_id, timeout=args.timeout, hello_timeout=args.hello_timeout,
                ping_interval=args.ping, log=log)
    if args.host:
        peer = ShipPeer(ident, **opts)
        try:
            await peer.connect(args.host, args.port, expected_ski=expected)
            await peer.upgrade(args.path)
            await peer.handshake()
        except ShipError as e:
            print("error: %s" % _explain(e, ident), file=out, flush=True)
            await peer.drop()
            return 1
        await _session(peer, args, log)
        return 0
    server = ShipServer(ident, trusted=[expected] if expected else None, untrusted="pending", **opts)
    await server.start(args.bind, args.listen)
    print("listening on %s:%d (trusting %s)" % (server.host, server.port, expected or "any SKI"),
          file=out, flush=True)
    try:
        try:
            peer = await server.accept(args.accept_timeout + args.hello_timeout)
        except ShipError as e:
            print("error: %s" % _explain(e, ident), file=out, flush=True)
            return 1
        await _session(peer, args, log)
        return 0
    finally:
        await server.close()


def run(args, out=None):
    out = out or sys.stdout
    try:
        return asyncio.run(_main(args, out))
    except (ValueError, OSError) as e:
        print("error: %s" % e, file=out, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
