# Stand-in for the esp32 module (host tests only): the IDF heap regions diag reads.
HEAP_DATA = 4
HEAP_EXEC = 1

# (total, free, largest free block, minimum free ever) per region
regions = [(120000, 42000, 30000, 21000), (15000, 6000, 5000, 2500)]


def idf_heap_info(caps):
    return list(regions)
