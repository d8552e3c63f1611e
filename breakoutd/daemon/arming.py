"""Arming: watchers planned for their windows, armed on the broker's clock, disarmed.

A watcher waits (``pending``) until its window opens, and a named level's or a
momentum watcher until the broker's history has given what it needs; then a
:class:`WatcherRunner` feeds it the market's bars until it fires or its window
ends. Kept apart from the daemon's wiring (:mod:`breakoutd.daemon.app`) so a
watcher's life from plan to done reads in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from loguru import logger

from breakoutd.calendar import DaySessions, day_sessions, watcher_window
from breakoutd.config import in_force
from breakoutd.core import events as ev
from breakoutd.core.bars import NS, Bar
from breakoutd.core.levels import resolved_spec
from breakoutd.core.params import Rule, Session, WatcherSpec
from breakoutd.core.plans import OrderPlan, Quote
from breakoutd.core.prices import to_decimal, to_micros
from breakoutd.core.watcher import WatcherMachine
from breakoutd.daemon.levels_live import LiveLevels, prior_sessions
from breakoutd.daemon.runner import WatcherRunner
from breakoutd.errors import OrderRejected, TemporaryError
from breakoutd.ibkr.history import minute_trade_bars
from breakoutd.ibkr.market_data import Instrument

if TYPE_CHECKING:
    from breakoutd.daemon.app import Daemon

INSTRUMENT_TIMEOUT = 20.0  # seconds for the gateway to qualify a symbol (a reload must end)
NEVER = 2**63


class Arming:
    """The day's watchers: waiting for their windows, armed (runners), or done."""

    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        self.runners: dict[str, WatcherRunner] = {}
        self.pending: dict[str, tuple[int, WatcherSpec, Instrument, DaySessions]] = {}
        self.instruments: dict[str, Instrument] = {}
        self.with_history: dict[str, asyncio.Task[None]] = {}  # watchers waiting for bars
        self.next_disarm = NEVER  # the earliest disarm_at of the runners (or earlier)

    def todays_spec(self, spec: WatcherSpec) -> WatcherSpec:
        """The watcher as it trades today: a named level as resolved (``LevelResolved``,
        also before a restart) with its ``sl_below`` stop; else as configured."""
        level = self._d.today.levels.get(spec.id) if spec.level_name is not None else None
        return resolved_spec(spec, level) if level is not None else spec

    async def plan(self, specs: Sequence[WatcherSpec]) -> dict[str, str]:
        """Plan every watcher; those that cannot be (id -> ``id: file:line: reason``)."""
        failed: dict[str, str] = {}
        for spec in specs:
            await self.per_watcher(failed, spec, self.plan_one(spec))
        self.arm_due()
        return failed

    async def per_watcher(self, failed: dict[str, str], spec: WatcherSpec,
                          step: Awaitable[object]) -> None:
        """Run one watcher's step; a failure is its own, recorded in ``failed``."""
        try:
            await step
        except Exception as exc:
            where = f"{spec.source.file}:{spec.source.line}" if spec.source else "?"
            failed[spec.id] = f"{spec.id}: {where}: {str(exc) or type(exc).__name__}"
            logger.error("watcher not applied, the others are: {}", failed[spec.id])

    async def arm_scanned(self, specs: Sequence[WatcherSpec]) -> None:
        """Plan the watchers the market scanner made (breakoutd.daemon.scanning), and show them."""
        await self.plan(specs)
        self._d.reloader.show_watchers()

    def report_start(self, failed: dict[str, str]) -> None:
        """Watchers start-up could not arm are left out of the configuration in force."""
        d = self._d
        if not failed or d.config is None:
            return
        d.config = in_force(None, d.config, failed)
        d.emit(ev.ConfigReloaded(at=d.clock(), result="partial", trigger="start-up",
                                 digest=d.config.digest, failed=tuple(failed.values())))

    async def plan_one(self, spec: WatcherSpec) -> None:
        """Arm a watcher at its window's start, or at once when its window is open."""
        d = self._d
        if not spec.enabled or d.store.has_fired(spec.id):
            return
        inst = await self.instrument(spec.symbol)  # raises for a symbol the gateway lacks
        sessions = inst.sessions.get(d.day) or day_sessions(d.day)
        if sessions is None:
            return
        window = watcher_window(spec, sessions)
        now = d.clock()
        if window is None or window[1] <= now:
            return
        # Armed at its window's start, or at once (now) when that start has passed;
        # a named level's watcher not before the level is known.
        arm_at = max(window[0], now, self._known_at(spec, inst, sessions))
        if arm_at >= window[1]:
            return
        self.pending[spec.id] = (arm_at, spec, inst, sessions)
        if arm_at > now:
            d.scheduler.at(f"arm:{spec.id}", arm_at, self._arm_due_job)

    async def disarm(self, watcher_id: str, reason: str) -> None:
        """Stop a watcher that has not fired; cancel an unfilled entry it sent."""
        d = self._d
        self.pending.pop(watcher_id, None)
        d.scheduler.cancel(f"arm:{watcher_id}")
        waiting = self.with_history.pop(watcher_id, None)
        if waiting is not None:
            waiting.cancel()
        runner = self.runners.get(watcher_id)
        if runner is not None and runner.task is None:
            d.market.unsubscribe(runner.spec.symbol, runner)
            self.runners.pop(watcher_id, None)
            d.emit(ev.Stopped(at=d.clock(), watcher_id=watcher_id, reason=reason))
        fired = d.store.state.fired.get(watcher_id)
        if fired is not None and d.router is not None:
            entry = d.router.entry(fired.order_ref)
            if entry is not None and entry.unfilled:
                await d.router.cancel_entry(fired.order_ref)

    async def instrument(self, symbol: str) -> Instrument:
        """The qualified contract of a symbol, asked of the gateway once a day."""
        if symbol not in self.instruments:
            try:
                inst = await asyncio.wait_for(self._d.market.instrument(symbol),
                                              INSTRUMENT_TIMEOUT)
            except TimeoutError:
                raise TemporaryError(f"the gateway did not describe {symbol} within "
                                     f"{INSTRUMENT_TIMEOUT:g} s") from None
            self.instruments[symbol] = inst  # only a success is kept: a failure is retried
        return self.instruments[symbol]

    def _known_at(self, spec: WatcherSpec, inst: Instrument, sessions: DaySessions) -> int:
        if spec.level_name is None:
            return 0
        rng = LiveLevels.range_of(spec, sessions, prior_sessions(sessions, inst.sessions))
        return rng.known_at if rng is not None else 0

    async def history(self, symbol: str, start: int, end: int) -> list[Bar]:
        inst = await self.instrument(symbol)
        return await minute_trade_bars(self._d.ib, inst.contract, start, end)

    def _arm_later(self, spec: WatcherSpec, inst: Instrument, sessions: DaySessions,
                   a: int, z: int) -> None:
        """Arm once the broker's history has given the level and the day's volumes."""
        task = asyncio.get_running_loop().create_task(self._arm_with_history(
            spec, inst, sessions, a, z))
        self.with_history[spec.id] = task
        task.add_done_callback(lambda t: self.with_history.pop(spec.id, None)
                               if self.with_history.get(spec.id) is t else None)

    async def _arm_with_history(self, spec: WatcherSpec, inst: Instrument,
                                sessions: DaySessions, a: int, z: int) -> None:
        d = self._d
        try:
            if spec.level_name is not None:
                rng = LiveLevels.range_of(spec, sessions, prior_sessions(sessions, inst.sessions))
                resolved = await d.levels.resolve(spec, rng) if rng is not None else None
                if resolved is None:
                    d.emit(ev.Expired(at=d.clock(), watcher_id=spec.id, reason="no_level",
                                      bars_evaluated=0))
                    return
                d.emit(resolved)
                spec = resolved_spec(spec, to_micros(resolved.price))
            volumes = None
            if spec.params.rule is Rule.MOMENTUM:
                volumes = await d.levels.volumes_before(spec, sessions, a,
                                                        spec.params.bar_seconds * NS)
        except Exception as exc:  # the watcher cannot start without its history: say why
            logger.opt(exception=exc).error("{}: no historical bars: {}", spec.id, exc)
            d.emit(ev.Expired(at=d.clock(), watcher_id=spec.id, reason="no_level",
                              bars_evaluated=0))
            return
        if z > d.clock():
            self._arm(spec, inst, sessions, a, z, volumes)

    async def _arm_due_job(self) -> None:
        # A coroutine, so APScheduler runs it on the event loop, not in its thread pool.
        self.arm_due()

    def arm_due(self) -> None:
        now = self._d.clock()
        for wid, (arm_at, spec, inst, sessions) in list(self.pending.items()):
            if arm_at > now or self.pending.pop(wid, None) is None:
                continue
            window = watcher_window(spec, sessions)
            if window is None or window[1] <= now:
                continue
            # A is the planned instant, not when this loop noticed it: a bar starting
            # exactly at the session's start is the watcher's (strategy.md).
            if spec.level_name is not None or spec.params.rule is Rule.MOMENTUM:
                self._arm_later(spec, inst, sessions, arm_at, window[1])
            else:
                self._arm(spec, inst, sessions, arm_at, window[1])

    def _arm(self, spec: WatcherSpec, inst: Instrument, sessions: DaySessions, a: int, z: int,
             volumes: list[int] | None = None) -> None:
        d = self._d
        machine = WatcherMachine(spec, a, z)
        if volumes:
            machine.seed_volumes(volumes)

        windows = [(*sessions.window(s), s.value) for s in Session]

        def session_of(at: int) -> str:  # sessions.session_at(at - 1), on the entry's path
            for start, end, name in windows:
                if start <= at - 1 < end:
                    return name
            return "rth"

        runner = WatcherRunner(machine, day=d.day.strftime("%Y%m%d"), session_of=session_of,
                               emit=d.emit, clock=d.clock, port=_Port(d, inst),
                               gate=d.today, on_done=self._done)
        self.runners[spec.id] = runner
        self.next_disarm = min(self.next_disarm, z)
        d.market.subscribe(inst, runner, machine.close_bar_size, machine.level)
        if d.router is not None:
            # Each session the watcher may enter in has its own orderRef: its bracket
            # is written ahead (ids and price left), its shapes learnt.
            first = max(a, d.clock())
            for start, end, _ in windows:
                at = max(start, first)
                sample = runner.sample_plan(at + 1) if at < min(end, z) else None
                if sample is not None:
                    d.router.prepare(inst.contract, sample)
        d.emit(ev.WatcherStarted(at=a, watcher_id=spec.id, symbol=spec.symbol,
                                 level=to_decimal(spec.level),
                                 session_day=d.day.isoformat(), disarm_at=z))

    def _done(self, runner: WatcherRunner) -> None:
        d = self._d
        d.market.unsubscribe(runner.spec.symbol, runner)
        self.runners.pop(runner.spec.id, None)
        if d.router is not None:
            for ref in runner.order_refs:
                d.router.unprepare(ref)

    def on_time(self, settled: int) -> None:
        """Let the runners whose windows may have ended see the settled time."""
        if settled >= self.next_disarm:  # not a walk over every runner each tick
            for runner in list(self.runners.values()):
                runner.on_time(settled)
            self.next_disarm = min((r.machine.disarm_at for r in self.runners.values()),
                                   default=NEVER)


class _Port:
    """The runner's view of the daemon: quotes and the router for one instrument."""

    def __init__(self, daemon: Daemon, inst: Instrument) -> None:
        self._daemon = daemon
        self._inst = inst

    async def fresh_quote(self, symbol: str, max_age: int, warmup: float
                          ) -> tuple[Quote | None, int | None]:
        return await self._daemon.market.fresh_quote(symbol, max_age, warmup)

    def last_quote(self, symbol: str) -> Quote | None:
        stream = self._daemon.market.stream(symbol)
        return stream.quote if stream is not None else None

    def degraded(self, symbol: str) -> str | None:
        return self._daemon.degraded_reason(symbol)

    def send(self, plan: OrderPlan, level: int, announce: Callable[[], None]) -> None:
        router = self._daemon.router
        if router is None:
            raise OrderRejected("no broker connection yet")
        slices = self._daemon.slices
        if slices.slices_entry(plan.watcher_id):
            slices.send_entry(plan, self._inst.contract, level, announce)
            return
        router.send_now(plan, self._inst.contract, level, announce)
