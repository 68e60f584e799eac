# The gateway application: configuration, identity, trust store and the SHIP node.
# On the device main.py calls main(); on the host tools/host_run.py calls run(). What runs
# once, the set-up of all of it, is gateway.startup, which start-up lets go.
import asyncio
import gc
import time

import log
from charger import F_CHARGING, F_ERROR, F_LINK, F_PLUGGED, F_STATE
from gateway.supervisor import Supervisor

_TAG = "app"
_M_STATE = (1 << F_STATE) | (1 << F_PLUGGED) | (1 << F_CHARGING) | (1 << F_ERROR)


class Gateway:
    def __init__(self, board_path, data_dir, host_files=False, sup=None):
        from gateway import startup

        startup.build(self, board_path, data_dir, host_files, sup or Supervisor(data_dir, _machine()))

    def _charger_event(self, mask):
        # the console and the log ring say what a user needs to see: link and state changes
        ch = self.charger
        # (the EVSE's operating state in EEBUS follows the model by itself: usecases.evse)
        if mask & (1 << F_LINK):
            log.info(_TAG, "charger link %s", "up" if ch.get(F_LINK) else "down")
        if mask & _M_STATE:
            log.info(_TAG, "charger state %s plugged %d charging %d error %s", ch.get(F_STATE),
                     1 if ch.get(F_PLUGGED) else 0, 1 if ch.get(F_CHARGING) else 0, ch.get(F_ERROR))

    def _modbus_requests(self):
        # the bridge task's liveness probe (Supervisor.spawn): moves with every transaction
        return self.bridge.master.requests

    def _echonet_location(self, loc):
        # ECHONET's installation location (0x81) after a Set, on flash as ECHONET requires
        # (gateway.echonet_service reads it back); temp file + rename: a crash mid-write leaves
        # the previous value
        import binascii

        import jsonfile

        try:
            jsonfile.write(self.data_dir + "/echonet.json", {"location": binascii.hexlify(loc).decode()})
        except OSError as x:
            log.warn("echonet", "cannot store the installation location (%s)", x)

    def _spine(self, peer):
        # after the TLS handshake's garbage, before the session's long-lived objects: packed
        # low, as at start-up (gateway.startup._packed), not between that garbage
        gc.collect()
        ep = self.spine.endpoint(peer)
        if log.level < 3:
            return ep
        # the debug tap only at log level 3: the module is not resident otherwise (~0.5 KB)
        from gateway.datatap import DataTap

        return DataTap(ep)

    async def start(self):
        from gateway import startup

        return await startup.start(self)  # which lets gateway.startup go

    def pair_window_s(self):
        return self._pair_s

    def pair(self, seconds=None):
        """Open the pairing window (the console's equivalent of holding the pairing button)."""
        from gateway import pairing

        pairing.open_window(self, seconds or self.pair_window_s(), "console")

    async def _net_watch(self, netup):
        # after a Wi-Fi rejoin or a new DHCP address the multicast memberships and the
        # announced address are stale: join and announce again
        lw = netup.LinkWatch(netup.status["up"], netup.status["ip"])
        while True:
            await asyncio.sleep_ms(self.net_poll_ms)
            ev = lw.step(*netup.sample(netup.iface))
            if ev is None:
                continue
            log.info(_TAG, "network %s%s", ev, " " + lw.ip if ev == "up" else "")
            if ev == "up":
                if self.mdns is not None and self.mdns.responder is not None:
                    self.mdns.responder.configure(ip=lw.ip)
                    self.mdns.changed()
                if self.echonet is not None:
                    self.echonet.rejoin()

    async def _spine_timers(self):
        # LPC/LPP supervision, CEVC slots and rate-limited notifies run without a connection too
        live = self.sup.live
        while True:
            now = time.ticks_ms()
            self.spine.tick(now)
            live.beat("spine", now)
            await asyncio.sleep_ms(250)

    async def shutdown(self, wait_ms=2000):
        """An orderly stop (Ctrl-C, SIGTERM through the host runners, the console's soft
        reset): the mDNS goodbye, so that peers drop the service instead of redialling, then
        every SHIP session closed with connectionClose, bounded by wait_ms."""
        if self.mdns is not None:
            self.mdns.goodbye()
            self.mdns = None
        await self.node.stop(wait_ms)

    async def serve_forever(self, probe=None):
        self.node.probe = probe
        await self.start()
        if probe:
            probe("base")
        await self.sup.wait_fatal()  # a task that died ends the run (main() restarts)


def run(board_path, data_dir, host_files=True, probe=None):
    if probe:
        # the figure is of the gateway's code: the set-up's imports included (no name kept here,
        # or this frame would keep gateway.startup resident for the run)
        __import__("gateway.startup")
        probe("imports")
    from gateway.config import ConfigError

    try:
        gw = Gateway(board_path, data_dir, host_files)
    except ConfigError as e:
        print("config error:", e)
        raise SystemExit(2)
    except OSError as e:
        print("cannot read the device identity in %s (%s); create it with 'tools/gw certs'" % (data_dir, e))
        raise SystemExit(2)
    try:
        asyncio.run(gw.serve_forever(probe))
    except KeyboardInterrupt:
        _stop(gw)
        print("stopped")


def _stop(gw):
    # after Ctrl-C left asyncio.run: the tasks are still queued, run the loop again for the
    # goodbyes (a second Ctrl-C ends it at once)
    try:
        asyncio.run(gw.shutdown())
    except KeyboardInterrupt:
        pass


def _machine():
    try:
        import machine

        return machine
    except ImportError:
        return None


def main(board_path="/board.json", data_dir="/data", flag=None):
    """The device: safe mode, the back-off after crashes, then the gateway; an exception out
    of it (or out of one of its tasks) is logged to flash and restarts the board."""
    from gateway import netboot, netup, supervisor
    from gateway.config import ConfigError

    flag = flag or netup.SAFE_FLAG
    supervisor.early_feed(_machine())  # when boot.py did not (it does, with the config's value)
    sup = Supervisor(data_dir, _machine(), flag)  # counts a watchdog reset, may enter safe mode
    safe = netup.safe or netboot.safe_reason(flag=flag)
    netboot = None  # start() lets the module go (_forget): this frame lives as long as the run
    if safe:
        print("safe mode (%s): the application is not started; diag.resume() leaves it" % safe)
        return
    d = sup.delay_s()
    try:
        if d:
            print("crash %d in a row (%s): starting in %d s, Ctrl-C for the REPL" % (
                sup.state.count, sup.state.last, d))
            sup.sleep(d)
        gw = Gateway(board_path, data_dir, False, sup)
    except KeyboardInterrupt:
        print("stopped")
        return
    except ConfigError as e:
        # restarting cannot fix a configuration: say it and leave the REPL to the user
        print("config error:", e)
        return
    except OSError as e:
        print("cannot read the device identity in %s (%s); create it with 'tools/gw certs'" % (data_dir, e))
        return
    except Exception as e:  # a bug met while setting up counts as a crash too
        sup.crash(e)
        return
    try:
        asyncio.run(gw.serve_forever())
    except KeyboardInterrupt:
        _stop(gw)
        print("stopped")
        sup.release()
    except Exception as e:
        sup.crash(e)
