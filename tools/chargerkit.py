"""Charger model (lib/charger.py) calls the gateway never makes, for the tests: heartbeat
supervision by the model itself (the use cases supervise their peers and call enter_failsafe),
and dropping a subscriber. Plain MicroPython: the shared case files use it under the unix port."""


def supervise(m, source, timeout_ms, now):
    """Watch a controlling source: silent for timeout_ms (no alive()) puts it in failsafe.
    timeout_ms 0/None stops watching (a failsafe in force stays)."""
    m.tick(now)
    m._sup[source] = timeout_ms or 0
    m._supleft[source] = timeout_ms or None


def silent(m, source):
    """Supervised and not heard within its timeout."""
    return bool(m._sup[source]) and m._supleft[source] is None


def unsubscribe(m, cb):
    m._subs = [c for c in m._subs if c is not cb]
