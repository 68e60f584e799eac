# asyncio adapter: one UDP socket on 0.0.0.0:5353 in the mDNS group, non-blocking and polled
# (MicroPython's asyncio has no datagram endpoints), shared by the responder and the browser.
# On the ESP32 this needs a firmware whose own mDNS responder is off (README, "mDNS"): the
# stock one holds port 5353.
import asyncio
import random
import socket
import time

import log
from compat import const, recv_datagram

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

_GROUP = const("224.0.0.251")
_PORT = const(5353)
_TAG = const("mdns")
_RX = const(1500)  # one Ethernet frame; a larger query is cut and parses as malformed
_POLL_MS = const(100)


class Mdns:
    """Runs a Responder and/or a Browser on one socket. on_change(browser) is called when
    the browser learned or lost an instance."""

    def __init__(self, responder=None, browser=None, ifip="0.0.0.0", on_change=None, poll_ms=_POLL_MS):
        self.responder = responder
        self.browser = browser
        self.ifip = ifip
        self.on_change = on_change
        self.poll_ms = poll_ms
        self.sock = None
        self.running = False
        self._pending = 0  # length of a delayed answer in the responder's buffer
        self.stats = [0, 0, 0]  # packets received, sent, and lost (a send failed, no block for one)
        self._group = socket.getaddrinfo(_GROUP, _PORT)[0][-1]

    def open(self):
        if self.sock is None:
            from mdns.responder import ip4

            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(socket.getaddrinfo("0.0.0.0", _PORT)[0][-1])
            # IPPROTO_IP is 0 everywhere; the unix port and lwIP only export IP_ADD_MEMBERSHIP
            s.setsockopt(getattr(socket, "IPPROTO_IP", 0), socket.IP_ADD_MEMBERSHIP,
                         ip4(_GROUP) + ip4(self.ifip or "0.0.0.0"))
            s.setblocking(False)
            self.sock = s

    def _send(self, buf, n, dest):
        try:
            self.sock.sendto(memoryview(buf)[:n], dest)
            self.stats[1] += 1
        except OSError as e:  # network down: the schedule goes on, the next packet may pass
            self.stats[2] += 1
            log.debug(_TAG, "send failed: %r", e)

    async def run(self):
        self.open()
        self.running = True
        now = time.ticks_ms()
        rsp = self.responder
        br = self.browser
        if rsp is not None and rsp.state == 0:
            rsp.start(now)
        if br is not None and not br.running:
            br.start(now)
        s = self.sock
        # the parts that run: both have poll(), due_in() and w.buf (a tuple: one block, a list two)
        parts = tuple(x for x in (rsp, br) if x is not None)
        while self.running:
            while True:
                got = recv_datagram(s, _RX)
                if got is None:
                    break
                data, addr = got
                if data is None:  # no block for it: dropped (compat.recv_datagram)
                    self.stats[2] += 1
                    continue
                self.stats[0] += 1
                delay = self._received(data, addr)
                if delay:
                    await asyncio.sleep_ms(delay)
                    self._flush()
            now = time.ticks_ms()
            wait = self.poll_ms
            for x in parts:
                n = x.poll(now)
                if n:
                    self._send(x.w.buf, n, self._group)
                d = x.due_in(now)
                if 0 <= d < wait:
                    wait = d
            await asyncio.sleep_ms(wait)

    def _received(self, data, addr):
        # plain function (no coroutine per packet); returns how long a multicast answer of a
        # shared record (PTR) must wait, RFC 6762 6: 20-120 ms so that the answers of
        # several responders do not collide. The run loop sleeps, then calls _flush().
        now = time.ticks_ms()
        n = len(data)
        delay = 0
        rsp = self.responder
        if rsp is not None:
            # lwIP and CPython give (ip, port); the unix port a raw sockaddr_in (port at bytes 2-3)
            port = addr[1] if isinstance(addr, tuple) else (addr[2] << 8) | addr[3]
            k = rsp.handle(data, n, port, now)
            if k:
                if rsp.unicast:
                    self._send(rsp.w.buf, k, addr)
                elif rsp.shared:
                    self._pending = k
                    delay = 20 + random.getrandbits(7) % 100
                else:
                    self._send(rsp.w.buf, k, self._group)
        br = self.browser
        if br is not None and br.feed(data, n, now) and self.on_change is not None:
            self.on_change(br)
        return delay

    def _flush(self):
        # the responder's buffer still holds the answer: nothing is read while it waits
        if self._pending:
            self._send(self.responder.w.buf, self._pending, self._group)
            self._pending = 0

    def changed(self):
        """Published values changed (responder.configure): announce them again."""
        if self.responder is not None:
            self.responder.changed(time.ticks_ms())

    def goodbye(self):
        """Send the goodbye now (synchronously, also from outside the loop) and stop."""
        self.running = False
        self._pending = 0
        if self.responder is not None and self.sock is not None:
            n = self.responder.goodbye()
            if n:
                self._send(self.responder.w.buf, n, self._group)

    def close(self):
        self.running = False
        if self.sock is not None:
            self.sock.close()
            self.sock = None

