"""``gw cem``: a test CEM on the command line.

Dial the gateway (``--host H [--port P]``) or wait to be dialed (``--listen PORT``), do the SHIP
handshake, optionally send SPINE datagrams from a JSON file, print every message for ``--wait`` seconds,
close cleanly. Exit code 0 after a successful handshake, 1 when the connection or handshake failed,
2 for usage errors.

``--send FILE`` accepts a JSON file holding one message or a list of them; each may be a plain datagram
``{"datagram": {...}}``, a dialect datagram ``{"datagram": [...]}``, or a complete SHIP data message
``{"data": [...]}`` (sent verbatim, e.g. a capture file ``NN_*.raw.json``).

SPINE (``testcem.spine``): ``--spine`` runs the CEM start-up after the handshake (detailed discovery,
NodeManagement subscription, use cases; the gateway's own requests are answered) and prints the gateway's
entities, features and use cases. ``--subscribe FEATURE``, ``--bind-feature FEATURE``, ``--read FEATURE
FUNCTION`` and ``--write FEATURE FUNCTION JSON`` (binds first) imply ``--spine``; they run in that order.
FEATURE is ``1:4`` (entity [1], feature 4), ``1.1:4`` (entity [1,1]), ``1.1:LoadControl`` or
``LoadControl`` (the server feature of that type). Every datagram is printed as one line; notifies also
with their data, for ``--wait`` seconds. With SPINE, exit code 1 also when a SPINE request timed out or
was answered with an error.

Use cases (``testcem.usecases``, the CEM side as eebus-go implements it): ``--usecases`` runs the start-up,
announces our use cases (CEM, EnergyGuard, EnergyBroker, MonitoringAppliance), starts our heartbeat, shows
which of the gateway's use cases are available (and why not), starts each available one (subscribe, bind,
read as eebus-go does) and prints one readable line per change ("EVCEM: I = 10.5/10.5/10.5 A", "EV
connected (1.1)", "LPC: limit 4200 W active for 2h") for ``--seconds``. ``--opev A,B,C`` / ``--oscev
A,B,C`` write per-phase current limits (``off`` deactivates them), ``--lpc W[:SECONDS]`` the LPC limit
(``off`` deactivates it), ``--lpc-failsafe W:SECONDS`` the failsafe values; each implies ``--usecases``.
``--no-heartbeat`` leaves our heartbeat off (the gateway should fall back to its LPC failsafe),
``--cem-state`` sets our operating state (OPEV/OSCEV scenario 3). Exit code 1 when a write failed.
"""

import asyncio
import json
import os
import sys
import time

from . import dialect
from .identity import Identity, normalize_ski
from .ship import ShipPeer
from .shipmsg import DEFAULT_PORT, ShipError, ShipMessage
from .shipserver import ShipServer
from .spine import SpineCem
from .spinemsg import SpineError, SpineResultError, parse_feature_spec
from .ucrun import CemUseCases, format_result, parse_phase_values, parse_power_duration
from .ucbase import WriteError
from .usecases import ROLES

DEFAULT_CERT_DIR = os.path.join(".run", "testcem")


