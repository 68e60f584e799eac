# What the SHIP core's case files share (pin, ship_limits, pool): a SPINE side that takes
# nothing, and one SHIP message delivered as a whole WebSocket message.


class NullSpine:
    def spine_begin(self):
        pass

    def spine_data(self, buf, off, n):
        pass

    def spine_end(self):
        pass

    def spine_abort(self, why):
        pass


def deliver(conn, msg):
    buf = bytearray(msg)
    conn.ws_begin()
    conn.ws_data(buf, 0, len(buf))
    conn.ws_end()
