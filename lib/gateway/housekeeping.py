# Memory housekeeping: a GC threshold so collections come early and often (less fragmentation
# than one late collection over a full heap), a periodic collection, and watermarks for diag:
# the least free GC heap and, on the ESP32, the least free IDF heap (TLS and Wi-Fi live there).
import asyncio
import gc

from compat import const, ticks_ms

_PERIOD_MS = const(10000)
_MIN_THRESHOLD = const(4096)
_MAX_THRESHOLD = const(65536)


def idf_heap():
    """(free, largest free block, least free ever) of the IDF data heap, or None off the ESP32."""
    try:
        import esp32
    except ImportError:
        return None
    free = big = low = 0
    for region in esp32.idf_heap_info(esp32.HEAP_DATA):
        # (total, free, largest free block, minimum free seen)
        free += region[1]
        if region[2] > big:
            big = region[2]
        low += region[3]
    return free, big, low


class Housekeeping:
    def __init__(self, period_ms=_PERIOD_MS):
        self.period_ms = period_ms
        self.threshold = 0
        self.collections = 0
        self.low_free = None  # least free GC heap seen after a collection
        self.high_alloc = 0  # most live GC heap seen after a collection
        self.idf = None  # last idf_heap()

    def setup(self):
        gc.collect()
        t = gc.mem_free() // 4
        t = _MIN_THRESHOLD if t < _MIN_THRESHOLD else (_MAX_THRESHOLD if t > _MAX_THRESHOLD else t)
        gc.threshold(t)
        self.threshold = t

    def sample(self):
        gc.collect()
        self.collections += 1
        a = gc.mem_alloc()
        f = gc.mem_free()
        if self.low_free is None or f < self.low_free:
            self.low_free = f
        if a > self.high_alloc:
            self.high_alloc = a
        self.idf = idf_heap()
        return a, f

    async def run(self, live=None):
        self.setup()
        while True:
            self.sample()
            if live is not None:
                live.beat("housekeeping", ticks_ms())
            await asyncio.sleep_ms(self.period_ms)