def configure(parser):
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", help="dial the gateway at this address")
    where.add_argument("--listen", type=int, metavar="PORT", help="wait to be dialed on this TCP port")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="gateway SHIP port with --host (%d, the gateway's default)" % DEFAULT_PORT)
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
    pg = parser.add_argument_group("pairing by PIN (IEC 63380-3 6.9.6)")
    pg.add_argument("--pin", help="type this PIN when the gateway asks for one (its SHIP PIN)")
    pg.add_argument("--wrong-pin", action="store_true",
                    help="type a wrong PIN (the --pin given with its last digit changed, or 00000000)")
    pg.add_argument("--require-pin", metavar="PIN",
                    help="require this PIN from the gateway (pinState required; ship.cem.pin on its side)")
    parser.add_argument("--ship-version", default="1.0", choices=("1.0", "1.1"),
                        help="SHIP version to announce as client (1.1: a newer peer; the gateway selects 1.0)")
    sp = parser.add_argument_group("SPINE")
    sp.add_argument("--spine", action="store_true",
                    help="after the handshake run the CEM start-up (discovery, NodeManagement subscription, "
                         "use cases) and print the gateway's entities, features and use cases")
    sp.add_argument("--subscribe", metavar="FEATURE", action="append", default=[],
                    help="subscribe our client feature of the same type to this gateway feature (repeatable)")
    sp.add_argument("--bind-feature", metavar="FEATURE", action="append", default=[],
                    help="bind our client feature of the same type to this gateway feature (repeatable)")
    sp.add_argument("--read", nargs=2, metavar=("FEATURE", "FUNCTION"), action="append", default=[],
                    help="read a function, e.g. --read 1:2 loadControlLimitListData (repeatable)")
    sp.add_argument("--write", nargs=3, metavar=("FEATURE", "FUNCTION", "JSON"), action="append", default=[],
                    help="write plain JSON function data (binds first), e.g. --write 1:2 "
                         "loadControlLimitListData '{\"loadControlLimitData\":[{\"limitId\":0,...}]}'")
    sp.add_argument("--full-write", action="store_true",
                    help="write without the partial filter (default: as the gateway's discovery announces)")
    sp.add_argument("--heartbeat", type=float, metavar="SECONDS", default=None,
                    help="send our DeviceDiagnosis heartbeat to subscribers at this interval")
    sp.add_argument("--spine-timeout", type=float, default=10.0, metavar="SECONDS",
                    help="bound for each SPINE request (10 s)")
    uc = parser.add_argument_group("use cases (the CEM side of EVSECC, EVCC, EVCEM, OPEV, OSCEV, EVSOC, CEVC, "
                                   "LPC, MPC, EVCS)")
    uc.add_argument("--usecases", action="store_true",
                    help="discover, start every available use case as eebus-go's CEM does, and print a line "
                         "per change for --seconds")
    uc.add_argument("--role", choices=sorted(ROLES), default="all",
                    help="which manager to be: all (every use case), guard (a grid control box: Energy Guard "
                         "LPC and Monitoring Appliance MPC only, entity GridGuard), hems (CEM OPEV/OSCEV/EVCC/"
                         "EVCEM/EVSECC/CEVC only)")
    uc.add_argument("--seconds", type=float, default=None, metavar="N",
                    help="how long to print use-case events (default: --wait)")
    uc.add_argument("--opev", metavar="A,B,C",
                    help="write OPEV (obligation) current limits per phase, e.g. 10,10,10; 'off' deactivates")
    uc.add_argument("--oscev", metavar="A,B,C",
                    help="write OSCEV (recommendation) current limits per phase; 'off' deactivates")
    uc.add_argument("--lpc", metavar="W[:SECONDS]",
                    help="write the LPC consumption limit, active, optionally for SECONDS (e.g. 4200:3600); "
                         "'off' deactivates it")
    uc.add_argument("--lpc-failsafe", metavar="W:SECONDS",
                    help="write the LPC failsafe limit and failsafe duration minimum (2 h-24 h), "
                         "e.g. 3000:7200; either part may be empty")
    uc.add_argument("--no-heartbeat", action="store_true",
                    help="do not send our DeviceDiagnosis heartbeat (provokes the gateway's LPC failsafe)")
    uc.add_argument("--cem-state", choices=("normalOperation", "failure"), default=None,
                    help="our DeviceDiagnosis operating state (OPEV/OSCEV scenario 3)")
    uc.add_argument("--datagrams", action="store_true",
                    help="with use cases: also print every datagram (default: only the use-case events)")


def _printer(plain, out, spine=False):
    t0 = time.monotonic()

    def log(direction, what):
        arrow = {"send": "->", "recv": "<-"}.get(direction, "..")
        if spine and isinstance(what, ShipMessage) and what.name == "data":
            return  # printed by the SPINE logger, one line per datagram
        if isinstance(what, ShipMessage):
            if plain and what.plain is not None:
                text = "[%02x] %s %s" % (what.type, what.name, dialect.dumps_compact(what.plain))
            else:
                text = what.describe()
        else:
            text = str(what)
        print("%8.3f %s %s" % (time.monotonic() - t0, arrow, text), file=out, flush=True)

    log.t0 = t0
    return log


def _spine_printer(plain, out, t0):
    def log(direction, dg):
        print("%8.3f %s" % (time.monotonic() - t0, dg.describe()), file=out, flush=True)
        if plain:
            print("         %s" % dialect.dumps_compact(dg.body), file=out, flush=True)
        elif dg.classifier == "notify" and dg.direction == "recv":
            print("         %s: %s" % (dg.function, dialect.dumps_compact(dg.data)), file=out, flush=True)

    return log


def usecases_wanted(args):
    return bool(getattr(args, "usecases", False) or getattr(args, "opev", None) or getattr(args, "oscev", None)
                or getattr(args, "lpc", None) or getattr(args, "lpc_failsafe", None)
                or getattr(args, "cem_state", None))


def spine_wanted(args):
    return bool(args.spine or args.read or args.write or args.subscribe or args.bind_feature
                or args.heartbeat or usecases_wanted(args))


