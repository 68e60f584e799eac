"""Every module of lib/ and native/ that runs on a per-message path keeps a free slot in its
globals table (compat.py, "A full globals table"). MicroPython fills a map to its last slot
before it grows it (sizes 2, 4, 6, 8, 10, 12, 17, 23, 29, 37, 47, ...), and a lookup that misses
a full table scans all of it. Every builtin a function calls (len, isinstance, range, ...)
misses its module's globals first, so in a module with exactly that many globals each such call
scans the whole table: a len() loop ran 2.2 times slower with 23 globals than with 24 (32-bit
frozen build). Trimming module globals to a size step saves heap and lands there, so this
checks it under MicroPython, after importing each module as the gateway does."""

import os

from support import mpyrun
from support.paths import LIB, NATIVE

SIZES = (2, 4, 6, 8, 10, 12, 17, 23, 29, 37, 47, 59, 73, 97, 127, 167, 223)  # py/map.c
# Modules off the per-message paths: start-up (and let go after it), the console, file I/O of
# the configuration and trust store, pairing, the rare timers. A full table costs them a little
# time now and then; a slot would cost each of them heap for as long as the gateway runs.
COLD = (
    "jsonfile", "controller.mapload", "doccheck", "gateway.app", "gateway.config", "gateway.devconfig",
    "gateway.startup", "gateway.console", "gateway.datatap", "gateway.diag", "gateway.echonet_service",
    "gateway.housekeeping", "gateway.mdns_service", "gateway.netboot", "gateway.pairing",
    "gateway.supervisor", "mdns.setup", "ship.backoff", "ship.cert", "ship.double", "ship.qrtext", "ship.trust",
    "ws.pool", "ws.upgrade", "echonet.objects",
)

_SCRIPT = """
import sys
for m in sys.argv[1:]:
    try:
        __import__(m)
    except ImportError as e:  # a module of the device alone (machine, network)
        print("SKIP", m, e)
        continue
    print("MOD", m, len(sys.modules[m].__dict__))
"""


def _modules():
    out = []
    for root in (LIB, NATIVE):
        for d, _, files in os.walk(root):
            for f in sorted(files):
                if f.endswith(".py") and f != "__init__.py":
                    rel = os.path.relpath(os.path.join(d, f), root)[:-3]
                    out.append(rel.replace(os.sep, "."))
    return sorted(out)


def test_hot_modules_have_a_free_globals_slot(tmp_path):
    mods = _modules()
    r = mpyrun.run_code(_SCRIPT, tmp_path, args=mods, timeout=120).check()
    counts = {}
    for line in r.stdout.splitlines():
        p = line.split()
        if p[0] == "MOD":
            counts[p[1]] = int(p[2])
    assert len(counts) > 60, r.stdout  # the gateway's modules did import
    full = sorted("%s (%d)" % (m, n) for m, n in counts.items() if n in SIZES and m not in COLD)
    assert not full, (
        "globals table exactly full, so every builtin lookup in it scans the whole table: %s; give "
        "each a free slot (compat.py, 'A full globals table')" % ", ".join(full)
    )
    for m in COLD:
        assert m in counts or m in mods, "COLD names a module that is gone: %s" % m
