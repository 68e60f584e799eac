"""Coroutines over the Modbus master's stepper (lib/modbus/master.py) for tests, benchmarks and
host tools: `await c.read_holding(unit, addr, n)` and the like. The gateway itself drives the
stepper (start/poll) from its bridge and needs none of this, so it is not on the device.
Plain MicroPython: the shared case files and the e2e client use it under the unix port."""

import asyncio
from array import array

from modbus.master import Master


class Client(Master):
    async def _run(self, unit, fc, addr, count, data, out):
        # one coroutine object per call, plus a tuple when no `out` is given
        values = out is None and fc <= 4
        if values:
            out = bytearray(count) if fc <= 2 else array("H", bytes(2 * count))
        pm = self.poll_ms
        while self.busy():  # another task's transaction
            await asyncio.sleep_ms(pm)
        self.start(unit, fc, addr, count, data, out)
        try:
            while not self.poll():
                await asyncio.sleep_ms(pm)
        except BaseException:  # CancelledError included: free the master for the next caller
            self.abort()
            raise
        if values:
            return tuple(out)
        return out

    # Reads return `out` (filled from index 0), or a tuple when out is None.
    def read_holding(self, unit, addr, count, out=None):
        return self._run(unit, 3, addr, count, None, out)

    def read_input(self, unit, addr, count, out=None):
        return self._run(unit, 4, addr, count, None, out)

    def read_coils(self, unit, addr, count, out=None):
        return self._run(unit, 1, addr, count, None, out)

    def read_discrete(self, unit, addr, count, out=None):
        return self._run(unit, 2, addr, count, None, out)

    def write_single(self, unit, addr, value):
        return self._run(unit, 6, addr, 1, value, None)

    def write_multiple(self, unit, addr, values, count=0):
        return self._run(unit, 16, addr, count or len(values), values, None)

    def write_coil(self, unit, addr, on):
        return self._run(unit, 5, addr, 1, on, None)

    def write_coils(self, unit, addr, bits, count=0):
        return self._run(unit, 15, addr, count or len(bits), bits, None)
