# Runs the gateway on the host under the MicroPython unix port (make run, end-to-end tests):
#   MICROPYPATH=lib:native:.frozen micropython tools/host_run.py BOARD_CONFIG DATA_DIR
# GW_HEAP_PROBE=1 prints live-heap figures for the benchmarks ("HEAP base|max N", and
# "HEAP closed N open K" once a connection has ended, K connections still open);
# GW_HEAP_PROBE=live also the live heap after every connection step ("HEAP live N").
import gc
import os
import sys

from gateway import app


class HeapProbe:
    # live heap after a full collection, at every step of every connection
    def __init__(self):
        self.base = 0
        self.high = 0
        self.live = os.getenv("GW_HEAP_PROBE") == "live"
        self.open = 0  # accepted connections not yet closed

    def __call__(self, event):
        if event == "open":
            self.open += 1
            return
        if event == "closed":
            self.open -= 1
        gc.collect()
        a = gc.mem_alloc()
        if event in ("imports", "base"):
            self.base = self.high = a
            print("HEAP", event, a)
        elif a > self.high:
            self.high = a
        if self.live and event == "step":
            print("HEAP live", a)
        if event == "closed":
            print("HEAP max", self.high)
            import asyncio

            asyncio.create_task(self._settled())

    async def _settled(self):
        # the live heap once the connection's task has ended: measured from a task of its
        # own, so that nothing of the ended connection is still held by the caller's frames
        import asyncio

        await asyncio.sleep_ms(20)
        gc.collect()
        # "open K": connections still open then; a figure with K > 0 includes their memory
        print("HEAP closed %d open %d" % (gc.mem_alloc(), self.open))


if len(sys.argv) != 3:
    print("usage: micropython tools/host_run.py BOARD_CONFIG DATA_DIR")
    sys.exit(2)
app.run(sys.argv[1], sys.argv[2], probe=HeapProbe() if os.getenv("GW_HEAP_PROBE") else None)
