# Which SHIP peers (by SKI) may talk to us. Persisted as JSON on the flash file system and
# always written to a temp file first, then renamed over the old one: a crash or power loss
# mid-write leaves the previous store intact (rename is atomic on LittleFS and POSIX).
import os

import jsonfile
from check import normalize_ski
from compat import const, ticks_diff, ticks_add

_MAX_PENDING = const(8)
_MAX_PEERS = const(32)

TRUSTED = const(0)
PENDING = const(1)
DENIED = const(2)


class TrustStore:
    """trusted: ski -> {"id": SHIP id or None, "by": "user" | "window"}; denied: set of SKIs.

    Pending requests (unknown peers waiting for the user) live in RAM only, bounded; on the
    host they are mirrored to pending_path so `tools/gw trust list` can show them.
    """

    def __init__(self, path, pending_path=None):
        self.path = path
        self.pending_path = pending_path
        self.trusted = {}
        self.denied = set()
        self.pending = {}  # ski -> address text
        self.error = None
        self._stamp = None
        self._window_until = None
        self.load()

    # ---- persistence ----------------------------------------------------------------------

    def _file_stamp(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st[6], st[8])  # size, mtime

    def load(self):
        self._stamp = self._file_stamp()
        self.trusted = {}
        self.denied = set()
        self.error = None
        if self._stamp is None:
            return
        try:
            doc = jsonfile.load(self.path)
            trusted = doc.get("trusted", {})
            for ski in trusted:
                e = trusted[ski]
                self.trusted[normalize_ski(ski)] = {"id": e.get("id"), "by": e.get("by", "user")}
            for ski in doc.get("denied", []):
                self.denied.add(normalize_ski(ski))
        except (ValueError, AttributeError, TypeError, OSError) as e:
            # keep serving with what is known; the file is left alone for inspection
            self.error = "trust store %s unreadable: %s" % (self.path, e)

    def reload_if_changed(self):
        """Pick up edits made by the host tool; True when the store was reloaded."""
        if self._file_stamp() != self._stamp:
            self.load()
            return True
        return False

    def save(self):
        jsonfile.write(self.path, {"trusted": self.trusted, "denied": sorted(self.denied)})
        self._stamp = self._file_stamp()

    def _save_pending(self):
        if self.pending_path:
            jsonfile.write(self.pending_path, self.pending)

    # ---- decisions ------------------------------------------------------------------------

    def open_window(self, now, seconds):
        """A pairing window: unknown peers are accepted until it closes by itself."""
        self._window_until = ticks_add(now, seconds * 1000)

    def window_open(self, now):
        if self._window_until is None:
            return False
        if ticks_diff(self._window_until, now) <= 0:
            self._window_until = None
            return False
        return True

    def decide(self, ski, now, addr=""):
        if ski in self.denied:
            return DENIED
        if ski in self.trusted:
            return TRUSTED
        if self.window_open(now):
            self.add(ski, by="window")
            return TRUSTED
        if ski not in self.pending and len(self.pending) < _MAX_PENDING:
            self.pending[ski] = addr
            self._save_pending()
        return PENDING

    def is_trusted(self, ski):
        return ski in self.trusted

    def add(self, ski, ship_id=None, by="user"):
        ski = normalize_ski(ski)
        if ski not in self.trusted and len(self.trusted) >= _MAX_PEERS:
            raise ValueError("trust store full")
        self.trusted[ski] = {"id": ship_id, "by": by}
        self.denied.discard(ski)
        if self.pending.pop(ski, None) is not None:
            self._save_pending()
        self.save()

    def deny(self, ski):
        ski = normalize_ski(ski)
        self.trusted.pop(ski, None)
        self.denied.add(ski)
        if self.pending.pop(ski, None) is not None:
            self._save_pending()
        self.save()

    def remove(self, ski):
        ski = normalize_ski(ski)
        had = self.trusted.pop(ski, None) is not None
        if ski in self.denied:
            self.denied.discard(ski)
            had = True
        if had:
            self.save()
        return had

    def forget_pending(self, ski):
        if self.pending.pop(ski, None) is not None:
            self._save_pending()

    def check_id(self, ski, ship_id):
        """Record the peer's SHIP ID on first sight; False when a known SKI shows another ID."""
        e = self.trusted.get(ski)
        if e is None:
            return True
        if e["id"] is None:
            e["id"] = ship_id
            self.save()
            return True
        return e["id"] == ship_id
