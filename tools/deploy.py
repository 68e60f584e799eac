"""gw deploy: copy a gw build (DIR) onto the board's file system; gw repl: its REPL.

mpremote (the default) does it in one connection:
  mpremote connect PORT fs cp -r DIR/boot.py DIR/board.json ... DIR/main.py : + reset
cp -r of a directory to ':' keeps its name (DIR/lib -> :lib), creates it when missing and
skips files whose SHA-256 already matches (--force copies all). Nothing is deleted, so the
trust store in :data survives a deploy; --clean removes :lib first (stale modules, or .py
files from a source deploy, which would shadow the .mpy: the importer tries x.py first).

ampy (--tool ampy, the fallback for systems where mpremote cannot open the port) needs one
connection per entry: ampy --port PORT put DIR/lib /lib, ...; ampy reset --hard at the end.

--romfs (mpremote, a firmware with a ROMFS partition: firmware/README.md) writes DIR/lib as a
ROMFS image to the board's romfs partition, where its bytecode runs in place, and copies the rest
to the file system; one connection:
  mpremote connect PORT romfs --no-mpy deploy DIR/lib + exec ENSURE_LIB + fs rm -r :lib
      + fs cp -r DIR/board.json ... DIR/main.py : + reset
mpremote builds the image from the .mpy tree (--no-mpy: nothing left to compile), refuses a board
without ROMFS or an image larger than the partition before it erases anything, and the chain
stops there. On the esp32 port /rom comes before /lib on sys.path (ROMFS is mounted in mp_init,
/lib appended after it), so the image wins; :lib is removed after a successful write anyway,
so that a module since dropped from lib/ (a feature turned off, a module removed) cannot still
be imported from an earlier file-system deploy, and its flash is freed.

With --dry-run both print the exact command lines and touch nothing.
"""

import json
import os

from build import MARKER, MPY_PROBE, board_mpy
from devport import ToolError, execute, pick_port

# mpremote's 'fs rm -r :lib' fails on a board without /lib: make sure there is one first
ENSURE_LIB = "import os; 'lib' in os.listdir('/') or os.mkdir('/lib')"


def entries(out, skip_lib=False):
    """What goes to the device: the build's top-level files and directories, sorted."""
    if not os.path.isdir(out):
        raise ToolError("%s: no such directory: build it first with 'gw build --out %s'" % (out, out))
    if not os.path.exists(os.path.join(out, MARKER)):
        raise ToolError("%s is not a gw build output (no %s): run 'gw build --out %s'" % (out, MARKER, out))
    names = sorted(n for n in os.listdir(out) if not n.startswith("."))
    if skip_lib:
        names = [n for n in names if n != "lib"]
    if not names:
        raise ToolError("%s is empty" % out)
    return [os.path.join(out, n) for n in names]


def check_command(port):
    """Read the board's mpy version before copying .mpy files it could not load."""
    return ["mpremote", "connect", port, "exec", MPY_PROBE]


def mpremote_commands(port, paths, clean=False, force=False, reset=True, romfs=None):
    """romfs: the build's lib/ to write as the ROMFS image (paths then leave lib/ out)."""
    cmd = ["mpremote", "connect", port]
    if romfs:
        cmd += ["romfs", "--no-mpy", "deploy", romfs, "+"]
        clean = True
    if clean:
        cmd += ["exec", ENSURE_LIB, "+", "fs", "rm", "-r", ":lib", "+"]
    cmd += ["fs", "cp", "-r"] + (["-f"] if force else []) + list(paths) + [":"]
    if reset:
        cmd += ["+", "reset"]
    return [cmd]


def ampy_commands(port, paths, clean=False, reset=True, baud=None):
    base = ["ampy", "--port", port] + (["--baud", str(baud)] if baud else [])
    cmds = []
    if clean:
        cmds.append(base + ["rmdir", "--missing-okay", "/lib"])
    for p in paths:
        cmds.append(base + ["put", p, "/" + os.path.basename(p)])
    if reset:
        cmds.append(base + ["reset", "--hard"])
    return cmds


def repl_commands(port):
    return [["mpremote", "connect", port, "repl"]]


