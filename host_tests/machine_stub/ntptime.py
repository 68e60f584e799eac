# Stand-in for micropython-lib's ntptime (host tests only): settime() fails with a timeout
# while `fail` > 0 (counting down) or while the file named by NTPTIME_STUB holds "fail";
# otherwise it "sets" the clock (the host's is right already).
import os

host = "pool.ntp.org"
timeout = 1
fail = 0
calls = []  # the host asked each time


def _blocked():
    p = os.getenv("NTPTIME_STUB")
    if not p:
        return False
    try:
        with open(p) as f:
            return f.read().strip() == "fail"
    except OSError:
        return False


def time():
    import time as t

    return t.time()


def settime():
    global fail
    calls.append(host)
    if fail > 0:
        fail -= 1
        raise OSError(110)  # ETIMEDOUT, as a lost UDP answer gives
    if _blocked():
        raise OSError(110)
