# A heap with no free block of a given size, for the cases and snippets that show a path
# needs none (MicroPython only: CPython has no fixed heap).
import gc


def fill_heap(chunk):
    # Fill the heap with chunk-byte blocks, then free every other one and plug every hole that
    # still takes a chunk: afterwards no free block holds `chunk` bytes. Returns the ballast.
    keep = [None] * 2048
    plugs = [None] * 512  # both lists before the heap is full
    n = 0
    try:
        while n < len(keep):
            keep[n] = bytearray(chunk - 32)
            n += 1
    except MemoryError:
        pass
    for i in range(0, n, 2):
        keep[i] = None
    gc.collect()
    j = 0
    try:
        while j < len(plugs):
            plugs[j] = bytearray(chunk)
            j += 1
    except MemoryError:
        pass
    return keep, plugs, j
