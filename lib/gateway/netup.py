# What boot's network bring-up left (gateway/netboot.py does it, for boot.py) and the link
# watch of the running gateway: status, iface and the safe-mode reason, for main(), the mDNS
# announcement, the console's diag.status() and the network watch (Gateway._net_watch).
# Resident for the whole run, so the bring-up itself is not here.
SAFE_FLAG = "/safe"

# what boot did, for main() and diag.status()
safe = None  # why the application must not start, or None
status = {"kind": "none", "up": False, "ip": None, "error": None, "ms": 0}
iface = None  # the WLAN or LAN object

_ANCHOR = ...  # the constant table is not empty (compat.py, "A module's constant table")


def leave_safe(flag=SAFE_FLAG):
    """Remove the flag file; the next reset starts the application."""
    global safe
    try:
        import os

        os.remove(flag)
    except OSError:
        pass
    safe = None


def address(w):
    """The interface's IPv4 address, None without one; never raises."""
    try:
        return w.ifconfig()[0]
    except (AttributeError, OSError):
        return None


class LinkWatch:
    """Link transitions from periodic samples (Wi-Fi drops and rejoins, DHCP hands out a new
    address): step(up, ip) returns "up" when the link has an address again or a new one,
    "down" when it is lost, else None."""

    def __init__(self, up, ip):
        self.up = bool(up and ip)
        self.ip = ip

    def step(self, up, ip):
        if up and ip:
            if not self.up or ip != self.ip:
                self.up = True
                self.ip = ip
                return "up"
            return None
        if self.up:
            self.up = False
            return "down"
        return None


def sample(w):
    """(connected, address) of an interface, kept in status; never raises."""
    try:
        up = bool(w.isconnected())
    except (AttributeError, OSError):
        up = False
    ip = address(w) if up else None
    status["up"] = up
    status["ip"] = ip
    return up, ip
