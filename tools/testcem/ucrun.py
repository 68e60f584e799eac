"""Running the use cases on a live SpineCem: the test CEM's counterpart of eebus-go's use-case event loop.

    cem = SpineCem(peer)                      # handshake done
    ucs = CemUseCases(cem, on_event=print)    # right away: adds our client features and use cases
    await ucs.start()                         # discovery, then every available use case's start()
    r, notes = await ucs.opev.write_limits([10, 10, 10])
    await ucs.lpc.write_limit(4200, duration=7200)
    ucs.stop_heartbeat()                      # the station should go to LPC failsafe after 120 s

``CemUseCases`` keeps a ``RemoteData`` copy of the station's data from our reads' replies and from
notifies (SpineCem.notify_listeners), starts a use case when it becomes available (also after an EV
plug-in), re-reads data when the station notifies new descriptions (as eebus-go does), and turns data
changes into ``Event`` lines ("EVCEM: I = 10.5/10.5/10.5 A", "EV connected (1.1)", ...). It also
announces our use cases (actor CEM / EnergyBroker / EnergyGuard / MonitoringAppliance) and runs our
DeviceDiagnosis heartbeat.
"""

import asyncio
import time

from .spinemsg import SpineError, SpineResultError, format_address
from .ucdata import RemoteData
from .ucbase import WriteError
from .usecases import ALL_USE_CASES, our_use_case_table

__all__ = ["CemUseCases", "Event"]

_NM = ("nodeManagementDetailedDiscoveryData", "nodeManagementUseCaseData")


class Event:
    """One readable change: ``t`` (s since the manager started), ``usecase`` (label or ""), ``kind``,
    ``entity`` (tuple or None), ``text``."""

    __slots__ = ("t", "usecase", "kind", "entity", "text")

    def __init__(self, t, usecase, kind, entity, text):
        self.t = t
        self.usecase = usecase
        self.kind = kind
        self.entity = entity
        self.text = text

    def describe(self):
        return self.text

    __str__ = describe

    def __repr__(self):
        return "Event(%s)" % self.text


