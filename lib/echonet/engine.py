# The ECHONET Lite node as a sans-IO engine: feed() takes one received datagram and leaves the
# answer (if the rules call for one) in the preallocated TX buffer; startup() and announce()
# build the INF frames to multicast. The adapter owns sockets and the clock.
#
# Service rules (ECHONET Lite part 2, as smdn/ELPython implement them; ../shared/reference):
# - Get / INF_REQ answer every EPC in request order, PDC 0 for what is unavailable, and then
#   Get_SNA / INF_SNA; SetC answers accepted EPCs with PDC 0 and echoes rejected EDTs
#   (SetC_SNA); SetI is silent when everything was accepted; SetGet answers OPCSet then
#   OPCGet; INFC gets INFC_Res (PDC 0 each).
# - DEOJ instance 0 means every instance of the class (we have one each); an unknown DEOJ,
#   response ESVs, format 2 and malformed frames are dropped without an answer.
# - The TID is copied byte for byte; the adapter sends the answer to the sender.
# Nothing here allocates per frame: a Get is served with the heap locked.
from compat import const, ticks_diff
from charger import (
    F_CHARGING, F_ERROR, F_HW_MAX, F_HW_MIN, F_LINK, F_PLUGGED, F_POWER, F_STATE, F_TOTAL_WH,
    OBLIGATION, SRC_ECHONET, UNIT_A, UNIT_W,
)
from echonet import objects as ob

_NODE = const(0)
_DEV = const(1)
_ROOM = const(32)  # larger than any EDT we produce (17 B at most)
_SLOT = const(18)  # announcement snapshot slot: length byte + EDT
_U4MAX = const(999999999)
_E9 = const(1000000000)  # cumulative counters wrap here (MRA range 0..999999999)
_CHARGE = const(0x42)
_STANDBY = const(0x44)
_IDLE = const(0x47)
_UNIT_NONE = const(0)
_UNIT_A = const(1)
_UNIT_W = const(2)


# ECHONET Lite format-1 frames: EHD1 EHD2 TID(2) SEOJ(3) DEOJ(3) ESV OPC {EPC PDC EDT}*OPC, and
# for SetGet (0x6E/0x7E/0x5E) a second OPC block; check() walks a caller's buffer in place.
# Here, not a module of their own: the engine is their only user, and private constants leave
# no globals entry (one module table less resident).
_EHD1 = const(0x10)
_EHD2_F1 = const(0x81)  # format 1 (specified message format); 0x82 = format 2, not ours
_HDR = const(12)  # header up to and including OPC
RX_SIZE = const(1500)  # one Ethernet MTU: nothing larger arrives unfragmented
# The answer buffer (resident): the engine answers every requested EPC, with PDC 0 and an SNA
# where a value does not fit, so it must hold 255 of them (12 + 2 * 255 = 522 B); the rest is room
# for values. A Get of the whole get map takes at most 228 B with values (0x027E). Less than the
# 1472 B one datagram could carry (1500 - IP - UDP): only a SetC echoing over 564 B of rejected
# EDTs (the settable EDTs are 17 B at most) goes unanswered, as one over 1460 B did before.
TX_MAX = const(576)

_SETI = const(0x60)
_SETC = const(0x61)
_GET = const(0x62)
_INF_REQ = const(0x63)
_SETGET = const(0x6E)
_SET_RES = const(0x71)
_GET_RES = const(0x72)
_INF = const(0x73)
_INFC = const(0x74)
_INFC_RES = const(0x7A)
_SETGET_RES = const(0x7E)
_SETI_SNA = const(0x50)
_SETC_SNA = const(0x51)
_GET_SNA = const(0x52)
_INF_SNA = const(0x53)
_SETGET_SNA = const(0x5E)


