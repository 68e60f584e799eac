# Admission control for incoming SHIP connections, sans-IO: who gets a slot, whose slot is
# reclaimed, and when a connection that has not proven itself trusted must go.
#
# A connection is *pre-authentication* from its TCP accept until its peer is known trusted
# (TLS handshake, HTTP upgrade, CMI, hello; an unknown peer stays pre-auth while it is held
# pending). Pre-auth connections live in a fixed table of `preauth` slots plus `reserve`
# slots; trusted connections count against `sessions`. Rules:
# - a new connection takes a free normal slot, else a free reserve slot; else it takes the
#   slot of the oldest connection whose certificate showed an untrusted SKI, else of the
#   oldest one that showed none yet after `grace` ms; else it is closed without a word;
# - the certificate's SKI is seen inside the TLS handshake (claim()): a trusted one is never
#   evicted; untrusted ones may hold at most `preauth` slots: when one more shows up, the
#   oldest of them goes (the newest stranger may be the genuine new peer the user is pairing),
#   so the reserve slot(s) always stay free for a trusted peer;
# - a peer proven trusted leaves the table for a session (promote()); sessions are bounded,
#   except that a trusted SKI that already has a session may open its replacement;
# - every stage has a deadline (TLS + upgrade, CMI, hello); expire() hands back the slots past
#   theirs, as a backstop to the protocol timers.
# Slots carry a generation number: a slot handed to a newcomer invalidates the old holder's
# (slot, gen), so its late leave() changes nothing.
from compat import const, ticks_add, ticks_diff

FREE = const(0)
TLS = const(1)  # TLS handshake and HTTP upgrade
CMI = const(2)
HELLO = const(3)  # hello; an unknown peer is held pending here

UNKNOWN = const(0)  # no certificate seen yet
UNTRUSTED = const(1)
TRUSTED = const(2)


class Admission:
    # stats: the dict its counters go to (the node's, so that diag shows them with the rest)
    def __init__(self, preauth=2, sessions=2, reserve=1, tls_ms=10000, cmi_ms=10000, hello_ms=60000, grace_ms=2000,
                 stats=None):
        self.preauth = preauth
        self.reserve = reserve
        self.sessions = sessions
        self.grace = grace_ms
        self._limits = (0, tls_ms, cmi_ms, hello_ms)
        n = preauth + reserve
        self.size = n
        self._st = bytearray(n)  # stage
        self._cl = bytearray(n)  # claim
        self._gen = [0] * n
        self._since = [0] * n  # when the connection arrived
        self._dl = [0] * n  # deadline of its stage
        self.live = 0  # trusted sessions
        st = {} if stats is None else stats
        for k in ("admitted", "refused", "evicted", "expired", "sessions_refused"):
            st[k] = 0
        self.stats = st

    # ---- queries ----------------------------------------------------------------------------

    def _mine(self, slot, gen):
        return 0 <= slot < self.size and self._gen[slot] == gen and self._st[slot] != FREE

    # ---- events -----------------------------------------------------------------------------

    def arrive(self, now):
        """A new TCP connection. Returns (slot, gen, victim): slot -1 means close it now;
        victim >= 0 is a slot whose holder must be closed (the slot is the newcomer's)."""
        st = self._st
        free = -1
        for i in range(self.size):
            if st[i] == FREE:
                free = i
                break
        victim = -1
        if free < 0:
            victim = self._victim(now)
            if victim < 0:
                self.stats["refused"] += 1
                return -1, 0, -1
            self.stats["evicted"] += 1
            free = victim
        self._gen[free] = (self._gen[free] + 1) & 0x3FFFFFFF
        self._st[free] = TLS
        self._cl[free] = UNKNOWN
        self._since[free] = now
        self._dl[free] = ticks_add(now, self._limits[TLS])
        self.stats["admitted"] += 1
        return free, self._gen[free], victim

    def _victim(self, now):
        # oldest untrusted; else oldest unknown past its grace; never a trusted claim
        best = -1
        for want in (UNTRUSTED, UNKNOWN):
            for i in range(self.size):
                if self._cl[i] != want:
                    continue
                if want == UNKNOWN and ticks_diff(now, self._since[i]) < self.grace:
                    continue
                if best < 0 or ticks_diff(self._since[best], self._since[i]) > 0:
                    best = i
            if best >= 0:
                return best
        return -1

    def claim(self, slot, gen, trusted):
        """The certificate of the slot's TLS handshake names a trusted SKI, or not. Returns -2
        when (slot, gen) is no longer the caller's (refuse the handshake), else a slot whose
        holder must be closed (the oldest stranger, when strangers would hold more than
        `preauth` slots), or -1."""
        if not self._mine(slot, gen):
            return -2
        if trusted:
            self._cl[slot] = TRUSTED
            return -1
        self._cl[slot] = UNTRUSTED
        n = 0
        old = -1
        for i in range(self.size):
            if self._st[i] != FREE and self._cl[i] == UNTRUSTED:
                n += 1
                if i != slot and (old < 0 or ticks_diff(self._since[old], self._since[i]) > 0):
                    old = i
        if n <= self.preauth or old < 0:
            return -1
        self._free(old)
        self.stats["evicted"] += 1
        return old

    def stage(self, slot, gen, stage, now):
        """The connection moved on to stage (CMI, HELLO): its deadline restarts."""
        if self._mine(slot, gen) and self._st[slot] != stage:
            self._st[slot] = stage
            self._dl[slot] = ticks_add(now, self._limits[stage])

    def promote(self, slot, gen, replacing=False):
        """The peer is proven trusted: it leaves the pre-auth table for a session. False when
        the session budget is full (and the peer has no session to replace): close it."""
        if not self._mine(slot, gen):
            return False  # reclaimed meanwhile
        self._free(slot)
        if self.live >= self.sessions and not replacing:
            self.stats["sessions_refused"] += 1
            return False
        self.live += 1
        return True

    def end_session(self):
        if self.live > 0:
            self.live -= 1

    def leave(self, slot, gen):
        """The connection ended while pre-auth (a stale (slot, gen) is ignored)."""
        if self._mine(slot, gen):
            self._free(slot)

    def _free(self, i):
        self._st[i] = FREE
        self._cl[i] = UNKNOWN
        self._gen[i] = (self._gen[i] + 1) & 0x3FFFFFFF

    def expire(self, now):
        """One slot whose stage deadline has passed, freed, or -1. Call until -1."""
        for i in range(self.size):
            if self._st[i] != FREE and ticks_diff(now, self._dl[i]) >= 0:
                self._free(i)
                self.stats["expired"] += 1
                return i
        return -1


