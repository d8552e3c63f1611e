"""The daemon: watchlists in, watchers armed on the broker's clock, entries routed.

Wiring only: the rules are in :mod:`breakoutd.core`, the broker in
:mod:`breakoutd.ibkr`. Order of start-up: journal and state, configuration,
connection (paper guard), reconciliation of today's orders by orderRef, then
arming, so a watcher that fired before a restart is never armed again.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ib_async import IB
from loguru import logger

from breakoutd.calendar import DaySessions, day_sessions, exchange_date, watcher_window
from breakoutd.collector import SurvivorFreezer
from breakoutd.config import (
    ConfigError,
    ReloadPlan,
    Watchlist,
    in_force,
    load_watchlists,
    plan_reload,
    snapshot_path,
    write_snapshot,
)
from breakoutd.core import events as ev
from breakoutd.core.bars import NS, Bar
from breakoutd.core.ledger import DISK_HALT
from breakoutd.core.levels import resolved_spec
from breakoutd.core.params import RiskLimits, Rule, Session, WatcherSpec
from breakoutd.core.plans import OrderPlan, Quote
from breakoutd.core.prices import to_decimal, to_micros
from breakoutd.core.watcher import WatcherMachine
from breakoutd.daemon.background import short_gil_switches
from breakoutd.daemon.control import ControlServer, control_socket_path
from breakoutd.daemon.controls import Controls
from breakoutd.daemon.disk import (
    RESERVE_BYTES,
    START_ROOM,
    DiskError,
    DiskWorker,
    SpaceReserve,
    describe_failure,
)
from breakoutd.daemon.disk_guard import DiskGuard
from breakoutd.daemon.history_pacing import HistoryPacer
from breakoutd.daemon.journal import Journal
from breakoutd.daemon.levels_live import LiveLevels, prior_sessions
from breakoutd.daemon.management import PositionManager
from breakoutd.daemon.metrics import DaemonMetrics, MetricsServer, Snapshot, on_loop, usd
from breakoutd.daemon.notify import SystemdNotifier
from breakoutd.daemon.positions import HeldData
from breakoutd.daemon.recording import Recording, tapes_dir
from breakoutd.daemon.reload import watch_forever
from breakoutd.daemon.reload_notes import reload_notes
from breakoutd.daemon.runner import WatcherRunner
from breakoutd.daemon.scanning import Scanning
from breakoutd.daemon.schedule import SessionScheduler
from breakoutd.daemon.slices import SliceManager
from breakoutd.daemon.state import FiredEntry, StateStore
from breakoutd.daemon.status import StatusBoard, status_path
from breakoutd.daemon.status_replay import journal_events
from breakoutd.daemon.trading_day import TradingDay
from breakoutd.errors import OperationalError, OrderRejected, TemporaryError
from breakoutd.ibkr.broker_clock import BrokerClock, host_seconds, sync_clock
from breakoutd.ibkr.connection import ConnectionSupervisor, unless_stopped
from breakoutd.ibkr.history import minute_trade_bars
from breakoutd.ibkr.market_data import Instrument, MarketData
from breakoutd.ibkr.reconcile import ReconciledEntry, reconcile
from breakoutd.ibkr.router import OrderRouter
from breakoutd.ibkr.settings import BrokerSettings
from breakoutd.ibkr.wire.version import check_version as check_ib_async_version

TICK_SECONDS = 0.05
_NEW_DAY_KEY = "new-day"  # the disk failure of a day's journal that could not be opened
HEALTHY_TICK_AGE = 5.0  # seconds without a main-loop tick before the watchdog stops
GATEWAY_EVENTS = (ev.GatewayMessage,)
# Events that change what the ledger holds: the data held for positions follows them.
HOLDING_EVENTS = (ev.OrderIntent, ev.OrderFilled, ev.OrderStatusChanged)
# Events after which the kill switch looks at the day's P&L and losing streak.
MONEY_EVENTS = (ev.OrderFilled, ev.CommissionReported)
INSTRUMENT_TIMEOUT = 20.0  # seconds for the gateway to qualify a symbol (a reload must end)
_NEVER = 2**63
RESERVE_FILE = "space.reserve"  # breakoutd.daemon.disk.SpaceReserve


class Daemon:
    """One trading day's daemon process."""

    def __init__(self, *, watchlists: Sequence[Path], var: Path, settings: BrokerSettings,
                 clock: Callable[[], int], log_event: Callable[[ev.Event], None],
                 ib: IB | None = None, notifier: SystemdNotifier | None = None,
                 record: bool = False, metrics: tuple[str, int] | None = None) -> None:
        """``clock`` is the broker's: a :class:`BrokerClock` is aligned with the
        gateway after connecting; any other callable (the embedded sim's) is used as is.
        With ``record``, what the market data reads is written as tapes under
        ``<var>/tapes``. With ``metrics`` (host, port), Prometheus metrics are served there.
        OperationalError when the installed ib_async is not the one the fence
        (:mod:`breakoutd.ibkr.wire`) was written for."""
        check_ib_async_version()
        self.watchlist_paths = list(watchlists)
        self.var = var
        self.settings = settings
        self.clock = clock
        self._log = log_event
        self.ib = ib or IB()
        self.day = exchange_date(clock())
        self.journal: Journal | None = None
        self._early: list[ev.Event] = []  # events before the broker's day is known
        self._early_ops: list[dict[str, Any]] = []
        self.disk = DiskWorker()  # journal syncs and state saves, off the event loop
        self.reserve = SpaceReserve(var / RESERVE_FILE)  # room for lines when the disk fills
        self.guard = DiskGuard(self)  # no entry while the journal or state cannot be written
        self.today = TradingDay(var, self.day, RiskLimits(), self.disk)
        self.config: Watchlist | None = None
        self.runners: dict[str, WatcherRunner] = {}
        self.pending: dict[str, tuple[int, WatcherSpec, Instrument, DaySessions]] = {}
        self.instruments: dict[str, Instrument] = {}
        self.supervisor = ConnectionSupervisor(self.ib, settings, emit=self.emit, clock=clock)
        if isinstance(clock, BrokerClock):  # a simulated gateway announces its clock
            self.ib.errorEvent += clock.on_gateway_message
        self.scheduler = SessionScheduler(clock)
        self.recording = Recording(tapes_dir(var), clock, self.emit) if record else None
        self.market = MarketData(self.ib, clock=clock, emit=self.emit, tap=self.recording)
        loop_time = lambda: asyncio.get_running_loop().time()  # noqa: E731
        self.levels = LiveLevels(self._history, HistoryPacer(loop_time, asyncio.sleep))
        self._with_history: dict[str, asyncio.Task[None]] = {}  # watchers waiting for bars
        self.router: OrderRouter | None = None
        self.state = "starting"
        self._phase = "starting"  # starting, running, stopping, stopped (see refresh_state)
        self.refused = False  # the account must not be traded: the daemon stops
        self.controls = Controls(self)
        self.manager = PositionManager(self)  # breakeven, trail and time exits of positions
        self.scanning = Scanning(self)  # the watchlists' scan: block (watchers scan:SYMBOL)
        self.slices = SliceManager(self)  # the later slices of sliced entries
        self.held = HeldData(self.market, lambda: self.today.ledger, self.instrument,
                             self.controls.check_trip)
        self.held.on_bar.append(self.manager.on_bar)
        self._holding: asyncio.Task[None] | None = None
        self._hold_again = False
        self.control: ControlServer | None = None
        self.notifier = notifier or SystemdNotifier(env={})  # silent unless given one
        self.status = StatusBoard(status_path(var), clock=clock, last_price=self._last_price,
                                  disk=self.disk)
        self._last_tick = 0.0
        self._reload_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[object]] = []
        self._freezer = SurvivorFreezer()
        self._next_disarm = _NEVER  # the earliest disarm_at of the runners (or earlier)
        # Sees a valid new configuration before it applies (the embedded sim adds markets).
        self.before_reload: Callable[[Watchlist], object] = lambda config: None
        self.said: OperationalError | None = None  # the error the daemon stopped on, logged
        self.metrics_address = metrics
        self.metrics: DaemonMetrics | None = None
        self.metrics_server: MetricsServer | None = None

    @property
    def store(self) -> StateStore:
        """Today's state file (what fired, the order-id high-water mark)."""
        return self.today.store

    # --- events ----------------------------------------------------------------------

    def emit(self, event: ev.Event) -> None:
        """Journal an event, fold it into the day's ledger, then show it."""
        if self.journal is None:
            self._early.append(event)
        else:
            stream = "gateway" if isinstance(event, GATEWAY_EVENTS) else "events"
            self.journal.write(event, stream)
            self._fold(event)
        self.notifier.observe(event)
        if self.metrics is not None:
            self.metrics.observe(event)
        self.status.on_event(event)
        self._log(event)

    def _fold(self, event: ev.Event) -> None:
        self.today.observe(event)
        if isinstance(event, ev.OrderIntent) and event.symbol in self.instruments:
            # At once: the watcher that sent it is about to drop its subscription.
            self.held.hold(event.symbol, self.instruments[event.symbol])
        if isinstance(event, HOLDING_EVENTS):
            self._hold_soon()
        if isinstance(event, MONEY_EVENTS):
            self.controls.check_trip()

    def _hold_soon(self) -> None:
        """Hold (or release) the market data of what the ledger holds, in a task of its own."""
        if self._phase not in ("starting", "running"):
            return
        self._hold_again = True  # a pass under way may have missed this event: one more
        if self._holding is None or self._holding.done():
            self._holding = asyncio.get_running_loop().create_task(self._hold_until_current())

    async def _hold_until_current(self) -> None:
        while self._hold_again:
            self._hold_again = False
            await self.held.update()

    def _open_day(self) -> None:
        """The broker's day is known: open its journal and state, write what came before.

        The journal's directory is made first: when the disk refuses it (OSError),
        nothing of the day in force has changed."""
        day = exchange_date(self.clock())
        journal = Journal(self.var, day, disk=self.disk, reserve=self.reserve)
        self.day = day
        so_far = journal_events(journal.dir / "events.jsonl")
        # A restart shows the day so far in status (before this run's first events).
        self.status.replay(so_far)
        limits = self.config.risk if self.config is not None else RiskLimits()
        self.today = TradingDay(self.var, self.day, limits, self.disk)
        self.today.rebuild(so_far)  # entries, positions, P&L and the halt of the day so far
        self.journal = journal
        early, self._early = self._early, []
        for event in early:
            self.journal.write(event, "gateway" if isinstance(event, GATEWAY_EVENTS) else "events")
            self.today.observe(event)
        early_ops, self._early_ops = self._early_ops, []
        for fields in early_ops:
            self.journal.record("ops", **fields)

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.emit(ev.DaemonState(at=self.clock(), state=state, detail=detail))

    def _set_phase(self, phase: str, detail: str = "") -> None:
        self._phase = phase
        self.refresh_state(detail)

    def engine_state(self) -> tuple[str, str]:
        """The state and why: the phase, else halted, paused, degraded or running."""
        if self._phase != "running":
            return self._phase, ""
        ledger = self.today.ledger
        if ledger.halted == DISK_HALT and self.guard.problem is not None:
            return "halted", f"disk: {self.guard.problem}"  # status' disk.detail says what to do
        if ledger.halted is not None:
            return "halted", ledger.halted
        if ledger.paused:
            return "paused", "the operator paused new entries"
        why = self.degraded_reason()
        return ("degraded", why) if why is not None else ("running", "")

    def refresh_state(self, detail: str = "") -> None:
        """Emit DaemonState when the engine's state changed."""
        state, why = self.engine_state()
        if state != self.state or (detail and state in ("running", "starting")):
            self._set_state(state, detail or why)

    def degraded_reason(self, symbol: str | None = None) -> str | None:
        """Why the connection (or ``symbol``'s data, or any symbol's) is not to be trusted."""
        if not self.supervisor.connected:
            return "no broker connection"
        symbols = [symbol] if symbol is not None else self.market.symbols
        for sym in symbols:
            stream = self.market.stream(sym)
            if stream is not None and stream.in_gap:
                return f"no market data for {sym}"
        return None

    # --- life cycle --------------------------------------------------------------------

    def _ops_sink(self, message: Any) -> None:
        """Every warning or error logged anywhere in the process goes to ops.jsonl."""
        record = message.record
        if "event" in record["extra"]:
            return  # events have their own journal
        fields = {"level": record["level"].name, "message": record["message"],
                  "where": f'{record["name"]}:{record["function"]}:{record["line"]}'}
        if record["exception"] is not None:
            fields["exception"] = repr(record["exception"].value)
        if self.journal is not None:
            self.journal.record("ops", **fields)
        else:
            self._early_ops.append(fields)

    async def run(self, stop: asyncio.Event) -> int:
        """Start, trade until ``stop`` is set, stop cleanly; the exit code is returned."""
        self._check_var()
        with short_gil_switches():  # breakoutd.daemon.background
            return await self._run(stop)

    def _check_var(self) -> None:
        """Refuse to start (one line) where the journal has no room or cannot be written."""
        try:
            self.var.mkdir(parents=True, exist_ok=True)
            self.reserve.hold()
            room = os.statvfs(self.var)
            if room.f_bavail * room.f_frsize < START_ROOM:  # room to trade, beyond the reserve
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.var))
        except OSError as exc:
            self.disk.close()
            raise OperationalError(
                f"cannot start: {self.var} cannot hold the journal ({describe_failure(exc)}); "
                f"free at least {(RESERVE_BYTES + START_ROOM) // 1024} KiB on its filesystem, or mend "
                f"the disk") from None

    async def _run(self, stop: asyncio.Event) -> int:
        sink = logger.add(self._ops_sink, level="WARNING", format="{message}")
        board_stop = asyncio.Event()
        board = asyncio.get_running_loop().create_task(self.status.run(board_stop))
        self._set_state("starting")
        try:
            self.config = load_watchlists(self.watchlist_paths)
            self._show_config("initial")
            self.today.set_limits(self.config.risk)
            await self._open_controls()
            self._open_metrics()
            if not await self._connect(stop):
                return 0  # stopped before the gateway answered: nothing was armed
            self._open_day()
            assert self.journal is not None
            self.router = OrderRouter(self.ib, account=self.supervisor.account or "",
                                      emit=self.emit, clock=self.clock, ids=self.today,
                                      durability=_TodaysDisk(self))
            self.router.on_fill.append(self.manager.on_fill)
            self.router.on_fill.append(self.slices.on_fill)
            await self._reconcile()
            self.manager.rebuild()
            self.slices.rebuild()
            self.supervisor.on_data_lost.append(self.market.resubscribe)
            self.supervisor.on_connected.append(self._on_reconnected)
            self.supervisor.on_halted.append(lambda exc: self._refuse(str(exc), stop))
            self._report_start(await self._plan_arming(self.config.watchers))
            self._tasks.append(await self.scanning.start(stop))
            self._show_watchers()
            write_snapshot(snapshot_path(self.var), self.config)
            self._start_watching(stop)
            self.scheduler.daily("replan", self._new_day)
            self.scheduler.start()
            self._tasks.append(asyncio.get_running_loop().create_task(
                self.notifier.watchdog(self.healthy, stop)))
            # What start-up built, and what survives the day's collections, out of
            # the collector's way (breakoutd.collector): no pass of milliseconds
            # lands on a decision.
            self._freezer.start()
            await self.held.update()  # positions reconciled at start-up are marked again
            self.controls.check_trip()
            self._set_phase("running", f"{len(self.runners)} armed, {len(self.pending)} waiting")
            await self._loop(stop)
        except OperationalError as exc:  # says what to do: one line, no traceback
            logger.error("the daemon stops: {}", exc)
            self.said = exc
            raise
        except Exception as exc:
            logger.opt(exception=exc).error("the daemon stops on an error: {}", exc)
            raise
        finally:
            await self._shutdown()
            board_stop.set()  # the board writes the final state, then ends
            await board
            if self.metrics_server is not None:  # the last scrape saw the daemon stopped
                self.metrics_server.close()
            logger.remove(sink)
            self._freezer.stop()
        return 2 if self.refused else 0

    def _open_metrics(self) -> None:
        """The Prometheus endpoint (``--metrics``), before connecting: a scrape shows the
        daemon waiting for its gateway too."""
        if self.metrics_address is None:
            return
        self.metrics = DaemonMetrics(on_loop(asyncio.get_running_loop(),
                                             self._metrics_snapshot))
        host, port = self.metrics_address
        try:
            self.metrics_server = MetricsServer(self.metrics, host, port)
        except OSError as exc:
            raise OperationalError(f"--metrics {host}:{port}: cannot listen there ({exc})") from exc
        logger.info("metrics at http://{}:{}/metrics", host, self.metrics_server.port)

    def _metrics_snapshot(self) -> Snapshot:
        ledger = self.today.ledger
        state, _ = self.engine_state()
        watchers: dict[str, int] = {}
        for row in self.status.model.watchers.values():
            watchers[row.state] = watchers.get(row.state, 0) + 1
        return Snapshot(
            engine_state=state, connected=self.supervisor.connected, watchers=watchers,
            realized_usd=usd(ledger.realized), unrealized_usd=usd(ledger.unrealized),
            commissions_usd=usd(ledger.commissions), pnl_usd=usd(ledger.pnl),
            open_positions=len(ledger.positions()), entries_today=ledger.entries,
            halted_reason=ledger.halted)

    async def _open_controls(self) -> None:
        """The operator's control socket, before the broker is touched (one daemon per var)."""
        server = ControlServer(control_socket_path(self.var, os.environ), self.controls,
                               self.emit, self.clock)
        try:
            await server.start()
        except OSError as exc:  # trading goes on; the operator still has signals
            logger.error("the control socket {} cannot be opened ({}); breakoutctl halt, "
                         "pause and flatten will not reach this daemon", server.path, exc)
            return
        self.control = server

    async def _connect(self, stop: asyncio.Event) -> bool:
        """Connect and align the clock; False when ``stop`` came first (a signal while
        the gateway is down must not wait out the reconnect backoff)."""
        # OperationalError: an account that must not be traded
        return await unless_stopped(self._connect_and_sync(), stop)

    async def _connect_and_sync(self) -> None:
        await self.supervisor.start()
        if isinstance(self.clock, BrokerClock):
            await sync_clock(self.ib, self.clock)

    def _refuse(self, reason: str, stop: asyncio.Event) -> None:
        """Stop trading for good: a person must look (e.g. a live account appeared)."""
        self.refused = True
        self._phase = "halted"
        self._set_state("halted", reason)
        stop.set()

    async def _on_reconnected(self, is_reconnect: bool) -> None:
        if is_reconnect:
            # Orders may have filled or been cancelled while we were away.
            if self.router is not None:
                await self.router.resync()
            await self.market.resubscribe("reconnect")

    async def _reconcile(self) -> None:
        assert self.router is not None
        found = await reconcile(self.ib, self.day, self.clock, self.emit)
        assert self.config is not None
        # An entered named-level watcher is not armed again: its level is the one
        # resolved before the restart (none known: the router's stand-in).
        levels = {s.id: s.level for s in map(self.todays_spec, self.config.watchers)
                  if s.level_name is None or s.level > 0}
        self.router.adopt(found, levels=levels)
        self._journal_missed_fills(found.values())
        for entry in found.values():
            # Sent, but the daemon stopped before recording it: the broker remembers.
            if not self.today.has_fired(entry.watcher_id):
                self.store.mark_fired(entry.watcher_id,
                                      FiredEntry(entry.order_ref, self.clock(), "entered"))

    def todays_spec(self, spec: WatcherSpec) -> WatcherSpec:
        """The watcher as it trades today: a named level as resolved (``LevelResolved``,
        also before a restart) with its ``sl_below`` stop; else as configured."""
        level = self.today.levels.get(spec.id) if spec.level_name is not None else None
        return resolved_spec(spec, level) if level is not None else spec

    def _journal_missed_fills(self, found: Iterable[ReconciledEntry]) -> None:
        """Fills that happened while the daemon was down reach the journal now.

        The ledger, rebuilt from the journal, knows every execution journalled so far.
        Each is dated when it executed (the broker's time), not now: ``max_hold``
        counts from the first fill, also one made while the daemon was down."""
        ledger = self.today.ledger
        for entry in found:
            cum = 0
            for f in entry.fills:
                cum += f.qty if f.role == "entry" else 0
                if ledger.has_execution(f.exec_id):
                    continue
                now = self.clock()
                self.emit(ev.OrderFilled(
                    at=min(f.time_ns, now) if f.time_ns else now,
                    order_ref=entry.order_ref, role=f.role,
                    rung=f.rung, order_id=f.order_id, exec_id=f.exec_id, symbol=entry.symbol,
                    side=f.side, qty=f.qty, price=to_decimal(f.price),
                    cum_qty=cum if f.role == "entry" else f.qty, commission=f.commission))

    async def _plan_arming(self, specs: Sequence[WatcherSpec]) -> dict[str, str]:
        """Plan every watcher; those that cannot be (id -> ``id: file:line: reason``)."""
        failed: dict[str, str] = {}
        for spec in specs:
            await self._per_watcher(failed, spec, self._plan_one(spec))
        self._arm_due()
        return failed

    async def _per_watcher(self, failed: dict[str, str], spec: WatcherSpec,
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
        await self._plan_arming(specs)
        self._show_watchers()

    def _report_start(self, failed: dict[str, str]) -> None:
        """Watchers start-up could not arm are left out of the configuration in force."""
        if not failed or self.config is None:
            return
        self.config = in_force(None, self.config, failed)
        self.emit(ev.ConfigReloaded(at=self.clock(), result="partial", trigger="start-up",
                                    digest=self.config.digest, failed=tuple(failed.values())))

    async def _plan_one(self, spec: WatcherSpec) -> None:
        """Arm a watcher at its window's start, or at once when its window is open."""
        if not spec.enabled or self.store.has_fired(spec.id):
            return
        inst = await self.instrument(spec.symbol)  # raises for a symbol the gateway lacks
        sessions = inst.sessions.get(self.day) or day_sessions(self.day)
        if sessions is None:
            return
        window = watcher_window(spec, sessions)
        now = self.clock()
        if window is None or window[1] <= now:
            return
        # Armed at its window's start, or at once (now) when that start has passed;
        # a named level's watcher not before the level is known.
        arm_at = max(window[0], now, self._known_at(spec, inst, sessions))
        if arm_at >= window[1]:
            return
        self.pending[spec.id] = (arm_at, spec, inst, sessions)
        if arm_at > now:
            self.scheduler.at(f"arm:{spec.id}", arm_at, self._arm_due_job)

    # --- reload ------------------------------------------------------------------------

    def _start_watching(self, stop: asyncio.Event) -> None:
        dirs = sorted({p if p.is_dir() else p.parent for p in self.watchlist_paths})
        loop = asyncio.get_running_loop()
        for d in dirs:
            # The watch outlives any failure of its own or of a reload (watch_forever).
            self._tasks.append(loop.create_task(watch_forever(d, self._reload_logged, stop)))

    def request_reload(self, trigger: str) -> None:
        """Reload soon (from a signal handler: SIGHUP)."""
        self._tasks.append(asyncio.get_running_loop().create_task(self._reload_logged(trigger)))

    async def _reload_logged(self, trigger: str) -> None:
        # self.reload is looked up per call: a failure of one reload is journalled
        # (ops.jsonl), and the next save or SIGHUP reloads again.
        try:
            await self.reload(trigger)
        except Exception as exc:
            logger.opt(exception=exc).error("the reload ({}) failed: {}", trigger, exc)

    def _show_config(self, result: str, errors: Sequence[str] = ()) -> None:
        assert self.config is not None
        self.status.set_config(files=list(self.config.files), digest=self.config.digest,
                               reloaded_at=None if result == "initial" else self.clock(),
                               result=result, errors=list(errors))

    def _show_watchers(self) -> None:
        assert self.config is not None
        watchers = [*self.config.watchers, *self.scanning.specs()]
        sessions = {w.id: "+".join(s.value for s in w.params.sessions) for w in watchers}
        self.status.set_watcher_specs(watchers, sessions)

    def _last_price(self, symbol: str) -> int | None:
        stream = self.market.stream(symbol)
        return stream.last_price if stream is not None else None

    def healthy(self) -> bool:
        """For the watchdog: not halted, and the main loop ticked within a few seconds."""
        loop_time = asyncio.get_running_loop().time()
        return not self.refused and loop_time - self._last_tick < HEALTHY_TICK_AGE

    async def reload(self, trigger: str) -> ev.ConfigReloaded:
        """Read the watchlists again; if valid, apply the plan, else change nothing.

        systemd hears RELOADING=1 before and READY=1 after (through the event)."""
        return await self.notifier.around_reload(self._reload(trigger))

    async def _reload(self, trigger: str) -> ev.ConfigReloaded:
        async with self._reload_lock:
            try:
                new = load_watchlists(self.watchlist_paths)
            except ConfigError as exc:
                errors = tuple(str(p) for p in exc.problems)
                for problem in errors:
                    logger.error("watchlist error, nothing changed: {}", problem)
                event = ev.ConfigReloaded(at=self.clock(), result="invalid", trigger=trigger,
                                          digest=self.config.digest if self.config else "",
                                          errors=errors)
                self.emit(event)
                return event
            self.before_reload(new)
            before = self.config.digest if self.config is not None else ""
            plan = plan_reload(self.config, new)
            self.today.set_limits(new.risk)
            notes = reload_notes(plan, self.store.state.fired, self._unfilled)
            failed = await self._apply(plan) if not plan.is_empty() else {}
            # What applies is in force (and in the snapshot): a failed watcher is planned again.
            self.config = in_force(self.config, new, failed)
            self._show_watchers()
            write_snapshot(snapshot_path(self.var), self.config)
            event = _reloaded_event(self.clock(), trigger, before, self.config.digest, plan,
                                    failed, tuple(n for wid, n in notes if wid not in failed))
            self.emit(event)
            return event

    def _unfilled(self, order_ref: str) -> bool:
        entry = self.router.entry(order_ref) if self.router is not None else None
        return entry is not None and entry.unfilled

    async def _apply(self, plan: ReloadPlan) -> dict[str, str]:
        """Apply a plan watcher by watcher; those that failed (id -> why) are returned."""
        failed: dict[str, str] = {}
        for spec in plan.removed:
            await self._per_watcher(failed, spec, self.disarm(spec.id, "removed"))
        for old, new in plan.changed:
            await self._per_watcher(failed, new, self._change(old, new))
        for spec in plan.added:
            await self._per_watcher(failed, spec, self._plan_one(spec))
        self._arm_due()
        return failed

    async def _change(self, old: WatcherSpec, new: WatcherSpec) -> None:
        fired = self.store.state.fired.get(new.id)
        if fired is None:  # not fired: re-arm with the new values
            if new.enabled:  # an unknown symbol fails here, with the old one still armed
                await self.instrument(new.symbol)
            await self.disarm(old.id, "disabled" if not new.enabled else "changed")
            await self._plan_one(new)
        elif fired.outcome == "entered" and (old.tp, old.sl) != (new.tp, new.sl) and self.router:
            await self.router.modify_exits(fired.order_ref, new.tp or None, new.sl)

    async def disarm(self, watcher_id: str, reason: str) -> None:
        """Stop a watcher that has not fired; cancel an unfilled entry it sent."""
        self.pending.pop(watcher_id, None)
        self.scheduler.cancel(f"arm:{watcher_id}")
        waiting = self._with_history.pop(watcher_id, None)
        if waiting is not None:
            waiting.cancel()
        runner = self.runners.get(watcher_id)
        if runner is not None and runner.task is None:
            self.market.unsubscribe(runner.spec.symbol, runner)
            self.runners.pop(watcher_id, None)
            self.emit(ev.Stopped(at=self.clock(), watcher_id=watcher_id, reason=reason))
        fired = self.store.state.fired.get(watcher_id)
        if fired is not None and self.router is not None:
            entry = self.router.entry(fired.order_ref)
            if entry is not None and entry.unfilled:
                await self.router.cancel_entry(fired.order_ref)

    async def instrument(self, symbol: str) -> Instrument:
        """The qualified contract of a symbol, asked of the gateway once a day."""
        if symbol not in self.instruments:
            try:
                inst = await asyncio.wait_for(self.market.instrument(symbol), INSTRUMENT_TIMEOUT)
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

    async def _history(self, symbol: str, start: int, end: int) -> list[Bar]:
        inst = await self.instrument(symbol)
        return await minute_trade_bars(self.ib, inst.contract, start, end)

    def _arm_later(self, spec: WatcherSpec, inst: Instrument, sessions: DaySessions,
                   a: int, z: int) -> None:
        """Arm once the broker's history has given the level and the day's volumes."""
        task = asyncio.get_running_loop().create_task(self._arm_with_history(
            spec, inst, sessions, a, z))
        self._with_history[spec.id] = task
        task.add_done_callback(lambda t: self._with_history.pop(spec.id, None)
                               if self._with_history.get(spec.id) is t else None)

    async def _arm_with_history(self, spec: WatcherSpec, inst: Instrument,
                                sessions: DaySessions, a: int, z: int) -> None:
        try:
            if spec.level_name is not None:
                rng = LiveLevels.range_of(spec, sessions, prior_sessions(sessions, inst.sessions))
                resolved = await self.levels.resolve(spec, rng) if rng is not None else None
                if resolved is None:
                    self.emit(ev.Expired(at=self.clock(), watcher_id=spec.id, reason="no_level",
                                         bars_evaluated=0))
                    return
                self.emit(resolved)
                spec = resolved_spec(spec, to_micros(resolved.price))
            volumes = None
            if spec.params.rule is Rule.MOMENTUM:
                volumes = await self.levels.volumes_before(spec, sessions, a,
                                                           spec.params.bar_seconds * NS)
        except Exception as exc:  # the watcher cannot start without its history: say why
            logger.opt(exception=exc).error("{}: no historical bars: {}", spec.id, exc)
            self.emit(ev.Expired(at=self.clock(), watcher_id=spec.id, reason="no_level",
                                 bars_evaluated=0))
            return
        if z > self.clock():
            self._arm(spec, inst, sessions, a, z, volumes)

    async def _arm_due_job(self) -> None:
        # A coroutine, so APScheduler runs it on the event loop, not in its thread pool.
        self._arm_due()

    def _arm_due(self) -> None:
        now = self.clock()
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
        machine = WatcherMachine(spec, a, z)
        if volumes:
            machine.seed_volumes(volumes)

        windows = [(*sessions.window(s), s.value) for s in Session]

        def session_of(at: int) -> str:  # sessions.session_at(at - 1), on the entry's path
            for start, end, name in windows:
                if start <= at - 1 < end:
                    return name
            return "rth"

        runner = WatcherRunner(machine, day=self.day.strftime("%Y%m%d"), session_of=session_of,
                               emit=self.emit, clock=self.clock, port=_Port(self, inst),
                               gate=self.today, on_done=self._done)
        self.runners[spec.id] = runner
        self._next_disarm = min(self._next_disarm, z)
        self.market.subscribe(inst, runner, machine.close_bar_size, machine.level)
        if self.router is not None:
            # Each session the watcher may enter in has its own orderRef: its bracket
            # is written ahead (ids and price left), its shapes learnt.
            first = max(a, self.clock())
            for start, end, _ in windows:
                at = max(start, first)
                sample = runner.sample_plan(at + 1) if at < min(end, z) else None
                if sample is not None:
                    self.router.prepare(inst.contract, sample)
        self.emit(ev.WatcherStarted(at=a, watcher_id=spec.id, symbol=spec.symbol,
                                    level=to_decimal(spec.level),
                                    session_day=self.day.isoformat(), disarm_at=z))

    def _done(self, runner: WatcherRunner) -> None:
        self.market.unsubscribe(runner.spec.symbol, runner)
        self.runners.pop(runner.spec.id, None)
        if self.router is not None:
            for ref in runner.order_refs:
                self.router.unprepare(ref)

    async def _loop(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._last_tick = loop.time()
            self._arm_due()
            # What has closed by now - SETTLE_NS is delivered below; a window ends only
            # after its last bars: strategy.md evaluates a bar closing at Z before the disarm.
            settled = self.clock() - self.market.SETTLE_NS
            self.market.on_clock()
            self.guard.check()
            if self.recording is not None:
                self.recording.tick()
            self.refresh_state()
            now = self.clock()
            self.manager.on_clock(now)
            self.slices.on_clock(now)
            if settled >= self._next_disarm:  # not a walk over every runner each tick
                for runner in list(self.runners.values()):
                    runner.on_time(settled)
                self._next_disarm = min((r.machine.disarm_at for r in self.runners.values()),
                                        default=_NEVER)
            # A plain sleep: wait_for would start a task every tick (stop is seen within one).
            # TICK_SECONDS of broker time: a faster simulated clock closes its bars as promptly.
            await asyncio.sleep(host_seconds(self.clock, TICK_SECONDS))

    async def _new_day(self) -> None:
        """The daily re-plan: a new exchange day gets its journal, state and watchers."""
        self._freezer.sweep()  # 03:30, no session open: yesterday's garbage goes
        if exchange_date(self.clock()) == self.day or self.config is None:
            return
        now = self.clock()
        for runner in list(self.runners.values()):  # yesterday's windows have ended
            runner.on_time(now)
        yesterday = self.journal
        assert yesterday is not None
        if not await self._open_new_day():
            return
        yesterday.close()
        if self.router is not None:
            self.router.use_ids(self.today)
        self.held.release_all()
        self.instruments.clear()  # the contracts' hours are read again for the new days
        self.levels.forget()
        self.market.forget_instruments()
        self.manager.forget_all()
        self.slices.forget_all()
        await self._reconcile()
        self.manager.rebuild()
        self.slices.rebuild()
        await self._plan_arming(self.config.watchers)
        await self.held.update()
        self._set_state(self.engine_state()[0], f"new day {self.day}: {len(self.runners)} armed, "
                                                f"{len(self.pending)} waiting")

    async def _open_new_day(self) -> bool:
        """Open the new day's journal; while the disk refuses, halt entries and try again.

        Yesterday's journal stays open meanwhile, so the halt and what else happens
        is journalled; the disk guard says why and what to do (status, one ops line).
        False when the daemon stops first."""
        while True:
            try:
                self._open_day()
            except OSError as exc:
                self.disk.fail(_NEW_DAY_KEY, exc)
                self.guard.check()
            else:
                self.disk.mended(_NEW_DAY_KEY)
                return True
            await asyncio.sleep(host_seconds(self.clock, self.guard.probe_every))
            if self._phase != "running":
                return False

    async def _shutdown(self) -> None:
        if self._phase != "halted":
            self._set_phase("stopping")
        self._phase = "stopping"
        if self._holding is not None:
            self._holding.cancel()
        if self.control is not None:
            await self.control.close()
        self.scheduler.shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for runner in list(self.runners.values()):
            if runner.task is None:
                self.market.unsubscribe(runner.spec.symbol, runner)
                self.emit(ev.Stopped(at=self.clock(), watcher_id=runner.spec.id, reason="shutdown"))
        tasks = [r.task for r in self.runners.values() if r.task is not None and not r.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await self.controls.cancel_unfilled()  # filled entries keep their exits at the broker
        await self.slices.cancel_working()
        self.held.release_all()
        if self.recording is not None:
            self.recording.close()
        if not self.refused:
            self._set_phase("stopped")
        await self.supervisor.stop()
        self._close_day()

    def _close_day(self) -> None:
        """Save today's state and close its journal (opened now if start-up did not)."""
        if self.journal is None:
            try:
                self._open_day()
            except OperationalError:  # today's state is unreadable: nothing is saved over it
                self.disk.close()
                return
        assert self.journal is not None
        try:
            self.store.flush()
        except DiskError as exc:  # logged by the disk thread; the journal still closes
            logger.error("today's state could not be saved at shutdown: {}", exc)
        self.journal.close()
        self.disk.close()



def _reloaded_event(at: int, trigger: str, before: str, digest: str, plan: ReloadPlan,
                    failed: dict[str, str], notes: tuple[str, ...]) -> ev.ConfigReloaded:
    """The reload's event: what applied, and what did not.

    ``unchanged`` only when nothing in force changed: new risk limits, presets or a
    scan block apply although no watcher changes."""
    same = plan.is_empty() and digest == before
    result = "unchanged" if same else "partial" if failed else "applied"
    return ev.ConfigReloaded(
        at=at, result=result, trigger=trigger, digest=digest,
        added=tuple(w.id for w in plan.added if w.id not in failed),
        removed=tuple(w.id for w in plan.removed if w.id not in failed),
        changed=tuple(new.id for _, new in plan.changed if new.id not in failed),
        failed=tuple(failed.values()), notes=notes)


class _TodaysDisk:
    """The router's Durability: today's journal and state (also after a day rollover),
    synced and saved on the daemon's disk thread."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    def begin(self) -> None:
        d = self._daemon
        if d.journal is not None:
            d.journal.sync_soon()
        d.store.begin_save()

    def wait(self) -> None:
        self._daemon.disk.wait()


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
