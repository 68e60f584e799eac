# Persistent failsafe values of LPC/LPP (LPC-TS-044): one small JSON object on the flash file
# system, written to a temp file and renamed over the old one, so that a power loss mid-write
# leaves the previous values intact (rename is atomic on LittleFS and POSIX; as ship/trust.py).
# save() merges, so that LPC and LPP can share one file.
import json
import os


class JsonStore:
    def __init__(self, path):
        self.path = path

    def load(self):
        """The stored object, or None when missing or unreadable (the caller then uses its
        pre-configured values, LPC-TS-019)."""
        try:
            with open(self.path) as f:
                d = json.load(f)
        except (OSError, ValueError):
            return None
        return d if isinstance(d, dict) else None

    def save(self, values):
        d = self.load() or {}
        d.update(values)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(d, f)
        os.rename(tmp, self.path)
