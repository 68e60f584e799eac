"""gw flash: write a MicroPython firmware image to the board with esptool 5.

  esptool --chip esp32 --port PORT --baud 460800 erase-flash            (with --erase)
  esptool --chip esp32 --port PORT --baud 460800 write-flash 0x1000 firmware.bin

esptool 5 spells its commands with hyphens (write_flash still works, with a deprecation
warning). The offset is where the image starts: MicroPython's firmware.bin holds bootloader,
partition table and application, so it goes where the chip's ROM looks for the bootloader:
0x1000 on the ESP32 and ESP32-S2, 0x0 on the S3, C3 and C6 (ports/esp32/boards/*/board.json,
"flash_offset"). Erasing wipes the file system too: the identity and trust store in /data
and board.json are gone afterwards (deploy them again; the SKI changes with a new identity).

A command that fails at the fast baud rate (long or poor USB cables, some CH340 bridges) is
run once more at 115200 (SAFE_BAUD) before giving up.
"""

import os

import sys

from devport import ToolError, execute, pick_port, run_one

SAFE_BAUD = 115200
OFFSETS = {"esp32": "0x1000", "esp32s2": "0x1000", "esp32s3": "0x0", "esp32c3": "0x0", "esp32c6": "0x0"}


def commands(chip, port, firmware, baud=460800, erase=False):
    base = ["esptool", "--chip", chip, "--port", port, "--baud", str(baud)]
    cmds = []
    if erase:
        cmds.append(base + ["erase-flash"])
    cmds.append(base + ["write-flash", OFFSETS[chip], firmware])
    return cmds


def configure(p):
    p.add_argument("firmware", metavar="FIRMWARE.bin",
                   help="MicroPython image (firmware/README.md builds one with lib/ frozen in)")
    p.add_argument("--chip", choices=sorted(OFFSETS), default="esp32",
                   help="target chip (default esp32; the S3 boards: esp32s3); sets the offset")
    p.add_argument("--port", help="serial port (default: the only /dev/ttyUSB* or /dev/ttyACM*)")
    p.add_argument("--baud", type=int, default=460800, help="flashing baud rate (default 460800; 115200 if it fails)")
    p.add_argument("--erase", action="store_true",
                   help="erase the whole flash first (the first MicroPython flash; wipes /data and board.json)")
    p.add_argument("--dry-run", action="store_true", help="print the exact commands, run nothing")


def run(args):
    if not os.path.isfile(args.firmware):
        raise ToolError("%s: no such file (the build puts it in ports/esp32/build-<BOARD>/firmware.bin)"
                        % args.firmware)
    with open(args.firmware, "rb") as f:
        magic = f.read(1)
    # every ESP image (and so MicroPython's merged firmware.bin) starts with 0xE9
    if magic != b"\xe9":
        raise ToolError("%s is not an ESP32 firmware image (first byte %s, want 0xe9)"
                        % (args.firmware, magic.hex() or "none"))
    port = pick_port(args.port, args.dry_run)
    cmds = commands(args.chip, port, args.firmware, args.baud, args.erase)
    if args.dry_run:
        if args.baud != SAFE_BAUD:
            print("a command that fails at %d baud runs again with --baud %d" % (args.baud, SAFE_BAUD), file=sys.stderr)
        return execute(cmds, True)
    return run_with_fallback(cmds, args.baud)


def run_with_fallback(cmds, baud, run=run_one):
    """Run each command; one that fails at baud is run again at SAFE_BAUD, and the rest
    follow at that rate. Stops at the first failure that the fallback does not cure."""
    i = 0
    while i < len(cmds):
        cmd = cmds[i]
        rc = run(cmd)
        if rc != 0 and baud != SAFE_BAUD:
            print("esptool failed at %d baud (exit %d): again at %d" % (baud, rc, SAFE_BAUD), flush=True)
            baud = SAFE_BAUD
            cmds = [_with_baud(c, baud) for c in cmds]
            rc = run(cmds[i])
        if rc != 0:
            raise ToolError("%s failed (exit %d)" % (cmd[0], rc))
        i += 1
    return 0


def _with_baud(cmd, baud):
    out = list(cmd)
    out[out.index("--baud") + 1] = str(baud)
    return out
