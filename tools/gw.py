"""gw: host CLI for the EV charger gateway (certificates, trust, test CEM, ...).

Each subcommand lives in its own module under tools/ with configure(parser) and run(args).
"""

import argparse
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from devport import ToolError  # clear errors of build, deploy, flash, qr, repl

# name -> (module, one-line help)
COMMANDS = {
    "certs": ("certs", "create the device certificate and key (DER) and print the SKI"),
    "trust": ("trustcli", "list, add or remove trusted SHIP peers (SKIs)"),
    "cem": ("testcem.cli", "test CEM: SHIP handshake with the gateway, then raw SPINE"),
    "sim": ("sim", "charging-station simulator (pymodbus) driven by a register map"),
    "sim-ctl": ("simctl", "send a command (plug, unplug, set_ev_max, fault, state) to a running simulator"),
    "build": ("build", "compile lib/ with mpy-cross into a tree for the device (size report)"),
    "deploy": ("deploy", "copy a gw build to the board (mpremote, or ampy)"),
    "flash": ("flash", "write a MicroPython firmware to the ESP32 (esptool)"),
    "qr": ("qr", "the SHIP QR code text, in the terminal and as PNG"),
    "run": ("runcli", "run the gateway on this host (MicroPython unix port) with the simulator"),
    "repl": ("deploy", "open the board's REPL (mpremote)"),
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="gw", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, (modname, helptext) in COMMANDS.items():
        p = sub.add_parser(name, help=helptext, description=helptext)
        try:
            mod = importlib.import_module(modname)
        except ImportError as e:
            p.set_defaults(_missing=str(e))
            continue
        # a module serving two commands (deploy, repl) has configure_<name>
        getattr(mod, "configure_" + name.replace("-", "_"), mod.configure)(p)
        modules[name] = mod
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if getattr(args, "_missing", None):
        print("gw %s: unavailable: %s" % (args.command, args._missing), file=sys.stderr)
        return 2
    mod = modules[args.command]
    try:
        return getattr(mod, "run_" + args.command.replace("-", "_"), mod.run)(args) or 0
    except ToolError as e:
        print("gw %s: %s" % (args.command, e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
