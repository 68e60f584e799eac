# Debug tap between SHIP and SPINE: accounts each datagram by length and CRC-32 (log level
# debug), which is how the SHIP end-to-end tests check reassembly of fragmented messages.
import binascii

import log

_TAG = "spine"


class DataTap:
    def __init__(self, inner):
        self.inner = inner
        self._n = 0
        self._crc = 0

    def spine_begin(self):
        self._n = 0
        self._crc = 0
        self.inner.spine_begin()

    def spine_data(self, buf, off, n):
        self._n += n
        self._crc = binascii.crc32(memoryview(buf)[off : off + n], self._crc)
        self.inner.spine_data(buf, off, n)

    def spine_end(self):
        log.debug(_TAG, "datagram %d bytes crc32 %08x", self._n, self._crc & 0xFFFFFFFF)
        self.inner.spine_end()

    def spine_abort(self, why):
        log.warn(_TAG, "data message dropped: %s", why)
        self.inner.spine_abort(why)

    def parse_wait(self):
        return self.inner.parse_wait()

    async def ready(self, peer):
        await self.inner.ready(peer)

    async def poll(self, peer):
        await self.inner.poll(peer)

    def closed(self, peer):
        self.inner.closed(peer)
