# Two connections to the same peer (both sides dialed at once): which one to close.
# SHIP 12.2.2 (SHIP-TS-CONN-01) says the node with the larger SKI keeps the newest connection
# and closes the rest; ship-go before PR #106, eebus-go v0.7 and evcc keep the connection
# initiated by the node with the higher SKI and close the other with 1000 "double connection"
# (ship.md section 10). Keeping the one the larger-SKI node dialed satisfies both whenever that
# dial came second, and it is what the installed base expects in every case.
from compat import const, ticks_diff

_ANCHOR = ...  # the constant table is not empty (compat.py, "A module's constant table")

_GRACE_MS = const(10000)


def pick_double_loser(local_ski, peers, now):
    """Which of two connections to the same SKI to close, or None to wait.

    Our SKI larger: keep the connection we initiated (the installed-base rule of ship-go v0.7
    and evcc, which also is "the newest" whenever our dial came second); with two of the same
    direction keep the newest (SHIP 12.2.2). Our SKI smaller: the peer decides, so wait; if it
    has not closed one after a grace period, close the one the installed-base rule drops.
    """
    a, b = peers[0], peers[1]
    if a.outgoing == b.outgoing:
        return a if ticks_diff(b.started, a.started) >= 0 else b
    ours = a if a.outgoing else b
    theirs = b if a.outgoing else a
    if local_ski > theirs.ski:
        return theirs
    if ticks_diff(now, max(a.started, b.started)) < _GRACE_MS:
        return None
    return ours
