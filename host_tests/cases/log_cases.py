# The log ring: bounded, ordered, cut on character boundaries. Runs under both runtimes.
import log


def _bytes(lines):
    # what lines take in the ring: each its UTF-8 and one NUL
    return sum(len(x.encode()) + 1 for x in lines)


def case_ring_keeps_last_lines_in_order():
    log.ring(None)
    for i in range(300):
        log.info("t", "line %d", i)
    r = log.recent()
    # the newest lines, consecutive, as many as the default ring's bytes hold (less than one
    # more line of room is left over: the oldest goes only when the newest needs its bytes)
    first = 300 - len(r)
    assert r == ["[t] I: line %d" % i for i in range(first, 300)]
    assert log.RING - 17 <= _bytes(r) < log.RING


def case_long_multibyte_lines_cut_cleanly():
    log.warn("t", "%s", "\u00e9" * 200)
    last = log.recent()[-1]
    assert last.startswith("[t] W: \u00e9") and len(last.encode()) <= 120


def case_level_filters():
    log.info("t", "shown")
    log.debug("t", "hidden")
    assert log.recent()[-1] == "[t] I: shown"


def case_lines_of_any_length_wrap_whole():
    # lines of every length, wrapping at every offset: the ring only ever gives whole lines,
    # the newest ones, in order
    try:
        log.ring(200)
        sent = []
        for i in range(120):
            msg = "%d-" % i + "x" * (i * 7 % 110)
            log.info("t", "%s", msg)
            sent.append(("[t] I: " + msg)[:120])
            r = log.recent()
            assert r == sent[len(sent) - len(r):] and r[-1] == sent[-1]
            # less than the ring's bytes (one stays free), and one more line would not be
            assert _bytes(r) < 200
            assert _bytes(sent[len(sent) - len(r) - 1:]) >= 200 or len(r) == len(sent)
    finally:
        log.ring(None)


def case_ring_sized_by_config():
    # log.ring bytes of the board config, emptied; back to the default after
    try:
        log.ring(1920)
        assert log.recent() == []
        for i in range(20):
            log.info("t", "line %d", i)
        assert log.recent() == ["[t] I: line %d" % i for i in range(20)]
        for i in range(20, 400):
            log.info("t", "line %d", i)
        r = log.recent()
        assert r[-1] == "[t] I: line 399" and 1920 - 17 <= _bytes(r) < 1920
        log.ring(100)
        log.info("t", "a")
        log.info("t", "b")
        assert log.recent() == ["[t] I: a", "[t] I: b"]
        log.info("t", "%s", "y" * 200)  # longer than the ring: cut to what it holds
        assert log.recent() == [("[t] I: " + "y" * 200)[:98]]
    finally:
        log.ring(None)


def case_a_long_message_is_not_copied():
    # MicroPython: a 300-byte message costs its record little more than the head (160 B on the
    # 64-bit port; 640 B when the line, its bytes and their cut were three more copies, blocks
    # over 256 B)
    try:
        import micropython  # noqa: F401
    except ImportError:
        return
    import gc

    log.ring(512)
    msg = "u" * 300
    gc.collect()
    before = gc.mem_alloc()
    log.info("uc", msg)
    took = gc.mem_alloc() - before
    assert took < 320, took
    assert log.recent()[-1] == "[uc] I: " + "u" * 112
