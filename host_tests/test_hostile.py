"""Hostile LAN peers against the gateway (MicroPython unix port, real TLS on 127.0.0.1).

The attackers (host_tests/support/attacker.py) are CPython and independent of lib/; the trusted energy
manager is the independent test CEM (tools/testcem). After every attack the test CEM must still
reach data exchange, and the gateway's live heap must come back to its baseline (the heap probe
of tools/host_run.py prints "HEAP closed N open K" after every connection).

The first five tests are the defects of the issue "A hostile LAN cannot lock out the trusted
energy manager"; each failed at the commit before the fixes (3a58225's lib/):
1. idle TLS sessions fill the TLS certificate table: the CEM gets alert 49;
2. a hello with waiting 2**62 kills the connection's reader (OverflowError) and it answers nothing;
3. pending connections are uncapped, and pending ones starve the pairing list;
4. a peer that floods pings and never reads keeps its connection past every timer;
5. trust edits of the host tool and of the console overwrite each other.
The rest are attacks that were already handled, kept as regressions.
"""

import asyncio
import json
import os
import re
import ssl
import subprocess
import time

import certs
import pytest
from support.attacker import HOST, Intruder, context, flood_pings_without_reading, frame, hello, ship
from support.bounded import runner
from support.gateway_proc import FAST_TIMERS, Gateway
from support.paths import ROOT
from testcem.identity import Identity
from testcem.ship import ShipPeer
from testcem.shipmsg import data_message

HELLO_MS = 15000  # long enough that "closed at once" and "closed by the hello timer" differ
HEAP_SLACK = 4096  # log lines and one-time imports aside, nothing may stay behind


run = runner(60.0)


@pytest.fixture(scope="module")
def cem():
    return Identity.generate(common_name="TrustedCEM")


def start_gateway(path, cem, hello_ms=HELLO_MS, cmi_ms=FAST_TIMERS["cmi"], **kw):
    g = Gateway(path, env_probe=True, ship={"timers_ms": dict(FAST_TIMERS, hello=hello_ms, cmi=cmi_ms)}, **kw)
    g.trust(cem.ski)
    g.start()
    return g


@pytest.fixture(scope="module")
def gw(tmp_path_factory, cem):
    g = start_gateway(tmp_path_factory.mktemp("hostile"), cem, console=True)
    g.baseline = None
    yield g
    g.stop()


async def served(gw, cem, tries=6, pause=0.5):
    """Seconds the test CEM needed to reach data exchange (its first datagram), retrying a few
    times as a CEM does after a refused connection; raises when it never got there."""
    t0 = time.monotonic()
    last = None
    for _ in range(tries):
        p = ShipPeer(cem, ship_id="TrustedCEM-1", timeout=8)
        try:
            await p.dial(HOST, gw.port, expected_ski=gw.ski)
            await p.recv_datagram(timeout=8)
            took = time.monotonic() - t0
            await p.close()
            return took
        except Exception as e:  # noqa: BLE001 - refused, reset, timed out: try again
            last = e
            await asyncio.sleep(pause)
    raise AssertionError("the trusted CEM was not served: %r" % (last,))


def heap_after_session(gw, cem):
    """Live heap once a good session has ended and no other connection is open (the heap
    probe's figure; one taken while an attacker's connection was still closing would count it)."""
    mark = gw.mark()
    run(served(gw, cem))
    return int(gw.wait_for(r"^HEAP closed (\d+) open 0$", start=mark, timeout=10).group(1))


def settle(gw, cem, tries=3):
    """Once the attackers are gone: a good session, then the live heap against the baseline
    (the figure after the module's first good session). The GC is conservative: a stale word on
    the C stack can keep a freed TLS context alive through one collection, so a figure over the
    slack is taken again after another session, and once more after the gateway's own timers
    (the hello timer, the longest) have run: memory that stays past them is a leak. One such
    retention was found: an ended connection's task kept alive by a task waiting off the run
    queue (test_task_retention.py); about one full run in four, more under CPU load, saw its
    ~11-14 KB stay over three sessions before the connection tasks ran through
    compat.detached."""
    time.sleep(1.0)  # the gateway notices the attackers' closes
    seen = []
    for i in range(tries + 1):
        if i == tries:
            time.sleep(HELLO_MS / 1000 + 2)
        seen.append(heap_after_session(gw, cem))
        if gw.baseline is None:
            gw.baseline = seen[0]
        if seen[-1] - gw.baseline < HEAP_SLACK:
            pool_full(gw)
            return seen[-1]
    raise AssertionError("live heap %s, baseline %d" % (seen, gw.baseline))


