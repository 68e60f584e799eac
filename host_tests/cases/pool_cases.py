# The connection buffer pool (lib/ws/pool.py) and the cores that borrow from it; runs under
# CPython and MicroPython. The fragmented-heap case runs under MicroPython only (gc.mem_free).
import gc

from cases.heapfill import fill_heap
from cases.shipstub import NullSpine
from eejson.writer import Writer
from ship import admission as A
from ship.connection import ShipConnection
from ws.pool import Pool
from ws.stream import WsConnection

SIZES = (2048,)  # ship.node.BUFS (ship.node needs MicroPython's tls to import)


def case_sets_are_lent_until_none_is_left():
    p = Pool(3, SIZES)
    got = [p.take() for _ in range(3)]
    assert sorted(got) == [0, 1, 2]
    assert p.free == 0 and p.low == 0
    assert p.take() == -1 and p.free == 0
    for k in got:
        assert [len(b) for b in p.sets[k]] == list(SIZES)
    # no two sets share a buffer
    assert len(set(id(b) for k in got for b in p.sets[k])) == 3
    p = Pool(2, (2048, 1024))  # sets of several buffers
    assert [len(b) for b in p.sets[1]] == [2048, 1024] and p.sets[0][1] is not p.sets[1][1]


def case_giving_back_is_idempotent():
    p = Pool(2, SIZES)
    a = p.take()
    p.give(a)
    p.give(a)  # a second give (an error path running twice) changes nothing
    p.give(-1)
    assert p.free == 2
    b = p.take()
    c = p.take()
    assert b >= 0 and c >= 0 and b != c and p.take() == -1
    bufs = p.sets[b]
    p.give(b)
    assert p.take() == b and p.sets[b] is bufs  # the same buffers again, never new ones


def case_a_storm_leaves_the_pool_full():
    p = Pool(4, SIZES)
    held = []
    none_left = 0
    for i in range(200):
        s = p.take()
        if s >= 0:
            held.append(s)
        else:
            none_left += 1
        if i % 3 == 0 or s < 0:
            while held:
                p.give(held.pop(i % len(held)))
                if i % 5:
                    break
    for s in held:
        p.give(s)
    assert p.free == p.size == 4 and p.low == 0 and none_left > 0 and not any(p.held)


def case_largest_buffers_first():
    # every set's 2 KB block is made before any 1 KB buffer (a fresh heap on MicroPython:
    # ascending addresses are not guaranteed, so only the sizes and the count are checked)
    p = Pool(2, (512, 2048, 1024))
    assert [len(b) for b in p.sets[0]] == [512, 2048, 1024]
    assert p.size == 2 and p.free == 2


def case_sets_are_lent_under_a_tag():
    # the tag says who holds a set (ship.admission.SET_TRUSTED / SET_STRANGER), for the lending rule
    p = Pool(3, SIZES)
    a = p.take(A.SET_TRUSTED)
    b = p.take(A.SET_STRANGER)
    assert p.count(A.SET_STRANGER) == 1 and p.count(A.SET_TRUSTED) == 1 and p.free == 1
    p.held[b] = A.SET_TRUSTED  # a stranger approved keeps its set, now a trusted one
    assert p.count(A.SET_STRANGER) == 0 and p.count(A.SET_TRUSTED) == 2
    p.give(a)
    p.give(b)
    assert p.free == 3 and p.count(A.SET_TRUSTED) == 0 and not any(p.held)


