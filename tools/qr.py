"""gw qr: the SHIP QR code of the gateway, as text, in the terminal and as a PNG (segno).

Text (SHIP Requirements for Installation Process 1.0.0; ship.md 11.3), written by the gateway's
own lib/ship/qrtext.py, the function the device's start-up banner prints with:
  SHIP;SKI:<ski>;ID:<shipid>;BRAND:<brand>;TYPE:<type>;MODEL:<model>;SERIAL:<serial>;CAT:<cats>;PIN:<pin>;ENDSHIP;
SKI and ID always; BRAND, TYPE, MODEL, SERIAL, CAT and PIN only when non-empty, in that order; ';'
removed from values. PIN: the device's SHIP PIN when ship.pin_mode is not none (--pin, the
device config's ship.pin, or the pin.json the device generated). The SKI is recomputed from the
certificate's public key (tools/certs.py); the SHIP ID and serial are the ones the gateway
announces, taken from the board config by the device's own code (gateway.config.ship_settings:
serial null -> the first 10 SKI digits).
CAT 3 is e-mobility.
"""

import os
import sys

import segno

from certs import CERT_FILE, ski_hex
from devport import ROOT, ToolError
from trustcli import _ski

DEFAULT_BOARD = os.path.join(ROOT, "board_configs", "host-sim.json")
CAT_EMOBILITY = "3"


def _lib():
    lib = os.path.join(ROOT, "lib")
    if lib not in sys.path:
        sys.path.insert(0, lib)


def qr_text(ski, ship_id, brand=None, type_=None, model=None, serial=None, cat=CAT_EMOBILITY, pin=None):
    _lib()
    from ship.qrtext import qr_text as text

    return text(ski, ship_id, brand, type_, model, serial, cat, pin)


def identity(board, ski, device=None):
    """(ship_id, brand, type, model, serial, pin) as the gateway with this board config (and the
    device's /data/device.json, when given) announces them; pin None unless a PIN mode is on
    and the PIN is configured (a generated one lives in the device's pin.json: --pin)."""
    _lib()
    from gateway import config, devconfig

    try:
        cfg = config.load(board)
        if device:
            if not os.path.exists(device):
                raise ToolError("%s: no such file" % device)
            devconfig.load(device, cfg)
    except config.ConfigError as e:
        raise ToolError("board config %s: %s" % (board, e))
    s = config.ship_settings(cfg, ski)
    i = cfg["identity"]
    pin = s["pin"] if s["pin_mode"] != "none" else None
    return s["ship_id"], i["brand"], i["type"], i["model"], s["serial"], pin


def read_ski(certs):
    path = os.path.join(certs, CERT_FILE)
    try:
        with open(path, "rb") as f:
            der = f.read()
    except OSError:
        raise ToolError("no certificate at %s: create one with 'gw certs --out %s' (or pass --ski)" % (path, certs))
    try:
        return ski_hex(der)
    except ValueError as e:
        raise ToolError("%s: %s" % (path, e))


def make(text):
    # error level M (15 %) is what a phone camera needs off a printed label; segno raises it
    # further when the version allows
    return segno.make(text, error="m", micro=False)


def configure(p):
    p.add_argument("--certs", default=".run", metavar="DIR", help="directory with cert.der (default: .run)")
    p.add_argument("--ski", help="use this SKI (40 hex digits) instead of reading cert.der")
    p.add_argument("--board", default=DEFAULT_BOARD, metavar="JSON",
                   help="board config with the identity (default: board_configs/host-sim.json)")
    p.add_argument("--device", metavar="JSON",
                   help="a copy of the device's /data/device.json (its identity overrides the board's)")
    p.add_argument("--pin", help="the device's SHIP PIN (8..16 digits), when not in --device")
    p.add_argument("--png", metavar="FILE", help="also write the QR code as PNG")
    p.add_argument("--scale", type=int, default=8, help="PNG pixels per module (default 8)")
    p.add_argument("--text-only", action="store_true", help="print the text only, no terminal QR code")


def run(args):
    if args.ski:
        try:
            ski = _ski(args.ski)
        except ValueError:
            raise ToolError("--ski: must have 40 hex digits")
    else:
        ski = read_ski(args.certs)
    ship_id, brand, type_, model, serial, pin = identity(args.board, ski, args.device)
    if args.pin is not None:
        _lib()
        from ship.pin import valid_pin

        if not valid_pin(args.pin):
            raise ToolError("--pin: must have 8..16 digits")
        pin = args.pin
    text = qr_text(ski, ship_id, brand, type_, model, serial, pin=pin)
    print(text)
    q = make(text)
    if not args.text_only:
        q.terminal(compact=True)
    if args.png:
        q.save(args.png, kind="png", scale=args.scale, border=4)
        print("wrote %s (QR version %d, error level %s)" % (args.png, q.version, q.error))
    return 0