def pool_full(gw, wait=5.0):
    """Every connection's buffer set is back in the gateway's pool (read through its console)
    once the connections are gone; returns (size, least free seen)."""
    end = time.monotonic() + wait
    while True:
        mark = gw.mark()
        gw.type("print('POOL', app.pool.free, app.pool.size, app.pool.low)")
        m = gw.wait_for(r"^POOL (\d+) (\d+) (\d+)$", start=mark)
        free, size, low = (int(x) for x in m.groups())
        if free == size or time.monotonic() > end:
            break
        time.sleep(0.2)
    assert free == size, "%d of %d connection buffer sets still lent" % (size - free, size)
    return size, low


@pytest.fixture(autouse=True)
def baseline(request):
    if "gw" in request.fixturenames:
        g = request.getfixturevalue("gw")
        c = request.getfixturevalue("cem")
        if g.baseline is None:
            settle(g, c)


async def open_all(coros):
    """Run attacker coroutines side by side; returns the Intruders that got through."""
    res = await asyncio.gather(*coros, return_exceptions=True)
    return [r for r in res if isinstance(r, Intruder)]


async def still_open(intruders, wait=0.3):
    """How many of the intruders' connections the gateway has not closed."""
    n = 0
    for a in intruders:
        if a.r is None:
            continue
        if not await a.closed_within(wait):
            n += 1
    return n


# ---- 1. idle TLS sessions ------------------------------------------------------------------------


def test_idle_tls_sessions_do_not_lock_out_the_cem(gw, cem):
    """Clients that finish TLS with a self-signed certificate and then say nothing, re-opened
    as they are closed: the CEM is served while they hold every slot they can get."""

    async def go():
        held = await open_all([Intruder(gw.port).tls() for _ in range(6)])
        assert held, "no attacker got through TLS"
        took = await served(gw, cem, tries=2)
        # and again, with the attackers re-opened
        more = await open_all([Intruder(gw.port).tls() for _ in range(6)])
        took2 = await served(gw, cem, tries=2)
        for a in held + more:
            a.close()
        return took, took2

    took, took2 = run(go())
    assert took < 5 and took2 < 5
    settle(gw, cem)


def test_parallel_handshakes_do_not_lock_out_the_cem(tmp_path, cem):
    """60 TLS handshakes at once (the ones that get through then sit idle); 2 s into the flood
    the CEM dials, retrying as CEMs do: served within seconds, not after the attackers' 10 s
    TLS + upgrade timer (the SHIP value here, not the shortened one). Afterwards every
    connection buffer set is back in the pool, and the idle attackers borrowed none."""
    g = start_gateway(tmp_path / "parallel", cem, cmi_ms=10000, console=True)
    try:

        async def go():
            flood = asyncio.ensure_future(open_all([Intruder(g.port).tls(timeout=15) for _ in range(60)]))
            await asyncio.sleep(2.0)
            took = await served(g, cem, tries=10, pause=0.4)
            held = await flood
            for a in held:
                a.close()
            return took, len(held)

        took, n = run(go())
        print("CEM served %.2f s after it started dialling, %d attackers held" % (took, n))
        # before the fix the first idle ones kept it out until their 10 s timer ran out (8 s
        # more from here); the margin is for a loaded host
        assert took < 5, "CEM needed %.1f s" % took
        size, low = pool_full(g, wait=15.0)
        # a connection borrows its set once its TLS handshake is done and the peer has sent a
        # byte: the attackers, idle after TLS, took none; the CEM's session took one
        assert size == 3 and low >= size - 1, (size, low)
    finally:
        g.stop()


