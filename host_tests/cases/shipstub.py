# What the SHIP core's case files and the SHIP node's MicroPython scripts (mpy/ship_replay.py,
# mpy/ship_ended_tasks.py) share: a SPINE side that takes nothing, and one SHIP message
# delivered as a whole WebSocket message.


class NullSpine:
    def spine_begin(self):
        pass

    def spine_data(self, buf, off, n):
        pass

    def spine_end(self):
        pass

    def spine_abort(self, why):
        pass

    # what the SHIP node asks of a connection's SPINE side besides the data (spine_factory)
    def parse_wait(self):
        return False

    async def ready(self, peer):
        pass

    async def poll(self, peer):
        pass

    def closed(self, peer):
        pass


def deliver(conn, msg):
    buf = bytearray(msg)
    conn.ws_begin()
    conn.ws_data(buf, 0, len(buf))
    conn.ws_end()
