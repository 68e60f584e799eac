# A JSON document on flash (trust store, crash state, LPC failsafe values, ECHONET location,
# the configs and register maps), read in one place and written so that a reset mid-write
# leaves the previous document: the text goes to a temp file of its own (ticks + random
# suffix, so that two writers never share one), is flushed to the medium, and is then renamed
# over the old one. LittleFS renames over an existing file atomically; MicroPython's FAT driver
# removes the target and renames when FatFs refuses (extmod/vfs_fat.c).
import json
import os
from random import getrandbits

from compat import MICROPYTHON, ticks_ms


def load(path):
    """The document in path; OSError when it cannot be read, ValueError when it is not JSON."""
    with open(path) as f:
        return json.load(f)


def read(path, default):
    """The document in path, or default when it cannot be read or is not JSON."""
    try:
        return load(path)
    except (OSError, ValueError):
        return default


def write(path, doc):
    tmp = "%s.%d-%d.tmp" % (path, ticks_ms(), getrandbits(24))
    try:
        with open(tmp, "w") as f:
            json.dump(doc, f)
            f.flush()
            if not MICROPYTHON:
                os.fsync(f.fileno())  # MicroPython's close() syncs the file itself
        os.rename(tmp, path)
    except Exception:
        # the names are unique, so a failed write would leave its temp file on flash for good
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    if MICROPYTHON and hasattr(os, "sync"):
        os.sync()  # the ESP32's: the rename reaches the flash now