def pool_state(gw):
    """The pool through the gateway's console: free, size, least free seen, sets lent to
    strangers now, and the node's no_buffers and evicted counters."""
    mark = gw.mark()
    gw.type("print('POOLS', app.pool.free, app.pool.size, app.pool.low, app.pool.count(2), "
            "app.node.stats['no_buffers'], app.node.stats['evicted'])")
    m = gw.wait_for(r"^POOLS (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", start=mark)
    return [int(x) for x in m.groups()]


def test_strangers_past_tls_keep_to_their_share(tmp_path, cem):
    """Waves of strangers that complete TLS, the upgrade, CMI and a pending hello, each wanting
    a buffer set: between them they never hold more than their share (one set; the pool has 3
    on these defaults: 2 sessions + 1), the newest taking it over from the oldest or being
    closed. Meanwhile two trusted energy managers are served at once, the first staying in data
    exchange throughout; afterwards every set is back."""
    second = Identity.generate(common_name="SecondCEM")
    g = Gateway(tmp_path / "share", env_probe=True, console=True,
                ship={"timers_ms": dict(FAST_TIMERS, hello=HELLO_MS)})
    g.trust(cem.ski)
    g.trust(second.ski)
    g.start()
    crowd = []
    try:

        async def wave(n):
            more = [Intruder(g.port) for _ in range(n)]
            crowd.extend(more)
            got = await asyncio.gather(*[a.pending() for a in more], return_exceptions=True)
            return sum(1 for x in got if x == "pending")

        async def go():
            reached = await wave(12)
            alone = pool_state(g)
            first = ShipPeer(cem, ship_id="TrustedCEM-1", timeout=8)
            await first.dial(HOST, g.port, expected_ski=gw_ski)
            await first.recv_datagram(timeout=8)
            storm = asyncio.ensure_future(wave(12))
            await asyncio.sleep(0.5)
            p = ShipPeer(second, ship_id="SecondCEM-1", timeout=8)
            t0 = time.monotonic()
            await p.dial(HOST, g.port, expected_ski=gw_ski)
            await p.recv_datagram(timeout=8)
            took = time.monotonic() - t0
            both = pool_state(g)
            await storm
            await first.ping(b"alive", timeout=10)  # the first session lived through it all
            await p.close()
            await first.close()
            return reached, alone, took, both

        gw_ski = g.ski
        reached, alone, took, both = run(go())
        for a in crowd:
            a.close()
        free, size, low, strangers, no_buffers, evicted = alone
        print("strangers alone: %d reached pending; pool %s; second CEM served in %.2f s; then %s"
              % (reached, alone, took, both))
        assert reached >= 1 and size == 3
        # only strangers had borrowed: never more than their one set at once
        assert low >= size - 1 and strangers <= 1, alone
        reclaimed = g.output().count("pre-auth closed: buffers reclaimed")
        assert no_buffers + reclaimed > 0, "the strangers never contended for the share"
        # both sessions held their sets, strangers at most the share beside them
        assert both[3] <= 1 and both[0] <= size - 2, both
        assert took < 5, "the second CEM needed %.1f s" % took
        pool_full(g, wait=15.0)
    finally:
        for a in crowd:
            a.close()
        g.stop()


# ---- 2. numbers from peers -----------------------------------------------------------------------


@pytest.mark.parametrize("waiting", [2 ** 62, 2 ** 32, -1, "60000", True, 1.5e9])
def test_hello_with_absurd_waiting_closed_at_once(gw, cem, waiting):
    """A pre-authentication hello whose waiting is out of range (or not a number) ends the
    connection at once (hello aborted), instead of killing its reader."""

    async def go():
        a = Intruder(gw.port)
        await a.cmi()
        t, m = await a.read_ship()
        assert t == 1 and m["connectionHello"][0]["phase"] == "pending"
        t0 = time.monotonic()
        a.send(hello("pending", waiting))
        gone = await a.closed_within(HELLO_MS / 2000)
        a.close()
        return gone, time.monotonic() - t0

    mark = gw.mark()
    gone, took = run(go())
    assert gone and took < HELLO_MS / 2000, "connection not closed promptly (%.1f s)" % took
    gw.wait_for(r"closed \(4001 bad waiting", start=mark, timeout=5)
    assert "Traceback" not in gw.output()
    settle(gw, cem)


