# Set-up of the mDNS responder (RFC 6762/6763), start-up only: the published names in wire
# form, the TXT rdata and the reply buffer sized by them. gateway.startup drops this module after
# start-up (_forget); a rename after a name conflict, or a new TXT, imports it again.
from compat import const
from mdns import dns as D

# the one fixed name a responder needs made at set-up (the others are constants in
# mdns.responder): its instance name ends in it
_SHIP = const(b"\x05_ship\x04_tcp\x05local\x00")
_LOCAL = const(b"\x05local\x00")
_MAX_NAME = const(255)  # wire length of a name (RFC 1035 3.1)


def ref(text):
    """Uncompressed wire form of a dotted name ('_ship._tcp.local'); labels may hold any
    UTF-8 except a dot. Made once per name at set-up."""
    out = bytearray()
    for label in text.split("."):
        b = label.encode()
        if not b:
            continue
        if len(b) > 63:
            raise D.DnsError("label over 63 bytes")
        out.append(len(b))
        out.extend(b)
    out.append(0)
    if len(out) > _MAX_NAME:
        raise D.DnsError("name over 255 bytes")
    return bytes(out)


def label_ref(label, suffix):
    """One label (instance names may contain dots and spaces) in front of a ref."""
    b = label.encode()
    if not 0 < len(b) <= 63 or len(b) + len(suffix) + 1 > _MAX_NAME:
        raise D.DnsError("bad label length")
    return bytes([len(b)]) + b + suffix


def txt_rdata(pairs):
    """TXT rdata from (key, value) pairs, in the given order (txtvers first, RFC 6763 6.7)."""
    out = bytearray()
    for k, v in pairs:
        s = ("%s=%s" % (k, v)).encode()
        if len(s) > 255:
            raise D.DnsError("TXT string over 255 bytes: " + k)
        out.append(len(s))
        out.extend(s)
    return bytes(out)


def ship_txt(ship_id, ski, path="/ship/", brand=None, model=None, dtype=None, serial=None, cat="3"):
    """The SHIP TXT keys (ship.md 11.2) in the order the issue gives; register is always
    false: pairing is never automatic."""
    pairs = [("txtvers", "1"), ("id", ship_id), ("path", path), ("ski", ski), ("register", "false")]
    for k, v in (("brand", brand), ("model", model), ("type", dtype), ("serial", serial), ("cat", cat)):
        if v:
            pairs.append((k, v[:32] if k != "cat" else v))
    return pairs


def names(r, instance, host, txt_pairs):
    """Responder r's names and TXT (None: unchanged); a reply buffer that fits them."""
    if instance is not None:
        r.instance = instance
        r._inst = label_ref(instance, _SHIP)
    if host is not None:
        r.host = host
        r._host = label_ref(host, _LOCAL)
    if txt_pairs is not None:
        r.txt = txt_rdata(txt_pairs)
    need = _need(r)
    if r.w is None or need > r.w.size:
        r.w = None  # the old buffer is free before the new one is allocated
        r.w = D.Writer(need)


# room for the questions a one-shot (legacy) reply repeats: one of any legal name (255 B + type
# and class); a query whose questions need more goes unanswered (counted malformed)
_QROOM = const(260)


def _need(r):
    # every record once, as Responder._put writes them (10 B of type, class, TTL, rdlength each)
    svc = len(_SHIP)
    inst = len(r._inst)
    host = len(r._host)
    n = 12 + (svc + 10 + inst) + (inst + 16 + host) + (inst + 10 + len(r.txt))
    n += (host + 14) + (30 + 10 + svc) + _QROOM  # 30: _services._dns-sd._udp.local
    return (n + 15) & ~15
