# Links for the Modbus master: RTU on a machine.UART (the ESP32, optional RS-485 direction
# pin; modbus/uart.py), RTU on a tty (the host: a pty pair in tests, or a USB RS-485 adapter;
# modbus/tty.py), RTU framing over TCP and Modbus TCP (modbus/net.py). This module holds what
# they share; each link is a module of its own, so that only the one in use is resident.
#
# They are non-blocking and synchronous, and the master polls them from its task between
# asyncio.sleep_ms() calls. That is deliberate: awaiting an asyncio stream costs ~190 bytes per
# wait on the unix port (a coroutine plus an I/O-queue entry and a poll registration), while
# sleep_ms() is a preallocated singleton, so a poll cycle allocates nothing; and the master can
# time the RTU line silences itself.
#
# Interface the master uses:
#   rtu      True: address + PDU + CRC frames; False: MBAP frames
#   gap_us   silence the line needs before a request (t3.5 on serial lines, 0 on TCP)
#   char_us  time on the wire per character (0 when there is no baud rate)
#   poll_ms  receive poll interval
#   ready()  True once the link can carry a request (TCP: advances a non-blocking connect)
#   write(buf, off, n) -> bytes taken (0 when the link cannot take any now)
#   readinto(buf, n) -> bytes read into buf[0:], 0 when none are waiting; OSError: link lost
#   reset()  drop the link after an error (TCP reconnects on the next ready())
#   close()
_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

_ANCHOR = ...  # the constant table is not empty (compat.py, "A module's constant table")


class Link:
    rtu = True
    gap_us = 0
    char_us = 0
    poll_ms = 1

    def __init__(self):
        self._buf = None
        self._mv = None
        self._off = -1
        self._n = -1
        self._view = None

    def _slice(self, buf, off, n):
        # machine.UART.write takes one buffer argument (no offset or length), and a fresh
        # memoryview slice allocates; polls send the same frame shape each time, so the last
        # slice is kept.
        if buf is not self._buf:
            self._buf = buf
            self._mv = memoryview(buf)
            self._n = -1
        if off != self._off or n != self._n:
            self._view = self._mv[off : off + n]
            self._off = off
            self._n = n
        return self._view

    def _serial(self, baudrate):
        # a serial line: t3.5 of silence before each request, receive polls every two characters
        # (modbus.rtu imported here: a TCP link does not need it)
        from modbus.rtu import char_us, t35_us

        self.char_us = char_us(baudrate)
        self.gap_us = t35_us(baudrate)
        self.poll_ms = max(1, 2 * self.char_us // 1000)

    def ready(self):
        return True

    def reset(self):
        pass

    def close(self):
        pass
