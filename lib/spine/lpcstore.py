# Persistent failsafe values of LPC/LPP (LPC-TS-044): one small JSON object on the flash file
# system (jsonfile: a power loss mid-write leaves the previous values). save() merges, so that
# LPC and LPP can share one file.
import jsonfile


class JsonStore:
    def __init__(self, path):
        self.path = path

    def load(self):
        """The stored object, or None when missing or unreadable (the caller then uses its
        pre-configured values, LPC-TS-019)."""
        d = jsonfile.read(self.path, None)
        return d if isinstance(d, dict) else None

    def save(self, values):
        d = self.load() or {}
        d.update(values)
        jsonfile.write(self.path, d)
