# The log ring: bounded, ordered, cut on character boundaries. Runs under both runtimes.
import log


def case_ring_keeps_last_lines_in_order():
    for i in range(40):
        log.info("t", "line %d", i)
    r = log.recent()
    assert len(r) == 32
    assert r[0] == "[t] I: line 8" and r[-1] == "[t] I: line 39"


def case_long_multibyte_lines_cut_cleanly():
    log.warn("t", "%s", "\u00e9" * 200)
    last = log.recent()[-1]
    assert last.startswith("[t] W: \u00e9") and len(last.encode()) <= 120


def case_level_filters():
    log.info("t", "shown")
    log.debug("t", "hidden")
    assert log.recent()[-1] == "[t] I: shown"


def case_ring_sized_by_config():
    # log.ring bytes of the board config: whole 120-byte lines, emptied; back to 32 lines after
    try:
        log.ring(1920)
        assert log.recent() == []
        for i in range(20):
            log.info("t", "line %d", i)
        r = log.recent()
        assert len(r) == 16 and r[0] == "[t] I: line 4" and r[-1] == "[t] I: line 19"
        log.ring(100)
        log.info("t", "a")
        log.info("t", "b")
        assert log.recent() == ["[t] I: b"]
    finally:
        log.ring(32 * 120)
