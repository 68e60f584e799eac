"""Multicast scenarios, run inside a private network namespace by test_echonet_netns.py
(`unshare -rn`, lo up with multicast and a 224.0.0.0/4 route): nothing leaves the namespace.

The node (lib/echonet under MicroPython) binds 127.0.0.2:3610 and 224.0.23.0:3610; pychonet
binds 0.0.0.0:3610 with its multicast interface on 127.0.0.1, as Home Assistant binds.
  1. passive discovery: pychonet hears the node's start-up INF 0xD5 and calls its
     discover_callback;
  2. multicast discovery: pychonet, the node forgotten, discover()s (Get 0xD6 to 224.0.23.0) is answered
     by unicast from 127.0.0.2; the callback completes discovery with discover(host);
  3. an announcement: the EV plugs in, the node multicasts INF 0xC7, pychonet's state and
     update callback follow.
Prints "RESULT <json>" and exits 0, or raises."""

import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # host_tests/

from support.echonet_node_proc import DEV, Node
from pychonet import ECHONETAPIClient
from pychonet.lib.udpserver import UDPServer


def controller():
    udp = UDPServer(local_ip="127.0.0.1")
    udp.run("0.0.0.0", 3610, asyncio.get_running_loop())
    api = ECHONETAPIClient(udp)
    api.configure(message_timeout=50, logger=lambda *a: None)
    return udp, api


async def until(cond, timeout):
    for _ in range(int(timeout / 0.05)):
        if cond():
            return True
        await asyncio.sleep(0.05)
    return cond()


async def main():
    res = {}
    # 1. passive: the controller listens first, then the node starts and announces itself
    udp, api = controller()
    heard = []

    async def passive(host):
        if host != "127.0.0.1":
            heard.append(host)

    api.configure(discover_callback=passive)
    node = Node(multicast=True, announce_ms=100)
    try:
        res["joined"] = node.ready.group(3) == "1"
        res["passive"] = await until(lambda: heard, 5) and heard[0]

        # 2. active multicast discovery, the node forgotten first (a second UDPServer in the
        # same loop would inherit the first one's fd reader: pychonet's close() leaves it)
        api.unregister_host(DEV)
        done = asyncio.Event()

        async def found(host):
            if host == "127.0.0.1":
                return  # pychonet hears its own multicast Get looped back
            res.setdefault("callback", host)
            await api.discover(host)
            done.set()

        api.configure(discover_callback=found)
        await api.discover()  # multicast Get 0xD6; returns False by design (reference 11.4)
        await asyncio.wait_for(done.wait(), 10)
        st = api.state[DEV]
        res["discovered"] = bool(st.get("discovered"))
        res["instances"] = {"%02x%02x" % (g, c): sorted(st["instances"][g][c]) for g in st["instances"]
                            for c in st["instances"][g]}
        res["maps"] = await api.getAllPropertyMaps(DEV, 2, 0xA1, 1)

        # 3. the EV plugs in: an INF of 0xC7 reaches pychonet by multicast
        pushes = []

        async def on_update(is_push):
            pushes.append(is_push)

        api.register_async_update_callbacks(DEV, 2, 0xA1, 1, on_update)
        inst = api.state[DEV]["instances"][2][0xA1][1]
        res["c7_before"] = (inst.get(0xC7) or b"").hex()
        node.cmd("plug")
        await until(lambda: inst.get(0xC7) == b"\x41", 5)
        res["c7_after"] = (inst.get(0xC7) or b"").hex()
        res["pushed"] = True in pushes
        res["stats"] = node.stats()
    finally:
        udp.close()
        node.close()
    print("RESULT " + json.dumps(res))


asyncio.run(asyncio.wait_for(main(), 60))