def test_huge_waiting_from_trusted_ready_side_is_safe(gw, cem):
    """The largest legal waiting (2**32 - 1 ms) from a pending peer towards a ready gateway."""

    async def go():
        p = ShipPeer(cem, ship_id="TrustedCEM-1", timeout=8, hello_phase="pending", waiting=2 ** 32 - 1)
        task = asyncio.ensure_future(p.dial(HOST, gw.port, expected_ski=gw.ski))
        await asyncio.sleep(1.0)
        p.grant_trust()
        await asyncio.wait_for(task, 10)
        await p.close()

    run(go())
    assert "Traceback" not in gw.output()
    settle(gw, cem)


# ---- 3. pending connections ----------------------------------------------------------------------


def test_pending_connections_are_capped(gw, cem):
    """Many strangers held pending at once: only the pre-auth budget is held, the rest is closed,
    the CEM is served meanwhile and the heap comes back."""

    async def go():
        crowd = [Intruder(gw.port) for _ in range(16)]
        got = await asyncio.gather(*[a.pending() for a in crowd], return_exceptions=True)
        await asyncio.sleep(0.5)
        holding = await still_open([a for a, g in zip(crowd, got) if g == "pending"], wait=0.2)
        took = await served(gw, cem)
        for a in crowd:
            a.close()
        return holding, took

    holding, took = run(go())
    assert holding <= 3, "%d strangers held pending at once" % holding
    settle(gw, cem)


def test_pending_list_cannot_be_starved(gw, cem):
    """Eight strangers keep pending sessions; a genuine newcomer still shows up in the pairing
    list (pending.json, which `tools/gw trust list` reads), and can be approved."""
    newcomer = Identity.generate(common_name="Newcomer")

    async def go():
        crowd = []
        for _ in range(8):
            a = Intruder(gw.port)
            try:
                await a.pending()
                crowd.append(a)
            except Exception:  # noqa: BLE001 - refused: the budget holds
                a.close()
        p = ShipPeer(newcomer, ship_id="Newcomer-1", timeout=8, hello_phase="ready")
        task = asyncio.ensure_future(p.dial(HOST, gw.port, expected_ski=gw.ski))
        path = os.path.join(gw.data_dir, "pending.json")
        seen = False
        for _ in range(40):
            await asyncio.sleep(0.1)
            try:
                with open(path) as f:
                    if newcomer.ski in json.load(f):
                        seen = True
                        break
            except (OSError, ValueError):
                pass
        if seen:
            gw.trust(newcomer.ski)
            await asyncio.wait_for(task, 10)
            await p.close()
        else:
            task.cancel()
        for a in crowd:
            a.close()
        return seen

    assert run(go()), "the newcomer never reached the pairing list"
    settle(gw, cem)


def test_pending_peers_second_connection_keeps_its_request(tmp_path, cem):
    """Regression (review of 18f2a7e): an unknown peer held pending opens a second connection;
    the newer one wins (double connection) and the older one's end dropped the pairing request,
    so the newer one was closed with 4452 "pairing request dropped" at the next trust poll. The
    request stays: the newer connection is still pending after 2.5 s and diag.pending() lists it."""
    g = start_gateway(tmp_path / "double", cem, console=True)
    try:
        stranger = certs.create(cn="TwoTabs")
        ski = certs.ski_hex(stranger[0])

        async def go():
            first = Intruder(g.port, cert=stranger)
            assert await first.pending() == "pending"
            await asyncio.sleep(0.3)
            second = Intruder(g.port, cert=stranger)
            try:
                phase = await second.pending()
            except (ConnectionError, ssl.SSLError, OSError) as e:
                raise AssertionError("the newer connection was closed at once: %r" % (e,))
            assert phase == "pending"
            try:
                assert await first.closed_within(3.0), "the older connection was kept"
                assert not await second.closed_within(2.5), "the newer connection lost its pairing request"
                mark = g.mark()
                g.type("diag.pending()")
                g.wait_for(r"^%s  from " % ski, start=mark, timeout=5)
            finally:
                first.close()
                second.close()

        run(go())
        assert "pairing request dropped" not in g.output()
    finally:
        g.stop()


