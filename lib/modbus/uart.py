# RTU on a machine.UART (the ESP32): modbus/transport.py says what a link does.
from modbus.transport import Link

_ANCHOR = ...  # the constant table is not empty (compat.py, "A module's constant table")


class Uart(Link):
    # `uart` is built from the board config, e.g.
    #   UART(2, baudrate=9600, tx=17, rx=16, rxbuf=512, timeout=0, timeout_char=0)
    # (rxbuf above the 256 default so that a 255-byte reply fits; timeout=0 so that reads never
    # block). `de` is the transceiver's DE (and /RE) pin when it has no automatic direction
    # control: high while sending, low again once the last stop bit is out. flush() blocks for
    # that (the frame's time on the wire, ~9 ms for a read request at 9600 baud): releasing
    # the bus late would clip the start of the reply, and sleep_ms() is too coarse for it.
    # Not testable on the host (no machine.UART in the unix port).
    def __init__(self, uart, baudrate, de=None):
        super().__init__()
        self._u = uart
        self._de = de
        if de is not None:
            de.value(0)
        self._serial(baudrate)

    def write(self, buf, off, n):
        u = self._u
        de = self._de
        v = self._slice(buf, off, n)
        if de is None:
            return u.write(v) or 0
        de.value(1)
        k = u.write(v) or 0
        u.flush()
        de.value(0)
        return k

    def readinto(self, buf, n):
        u = self._u
        if not u.any():
            return 0
        return u.readinto(buf, n) or 0
