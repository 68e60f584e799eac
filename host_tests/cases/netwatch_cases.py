# Link supervision of the device runtime (lib/gateway/netup.py LinkWatch, sample): the
# transitions after which the gateway re-joins multicast groups and re-announces itself.
# Runs under CPython and MicroPython.
from gateway import netup


class Iface:
    def __init__(self):
        self.connected = True
        self.addr = "192.168.1.50"

    def isconnected(self):
        return self.connected

    def ifconfig(self):
        if self.addr is None:
            raise OSError(5)
        return (self.addr, "255.255.255.0", "192.168.1.1", "192.168.1.1")


def case_transitions():
    w = Iface()
    lw = netup.LinkWatch(*netup.sample(w))
    assert lw.step(*netup.sample(w)) is None
    w.connected = False
    assert lw.step(*netup.sample(w)) == "down"
    assert netup.status["up"] is False and netup.status["ip"] is None
    assert lw.step(*netup.sample(w)) is None
    w.connected = True
    assert lw.step(*netup.sample(w)) == "up" and lw.ip == "192.168.1.50"
    w.addr = "192.168.1.77"  # a new DHCP lease without a visible drop
    assert lw.step(*netup.sample(w)) == "up" and lw.ip == "192.168.1.77"
    assert netup.status["ip"] == "192.168.1.77"


def case_booted_without_link_then_up():
    w = Iface()
    w.connected = False
    lw = netup.LinkWatch(False, None)
    assert lw.step(*netup.sample(w)) is None
    w.connected = True
    w.addr = None  # connected, address not yet readable
    assert lw.step(*netup.sample(w)) is None
    w.addr = "10.0.0.9"
    assert lw.step(*netup.sample(w)) == "up"


def case_broken_interface_never_raises():
    class Broken:
        pass

    assert netup.sample(Broken()) == (False, None)
