# ECHONET Lite format-1 frames: EHD1 EHD2 TID(2) SEOJ(3) DEOJ(3) ESV OPC {EPC PDC EDT}*OPC, and
# for SetGet (0x6E/0x7E/0x5E) a second OPC block. Sans-IO: walks a caller's buffer in place.
from compat import const

_ANCHOR = ...  # the constant table is not empty (compat.py, "A module's constant table")

EHD1 = const(0x10)
EHD2_F1 = const(0x81)  # format 1 (specified message format); 0x82 = format 2, not ours
HDR = const(12)  # header up to and including OPC
RX_SIZE = const(1500)  # one Ethernet MTU: nothing larger arrives unfragmented
# The answer buffer (resident): the engine answers every requested EPC, with PDC 0 and an SNA
# where a value does not fit, so it must hold 255 of them (12 + 2 * 255 = 522 B); the rest is room
# for values. A Get of the whole get map takes at most 228 B with values (0x027E). Less than the
# 1472 B one datagram could carry (1500 - IP - UDP): only a SetC echoing over 564 B of rejected
# EDTs (the settable EDTs are 17 B at most) goes unanswered, as one over 1460 B did before.
TX_MAX = const(576)

SETI = const(0x60)
SETC = const(0x61)
GET = const(0x62)
INF_REQ = const(0x63)
SETGET = const(0x6E)
SET_RES = const(0x71)
GET_RES = const(0x72)
INF = const(0x73)
INFC = const(0x74)
INFC_RES = const(0x7A)
SETGET_RES = const(0x7E)
SETI_SNA = const(0x50)
SETC_SNA = const(0x51)
GET_SNA = const(0x52)
INF_SNA = const(0x53)
SETGET_SNA = const(0x5E)


def walk(b, p, n, opc):
    """Offset after opc properties starting at p, or -1 when a PDC or the OPC runs past n.
    Never trusts OPC or PDC to size anything: each step is checked against n first."""
    while opc:
        if p + 2 > n:
            return -1
        p += 2 + b[p + 1]
        if p > n:
            return -1
        opc -= 1
    return p


def check(b, n):
    """For a well-formed format-1 frame of exactly n bytes: the offset of its OPCGet byte
    (SetGet) or HDR (every other ESV); else 0. Trailing bytes make a frame malformed."""
    if n < HDR or b[0] != EHD1 or b[1] != EHD2_F1:
        return 0
    p = walk(b, HDR, n, b[11])
    esv = b[10]
    if esv == SETGET or esv == SETGET_RES or esv == SETGET_SNA:
        if p < 0 or p >= n:
            return 0
        g = p
        p = walk(b, p + 1, n, b[p])
        return g if p == n else 0
    return HDR if p == n else 0


def put_eoj(b, o, v):
    b[o] = v >> 16
    b[o + 1] = (v >> 8) & 0xFF
    b[o + 2] = v & 0xFF
