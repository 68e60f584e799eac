# Which connection survives a double connection (ship.md 10); runs under both runtimes.
from ship.double import pick_double_loser

LOW = "1" * 40
HIGH = "f" * 40


class P:
    def __init__(self, ski, outgoing, started):
        self.ski = ski
        self.outgoing = outgoing
        self.started = started


def case_our_ski_larger_keeps_the_one_we_dialed():
    ours = P(LOW, True, 100)
    theirs = P(LOW, False, 200)
    assert pick_double_loser(HIGH, [ours, theirs], 200) is theirs
    assert pick_double_loser(HIGH, [theirs, ours], 200) is theirs


def case_our_ski_smaller_waits_for_the_peer():
    ours = P(HIGH, True, 100)
    theirs = P(HIGH, False, 200)
    assert pick_double_loser(LOW, [ours, theirs], 5000) is None


def case_our_ski_smaller_resolves_after_grace():
    # the peer closed neither: drop ours, as the installed-base rule (higher SKI's dial wins) says
    ours = P(HIGH, True, 100)
    theirs = P(HIGH, False, 200)
    assert pick_double_loser(LOW, [ours, theirs], 200 + 10000) is ours


def case_same_direction_keeps_the_newest():
    old = P(HIGH, False, 100)
    new = P(HIGH, False, 300)
    assert pick_double_loser(LOW, [old, new], 300) is old
    assert pick_double_loser(HIGH, [new, old], 300) is old