class CemUseCases:
    """The use cases (``evsecc``, ``evcc``, ``evcem``, ``opev``, ``oscev``, ``evsoc``, ``cevc``, ``lpc``,
    ``mpc``, ``evcs`` attributes) on one SpineCem. Create it before the station reads our discovery.

    ``on_event(Event)`` is called for every event; ``heartbeat``: period (s) of our heartbeat started by
    ``start`` (None: no heartbeat); ``timeout``: bound for each SPINE request. ``events``, ``problems``
    (text) and ``results`` ((what, Result)) collect what happened."""

    def __init__(self, cem, classes=ALL_USE_CASES, on_event=None, heartbeat=2.0, timeout=None):
        self.cem = cem
        self.data = RemoteData(cem.remote)
        self.usecases = [c(self.data, self) for c in classes]
        for uc in self.usecases:
            setattr(self, uc.key, uc)
        self.on_event = on_event
        self.heartbeat_period = heartbeat
        self.timeout = timeout
        self.events = []
        self.problems = []
        self.notes = []                # answers that are fine for a CEM (e.g. error 6 to a constraints read)
        self.results = []
        self._t0 = time.monotonic()
        self._started = set()          # (use case key, entity): start() done, events and re-reads on
        self._starting = set()         # start() under way
        self._last = {}                # (use case key, entity, kind) -> text last emitted
        self._known = None             # entities of the last refresh (None before the first)
        self._lock = asyncio.Lock()
        self._tasks = set()
        self._pending_reads = set()
        self._event_flag = asyncio.Event()
        self._event_cursor = 0
        self._install()

    def _install(self):
        types = {"DeviceClassification", "DeviceDiagnosis", "DeviceConfiguration", "Identification"}
        for uc in self.usecases:
            for _s, needed, _m in uc.scenarios:
                types.update(needed)
        for t in sorted(types):
            self.cem.add_local_feature(t, "client")
        self.cem.use_case_table = our_use_case_table([type(u) for u in self.usecases])
        self.cem.notify_listeners.append(self._on_notify)

    # ------------------------------------------------------------------ life cycle

    async def start(self, timeout=None):
        """The CEM start-up (unless already done), our heartbeat, then every available use case."""
        t = self.timeout if timeout is None else timeout
        if self.cem.remote is None:
            await self.cem.startup(timeout=t)
        elif not self.cem.use_cases:
            await self.cem.read_usecases(timeout=t)
        self._sync()
        if self.heartbeat_period:
            self.start_heartbeat(self.heartbeat_period)
        await self._refresh()
        return self

    def check(self):
        """Availability of every use case, in words (one line or more each)."""
        self._sync()
        lines = []
        for uc in self.usecases:
            lines.extend(uc.check())
        return lines

    async def settle(self, timeout=5.0):
        """Wait until the reactions to notifies (refreshes, re-reads) are done (bounded)."""
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(list(self._tasks), timeout=max(0.0, deadline - time.monotonic()))

    async def close(self):
        if self._on_notify in self.cem.notify_listeners:
            self.cem.notify_listeners.remove(self._on_notify)
        for t in list(self._tasks):
            t.cancel()
        self._tasks.clear()

    def start_heartbeat(self, period=None):
        self.cem.start_heartbeat(period or self.heartbeat_period or 2.0)

    def stop_heartbeat(self):
        """Stop our heartbeat (to provoke the station's LPC failsafe / OPEV fallback)."""
        self.cem.stop_heartbeat()

    # ------------------------------------------------------------------ events

    def _now(self):
        return round(time.monotonic() - self._t0, 3)

    def _emit(self, usecase, kind, entity, text):
        ev = Event(self._now(), usecase, kind, entity, text)
        self.events.append(ev)
        self._event_flag.set()
        if self.on_event is not None:
            try:
                self.on_event(ev)
            except Exception as e:  # noqa: BLE001 - a broken printer must not stop the CEM
                self.problems.append("on_event: %r" % (e,))
        return ev

    async def next_event(self, match=None, timeout=5.0):
        """The next event not yet returned by next_event whose text contains ``match`` (or any);
        SpineError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            while self._event_cursor < len(self.events):
                ev = self.events[self._event_cursor]
                self._event_cursor += 1
                if match is None or match in ev.text:
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                raise SpineError("no event%s within %.1f s" % (" %r" % match if match else "", timeout), timeout=True)
            self._event_flag.clear()
            try:
                await asyncio.wait_for(self._event_flag.wait(), left)
            except asyncio.TimeoutError:
                pass

    def _summaries(self, uc, ent):
        try:
            items = uc.summaries(ent)
        except Exception as e:  # noqa: BLE001 - odd data must not stop the CEM; report it
            self.problems.append("%s summary on %s: %r" % (uc.label, format_address(ent), e))
            return
        for kind, text in items:
            key = (uc.key, ent, kind)
            if self._last.get(key) != text:
                self._last[key] = text
                self._emit(uc.label, kind, ent, text)
        for w in uc.warnings:
            key = (uc.key, ent, "warning:" + w)
            if key not in self._last:
                self._last[key] = w
                self._emit(uc.label, "warning", ent, "warning: %s" % w)

    # ------------------------------------------------------------------ reacting to the station

    def _sync(self):
        if self.data.remote is not self.cem.remote:
            self.data.remote = self.cem.remote

    def _spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t):
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self.problems.append("background task: %r" % (t.exception(),))
        task.add_done_callback(done)
        return task

    def _on_notify(self, dg):
        self._sync()
        if dg.function in _NM:
            self._spawn(self._refresh())
            return
        for change, ent, ftype, fn in self.data.feed(dg, nodemanagement=False):
            if change == "data":
                self._after_data(ent, ftype, fn, notify=True)

    def _after_data(self, ent, ftype, fn, notify):
        for uc in self.usecases:
            if (uc.key, ent) not in self._started:
                continue
            self._summaries(uc, ent)
            want = uc.react.get(fn) if notify else None
            if want and (ent, ftype, want) not in self._pending_reads:
                self._pending_reads.add((ent, ftype, want))
                self._spawn(self._react_read(ent, ftype, want))

    async def _react_read(self, ent, ftype, fn):
        try:
            await self.read(ent, ftype, fn)
        finally:
            self._pending_reads.discard((ent, ftype, fn))

    async def _refresh(self):
        """Entity and use-case changes: events for added/removed entities, start newly available use
        cases (eebus-go reacts to the entity, we wait for the use case too - order is not guaranteed)."""
        async with self._lock:
            self._sync()
            remote = self.data.remote
            now = set(remote.entities) if remote is not None else set()
            if self._known is not None:
                for e in sorted(now - self._known):
                    et = remote.entities[e].type
                    self._emit("", "entity", e, "%s entity %s added" % (et, format_address(e)))
                for e in sorted(self._known - now):
                    self._emit("", "entity", e, "EV disconnected (%s)" % format_address(e) if len(e) > 1
                               else "entity %s removed" % format_address(e))
            for e in (self._known or set()) - now:
                self.data.drop_entity(e)
                self._started = {s for s in self._started if s[1][:len(e)] != e}
                self._last = {k: v for k, v in self._last.items() if k[1] is None or k[1][:len(e)] != e}
            self._known = now
            for uc in self.usecases:
                ent = uc.available()
                for s in [s for s in self._started if s[0] == uc.key and s[1] != ent]:
                    self._started.discard(s)
                if ent is None:
                    lines = uc.check()
                    key = (uc.key, None, "availability")
                    text = "; ".join(lines)
                    announced = any(u.name == uc.name for u in (remote.use_cases if remote else []))
                    if announced and self._last.get(key) != text:
                        self._last[key] = text
                        self._emit(uc.label, "availability", None, text)
                    continue
                if (uc.key, ent) in self._started or (uc.key, ent) in self._starting:
                    continue
                self._starting.add((uc.key, ent))
                scen = uc.entity_scenarios().get(ent, [])
                self._last[(uc.key, None, "availability")] = None
                self._emit(uc.label, "availability", ent, "%s: available on %s, scenarios %s" % (
                    uc.label, format_address(ent), ",".join(map(str, scen))))
                try:
                    await uc.start(ent)
                except SpineError as e:
                    self.problems.append("%s start on %s: %s" % (uc.label, format_address(ent), e))
                finally:
                    self._starting.discard((uc.key, ent))
                # events only from now on: no half-read states while start() reads in order
                self._started.add((uc.key, ent))
                self._summaries(uc, ent)

    # ------------------------------------------------------------------ requests for the use cases

    def _where(self, ent, ftype, fn=None):
        return "%s %s%s" % (format_address(ent), ftype, (" " + fn) if fn else "")

    async def subscribe(self, ent, ftype):
        """Subscribe our client feature to the station's server feature (once)."""
        f = self.data.server(ent, ftype)
        if f is None:
            return None
        client = self.cem.local_address(self.cem.local_feature(ftype, "client"))
        if any(s[0] == client and s[1] == f.address for s in self.cem.subscriptions):
            return None
        try:
            r = await self.cem.subscribe(f.address, timeout=self.timeout)
        except SpineError as e:
            self.problems.append("subscribe %s: %s" % (self._where(ent, ftype), e))
            return None
        if not r.ok:
            self.problems.append("subscribe %s: result %s %s" % (self._where(ent, ftype), r.error_number,
                                                                 r.description or ""))
        return r

    async def bind(self, ent, ftype):
        """Bind our client feature to the station's server feature (once)."""
        f = self.data.server(ent, ftype)
        if f is None:
            return None
        if self.cem.is_bound(f.address):
            return None
        try:
            r = await self.cem.bind(f.address, timeout=self.timeout)
        except SpineError as e:
            self.problems.append("bind %s: %s" % (self._where(ent, ftype), e))
            return None
        if not r.ok:
            self.problems.append("bind %s: result %s %s" % (self._where(ent, ftype), r.error_number,
                                                            r.description or ""))
        return r

    async def read(self, ent, ftype, fn, selectors=None):
        """Read a function of the station's server feature and store the reply. Like eebus-go: nothing is
        sent for a function the feature does not announce for reading, and selectors are dropped unless
        the function announces partial read AND partial write. Returns the data or None."""
        f = self.data.server(ent, ftype)
        if f is None or not f.can_read(fn):
            return None
        if selectors is not None and not (f.read_partial(fn) and f.write_partial(fn)):
            selectors = None
        try:
            dg = await self.cem.read(f.address, fn, selectors=selectors, timeout=self.timeout, raw=True)
        except SpineResultError as e:
            text = "read %s: result %s %s" % (self._where(ent, ftype, fn), e.error_number, e.description or "")
            # constraints are optional: CEMs tolerate an error (Elli, NIBE - spine.md 4)
            (self.notes if "Constraints" in fn else self.problems).append(text.rstrip())
            return None
        except SpineError as e:
            self.problems.append("read %s: %s" % (self._where(ent, ftype, fn), e))
            return None
        self._sync()
        data = self.data.put(ent, ftype, fn, dg.data, partial=selectors is not None or dg.partial)
        self._after_data(ent, ftype, fn, notify=False)
        return data

    async def write(self, ent, ftype, fn, data, partial=None, delete=None):
        """Bind if needed, write, return the Result (also in ``results`` and as an event)."""
        f = self.data.server(ent, ftype)
        if f is None:
            raise WriteError("no %s server feature on %s" % (ftype, format_address(ent)))
        await self.bind(ent, ftype)
        r = await self.cem.write(f.address, fn, data, partial=partial, delete=delete, timeout=self.timeout)
        what = "write %s" % self._where(ent, ftype, fn)
        self.results.append((what, r))
        self._emit("", "result", ent, "%s: %s" % (what, format_result(r)))
        return r

    # ------------------------------------------------------------------ conveniences for the CLI

    async def opev_off(self, uc=None):
        """Deactivate the per-phase limits (writes the phase values eebus-go reports, inactive)."""
        uc = uc or self.opev
        lim = uc.limits() or []
        if not lim:
            raise WriteError("%s: no limits known" % uc.label)
        return await uc.write_limits([v for _p, v, _a, _c in lim], active=False)