def case_cores_use_the_lent_buffers():
    p = Pool(1, SIZES)
    s = p.take()
    ws = WsConnection(None, None, False, buf=p.sets[s][0])
    assert ws.buf is p.sets[s][0] and ws.tx_end == 1024 and len(ws._rxmv) == 1024
    # control messages are gathered in the block's rx part: the core has no buffer of its own
    c = ShipConnection(True, "id", True, NullSpine(), 0, ctrl=ws)
    assert c._ctrl is ws and ws.buf is p.sets[s][0]
    # the SPINE writer has no buffer: it renders into the lent block's tx part, behind what the
    # frame holds already (here a 10-byte header), and what a previous connection left in the
    # block does not leak into this one's output
    assert ws.buf is p.sets[s][0] and ws.tx_end == 1024
    p.sets[s][0][:] = b"\xff" * 2048
    w = Writer(0)
    n = w.measure(_emit_small)
    e = w.window_into(_emit_small, 0, ws.buf, 10, ws.tx_end)
    assert e == 10 + n and bytes(ws.buf[10:e]) == b'[{"a":1}]'  # EEBUS dialect: a list of members
    assert bytes(ws.buf[:10]) == b"\xff" * 10 and ws.buf[e] == 0xFF
    # from an offset, and cut at the end of the room: the bytes of the whole output in between
    e = w.window_into(_emit_small, 2, ws.buf, 1020, ws.tx_end)
    assert e == 1024 and bytes(ws.buf[1020:1024]) == b'"a":' and ws.buf[1024] == 0xFF
    # a CMI read into the rx part is taken from there
    ws.buf[1024:1026] = b"\x00\x00"
    _deliver(c, ws.buf, 1024, 2)
    assert c.state == 1 and c.out[0] == ("send", b"\x00\x00")  # CMI answered, on to hello


def _deliver(c, buf, off, n):
    c.ws_begin()
    c.ws_data(buf, off, n)
    c.ws_end()


def _emit_small(w):
    w.obj_begin()
    w.member("a")
    w.integer(1)
    w.obj_end()


def case_accepting_allocates_no_big_buffer_with_a_lent_set():
    # MicroPython only: on a heap whose largest free block is under 1 KB, a connection with a
    # lent set is made (WebSocket adapter, SHIP core, SPINE writer, which needs no buffer);
    # without one it fails.
    if not hasattr(gc, "mem_free"):
        return
    p = Pool(1, SIZES)
    s = p.take()
    gc.collect()
    keep, plugs, j = fill_heap(1024)
    assert j < len(plugs)  # the plugs ran out of room, not out of slots
    try:
        ws = WsConnection(None, None, False, buf=p.sets[s][0])
        c = ShipConnection(True, "id", True, NullSpine(), 0, ctrl=ws)
        w = Writer(0)
        made = ws is not None and c is not None and w is not None
        failed = False
        try:
            WsConnection(None, None, False)  # the control: its 2 KB block finds no room
        except MemoryError:
            failed = True
    finally:
        del keep, plugs
        gc.collect()
    assert made
    assert failed, "the heap was not fragmented: the check could not fail"


def case_a_long_control_message_needs_no_big_block():
    # MicroPython only: a control message of nearly 1 KB, gathered in the WebSocket's rx part,
    # is read on a heap whose largest free block is under 512 B (json reads it in place; a copy
    # of it would need such a block)
    if not hasattr(gc, "mem_free"):
        return
    p = Pool(1, SIZES)
    s = p.take()
    ws = WsConnection(None, None, False, buf=p.sets[s][0])
    c = ShipConnection(True, "id", True, NullSpine(), 0, ctrl=ws)
    rx = ws.buf  # the block: its rx part starts at 1024
    rx[1024:1026] = b"\x00\x00"
    _deliver(c, rx, 1024, 2)  # CMI
    msg = b'\x01{"connectionHello":[' + b" " * 900 + b'{"phase":"ready"},{"waiting":60000}]}\x00'
    rx[1024 : 1024 + len(msg)] = msg
    gc.collect()
    keep, plugs, j = fill_heap(512)
    try:
        _deliver(c, rx, 1024, len(msg))
        state = c.state
        failed = False
        try:
            bytearray(600)  # the control: a block of 600 B finds no room
        except MemoryError:
            failed = True
    finally:
        del keep, plugs
        gc.collect()
    assert state == 2, state  # hello done: on to the protocol handshake
    assert failed, "the heap was not fragmented: the check could not fail"