# Buffer sets (ws.pool.Pool, one per connection that holds one; ws.pool.Pool.held tags the
# holder). A connection borrows a set only once its TLS handshake is done and its peer's
# certificate judged (the set serves the HTTP upgrade on; mbedTLS's own buffers carry the
# handshake), so the pool is sized by who may hold a set at once, not by the admission table:
# the trusted sessions and our dial, plus a share that peers not (yet) trusted may hold
# (a pending peer, the one the user is pairing) and a trusted peer may take from them (a
# replacement, a trusted peer still pre-auth). Strangers never hold more than their share, so
# the sets of the trusted sessions stay theirs whatever strangers do; a trusted peer that finds
# every set lent has a stranger's reclaimed for it, the newest stranger one from the oldest.
SET_TRUSTED = const(1)
SET_STRANGER = const(2)
STRANGER_SETS = const(1)  # the share when the config does not say (ship.admission.stranger_sets)


def lend(trusted, free, strangers, wanted, share):
    """The lending rule, for a connection whose peer is judged (trusted: the claim it made,
    see claim()). free: sets not lent; strangers: sets lent to strangers (those whose holder is
    already going included); wanted: trusted connections waiting for a set. Returns 1: take a
    free set; 0: the oldest stranger holding a set must go, then ask again (its set comes back
    once it has unwound); -1: none for this one (close it)."""
    if trusted:
        if free:
            return 1
        return 0 if strangers else -1
    if strangers >= share:
        return 0 if strangers else -1  # the newest stranger may be the peer being paired
    # a free set that a waiting trusted connection will take is not a stranger's
    return 1 if free > wanted else -1


def pool_sets(cfg):
    """How many buffer sets the gateway makes (ShipNode's cfg, or the board config's ship
    section): one for each trusted session, one for our own dial when there is a CEM to dial
    (ship.cem, or ship.cem_browse finding one), and the strangers' share (admission
    stranger_sets). Connections still in the TLS handshake hold none, so the pre-auth slots
    add nothing."""
    dial = 1 if cfg.get("cem") or cfg.get("cem_browse") else 0
    return (cfg.get("max_sessions") or 2) + dial + (cfg.get("admission") or {}).get("stranger_sets", STRANGER_SETS)
