"""WsConnection.keep (lib/ws/stream.py): a message kept whole in the WebSocket's rx part, as
SHIP's control messages are instead of in a buffer of their own. Property test under
MicroPython (host_tests/mpy/ws_keep_check.py): random messages, kept or copied, split into
frames with pings between them, behind the upgrade head, read in random sizes with cancelled
reads: every kept message comes out whole, one of 1 KB or more is refused, copied ones too."""

import hashlib
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from support import mpyrun
from support.paths import MPY_SCRIPTS
from test_ws_codec import frame
from test_ws_e2e import raw_request

RX = 1024  # the rx part of the WebSocket block (ship.node.BUFS: 2048 = tx 1 KB + rx 1 KB)

messages = st.lists(
    st.tuples(
        st.sampled_from((1, 2)),  # 1: kept (as a control message), 2: copied (as data)
        st.one_of(st.integers(0, 60), st.integers(900, RX + 20), st.integers(0, 2500)),
        st.lists(st.integers(0, 100), max_size=3),  # cut points (per cent of the body)
        st.booleans(),  # a ping after the first fragment
    ),
    min_size=1,
    max_size=6,
)
cases = st.tuples(
    messages,
    st.lists(st.one_of(st.integers(1, 16), st.integers(17, 1100), st.just(0)), min_size=1, max_size=8),
    st.randoms(use_true_random=False),
)


def transcript(msgs, rnd):
    data = bytearray(raw_request("/ship/"))
    want = []
    for kind, n, cuts, ping in msgs:
        body = bytes(rnd.getrandbits(8) for _ in range(n))
        m = bytes([kind]) + body
        points = sorted(set(max(1, min(len(m), len(m) * c // 100)) for c in cuts))
        parts = []
        at = 0
        for p in points + [len(m)]:
            if p > at:
                parts.append(m[at:p])
                at = p
        for k, part in enumerate(parts):
            data += frame(2 if k == 0 else 0, part, fin=k == len(parts) - 1, key=os.urandom(4))
            if k == 0 and ping:
                data += frame(9, b"p", key=os.urandom(4))
        if kind == 1:
            want.append("TOOLONG" if n >= RX else "K" + hashlib.sha1(body).hexdigest())
        else:
            want.append("D" + hashlib.sha1(m).hexdigest())
    return bytes(data), want


@settings(max_examples=60, deadline=None)
@given(st.lists(cases, min_size=1, max_size=3))
def test_kept_messages_come_out_whole(tmp_path_factory, batch):
    path = tmp_path_factory.mktemp("keep") / "cases.txt"
    wants = []
    with open(path, "w") as f:
        for msgs, sizes, rnd in batch:
            if all(s == 0 for s in sizes):
                sizes = sizes + [7]
            data, want = transcript(msgs, rnd)
            wants.append(want)
            f.write("%s %s\n" % (",".join(str(s) for s in sizes), data.hex()))
    r = mpyrun.run(os.path.join(MPY_SCRIPTS, "ws_keep_check.py"), args=(str(path),), timeout=120).check()
    got = {}
    for line in r.stdout.splitlines():
        if line.startswith("CASE "):
            i, _, rest = line[5:].partition(" ")
            got[int(i)] = rest.split()
    assert "DONE %d" % len(batch) in r.stdout, r.stdout[-2000:]
    for i, want in enumerate(wants):
        assert got[i] == want, (i, batch[i][1], got[i], want)
