"""The daemon: watchlists in, watchers armed on the broker's clock, entries routed.

Wiring only: the rules are in :mod:`breakoutd.core`, the broker in
:mod:`breakoutd.ibkr`. Order of start-up: journal and state, configuration,
connection (paper guard), reconciliation of today's orders by orderRef, then
arming, so a watcher that fired before a restart is never armed again. The day's files
(:mod:`~breakoutd.daemon.day`), arming and reloading are rooms of their own, owned here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ib_async import IB
from loguru import logger

from breakoutd.collector import SurvivorFreezer
from breakoutd.config import Watchlist, load_watchlists, snapshot_path, write_snapshot
from breakoutd.core import events as ev
from breakoutd.core.ledger import DISK_HALT
from breakoutd.daemon.arming import Arming
from breakoutd.daemon.background import short_gil_switches
from breakoutd.daemon.control import ControlServer, control_socket_path
from breakoutd.daemon.controls import Controls
from breakoutd.daemon.day import TodaysDisk, TradingDayFiles
from breakoutd.daemon.disk import DiskWorker, SpaceReserve
from breakoutd.daemon.disk_guard import DiskGuard
from breakoutd.daemon.history_pacing import HistoryPacer
from breakoutd.daemon.journal import Journal
from breakoutd.daemon.levels_live import LiveLevels
from breakoutd.daemon.management import PositionManager
from breakoutd.daemon.metrics import DaemonMetrics, MetricsServer, Snapshot, on_loop, usd
from breakoutd.daemon.notify import SystemdNotifier
from breakoutd.daemon.positions import HeldData
from breakoutd.daemon.recording import Recording, tapes_dir
from breakoutd.daemon.reloading import Reloader
from breakoutd.daemon.scanning import Scanning
from breakoutd.daemon.schedule import SessionScheduler
from breakoutd.daemon.slices import SliceManager
from breakoutd.daemon.state import FiredEntry, StateStore
from breakoutd.daemon.status import StatusBoard, status_path
from breakoutd.daemon.trading_day import TradingDay
from breakoutd.errors import OperationalError
from breakoutd.ibkr.broker_clock import BrokerClock, host_seconds, sync_clock
from breakoutd.ibkr.connection import ConnectionSupervisor, unless_stopped
from breakoutd.ibkr.market_data import MarketData
from breakoutd.ibkr.reconcile import reconcile
from breakoutd.ibkr.router import OrderRouter
from breakoutd.ibkr.settings import BrokerSettings
from breakoutd.ibkr.wire.version import check_version as check_ib_async_version

TICK_SECONDS = 0.05
HEALTHY_TICK_AGE = 5.0  # seconds without a main-loop tick before the watchdog stops
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
        self.ib = ib or IB()
        self.disk = DiskWorker()  # journal syncs and state saves, off the event loop
        self.reserve = SpaceReserve(var / RESERVE_FILE)  # room for lines when the disk fills
        self.guard = DiskGuard(self)  # no entry while the journal or state cannot be written
        self.files = TradingDayFiles(self, log_event)  # the day's journal, state and events
        self.config: Watchlist | None = None
        self.arming = Arming(self)  # watchers pending, armed (runners) and disarmed
        self.reloader = Reloader(self)  # the watchlists read again while trading
        # Their dicts and methods, by the daemon's names the rest of the project calls.
        self.runners = self.arming.runners  # the armed watchers
        self.pending = self.arming.pending  # the watchers waiting for their windows
        self.instruments = self.arming.instruments  # the symbols qualified today
        self.emit = self.files.emit  # journal an event, fold it, then show it
        self.instrument = self.arming.instrument  # a symbol's contract, once a day
        self.todays_spec = self.arming.todays_spec
        self.disarm = self.arming.disarm
        self.arm_scanned = self.arming.arm_scanned  # the market scanner's picks
        self.request_reload = self.reloader.request_reload  # from SIGHUP
        self.reload = self.reloader.reload
        self._new_day = self.files.new_day  # the daily re-plan (03:30)
        self.supervisor = ConnectionSupervisor(self.ib, settings, emit=self.emit, clock=clock)
        if isinstance(clock, BrokerClock):  # a simulated gateway announces its clock
            self.ib.errorEvent += clock.on_gateway_message
        self.scheduler = SessionScheduler(clock)
        self.recording = Recording(tapes_dir(var), clock, self.emit) if record else None
        self.market = MarketData(self.ib, clock=clock, emit=self.emit, tap=self.recording)
        loop_time = lambda: asyncio.get_running_loop().time()  # noqa: E731
        self.levels = LiveLevels(self.arming.history, HistoryPacer(loop_time, asyncio.sleep))
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
        self.control: ControlServer | None = None
        self.notifier = notifier or SystemdNotifier(env={})  # silent unless given one
        self.status = StatusBoard(status_path(var), clock=clock, last_price=self._last_price,
                                  disk=self.disk)
        self._last_tick = 0.0
        self._tasks: list[asyncio.Task[object]] = []
        self._freezer = SurvivorFreezer()
        # Sees a valid new configuration before it applies (the embedded sim adds markets).
        self.before_reload: Callable[[Watchlist], object] = lambda config: None
        self.said: OperationalError | None = None  # the error the daemon stopped on, logged
        self.metrics_address = metrics
        self.metrics: DaemonMetrics | None = None
        self.metrics_server: MetricsServer | None = None

    # --- the day in force (breakoutd.daemon.day) ----------------------------------------

    @property
    def day(self) -> dt.date:
        """The exchange day in force (breakoutd.daemon.day)."""
        return self.files.day

    @property
    def journal(self) -> Journal | None:
        """Today's journal, once the broker's day is known."""
        return self.files.journal

    @property
    def today(self) -> TradingDay:
        """Today's ledger and state."""
        return self.files.today

    @property
    def store(self) -> StateStore:
        """Today's state file (what fired, the order-id high-water mark)."""
        return self.files.store

    # --- state -------------------------------------------------------------------------

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

    async def run(self, stop: asyncio.Event) -> int:
        """Start, trade until ``stop`` is set, stop cleanly; the exit code is returned."""
        self.files.check_room()
        with short_gil_switches():  # breakoutd.daemon.background
            return await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> int:
        sink = logger.add(self.files.ops_sink, level="WARNING", format="{message}")
        board_stop = asyncio.Event()
        board = asyncio.get_running_loop().create_task(self.status.run(board_stop))
        self._set_state("starting")
        try:
            self.config = load_watchlists(self.watchlist_paths)
            self.reloader.show_config("initial")
            self.today.set_limits(self.config.risk)
            await self._open_controls()
            self._open_metrics()
            if not await self._connect(stop):
                return 0  # stopped before the gateway answered: nothing was armed
            self.files.open_day()
            assert self.journal is not None
            self.router = OrderRouter(self.ib, account=self.supervisor.account or "",
                                      emit=self.emit, clock=self.clock, ids=self.today,
                                      durability=TodaysDisk(self))
            self.router.on_fill.append(self.manager.on_fill)
            self.router.on_fill.append(self.slices.on_fill)
            await self._reconcile()
            self.manager.rebuild()
            self.slices.rebuild()
            self.supervisor.on_data_lost.append(self.market.resubscribe)
            self.supervisor.on_connected.append(self._on_reconnected)
            self.supervisor.on_halted.append(lambda exc: self._refuse(str(exc), stop))
            self.arming.report_start(await self.arming.plan(self.config.watchers))
            self._tasks.append(await self.scanning.start(stop))
            self.reloader.show_watchers()
            write_snapshot(snapshot_path(self.var), self.config)
            self.reloader.start_watching(stop)
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
        self.files.journal_missed_fills(found.values())
        for entry in found.values():
            # Sent, but the daemon stopped before recording it: the broker remembers.
            if not self.today.has_fired(entry.watcher_id):
                self.store.mark_fired(entry.watcher_id,
                                      FiredEntry(entry.order_ref, self.clock(), "entered"))

    def _last_price(self, symbol: str) -> int | None:
        stream = self.market.stream(symbol)
        return stream.last_price if stream is not None else None

    def healthy(self) -> bool:
        """For the watchdog: not halted, and the main loop ticked within a few seconds."""
        loop_time = asyncio.get_running_loop().time()
        return not self.refused and loop_time - self._last_tick < HEALTHY_TICK_AGE

    async def _loop(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._last_tick = loop.time()
            self.arming.arm_due()
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
            self.arming.on_time(settled)
            # A plain sleep: wait_for would start a task every tick (stop is seen within one).
            # TICK_SECONDS of broker time: a faster simulated clock closes its bars as promptly.
            await asyncio.sleep(host_seconds(self.clock, TICK_SECONDS))

    async def _shutdown(self) -> None:
        if self._phase != "halted":
            self._set_phase("stopping")
        self._phase = "stopping"
        self.files.stop_holding()
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
        self.files.close_day()
