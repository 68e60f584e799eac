# mDNS node under MicroPython for the netns end-to-end tests (test_mdns_e2e.py):
#   micropython mdns_node.py respond|browse STOPFILE [ip [own_ski]]
# respond: our responder for one SHIP instance; browse: our browser, printing what it finds.
# Creating STOPFILE makes it send the goodbye (respond) and exit.
import asyncio
import os
import sys

from mdns.browse import Browser
from mdns.responder import Responder
from mdns.setup import ship_txt
from mdns.udp import Mdns

SKI = "0123456789abcdef0123456789abcdef01234567"


def _exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False


def _found(b):
    print("COUNT", len(b.found))
    for f in b.found:
        print("FOUND", f.instance, f.ip, f.port, f.ski, f.path, 1 if f.complete else 0)
    f = b.pick()
    if f is not None:
        print("PICK", f.instance, f.ip, f.port, f.ski)


async def main(mode, stop, ip):
    if mode == "respond":
        txt = ship_txt("OpenEVGW-Test-42", SKI, brand="OpenEVGW", model="Test", dtype="ChargingStation", serial="42")
        m = Mdns(responder=Responder("OpenEVGW-Test-42", "openevgw-42", 4712, ip, txt))
    else:
        m = Mdns(browser=Browser(own_ski=SKI), on_change=_found)
    task = asyncio.create_task(m.run())
    print("READY")
    while not _exists(stop):
        await asyncio.sleep_ms(50)
        if m.responder is not None and m.responder.state == 3 and not _exists(stop + ".up"):
            print("UP")
            open(stop + ".up", "w").close()
    m.goodbye()
    print("BYE", m.stats[0], m.stats[1], m.stats[2])
    await asyncio.sleep_ms(10)
    task.cancel()
    m.close()


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"))
