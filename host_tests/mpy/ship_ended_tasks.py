# What a connection's tasks keep once the connection has ended (host_tests/test_ship_e2e.py).
# A server node accepts a client node's dial over real TLS on 127.0.0.1, both reach data
# exchange, then the client ends the session. Every task made meanwhile (the server's
# connection task, both readers, the watchdogs and wait_for runners) is kept in a list, as
# asyncio itself may keep a finished task for a while (its pairing heap's stale child_last,
# see compat.detached); the live heap with that list against without it is what the ended
# tasks hold. Each connection's SPINE side here holds a 32 KB block (a stand-in for
# the real endpoint), so a task that keeps a connection keeps at least that. Then a client
# that opens TCP and says nothing, until the server's deadline ends its connection: no task
# and no wait in asyncio's IO queue may be left of it. Last, the client's own dial loop
# (ship.cem) runs a session: once it has ended, neither that loop nor the server's accept loop
# (both live on) keeps anything of it.
# Usage: micropython ship_ended_tasks.py DIR (DIR: server.der/.key, client.der/.key, skis.txt)
import asyncio
import gc
import sys

import log
from cases.shipstub import NullSpine
from ship import connection as C
from ship.node import ShipNode
from ship.trust import TrustStore

log.level = -1  # quiet


STANDIN = 32768


class Spine(NullSpine):
    def __init__(self):
        self.standin = bytearray(STANDIN)


def node(d, name, own_ski, peer_ski, timers):
    cert = open(d + "/" + name + ".der", "rb").read()
    key = open(d + "/" + name + ".key", "rb").read()
    trust = TrustStore(d + "/" + name + "-trust.json")
    trust.add(peer_ski)
    cfg = {
        "host": "127.0.0.1", "port": 0, "path": "/ship/", "max_message": 16384, "cem": None,
        "ship_id": "Ended-" + name, "timers": timers,
    }
    return ShipNode(cfg, cert, key, own_ski, trust, lambda peer: Spine())


def in_data(n):
    for lst in n.peers.values():
        for p in lst:
            if p.conn and p.conn.state == C.DATA:
                return p
    return None


# Helpers, so that no Peer of the session is left in a slot of main()'s frame, which lives on
def both_in_data(a, b):
    return in_data(a) is not None and in_data(b) is not None


def end_session(n):
    in_data(n).close()


async def dial_once(client, port, ski):
    await client.dial("127.0.0.1", port, ski)
    return None  # overwrites the frame's slot that held the dial's result, the client's Peer


async def main(d):
    server_ski, client_ski = open(d + "/skis.txt").read().split()
    # the client first: the TLS verify callback (tlsctx.on_cert) is the last node's, and only
    # the server's admission needs it
    client = node(d, "client", client_ski, server_ski, C.Timers())
    # CMI 1 s: also the server's limit for TLS and the upgrade (the silent client below)
    server = node(d, "server", server_ski, client_ski, C.Timers(cmi=1000))
    port = await server.start()
    await asyncio.sleep_ms(20)  # the server's accept loop is waiting on its socket

    made = []  # every task made from here on (the server's own through asyncio.core)
    make = asyncio.core.create_task

    def recording(coro):
        t = make(coro)
        made.append(t)
        return t

    asyncio.create_task = asyncio.core.create_task = recording
    for _ in range(2):  # the second time after one-time allocations (buffers, tables)
        # (the dial's own task is this script's, not counted: the gateway dials from a task
        # that lives on, _dial_loop)
        gc.collect()
        gc.collect()
        before = gc.mem_alloc()
        ioq = len(asyncio.core._io_queue.map)  # the server's listening socket
        dial = make(dial_once(client, port, server_ski))
        for _ in range(200):
            await asyncio.sleep_ms(10)
            if both_in_data(client, server):
                break
        assert both_in_data(client, server), "no data exchange"
        end_session(client)
        await dial
        dial = None
        for _ in range(200):
            await asyncio.sleep_ms(10)
            if not client.peers and not server.peers and all(t.done() for t in made):
                break
        assert not client.peers and not server.peers, (client.peers, server.peers)
        assert all(t.done() for t in made), "a connection task did not end"
        # nothing waits on an ended connection's sockets (reads wait on the TCP socket under
        # the TLS one, tlsctx._TlsStream; writes on the TLS socket)
        assert len(asyncio.core._io_queue.map) == ioq, asyncio.core._io_queue.map
        gc.collect()
        gc.collect()
        kept = gc.mem_alloc()
        n = len(made)
        made.clear()
        gc.collect()
        gc.collect()
        after = gc.mem_alloc()
        # KEPT: held by the ended tasks; LEFT: the session's growth once they are gone
        print("TASKS", n, "KEPT", kept - after, "LEFT", after - before)
    # a client that opens TCP and says nothing: the server's read waits on that socket until
    # its deadline ends the connection, which must take the wait out of the IO queue too
    n = len(made)
    _, w = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(500):
        await asyncio.sleep_ms(10)
        if len(made) > n and all(t.done() for t in made):
            break
    assert len(made) > n and all(t.done() for t in made), "the silent client's connection did not end"
    assert len(asyncio.core._io_queue.map) == ioq, asyncio.core._io_queue.map
    w.close()
    await w.wait_closed()
    print("SILENT ended")
    asyncio.create_task = asyncio.core.create_task = make
    made = None
    # the client's own dial loop (ship.cem): once its session has ended (here: the user took
    # the server's trust back, so the loop then waits for it), neither the dial loop nor the
    # server's accept loop keeps anything of it
    gc.collect()
    gc.collect()
    before = gc.mem_alloc()
    client.dial_cem({"host": "127.0.0.1", "port": port, "ski": server_ski})
    for _ in range(500):  # its first dial comes within 3 s
        await asyncio.sleep_ms(10)
        if both_in_data(client, server):
            break
    assert both_in_data(client, server), "no data exchange from the dial loop"
    client.trust.remove(server_ski)
    for _ in range(300):
        await asyncio.sleep_ms(10)
        if not client.peers and not server.peers:
            break
    assert not client.peers and not server.peers, (client.peers, server.peers)
    await asyncio.sleep_ms(1500)  # the loop is back in its wait for trust
    gc.collect()
    gc.collect()
    print("DIALLOOP LEFT", gc.mem_alloc() - before)
    await client.stop()
    await server.stop()


asyncio.run(main(sys.argv[1]))
