"""An independent ECHONET Lite controller for the tests: its own format-1 codec (SetGet's
two blocks included) and a blocking UDP controller. Written from the reference, imports
nothing from lib/."""

import select
import socket
import struct
import time

GROUP = "224.0.23.0"
PORT = 3610
CONTROLLER = 0x05FF01


class Prop:
    __slots__ = ("epc", "edt")

    def __init__(self, epc, edt=b""):
        self.epc = epc
        self.edt = bytes(edt)

    def __repr__(self):
        return "Prop(0x%02X, %s)" % (self.epc, self.edt.hex())

    def __eq__(self, other):
        return (self.epc, self.edt) == (other.epc, other.edt)


class Frame:
    def __init__(self, tid, seoj, deoj, esv, props, gets=None):
        self.tid, self.seoj, self.deoj, self.esv = tid, seoj, deoj, esv
        self.props = props
        self.gets = gets  # the OPCGet block of SetGet frames, else None

    def __repr__(self):
        return "Frame(tid=%04x %06x->%06x esv=%02x %r %r)" % (
            self.tid, self.seoj, self.deoj, self.esv, self.props, self.gets)

    def value(self, epc):
        for p in self.props + (self.gets or []):
            if p.epc == epc:
                return p.edt
        raise KeyError(hex(epc))


def _block(data, off):
    if off >= len(data):
        return None, off
    n = data[off]
    off += 1
    props = []
    for _ in range(n):
        if off + 2 > len(data):
            return None, off
        epc, pdc = data[off], data[off + 1]
        if off + 2 + pdc > len(data):
            return None, off
        props.append(Prop(epc, data[off + 2:off + 2 + pdc]))
        off += 2 + pdc
    return props, off


def parse(data):
    """A Frame, or None unless data is exactly one well-formed format-1 frame."""
    data = bytes(data)
    if len(data) < 12 or data[0] != 0x10 or data[1] != 0x81:
        return None
    tid = struct.unpack(">H", data[2:4])[0]
    seoj = int.from_bytes(data[4:7], "big")
    deoj = int.from_bytes(data[7:10], "big")
    esv = data[10]
    props, off = _block(data, 11)
    if props is None:
        return None
    gets = None
    if esv in (0x6E, 0x7E, 0x5E):
        gets, off = _block(data, off)
        if gets is None:
            return None
    if off != len(data):
        return None
    return Frame(tid, seoj, deoj, esv, props, gets)


def build(tid, seoj, deoj, esv, props, gets=None):
    """props, gets: lists of (epc, edt) or Prop."""
    def block(ps):
        out = bytes([len(ps)])
        for p in ps:
            epc, edt = (p.epc, p.edt) if isinstance(p, Prop) else p
            out += bytes([epc, len(edt)]) + bytes(edt)
        return out

    b = b"\x10\x81" + struct.pack(">H", tid) + seoj.to_bytes(3, "big") + deoj.to_bytes(3, "big") + bytes([esv])
    b += block(props)
    if gets is not None:
        b += block(gets)
    return b


def get(deoj, epcs, tid=1, esv=0x62):
    return build(tid, CONTROLLER, deoj, esv, [(e, b"") for e in epcs])


def request(engine, frame, now=0):
    """Feed frame to an engine object (duck-typed: feed(), tx) and parse its answer."""
    n = engine.feed(frame, len(frame), now)
    return parse(bytes(engine.tx[:n])) if n else None


def decode_map(edt):
    if not edt:
        return []
    if edt[0] < 16:
        return sorted(edt[1:])
    return sorted(((bit + 8) << 4) | i for i in range(16) for bit in range(8) if edt[1 + i] >> bit & 1)


class Controller:
    """A blocking UDP controller bound to (host, 3610), as controllers are."""

    def __init__(self, host, port=PORT, group_if=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind((host, port))
        if group_if:
            self.s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(group_if))
            self.s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                              socket.inet_aton(GROUP) + socket.inet_aton(group_if))
        self.tid = 0x100
        self.inbox = []  # (frame bytes, addr) received while waiting for something else

    def close(self):
        self.s.close()

    def send(self, data, host, port=PORT):
        self.s.sendto(data, (host, port))

    def recv(self, timeout):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None, None
            r, _, _ = select.select([self.s], [], [], left)
            if r:
                return self.s.recvfrom(2048)

    def next_tid(self):
        self.tid = (self.tid + 1) & 0xFFFF
        return self.tid

    def ask(self, host, deoj, esv, props, gets=None, timeout=3.0):
        """Send a request and wait for the frame answering its TID (None on timeout)."""
        tid = self.next_tid()
        self.send(build(tid, CONTROLLER, deoj, esv, props, gets), host)
        end = time.monotonic() + timeout
        while True:
            data, addr = self.recv(max(0.0, end - time.monotonic()))
            if data is None:
                return None
            f = parse(data)
            if f is not None and f.tid == tid and f.esv not in (0x60, 0x61, 0x62, 0x63, 0x6E, 0x74):
                return f
            self.inbox.append((data, addr))