def _walk(b, p, n, opc):
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
    (SetGet) or _HDR (every other ESV); else 0. Trailing bytes make a frame malformed."""
    if n < _HDR or b[0] != _EHD1 or b[1] != _EHD2_F1:
        return 0
    p = _walk(b, _HDR, n, b[11])
    esv = b[10]
    if esv == _SETGET or esv == _SETGET_RES or esv == _SETGET_SNA:
        if p < 0 or p >= n:
            return 0
        g = p
        p = _walk(b, p + 1, n, b[p])
        return g if p == n else 0
    return _HDR if p == n else 0


def _put_eoj(b, o, v):
    b[o] = v >> 16
    b[o + 1] = (v >> 8) & 0xFF
    b[o + 2] = v & 0xFF


# Property value encoders (big-endian, written in place into the TX buffer: no allocation)
# and the membership test of a 16-byte property bitmap (objects.py: EPC 0x80..0xFF, byte low
# nibble, bit high nibble - 8).
def u8(b, o, v):
    b[o] = v & 0xFF
    return 1


def u16(b, o, v):
    b[o] = (v >> 8) & 0xFF
    b[o + 1] = v & 0xFF
    return 2


def u32(b, o, v):
    # v within +-2**30 stays a small int on a 32-bit port; >> on a negative v gives two's
    # complement bytes, so this also writes int32 values
    b[o] = (v >> 24) & 0xFF
    b[o + 1] = (v >> 16) & 0xFF
    b[o + 2] = (v >> 8) & 0xFF
    b[o + 3] = v & 0xFF
    return 4


def raw(b, o, src):
    n = len(src)
    for i in range(n):
        b[o + i] = src[i]
    return n


def clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


def has(m, e):
    return e >= 0x80 and (m[e & 0x0F] >> ((e >> 4) - 8)) & 1


def _loc_ok(b, o, n):
    # 0x81 EDT b[o:o+n]: one byte (0x01 alone would announce missing position data), or 0x01
    # and 16 bytes of position
    return n == 1 and b[o] != 1 or n == 17 and b[o] == 1


def _fixed(text, n):
    # ASCII, NUL-padded to n bytes (pychonet strips the NULs)
    b = bytearray(n)
    t = text.encode()[:n]
    b[:len(t)] = t
    return bytes(b)


class Engine:
    def __init__(self, charger=None, manufacturer=0xFFFFFF, ident=b"", discharges=False,
                 product="", serial="", phases=3, nominal_v=230, hw_min=6, hw_max=16,
                 location=None, announce_ms=1000):
        self.ch = charger
        self.cls = ob.EVCD if discharges else ob.EVC
        self.eoj = (self.cls << 8) | 1
        self.mfr = manufacturer & 0xFFFFFF
        self.phases = phases
        self.nominal_v = int(nominal_v)
        self.rated_min = hw_min
        self.rated_max = hw_max
        self.announce_ms = announce_ms
        self.tx = bytearray(TX_MAX)
        # 0x83: 0xFE, manufacturer code, 13 bytes unique per node and object (10 bytes of the
        # node's identity + the EOJ), stable across reboots and address changes
        idb = (bytes(ident) + bytes(10))[:10]
        m = bytes(((self.mfr >> 16) & 0xFF, (self.mfr >> 8) & 0xFF, self.mfr & 0xFF))
        # the object's EOJ follows (_ident): one 11-byte prefix for both objects
        self._id = b"\xfe" + m + idb
        self._product = _fixed(product, 12)
        self._serial = _fixed(serial, 12)
        # per object (_NODE, _DEV): Get and Set bitmaps, the 0x9D, 0x9E and 0x9F maps (constants)
        self._t = (ob.NODE_TABLES, ob.EVCD_TABLES if discharges else ob.EVC_TABLES)
        a = self._anno()
        # settings made over ECHONET (0x81 is persisted by the owner through on_location)
        self._loc = bytearray(17)
        self._loclen = 1
        if location and _loc_ok(location, 0, len(location)):
            self._loc[:len(location)] = location
            self._loclen = len(location)
        self._mode = _CHARGE
        self._unit = _UNIT_NONE
        self._a10 = 0  # charging current setting, 0.1 A
        self._w = 0  # charging power setting, W
        self.on_location = None  # cb(bytes) after a Set of 0x81
        self.on_dirty = None  # cb() when an announced property may have changed
        # announcements: last announced EDT per 0x9D property, rate limit
        self._snap = bytearray(_SLOT * len(a))
        self._dirty = False
        self._last_inf = None
        self._tid = 0
        # counters for diag.echonet()
        self.n_rx = 0
        self.n_tx = 0
        self.n_dropped = 0  # malformed, format 2, unknown DEOJ
        self.n_ignored = 0  # responses and notifications that need no answer
        self.n_sna = 0
        self.n_inf = 0
        self.n_set = 0
        self.errors = 0  # kept by the adapter (exceptions while serving, send failures)
        self._fail = False
        # the values at start-up are the baseline: only later changes are announced
        snap = self._snap
        for i in range(len(a)):
            k = self._read_dev(a[i], snap, i * _SLOT + 1)
            snap[i * _SLOT] = 0xFF if k < 0 else k
        if charger is not None:
            charger.subscribe(self._changed)

    # ---- receive

    def feed(self, b, n, now=0):
        """Serve one datagram b[:n]; the length of the answer in self.tx, 0 for none."""
        self.n_rx += 1
        g = check(b, n)
        if not g:
            self.n_dropped += 1
            return 0
        esv = b[10]
        if not (0x60 <= esv <= 0x63 or esv == _SETGET or esv == _INFC):
            self.n_ignored += 1  # responses, INF, reserved codes
            return 0
        cls = (b[7] << 8) | b[8]
        inst = b[9]
        if inst > 1:
            self.n_dropped += 1
            return 0
        if cls == 0x0EF0:
            obj = _NODE
            seoj = ob.NODE_EOJ
        elif cls == self.cls:
            obj = _DEV
            seoj = self.eoj
        else:
            self.n_dropped += 1  # unknown DEOJ: discarded silently
            return 0
        tx = self.tx
        tx[0] = _EHD1
        tx[1] = _EHD2_F1
        tx[2] = b[2]
        tx[3] = b[3]
        _put_eoj(tx, 4, seoj)
        tx[7] = b[4]
        tx[8] = b[5]
        tx[9] = b[6]
        tx[11] = b[11]
        self._fail = False
        if esv == _GET or esv == _INF_REQ:
            p = self._gets(obj, b, _HDR, b[11], _HDR)
            res = _GET_RES if esv == _GET else _INF
            sna = _GET_SNA if esv == _GET else _INF_SNA
        elif esv == _SETGET:
            p = self._sets(obj, b, _HDR, b[11], _HDR, now)
            if p > 0:
                if p >= TX_MAX:
                    p = -1
                else:
                    tx[p] = b[g]
                    p = self._gets(obj, b, g + 1, b[g], p + 1)
            res = _SETGET_RES
            sna = _SETGET_SNA
        elif esv == _INFC:
            p = _HDR
            q = _HDR
            for _ in range(b[11]):
                tx[p] = b[q]
                tx[p + 1] = 0
                p += 2
                q += 2 + b[q + 1]
            res = sna = _INFC_RES
        else:  # SetI, SetC
            p = self._sets(obj, b, _HDR, b[11], _HDR, now)
            res = _SET_RES if esv == _SETC else 0
            sna = _SETC_SNA if esv == _SETC else _SETI_SNA
        if p < 0:
            self.n_dropped += 1  # the answer would not fit one datagram
            return 0
        if self._fail:
            self.n_sna += 1
            res = sna
        if not res:
            return 0  # SetI, all accepted
        tx[10] = res
        self.n_tx += 1
        return p

    def _gets(self, obj, b, q, opc, p):
        tx = self.tx
        gm = self._t[obj][0]
        while opc:
            opc -= 1
            if p + 2 > TX_MAX:
                return -1
            epc = b[q]
            q += 2 + b[q + 1]
            tx[p] = epc
            k = -1
            # a value only where the EPCs still to come keep room for their PDC 0: every
            # requested EPC is answered, and the datagram never exceeds TX_MAX
            if has(gm, epc) and p + 2 + _ROOM + 2 * opc <= TX_MAX:
                k = self._read(obj, epc, tx, p + 2)
            if k < 0:
                tx[p + 1] = 0
                self._fail = True
                p += 2
            else:
                tx[p + 1] = k
                p += 2 + k
        return p

    def _sets(self, obj, b, q, opc, p, now):
        tx = self.tx
        sm = self._t[obj][1]
        for _ in range(opc):
            epc = b[q]
            pdc = b[q + 1]
            if has(sm, epc) and self._write(epc, b, q + 2, pdc, now):
                if p + 2 > TX_MAX:
                    return -1
                tx[p] = epc
                tx[p + 1] = 0
                p += 2
                self.n_set += 1
            else:
                if p + 2 + pdc > TX_MAX:
                    return -1
                for i in range(pdc + 2):
                    tx[p + i] = b[q + i]
                p += 2 + pdc
                self._fail = True
            q += 2 + pdc
        return p

    # ---- property values

    def _read(self, obj, epc, b, o):
        """Write the EDT of epc at b[o:]; its length, or -1 when unavailable."""
        if 0x9D <= epc <= 0x9F:
            return raw(b, o, self._t[obj][epc - 0x9B])  # 0x9D..0x9F: [2]..[4]
        if epc == 0x8A:
            b[o] = self.mfr >> 16
            b[o + 1] = (self.mfr >> 8) & 0xFF
            b[o + 2] = self.mfr & 0xFF
            return 3
        if epc == 0x8C:
            return raw(b, o, self._product)
        if obj == _NODE:
            return self._read_node(epc, b, o)
        return self._read_dev(epc, b, o)

    def _read_node(self, epc, b, o):
        if epc == 0x80:
            return u8(b, o, 0x30)
        if epc == 0x82:
            return u32(b, o, 0x010E0100)  # Ver. 1.14, format 1 only
        if epc == 0x83:
            return self._ident(b, o, ob.NODE_EOJ)
        if epc == 0xD3:  # self-node instances, excluding the node profile: 3 bytes
            b[o] = 0
            return 1 + u16(b, o + 1, 1)
        if epc == 0xD4:  # self-node classes, including the node profile: 2 bytes
            return u16(b, o, 2)
        if epc == 0xD5 or epc == 0xD6:
            b[o] = 1
            _put_eoj(b, o + 1, self.eoj)
            return 4
        if epc == 0xD7:  # class list, excluding the node profile
            b[o] = 1
            return 1 + u16(b, o + 1, self.cls)
        return -1

    def _read_dev(self, epc, b, o):
        ch = self.ch
        if epc == 0x80:
            return u8(b, o, 0x30)
        if epc == 0x81:
            for i in range(self._loclen):
                b[o + i] = self._loc[i]
            return self._loclen
        if epc == 0x82:
            return u32(b, o, 0x00005200)  # Appendix Release R, revision 0
        if epc == 0x83:
            return self._ident(b, o, self.eoj)
        if epc == 0x88:
            return u8(b, o, 0x41 if self._fault() else 0x42)
        if epc == 0x89:
            return u16(b, o, 0x03FF if self._fault() else 0)
        if epc == 0x8D:
            return raw(b, o, self._serial)
        if epc == 0xC5 or epc == 0xC6:  # rated charge (discharge) capacity, W
            return u32(b, o, clamp(self.rated_max * self.phases * self.nominal_v, 0, _U4MAX))
        if epc == 0xD2:
            return u16(b, o, clamp(self.nominal_v, 0, 32766))
        if epc == 0xCC:
            # AC with IEC 61851 control pilot (no ISO 15118): AC_CPLT; a discharging AC
            # station needs high-level communication
            return u8(b, o, 0x13 if self.cls == ob.EVCD else 0x11)
        if epc == 0xDA:
            return u8(b, o, self._mode)
        if epc == 0xDC:  # charging method
            u = self._unit
            return u8(b, o, 0x04 if u == _UNIT_A else (0x03 if u == _UNIT_W else 0x01))
        if epc == 0xDD:  # discharging method: others
            return u8(b, o, 0)
        if epc == 0xE6:  # vehicle ID: size 0, no ID known
            return u8(b, o, 0)
        if epc == 0xED:
            return u16(b, o, self._a10 if self._unit == _UNIT_A else self._hw(F_HW_MAX) * 10)
        if epc == 0xEB:
            w = self._w if self._unit == _UNIT_W else self._hw(F_HW_MAX) * self.phases * self.nominal_v
            return u32(b, o, clamp(w, 0, _U4MAX))
        if epc == 0xCA or epc == 0xCB:  # min/max current, 0.1 A
            u16(b, o, clamp(self._hw(F_HW_MIN) * 10, 0, 32766))
            return 2 + u16(b, o + 2, clamp(self._hw(F_HW_MAX) * 10, 0, 32766))
        if epc == 0xC8 or epc == 0xC9:  # min/max power, W
            k = self.phases * self.nominal_v
            u32(b, o, clamp(self._hw(F_HW_MIN) * k, 0, _U4MAX))
            return 4 + u32(b, o + 4, clamp(self._hw(F_HW_MAX) * k, 0, _U4MAX))
        if ch is None:
            return -1
        if epc == 0xC7:
            pl = ch.get(F_PLUGGED)
            if not ch.get(F_LINK) or pl is None:
                v = 0xFF  # undefined until the controller answers
            elif not pl:
                v = 0x30
            else:
                st = ch.get(F_STATE)
                v = 0x40 if ch.get(F_ERROR) or st == "E" or st == "F" else 0x41
            return u8(b, o, v)
        if epc == 0xE1:  # actual operation mode
            if ch.get(F_CHARGING):
                v = _CHARGE
            elif ch.get(F_PLUGGED):
                v = _STANDBY
            else:
                v = _IDLE
            return u8(b, o, v)
        if epc == 0xE5:  # maintenance status
            return u8(b, o, 0x41 if ch.get(F_ERROR) else 0x42)
        if epc == 0x84 or epc == 0xD3:
            p = ch.get(F_POWER)
            if p is None:
                return -1
            p = int(p)
            if epc == 0x84:
                return u16(b, o, clamp(p, 0, 65533))
            if self.cls == ob.EVCD:  # signed: + charging, - discharging
                return u32(b, o, clamp(p, -_U4MAX, _U4MAX))
            return u32(b, o, clamp(p, 0, _U4MAX))
        if epc == 0x85 or epc == 0xD8:  # cumulative energy, 0.001 kWh = Wh
            e = ch.get(F_TOTAL_WH)
            if e is None:
                return -1
            return u32(b, o, int(e) % _E9 if e >= 0 else 0)
        return -1  # vehicle battery data (0xC0 0xC2 0xC4 0xCE 0xCF 0xD0 0xE2 0xE4): unknown

    def _anno(self):
        # the EPCs the device object announces (a constant per class, not an attribute: the
        # engine's member table stays at 37 slots)
        return ob.EVCD_ANNO_ALL if self.cls == ob.EVCD else ob.EVC_ANNO_ALL

    def _ident(self, b, o, eoj):
        # 0x83: the node's 14-byte prefix, then the object's EOJ
        _put_eoj(b, o + 14, eoj)
        return 3 + raw(b, o, self._id)

    def _hw(self, f):
        v = None if self.ch is None else self.ch.get(f)
        if v is None:
            v = self.rated_min if f == F_HW_MIN else self.rated_max
        return int(v)

    def _fault(self):
        ch = self.ch
        return ch is not None and (not ch.get(F_LINK) or bool(ch.get(F_ERROR)))

    # ---- settings

    def _write(self, epc, b, q, pdc, now):
        """Validate and apply a Set of epc (EDT b[q:q+pdc]); False rejects it."""
        if epc == 0x81:
            if not _loc_ok(b, q, pdc):
                return False
            for i in range(pdc):
                self._loc[i] = b[q + i]
            self._loclen = pdc
            self._changed(0)
            if self.on_location is not None:
                self.on_location(bytes(self._loc[:pdc]))
            return True
        if epc == 0xCD:  # vehicle connection confirmation
            return pdc == 1 and b[q] == 0x10
        old = (self._mode, self._unit, self._a10, self._w) if self.ch is not None else None
        if epc == 0xDA:
            v = b[q] if pdc == 1 else 0
            if not (v == _CHARGE or v == _STANDBY or v == _IDLE):
                return False  # discharge, automatic, other: nothing the station can do
            self._mode = v
        elif epc == 0xED:
            if pdc != 2:
                return False
            v = (b[q] << 8) | b[q + 1]
            if not self._hw(F_HW_MIN) * 10 <= v <= self._hw(F_HW_MAX) * 10:
                return False
            self._unit = _UNIT_A
            self._a10 = v
        elif epc == 0xEB:
            if pdc != 4 or b[q] & 0x80:
                return False
            v = (b[q] << 24) | (b[q + 1] << 16) | (b[q + 2] << 8) | b[q + 3]
            k = self.phases * self.nominal_v
            if not self._hw(F_HW_MIN) * k <= v <= self._hw(F_HW_MAX) * k:
                return False
            self._unit = _UNIT_W
            self._w = v
        else:
            return False
        # the whole ECHONET wish as one tagged request: standby/idle pause the station, a
        # current or power setting limits it, charge without a setting lifts our limit
        ch = self.ch
        if ch is None:
            ok = True
        elif self._mode != _CHARGE:
            ok = ch.request(SRC_ECHONET, OBLIGATION, 0, UNIT_A, now)
        elif self._unit == _UNIT_A:
            a = self._a10
            ok = ch.request(SRC_ECHONET, OBLIGATION, a // 10 if a % 10 == 0 else a / 10, UNIT_A, now)
        elif self._unit == _UNIT_W:
            ok = ch.request(SRC_ECHONET, OBLIGATION, self._w, UNIT_W, now)
        else:
            ok = ch.withdraw(SRC_ECHONET, now)
        if not ok:
            self._mode, self._unit, self._a10, self._w = old
            return False
        self._changed(0)
        return True

    # ---- announcements

    def _changed(self, mask):
        self._dirty = True
        if self.on_dirty is not None:
            self.on_dirty()

    def _header(self, seoj, deoj, esv, opc):
        tx = self.tx
        tx[0] = _EHD1
        tx[1] = _EHD2_F1
        tx[2] = (self._tid >> 8) & 0xFF
        tx[3] = self._tid & 0xFF
        self._tid = (self._tid + 1) & 0xFFFF
        _put_eoj(tx, 4, seoj)
        _put_eoj(tx, 7, deoj)
        tx[10] = esv
        tx[11] = opc

    def startup(self):
        """INF of the instance list (0xD5) from the node profile, to multicast at start-up
        and after every network (re)connect: passive discovery for controllers."""
        self._header(ob.NODE_EOJ, ob.NODE_EOJ, _INF, 1)
        tx = self.tx
        tx[12] = 0xD5
        tx[13] = self._read_node(0xD5, tx, 14)
        self.n_inf += 1
        return 14 + tx[13]

    def announce_wait(self, now):
        """ms until announce() may send (0: now), or -1 when nothing may have changed."""
        if not self._dirty:
            return -1
        if self._last_inf is None:
            return 0
        left = self.announce_ms - ticks_diff(now, self._last_inf)
        return left if left > 0 else 0

    def announce(self, now):
        """INF (to 224.0.23.0) of every 0x9D property whose value changed since it was last
        announced, at most one per announce_ms; its length in self.tx, or 0."""
        if self.announce_wait(now) != 0:
            return 0
        self._dirty = False
        tx = self.tx
        snap = self._snap
        # a value is read into the end of tx and compared there: past any INF built here (at
        # most 9 properties of at most 2 + 17 B after the header), so no scratch buffer
        sc = TX_MAX - _SLOT
        anno = self._anno()
        p = _HDR
        opc = 0
        for i in range(len(anno)):
            k = self._read_dev(anno[i], tx, sc)
            base = i * _SLOT
            if k < 0:
                snap[base] = 0xFF
                continue
            same = snap[base] == k
            j = 0
            while same and j < k:
                same = snap[base + 1 + j] == tx[sc + j]
                j += 1
            if same:
                continue
            snap[base] = k
            tx[p] = anno[i]
            tx[p + 1] = k
            for j in range(k):
                v = tx[sc + j]
                snap[base + 1 + j] = v
                tx[p + 2 + j] = v
            p += 2 + k
            opc += 1
        if not opc:
            return 0
        self._header(self.eoj, ob.CONTROLLER_EOJ, _INF, opc)
        self._last_inf = now
        self.n_inf += 1
        return p