def check_spine_args(args):
    """Validate feature specs and write JSON before connecting (ValueError -> exit 2)."""
    for f in args.subscribe + args.bind_feature + [r[0] for r in args.read] + [w[0] for w in args.write]:
        parse_feature_spec(f)
    parsed = []
    for feature, function, text in args.write:
        try:
            parsed.append((feature, function, json.loads(text)))
        except ValueError as e:
            raise ValueError("--write %s %s: invalid JSON: %s" % (feature, function, e)) from None
    args.write_parsed = parsed
    try:
        args.opev_values = parse_phase_values(args.opev) if getattr(args, "opev", None) else None
        args.oscev_values = parse_phase_values(args.oscev) if getattr(args, "oscev", None) else None
        args.lpc_values = parse_power_duration(args.lpc) if getattr(args, "lpc", None) else None
        args.failsafe_values = (parse_power_duration(args.lpc_failsafe, need_power=False)
                                if getattr(args, "lpc_failsafe", None) else None)
    except ValueError as e:
        raise ValueError("use-case option: %s" % e) from None
    if args.failsafe_values is not None and args.failsafe_values[0] == "off":
        raise ValueError("--lpc-failsafe takes W:SECONDS")


async def _spine_ops(cem, ucs, args, out):
    """Start-up, the use cases (``ucs``: CemUseCases or None) and the requested operations; returns
    True when everything succeeded."""
    ok = True

    def say(text):
        print(text, file=out, flush=True)

    try:
        remote = await cem.startup(timeout=args.spine_timeout)
    except SpineError as e:
        say("error: SPINE start-up failed: %s" % e)
        return False
    say(remote.format())
    if ucs is not None:
        ok = await _usecase_ops(ucs, args, say) and ok
    elif args.heartbeat:
        cem.start_heartbeat(args.heartbeat)
    jobs = [("subscribe", f, None, None) for f in args.subscribe]
    jobs += [("bind", f, None, None) for f in args.bind_feature]
    jobs += [("read", f, fn, None) for f, fn in args.read]
    jobs += [("write", f, fn, data) for f, fn, data in getattr(args, "write_parsed", [])]
    for op, feature, function, data in jobs:
        try:
            addr = cem.remote_address(feature)
            rf = cem.remote_feature(addr)
            where = "%s (%s)" % (feature, rf.type if rf else "not in the discovery")
            if op == "subscribe":
                r = await cem.subscribe(addr, timeout=args.spine_timeout)
                say("subscribe %s: %s" % (where, _result_text(r)))
                ok = ok and r.ok
            elif op == "bind":
                r = await cem.bind(addr, timeout=args.spine_timeout)
                say("bind %s: %s" % (where, _result_text(r)))
                ok = ok and r.ok
            elif op == "read":
                value = await cem.read(addr, function, timeout=args.spine_timeout)
                say("read %s %s: %s" % (where, function, dialect.dumps_compact(value)))
            else:
                r = await cem.ensure_bound(addr, timeout=args.spine_timeout)
                if not r.ok:
                    say("bind %s: %s" % (where, _result_text(r)))
                r = await cem.write(addr, function, data, partial=False if args.full_write else None,
                                    timeout=args.spine_timeout)
                say("write %s %s: %s" % (where, function, _result_text(r)))
                ok = ok and r.ok
        except SpineResultError as e:
            say("%s %s %s: %s" % (op, feature, function or "", _result_text(e.result)))
            ok = False
        except (SpineError, LookupError) as e:
            say("error: %s %s %s: %s" % (op, feature, function or "", e))
            ok = False
    return ok


async def _usecase_ops(ucs, args, say):
    """--usecases and the use-case writes; returns True when every write succeeded."""
    ok = True
    try:
        await ucs.start(timeout=args.spine_timeout)
    except SpineError as e:
        say("error: use-case start-up failed: %s" % e)
        return False
    say("use cases of the gateway:")
    for line in ucs.check():
        say("  " + line)
    if args.cem_state:
        n = await ucs.cem.set_operating_state(args.cem_state)
        say("our operating state %s (%d subscriber%s notified)" % (args.cem_state, n, "" if n == 1 else "s"))
    jobs = []
    if args.opev_values is not None:
        jobs.append(("OPEV", ucs.opev, args.opev_values))
    if args.oscev_values is not None:
        jobs.append(("OSCEV", ucs.oscev, args.oscev_values))
    for label, uc, values in jobs:
        try:
            if values == "off":
                r, notes = await ucs.opev_off(uc)
            else:
                r, notes = await uc.write_limits(values)
            for n in notes:
                say("%s: %s" % (label, n))
            say("%s write: %s" % (label, format_result(r)))
            ok = ok and r.ok
        except (WriteError, SpineError) as e:
            say("%s write: error: %s" % (label, e))
            ok = False
    if args.lpc_values is not None:
        watts, secs = args.lpc_values
        try:
            if watts == "off":
                cur = ucs.lpc.consumption_limit()
                r = await ucs.lpc.write_limit(cur["value"] if cur else 0, active=False)
            else:
                r = await ucs.lpc.write_limit(watts, True, secs)
            say("LPC write: %s" % format_result(r))
            ok = ok and r.ok
        except (WriteError, SpineError) as e:
            say("LPC write: error: %s" % e)
            ok = False
    if args.failsafe_values is not None:
        watts, secs = args.failsafe_values
        try:
            for r in await ucs.lpc.write_failsafe(watts, secs):
                say("LPC failsafe write: %s" % format_result(r))
                ok = ok and r.ok
        except (WriteError, SpineError) as e:
            say("LPC failsafe write: error: %s" % e)
            ok = False
    return ok


