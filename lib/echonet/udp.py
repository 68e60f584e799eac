# asyncio adapter of the ECHONET Lite engine: UDP 3610 sockets, the 224.0.23.0 group,
# answers unicast to the sender, announcements by multicast. MicroPython only (it waits on
# sockets through asyncio's own I/O queue, as asyncio's streams do: MicroPython has no
# datagram endpoint).
#
# Sockets: host "0.0.0.0" (the ESP32) is one socket on 0.0.0.0:3610 that joins the group
# (IP_ADD_MEMBERSHIP is the only multicast option lwIP's setsockopt has). A unicast host
# (127.0.0.2 on the host rig) gets a second socket bound to 224.0.23.0:3610, joined on that
# address: a socket bound to a unicast address receives no multicast, and a wildcard socket
# would answer from 127.0.0.1, the controller's own address. Answers always leave from the
# first socket. A group that cannot be joined (no multicast route outside a network
# namespace) leaves unicast working.
#
# Allocation: the engine allocates nothing per frame; receiving does (the datagram, its
# address, a tuple: MicroPython has no recvfrom_into), never more than compat.PEEK bytes at
# once for a frame shorter than that (compat.recv_datagram). Sends reuse one memoryview per
# answer length.
import asyncio
import socket
import time
from asyncio import core

import log
from compat import const, recv_datagram
from echonet.engine import RX_SIZE

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

_GROUP = const("224.0.23.0")
_TAG = const("echonet")
_BURST = const(32)  # datagrams served per wake-up before the socket is polled again


def _addr(host, port):
    return socket.getaddrinfo(host, port)[0][-1]


class EchonetUdp:
    _warned = False  # set on the instance at the first failed send only (12 entries in its table, not 13 in 17 slots)

    def __init__(self, engine, host="0.0.0.0", port=3610, multicast=True):
        self.e = engine
        self.host = host
        self.port = port
        self.multicast = multicast
        self.joined = False
        self.socks = []
        self.last_peer = None
        self.n_send_fail = 0
        self._mv = memoryview(engine.tx)
        self._vn = -1
        self._v = None
        self._group = None

    def open(self):
        s = self._socket(self.host)
        self.socks.append(s)
        self._group = _addr(_GROUP, self.port)
        if self.multicast:
            try:
                if self.host != "0.0.0.0":
                    self.socks.append(self._socket(_GROUP))
                self._join(self.socks[-1], self.host)
                self.joined = True
            except OSError as x:
                log.warn(_TAG, "multicast %s not joined (%s): unicast only", _GROUP, x)
        return self

    def _socket(self, host):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(_addr(host, self.port))
        s.setblocking(False)
        return s

    def _join(self, s, ifaddr):
        # ip_mreq: the group's four bytes, then the interface's
        mreq = bytes(int(x) for x in (_GROUP + "." + ifaddr).split("."))
        s.setsockopt(getattr(socket, "IPPROTO_IP", 0), socket.IP_ADD_MEMBERSHIP, mreq)

    def rejoin(self):
        """After a network reconnect: join the group again and announce the instance list."""
        if self.multicast and self.socks:
            try:
                self._join(self.socks[-1], self.host)
                self.joined = True
            except OSError:
                pass  # still a member (EADDRINUSE) or no network yet
        self._multicast(self.e.startup())

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []

    def _view(self, n):
        if n != self._vn:
            self._vn = n
            self._v = self._mv[:n]
        return self._v

    def _send(self, n, addr):
        try:
            self.socks[0].sendto(self._view(n), addr)
        except OSError as x:
            self.n_send_fail += 1
            if not self._warned:
                self._warned = True  # once: a missing multicast route would flood the log
                log.warn(_TAG, "send failed (%s)", x)

    def _multicast(self, n):
        if n and self.multicast:
            self._send(n, self._group)

    def serve_one(self, s):
        """Receive and answer one datagram; False when the socket had none."""
        got = recv_datagram(s, RX_SIZE)
        if got is None:
            return False
        data, addr = got
        e = self.e
        if data is None:  # no block for it: dropped (compat.recv_datagram)
            e.errors += 1
            return True
        try:
            n = e.feed(data, len(data), time.ticks_ms())
        except Exception as x:  # one bad datagram must not stop the service
            e.errors += 1
            log.error(_TAG, "frame from %s: %r", addr, x)
            return True
        self.last_peer = addr
        if n:
            self._send(n, addr)
        return True

    async def _serve(self, s):
        while True:
            yield core._io_queue.queue_read(s)
            for _ in range(_BURST):
                if not self.serve_one(s):
                    break
                await asyncio.sleep_ms(0)  # SHIP and Modbus run between datagrams

    async def _announce(self):
        e = self.e
        ev = asyncio.Event()
        e.on_dirty = ev.set
        while True:
            w = e.announce_wait(time.ticks_ms())
            if w < 0:
                await ev.wait()
                ev.clear()
            elif w > 0:
                await asyncio.sleep_ms(w)  # rate limit
            else:
                self._multicast(e.announce(time.ticks_ms()))

    async def run(self):
        if not self.socks:
            self.open()
        self._multicast(self.e.startup())
        # one task: a failure in any part ends run() and reaches the supervisor
        await asyncio.gather(self._announce(), *[self._serve(s) for s in self.socks])

    def stats(self):
        e = self.e
        return {
            "rx": e.n_rx, "tx": e.n_tx, "dropped": e.n_dropped, "ignored": e.n_ignored,
            "sna": e.n_sna, "sets": e.n_set, "inf": e.n_inf, "errors": e.errors,
            "send_fail": self.n_send_fail, "multicast": self.joined,
        }
