# A JSON document on flash (trust store, crash state, LPC failsafe values, ECHONET location),
# written so that a reset mid-write leaves the previous document: the text goes to a temp file
# of its own (a unique name, so that two writers never share one), is flushed to the medium,
# and is then renamed over the old one. LittleFS renames over an existing file atomically;
# MicroPython's FAT driver removes the target and renames when FatFs refuses (extmod/vfs_fat.c).
import json
import os
import sys

try:
    from time import ticks_ms as _ticks
except ImportError:  # CPython
    from time import monotonic_ns as _ticks

try:
    from os import getpid as _pid
except ImportError:  # MicroPython

    def _pid():
        return 0


try:
    from random import getrandbits as _bits
except ImportError:

    def _bits(n):
        return 0


def _tmp_name(path):
    return "%s.%d-%d-%d.tmp" % (path, _pid(), _ticks() & 0xFFFFFF, _bits(16))


def write(path, doc):
    tmp = _tmp_name(path)
    try:
        with open(tmp, "w") as f:
            json.dump(doc, f)
            f.flush()
            fsync = getattr(os, "fsync", None)  # CPython; MicroPython's close() syncs the file
            if fsync is not None:
                fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    # MicroPython ports that have os.sync (the ESP32's): the rename reaches the flash now
    sync = getattr(os, "sync", None) if sys.implementation.name == "micropython" else None
    if sync is not None:
        try:
            sync()
        except OSError:
            pass