def _result_text(r):
    return "result 0 (ok)" if r.ok else format_result(r)


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


async def _session(peer, args, log, out=None):
    """After the handshake: SPINE (when asked), --send files, wait, close. Returns the exit code."""
    log("info", "handshake complete: peer SKI %s, SHIP ID %s, %s %s" % (
        peer.peer_ski, peer.peer_ship_id, peer.tls_version, peer.cipher))
    if spine_wanted(args):
        return await _spine_session(peer, args, log, out or sys.stdout)
    await _send_files(peer, args)
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
            return 0
    confirmed = await peer.close()
    log("info", "closed (%s)" % ("confirmed" if confirmed else "no confirm from the peer"))
    return 0


async def _send_files(peer, args):
    for path in args.send:
        for item in load_send_file(path):
            if isinstance(item, bytes):
                await peer.send_raw(item)
            else:
                await peer.send_datagram(item)


async def _spine_session(peer, args, log, out):
    t0 = getattr(log, "t0", time.monotonic())
    quiet = usecases_wanted(args) and not args.datagrams and not args.plain
    classes, etype = ROLES[getattr(args, "role", "all")]
    cem = SpineCem(peer, timeout=args.spine_timeout, log=None if quiet else _spine_printer(args.plain, out, t0),
                   entity_type=etype)
    ucs = None
    if usecases_wanted(args):
        # before the gateway reads our discovery: our client features and use cases must be in it
        def show(ev):
            print("%8.3f %s" % (time.monotonic() - t0, ev.text), file=out, flush=True)
        hb = None if args.no_heartbeat else (args.heartbeat or 2.0)
        ucs = CemUseCases(cem, classes=classes, on_event=show, heartbeat=hb, timeout=args.spine_timeout)
        if args.seconds is not None:
            args.wait = args.seconds
    print("test CEM SPINE device: %s" % cem.device, file=out, flush=True)
    ok = await _spine_ops(cem, ucs, args, out)
    await _send_files(peer, args)
    try:
        await peer.wait_closed(args.wait)     # notifies are printed by the logger meanwhile
        log("info", "connection ended (close %s)" % (peer.close_code,))
    except ShipError:
        pass
    if ucs is not None:
        for p in ucs.problems:
            print("use-case problem: %s" % p, file=out, flush=True)
        await ucs.close()
    for p in cem.problems:
        print("SPINE problem: %s" % p, file=out, flush=True)
    for e in cem.errors:
        print("SPINE error: %s" % e, file=out, flush=True)
    if not peer.closed:
        confirmed = await cem.close()
        log("info", "closed (%s)" % ("confirmed" if confirmed else "no confirm from the peer"))
    else:
        await cem.close(ship_close=False)
    return 0 if ok else 1


async def _main(args, out):
    if spine_wanted(args):
        check_spine_args(args)
    log = _printer(args.plain, out, spine=spine_wanted(args))
    ident, created = Identity.load_or_create(args.cert, common_name="TestCEM")
    ship_id = args.ship_id or "TestCEM-%s" % ident.ski[:8]
    print("test CEM SKI: %s%s" % (ident.ski, "  (new identity in %s)" % args.cert if created else ""),
          file=out, flush=True)
    print("test CEM SHIP ID: %s" % ship_id, file=out, flush=True)
    expected = normalize_ski(args.ski) if args.ski else None
    opts = dict(ship_id=ship_id, timeout=args.timeout, hello_timeout=args.hello_timeout,
                ping_interval=args.ping, log=log, pin=pin_to_type(args), require_pin=args.require_pin,
                ship_version=tuple(int(x) for x in args.ship_version.split(".")))
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
        return await _session(peer, args, log, out)
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
        return await _session(peer, args, log, out)
    finally:
        await server.close()


def pin_to_type(args):
    if not args.wrong_pin:
        return args.pin
    if not args.pin:
        return "00000000"
    last = args.pin[-1]
    return args.pin[:-1] + ("1" if last != "1" else "2")


def run(args, out=None):
    out = out or sys.stdout
    try:
        return asyncio.run(_main(args, out))
    except (ValueError, OSError) as e:
        print("error: %s" % e, file=out, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
