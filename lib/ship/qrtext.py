# The SHIP QR code text (SHIP Requirements for Installation Process 1.0.0 as ship-go's
# QRCodeText writes it; ship.md 11.3), shared by the device's start-up banner and tools/qr.py:
#   SHIP;SKI:<ski>;ID:<shipid>;BRAND:..;TYPE:..;MODEL:..;SERIAL:..;CAT:..;PIN:..;ENDSHIP;
# SKI and ID always; the others only when non-empty, in this order; keys upper-case; ';' removed
# from values. PIN (IEC 63380-3 6.9.8, the QR code with SKI and PIN) goes last: its key name
# and place could not be checked against the standard's text (see README).
CAT_EMOBILITY = "3"

_OPTIONAL = ("BRAND", "TYPE", "MODEL", "SERIAL", "CAT", "PIN")


def _clean(v):
    return str(v).replace(";", "") if v is not None else ""


def qr_text(ski, ship_id, brand=None, type_=None, model=None, serial=None, cat=CAT_EMOBILITY, pin=None):
    if not ski or not ship_id:
        raise ValueError("SKI and ID are mandatory")
    parts = ["SHIP", "SKI:" + _clean(ski), "ID:" + _clean(ship_id)]
    vals = (brand, type_, model, serial, cat, pin)
    for i in range(len(_OPTIONAL)):
        v = _clean(vals[i])
        if v:
            parts.append(_OPTIONAL[i] + ":" + v)
    return ";".join(parts) + ";ENDSHIP;"