# ---- 4. a peer that does not read ----------------------------------------------------------------


def test_peer_that_never_reads_is_dropped_by_its_timer(tmp_path, cem):
    """A pre-auth peer floods pings and never reads: the gateway's sends block. The connection
    still ends when its hello timer does (plus a close's time), and the CEM is served."""
    hello_ms = 6000
    g = start_gateway(tmp_path / "nonreader", cem, hello_ms=hello_ms)
    try:

        async def go():
            t0 = time.monotonic()
            a, sent, blocked = await flood_pings_without_reading(g.port, seconds=5)
            assert blocked, "the gateway kept reading %d pings: its sends never blocked" % sent
            took = await served(g, cem)
            return a, t0, took

        a, t0, took = run(go())
        try:
            # closed at the hello timer plus a close's time; the margin is for a loaded host
            g.wait_for(re.escape("%s:%d: closed" % (HOST, a.local_port)), timeout=hello_ms / 1000 + 6)
        finally:
            a.close()
        assert "Traceback" not in g.output()
    finally:
        g.stop()


def test_trusted_peer_that_stops_reading_is_dropped(tmp_path, cem):
    """In data exchange: a trusted peer that floods pings and stops reading is dropped at the
    send deadline, and the CEM is served again."""
    g = Gateway(tmp_path / "stall", env_probe=True, ship={"timers_ms": dict(FAST_TIMERS, send=2000)})
    g.trust(cem.ski)
    g.start()
    try:

        async def go():
            a = Intruder(g.port, cert=(cem.cert_der, cem.key_der), rcvbuf=2048)
            await a.data_exchange()
            a, sent, blocked = await flood_pings_without_reading(g.port, seconds=5, intruder=a)
            assert blocked, "the gateway kept reading %d pings: its sends never blocked" % sent
            return a

        a = run(go())
        try:
            g.wait_for(re.escape("%s:%d: " % (HOST, a.local_port)) + "(connection lost|closed)", timeout=15)
        finally:
            a.close()
        run(served(g, cem))
    finally:
        g.stop()


# ---- 5. trust store writers ----------------------------------------------------------------------


def test_concurrent_trust_writers_lose_nothing(tmp_path, cem):
    """`tools/gw trust add` in a loop against the running gateway's diag.approve() in a loop:
    every SKI either of them added is in trust.json at the end."""
    g = Gateway(tmp_path / "writers", console=True)
    g.trust(cem.ski)
    g.start()
    try:
        g.wait_for("console:", timeout=10)
        mine = ["%040x" % (0xA0000 + i) for i in range(12)]
        tools = ["%040x" % (0xB0000 + i) for i in range(12)]
        gw_tool = os.path.join(ROOT, "tools", "gw")

        def tool_loop():
            for ski in tools:
                subprocess.run([gw_tool, "trust", "--dir", g.data_dir, "add", ski], check=True,
                               capture_output=True, timeout=30)

        import threading

        th = threading.Thread(target=tool_loop)
        th.start()
        for ski in mine:
            g.type("diag.approve('%s')" % ski)
            time.sleep(0.15)
        th.join(60)
        for ski in mine:
            g.wait_for("trusted %s" % ski, timeout=10)
        time.sleep(0.5)
        doc = json.load(open(os.path.join(g.data_dir, "trust.json")))
        missing = [s for s in mine + tools + [cem.ski] if s not in doc["trusted"]]
        assert not missing, "lost: %s" % missing
        left = [f for f in os.listdir(g.data_dir) if f.endswith(".tmp") or f.endswith(".lock")]
        assert not left, left
    finally:
        g.stop()


# ---- attacks that were handled already -----------------------------------------------------------