def parse_phase_values(text):
    """"10,10,10" -> [10.0, 10.0, 10.0]; "16" -> [16.0]; "off" -> "off". ValueError otherwise."""
    t = text.strip().lower()
    if t == "off":
        return "off"
    vals = [float(x) for x in t.split(",") if x.strip() != ""]
    if not 1 <= len(vals) <= 3 or any(v < 0 for v in vals):
        raise ValueError("give 1 to 3 currents in A, e.g. 10,10,10, or off")
    return vals


def parse_power_duration(text, need_power=True):
    """"4200" -> (4200.0, None); "4200:3600" -> (4200.0, 3600.0); ":7200" -> (None, 7200.0);
    "off" -> ("off", None)."""
    t = text.strip().lower()
    if t == "off":
        return "off", None
    p, _, d = t.partition(":")
    watts = float(p) if p.strip() else None
    secs = float(d) if d.strip() else None
    if (need_power and watts is None) or (watts is None and secs is None):
        raise ValueError("give W[:seconds], e.g. 4200:3600")
    if (watts is not None and watts < 0) or (secs is not None and secs < 0):
        raise ValueError("negative values are not allowed")
    return watts, secs


def format_result(r):
    return "ok" if r.ok else "result %s%s" % (r.error_number, " (%s)" % r.description if r.description else "")


__all__ += ["parse_phase_values", "parse_power_duration", "format_result"]