def configure(p):
    p.add_argument("dir", metavar="DIR", help="the output of 'gw build --out DIR'")
    p.add_argument("--port", help="serial port (default: the only /dev/ttyUSB* or /dev/ttyACM*)")
    p.add_argument("--tool", choices=("mpremote", "ampy"), default="mpremote",
                   help="mpremote (default) or adafruit-ampy")
    p.add_argument("--baud", type=int, help="ampy only: serial baud rate (default 115200)")
    p.add_argument("--clean", action="store_true", help="remove :lib before copying")
    p.add_argument("--force", action="store_true", help="mpremote: copy files even when unchanged")
    p.add_argument("--skip-lib", action="store_true",
                   help="do not copy lib/ (a firmware with lib/ frozen in: frozen modules are found before /lib)")
    p.add_argument("--romfs", action="store_true",
                   help="mpremote: write lib/ to the board's ROMFS partition (firmware variant ROMFS), "
                        "the rest to the file system, and remove :lib")
    p.add_argument("--no-reset", action="store_true", help="do not hard-reset the board afterwards")
    p.add_argument("--no-check", action="store_true",
                   help="mpremote: do not compare the board's mpy version with the build's first")
    p.add_argument("--dry-run", action="store_true", help="print the exact commands, run nothing")


def commands(args):
    """(check, cmds): the version probe to run first (or None) and the copy commands."""
    if args.romfs and args.skip_lib:
        raise ToolError("--romfs writes lib/ to the ROMFS partition; --skip-lib leaves it out: choose one")
    paths = entries(args.dir, args.skip_lib or args.romfs)
    romfs = None
    if args.romfs:
        romfs = os.path.join(args.dir, "lib")
        if not os.path.isdir(romfs):
            raise ToolError("%s has no lib/ to write to the ROMFS partition" % args.dir)
    port = pick_port(args.port, args.dry_run)
    if args.tool == "ampy":
        if args.romfs:
            raise ToolError("--romfs is for mpremote (ampy cannot write a ROMFS partition)")
        if args.force:
            raise ToolError("--force is for mpremote (ampy always copies)")
        return None, ampy_commands(port, paths, args.clean, not args.no_reset, args.baud)
    if args.baud:
        raise ToolError("--baud is for ampy (mpremote takes the port's own rate)")
    check = None if (args.no_check or args.skip_lib) else check_command(port)
    return check, mpremote_commands(port, paths, args.clean, args.force, not args.no_reset, romfs)


def run(args):
    check, cmds = commands(args)
    with open(os.path.join(args.dir, MARKER)) as f:
        built = json.load(f)
    if check and args.dry_run:
        execute([check], True)
    elif check:
        major, sub, arch = board_mpy(check[2])
        want = int(built["mpy"].split(".")[0])
        if major != want:
            raise ToolError("mpy version mismatch: the board on %s loads mpy v%d.%d, %s holds v%s; rebuild "
                            "with 'gw build --port %s --out %s' or flash a matching firmware (gw flash)"
                            % (check[2], major, sub, args.dir, built["mpy"], check[2], args.dir))
        native = built.get("native") or []
        want_sub = int(built["mpy"].split(".")[1])
        if native and (arch != built["march"] or sub != want_sub):
            # machine code loads only on its own arch and mpy sub-version (bytecode would load)
            raise ToolError("native code mismatch: %s holds %s machine code for mpy v%s (%s), the board on %s "
                            "is %s with mpy v%d.%d; rebuild with 'gw build --port %s --out %s'"
                            % (args.dir, built["march"], built["mpy"], ", ".join(native), check[2], arch, major,
                               sub, check[2], args.dir))
        print("board on %s: mpy v%d.%d %s; build: mpy v%s" % (check[2], major, sub, arch, built["mpy"]))
    return execute(cmds, args.dry_run)


def configure_repl(p):
    p.add_argument("--port", help="serial port (default: the only /dev/ttyUSB* or /dev/ttyACM*)")
    p.add_argument("--dry-run", action="store_true", help="print the exact command, run nothing")
    p.epilog = ("At the REPL: 'import diag; diag.charger()', Ctrl-C stops the gateway, Ctrl-D soft-resets, "
                "Ctrl-] leaves.")


def run_repl(args):
    return execute(repl_commands(pick_port(args.port, args.dry_run)), args.dry_run)
