# ISO 8601 durations from peers (spine.table.duration_s): heartbeat timeouts, LPC durations, CEVC
# slots. Runs under CPython and MicroPython (test_cases_mpy), where a 40-digit number must not
# become a big integer.
from spine.table import DURATION_MAX_S, duration_s


def case_the_forms_peers_send():
    assert duration_s("PT2H") == 7200
    assert duration_s("P1DT30M") == 88200
    assert duration_s("PT1H2M3S") == 3723
    assert duration_s("P1Y2M3W4DT5H6M7S") == 31536000 + 2 * 2592000 + 3 * 604800 + 4 * 86400 + 5 * 3600 + 6 * 60 + 7
    assert duration_s("PT0S") == 0
    assert duration_s("-PT5S") == -5
    assert duration_s("PT120S") == 120


def case_fractions_round_to_whole_seconds():
    assert duration_s("PT0.5S") == 1
    assert duration_s("PT0.4S") == 0
    assert duration_s("PT.5S") == 1
    assert duration_s("PT1.S") == 1
    assert duration_s("PT0.025M") == 2  # 1.5 s
    assert duration_s("PT0.1234567891S") == 0


def case_month_in_the_date_part_minute_in_the_time_part():
    assert duration_s("P1M") == 2592000
    assert duration_s("PT1M") == 60


def case_malformed_is_none():
    for t in ("", "P", "PT", "T1H", "1H", "PT1", "PTH", "P1S", "PT1D", "P1DTT1H", "PT1HT", "P-1D", "PT.S",
              "PT1.2.3S", "pt1h", "PT1h", "PT 1H", "--PT1S", "P1.5", None, 5, b"PT1H", "P" + "1" * 40 + "D"):
        assert duration_s(t) is None, t


def case_huge_numbers_are_clamped_not_big_integers():
    assert duration_s("P" + "9" * 38 + "Y") == DURATION_MAX_S
    assert duration_s("-PT" + "9" * 36 + "S") == -DURATION_MAX_S
    assert duration_s("PT999999999S") == DURATION_MAX_S
    assert duration_s("PT1000000000S") == DURATION_MAX_S
    assert duration_s("P40Y") == DURATION_MAX_S
    assert duration_s("PT999999998S") == 999999998
    assert duration_s("PT999999998.9S") == DURATION_MAX_S
    # the clamp is on the sum as well as on each part
    assert duration_s("P31YT999999999S") == DURATION_MAX_S
