# Stand-in for the ESP32 network module (host tests only): a WLAN station and a LAN that
# "connect" after a number of isconnected() polls (connect_after; None: never).
STA_IF = 0
AP_IF = 1
PHY_LAN8720 = 0
PHY_IP101 = 1
PHY_RTL8201 = 2
PHY_DP83848 = 3
PHY_KSZ8041 = 5
PHY_KSZ8081 = 6
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201

connect_after = 2
made = []  # every interface made
host_name = None
lan_error = None  # an OSError the LAN constructor raises (a PHY that does not answer)


def hostname(name=None):
    global host_name
    if name is None:
        return host_name or "esp32"
    host_name = name


class _Iface:
    def __init__(self):
        self._active = False
        self.polls = 0
        self.config_args = {}
        made.append(self)

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)

    def isconnected(self):
        self.polls += 1
        return connect_after is not None and self._active and self.polls > connect_after

    def status(self, *a):
        if connect_after is not None and self.polls > connect_after:
            return STAT_GOT_IP
        return STAT_CONNECTING

    def ifconfig(self, *a):
        return ("192.168.4.%d" % (2 + len(made)), "255.255.255.0", "192.168.4.1", "192.168.4.1")

    def config(self, *a, **kw):
        self.config_args.update(kw)


class WLAN(_Iface):
    def __init__(self, interface=STA_IF):
        _Iface.__init__(self)
        self.interface = interface
        self.joined = None

    def connect(self, ssid=None, key=None, **kw):
        self.joined = (ssid, key)

    def disconnect(self):
        self.joined = None


class LAN(_Iface):
    def __init__(self, id=None, **kw):
        if lan_error is not None:
            raise lan_error
        _Iface.__init__(self)
        self.kwargs = kw