async def _refused(port, ctx):
    a = Intruder(port)
    try:
        await a.tls(ctx=ctx)
        await a.upgrade()
        return False
    except (ssl.SSLError, ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
        return True
    finally:
        a.close()


def _tls11():
    ctx = context(certs.create(), ciphers="DEFAULT:@SECLEVEL=0", max_version=ssl.TLSVersion.TLSv1_1)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    return ctx


TLS_REFUSED = {
    "no client certificate": lambda cem: context(False),
    "TLS 1.1": lambda cem: _tls11(),
    "RSA key": lambda cem: context(certs.rsa_cert(), ciphers="ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA256"),
    "P-384 key": lambda cem: context(certs.p384_cert()),
    "forged SKI of the CEM": lambda cem: context(certs.forged_cert(bytes.fromhex(cem.ski))),
}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", sorted(TLS_REFUSED))
def test_tls_refusals_hold(gw, cem, name):
    async def go():
        res = await asyncio.gather(*[_refused(gw.port, TLS_REFUSED[name](cem)) for _ in range(5)])
        took = await served(gw, cem)
        return res, took

    res, took = run(go())
    assert all(res)
    settle(gw, cem)


def test_slowloris_upgrade_head(gw, cem):
    """A head sent a byte a second: closed at the upgrade deadline, CEM served meanwhile."""

    async def go():
        crowd = await open_all([Intruder(gw.port).tls() for _ in range(3)])
        took = await served(gw, cem)
        gone = 0
        for i in range(12):
            for a in crowd:
                try:
                    a.send(b"GET /ship/ HTTP/1.1\r\n"[i:i + 1])
                except Exception:  # noqa: BLE001
                    pass
            await asyncio.sleep(1.0)
        for a in crowd:
            if await a.closed_within(0.2):
                gone += 1
            a.close()
        return gone, len(crowd), took

    gone, n, took = run(go())
    assert gone == n
    settle(gw, cem)


def test_ws_limits_before_trust(gw, cem):
    """Oversized frames and control messages from an untrusted peer: closed, nothing kept."""

    async def go():
        out = []
        for data in (b"\x82\xff" + (1 << 30).to_bytes(8, "big") + b"abcd",
                     ship(1, b'{"connectionHello":[' + b"{}," * 2000 + b"{}]}"),
                     frame(9, b"x" * 126)):
            a = Intruder(gw.port)
            await a.cmi()
            a.send(data)
            out.append(await a.closed_within(5))
            a.close()
        out.append(await served(gw, cem) > 0)
        return out

    assert all(run(go()))
    settle(gw, cem)


def test_deep_json(gw, cem):
    """Deeply nested JSON in a control message (pre-auth) and in a SPINE datagram (trusted)."""
    deep = b"[" * 5000 + b"]" * 5000

    async def go():
        a = Intruder(gw.port)
        await a.cmi()
        a.send(ship(1, b'{"connectionHello":' + deep + b"}"))
        gone = await a.closed_within(5)
        a.close()
        # the same nesting in a SPINE datagram from a trusted peer: dropped, the session lives
        t = Intruder(gw.port, cert=(cem.cert_der, cem.key_der))
        await t.data_exchange()
        t.send(frame(2, b'\x02{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":' + deep[:8000] + b"}]}"))
        t.send(frame(9, b"alive"))
        pong = False
        for _ in range(50):
            op, data = await t.read_frame(5)
            if op == 10 and data == b"alive":
                pong = True
                break
        t.close()
        return gone and pong

    assert run(go())
    assert "Traceback" not in gw.output()
    settle(gw, cem)


def test_spine_storm(gw, cem):
    """A trusted peer sends 400 datagrams as fast as it can: the gateway keeps up or drops, a
    second session is served, the heap comes back."""
    dg = (b'{"datagram":[{"header":[{"specificationVersion":"1.3.0"},{"addressSource":[{"device":"d:_i:x"},'
          b'{"entity":[0]},{"feature":0}]},{"addressDestination":[{"entity":[0]},{"feature":0}]},'
          b'{"msgCounter":%d},{"cmdClassifier":"read"}]},{"payload":[{"cmd":[[{"nodeManagementUseCaseData":[]}]]}]}]}')

    async def go():
        p = ShipPeer(cem, ship_id="TrustedCEM-1", timeout=8)
        await p.dial(HOST, gw.port, expected_ski=gw.ski)
        await p.recv_datagram(timeout=8)
        for i in range(400):
            await p.send_raw(data_message(dg % (i + 10)))
        await p.ping(b"alive", timeout=10)
        await p.close()

    run(go())
    settle(gw, cem)
