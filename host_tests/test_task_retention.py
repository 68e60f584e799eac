"""compat.detached under MicroPython's asyncio: an ended task must not keep what its coroutine
used alive. The control shows why it exists: a plain task that ended is kept, with a 30 KB
bytearray its coroutine made, for as long as a task it was queued under waits off the run
queue (MicroPython's pairing heap leaves that task a stale pointer to it). Run through
detached, the same task frees it at once: after a return, an exception and a cancellation.
Should the control ever stop retaining (fixed upstream), detached can go."""

import re

import pytest
from support import mpyrun

CODE = r"""
import asyncio
import gc
import sys

from compat import detached

BIG = 30000


def nothing(a, b, c, d, e, f):
    pass  # overwrites the caller's value-stack slots


def measure():
    gc.collect()
    return gc.mem_alloc()


async def returns():
    big = bytearray(BIG)
    await asyncio.sleep_ms(10)
    return len(big)


async def raises():
    big = bytearray(BIG)
    await asyncio.sleep_ms(10)
    raise ValueError(len(big))


async def cancelled():
    big = bytearray(BIG)
    await asyncio.sleep_ms(1000)
    return len(big)


KINDS = {"returns": returns, "raises": raises, "cancelled": cancelled}


async def waiter(ev):
    await asyncio.sleep_ms(5)
    await ev.wait()  # off the run queue until the end of the case


def spawn(kind, wrap):
    c = KINDS[kind]()
    return asyncio.create_task(detached(c) if wrap else c)


def cancel_later(t):
    t.cancel()


async def scrub():
    for _ in range(3):
        await asyncio.sleep_ms(1)
    nothing(None, None, None, None, None, None)


async def case(kind, wrap):
    ev = asyncio.Event()
    asyncio.create_task(waiter(ev))
    await asyncio.sleep_ms(0)
    t = spawn(kind, wrap)
    await asyncio.sleep_ms(0)
    m0 = measure() - BIG  # the bytearray is in
    if kind == "cancelled":
        await asyncio.sleep_ms(10)
        cancel_later(t)
    t = None
    await asyncio.sleep_ms(50)
    # the scheduler's C frames and this frame's slots are overwritten before measuring
    await asyncio.gather(scrub(), scrub())
    nothing(None, None, None, None, None, None)
    print("CASE", kind, "detached" if wrap else "plain", measure() - m0)
    ev.set()


def handler(loop, ctx):
    pass  # the ended tasks' exceptions are expected


async def main():
    asyncio.get_event_loop().set_exception_handler(handler)
    await case(sys.argv[1], sys.argv[2] == "detached")


asyncio.run(main())
"""


@pytest.mark.parametrize("kind", ["returns", "raises", "cancelled"])
def test_an_ended_task_run_through_detached_keeps_nothing(tmp_path, kind):
    kept = {}
    for how in ("plain", "detached"):
        r = mpyrun.run_code(CODE, tmp_path, args=(kind, how)).check()
        m = re.search(r"^CASE \S+ \S+ (-?\d+)$", r.stdout, re.M)
        assert m, r.stdout
        kept[how] = int(m.group(1))
    # the control: a plain task that ended is kept with its bytearray
    assert kept["plain"] >= 30000, kept
    assert kept["detached"] < 2000, kept
