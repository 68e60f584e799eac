# The SHIP data channel's endpoint until the SPINE device exists: it opens the conversation as
# every SPINE node does (a detailed-discovery read) and accounts each received datagram by
# length and CRC-32, which is what the end-to-end tests check reassembly with.
import binascii

import log

_TAG = "spine"


class SpineProbe:
    def __init__(self, device_address):
        self.addr = device_address
        self.count = 0
        self.dropped = 0
        self._n = 0
        self._crc = 0
        self._counter = 0

    def spine_begin(self):
        self._n = 0
        self._crc = 0

    def spine_data(self, buf, off, n):
        self._n += n
        self._crc = binascii.crc32(memoryview(buf)[off : off + n], self._crc)

    def spine_end(self):
        self.count += 1
        log.info(_TAG, "datagram %d bytes crc32 %08x", self._n, self._crc & 0xFFFFFFFF)

    def spine_abort(self, why):
        self.dropped += 1
        log.warn(_TAG, "data message dropped: %s", why)

    async def ready(self, peer):
        self._counter += 1
        await peer.send_datagram(
            b'{"datagram":[{"header":[{"specificationVersion":"1.3.0"},{"addressSource":[{"device":"%s"},'
            b'{"entity":[0]},{"feature":0}]},{"addressDestination":[{"entity":[0]},{"feature":0}]},'
            b'{"msgCounter":%d},{"cmdClassifier":"read"}]},'
            b'{"payload":[{"cmd":[[{"nodeManagementDetailedDiscoveryData":[]}]]}]}]}' % (self.addr.encode(), self._counter)
        )

    async def poll(self, peer):
        pass

    def closed(self, peer):
        pass
