# Which SHIP peers (by SKI) may talk to us. Persisted as JSON on the flash file system and
# always written to a temp file first, then renamed over the old one: a crash or power loss
# mid-write leaves the previous store intact (rename is atomic on LittleFS and POSIX).
# Every change is one edit applied to the file as it is now (read again under a lock
# directory, <store>.lock, which `tools/gw trust` takes too), never a rewrite of what this
# process remembers: an edit made meanwhile by another writer is kept.
import os

import jsonfile
from check import normalize_ski
from compat import const, ticks_diff, ticks_add

_MAX_PENDING = const(8)
_MAX_PEERS = const(32)
_LOCK_TRIES = const(200)  # x 5 ms: a lock older than that is a writer that died; taken over
_ADD = const(0)
_DENY = const(1)
_REMOVE = const(2)
_ID = const(3)

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
        self._order = []  # pending SKIs, oldest first
        self.dropped = 0  # pending requests that yielded to newer ones
        self.error = None
        self._stamp = None
        self._window_until = None
        self.window_before = None  # who was trusted when the pairing window opened
        self.load()

    # ---- persistence ----------------------------------------------------------------------

    def _file_stamp(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st[6], st[8])  # size, mtime

    def load(self):
        stamp = self._file_stamp()
        self._stamp = stamp
        self.error = None
        if stamp is None:
            self.trusted = {}
            self.denied = set()
            return
        trusted = {}
        denied = set()
        try:
            doc = jsonfile.load(self.path)
            t = doc.get("trusted", {})
            for ski in t:
                e = t[ski]
                trusted[normalize_ski(ski)] = {"id": e.get("id"), "by": e.get("by", "user")}
            for ski in doc.get("denied", []):
                denied.add(normalize_ski(ski))
        except (ValueError, AttributeError, TypeError, OSError) as e:
            # keep serving with what is known; the file is left alone for inspection
            self.error = "trust store %s unreadable: %s" % (self.path, e)
            return
        self.trusted = trusted
        self.denied = denied

    def reload_if_changed(self):
        """Pick up edits made by the host tool; True when the store was reloaded."""
        if self._file_stamp() != self._stamp:
            self.load()
            return True
        return False

    def save(self):
        jsonfile.write(self.path, {"trusted": self.trusted, "denied": sorted(self.denied)})
        self._stamp = self._file_stamp()

    def _edit(self, op, ski, a, b):
        # One change (op: _ADD, _DENY, _REMOVE, _ID), applied to the store as it is on flash
        # now, under the lock: a directory (mkdir is atomic on POSIX, LittleFS and FAT); one
        # older than _LOCK_TRIES x 5 ms is a writer that died, and is taken over (on the device
        # there is no other process). False when there was nothing to change.
        import time  # for the retries below; not a global of this resident module

        lock = self.path + ".lock"
        for _ in range(_LOCK_TRIES):
            try:
                os.mkdir(lock)
                break
            except OSError:
                time.sleep(0.005)
        try:
            self.load()
            if self.error:
                raise OSError(self.error)  # never overwrite a store we could not read
            t = self.trusted
            if op == _ADD:
                if ski not in t and len(t) >= _MAX_PEERS:
                    raise ValueError("trust store full")
                t[ski] = {"id": a, "by": b}
                self.denied.discard(ski)
            elif op == _DENY:
                t.pop(ski, None)
                self.denied.add(ski)
            elif op == _REMOVE:
                if t.pop(ski, None) is None and ski not in self.denied:
                    return False
                self.denied.discard(ski)
            else:
                e = t.get(ski)
                if e is None or e["id"] is not None:
                    return False
                e["id"] = a
            self.save()
            return True
        finally:
            try:
                os.rmdir(lock)
            except OSError:
                pass

    # ---- decisions ------------------------------------------------------------------------

    def open_window(self, now, seconds):
        """A pairing window: unknown peers are accepted until it closes by itself."""
        if not self.window_open(now):
            # taken here, not when the pairing task next polls: a peer can be trusted through
            # the window before that (a SHIP handshake takes about 20 ms on the host)
            self.window_before = tuple(self.trusted)
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
            try:
                self.add(ski, by="window")
            except OSError:  # the store is unreadable: trusted for this run, left alone on flash
                self.trusted[ski] = {"id": None, "by": "window"}
            return TRUSTED
        if ski not in self.pending:
            # bounded: the oldest request yields to the newest, so strangers that keep
            # reconnecting cannot keep a genuine new peer off the list (its connection is closed)
            if len(self._order) >= _MAX_PENDING:
                old = self._order.pop(0)
                self.pending.pop(old, None)
                self.dropped += 1
            self.pending[ski] = addr
            self._order.append(ski)
            if self.pending_path:  # the host's mirror for tools/gw trust list
                jsonfile.write(self.pending_path, self.pending)
        return PENDING

    def is_trusted(self, ski):
        return ski in self.trusted

    def add(self, ski, ship_id=None, by="user"):
        ski = normalize_ski(ski)
        self._edit(_ADD, ski, ship_id, by)
        self.forget_pending(ski)

    def deny(self, ski):
        ski = normalize_ski(ski)
        self._edit(_DENY, ski, None, None)
        self.forget_pending(ski)

    def remove(self, ski):
        return self._edit(_REMOVE, normalize_ski(ski), None, None)

    def forget_pending(self, ski):
        if self.pending.pop(ski, None) is not None:
            if ski in self._order:
                self._order.remove(ski)
            if self.pending_path:
                jsonfile.write(self.pending_path, self.pending)

    def check_id(self, ski, ship_id):
        """Record the peer's SHIP ID on first sight; False when a known SKI shows another ID."""
        e = self.trusted.get(ski)
        if e is None:
            return True
        if e["id"] is None:
            try:
                self._edit(_ID, ski, ship_id, None)
            except OSError:
                e["id"] = ship_id  # remembered in RAM; the file is left alone
            e = self.trusted.get(ski, e)
        return e["id"] in (None, ship_id)

