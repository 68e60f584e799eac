"""What gw build, deploy, flash and repl share: the board's serial port, the host tools from
.venv, and running (or, with --dry-run, printing) their exact command lines.

Commands are lists whose first element is the bare tool name (mpremote, ampy, esptool), so
that the printed line is the one a person would type; the path is resolved only to run it.
"""

import glob
import os
import shlex
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# USB-serial bridges (CP210x, CH340: ttyUSB) and native USB CDC (S3, C3: ttyACM); the macOS
# names for the same so that the error lists what a Mac user sees.
PORT_GLOBS = ["/dev/ttyUSB*", "/dev/ttyACM*", "/dev/cu.usbserial*", "/dev/cu.usbmodem*", "/dev/cu.SLAB_USBtoUART*"]


class ToolError(Exception):
    """A user-facing error: printed as 'gw <command>: <message>', exit code 2."""


def find_ports():
    found = []
    for pattern in PORT_GLOBS:
        found.extend(sorted(glob.glob(pattern)))
    return found


def _patterns():
    return ", ".join(p for p in PORT_GLOBS if not p.startswith("/dev/cu."))


PLACEHOLDER = "PORT"  # what --dry-run prints for the port when no board is attached


def pick_port(port, dry_run=False):
    """The port to use: the one given (checked to exist unless dry_run), else the only board
    attached; with dry_run and no board, PLACEHOLDER (the commands are still worth reading).
    mpremote's own names (auto, a0, u0, rfc2217://...) pass through unchecked."""
    if port:
        if port.startswith("/dev/") and not dry_run and not os.path.exists(port):
            found = find_ports()
            raise ToolError("wrong port: %s does not exist (serial ports here: %s)"
                            % (port, ", ".join(found) or "none"))
        return port
    found = find_ports()
    if not found and dry_run:
        print("no board attached: %s stands for its serial port (e.g. /dev/ttyUSB0; --port sets it)"
              % PLACEHOLDER, file=sys.stderr)
        return PLACEHOLDER
    if not found:
        raise ToolError("no board attached: nothing matches %s; plug the board in (a USB cable "
                        "with data lines), check 'dmesg | tail', or pass --port" % _patterns())
    if len(found) > 1:
        raise ToolError("several serial ports (%s): choose one with --port" % ", ".join(found))
    return found[0]


def tool_path(name):
    """The tool from the venv this Python runs in, else from PATH."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(here):
        return here
    p = shutil.which(name)
    if p:
        return p
    raise ToolError("%s not found: run 'make venv' (requirements.txt pins it)" % name)


def show(cmd):
    return shlex.join(cmd)


def run_one(cmd, out=None):
    """Print and run one command; its exit status."""
    print("$ " + show(cmd), file=out or sys.stdout, flush=True)
    return subprocess.run([tool_path(cmd[0])] + list(cmd[1:])).returncode


def execute(cmds, dry_run, out=None):
    """Print each command; unless dry_run, run it and stop at the first failure."""
    out = out or sys.stdout
    for cmd in cmds:
        if dry_run:
            print(show(cmd), file=out, flush=True)
            continue
        rc = run_one(cmd, out)
        if rc != 0:
            raise ToolError("%s failed (exit %d)" % (cmd[0], rc))
    return 0


def capture(cmd, timeout=30):
    """Run a command and return its stdout (for reading a board's mpy version)."""
    try:
        r = subprocess.run([tool_path(cmd[0])] + list(cmd[1:]), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError("%s timed out: is a program running on the board? (Ctrl-C it at the REPL)" % show(cmd))
    if r.returncode != 0:
        raise ToolError("%s failed (exit %d): %s" % (show(cmd), r.returncode, (r.stderr or r.stdout).strip()))
    return r.stdout
