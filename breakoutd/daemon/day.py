"""The trading day's files: its journal and state, the events into them, the rollover.

Every event goes through :meth:`TradingDayFiles.emit`: journalled, folded into
the day's ledger, then shown. Before the broker's day is known (start-up, before
connecting) events and ops lines are held and written once the day's journal
opens. At 03:30 a new exchange day gets its own journal, state and watchers.
Kept apart from the daemon's wiring (:mod:`breakoutd.daemon.app`) so what is
durable, and when, reads in one place.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from loguru import logger

from breakoutd.calendar import exchange_date
from breakoutd.core import events as ev
from breakoutd.core.params import RiskLimits
from breakoutd.core.prices import to_decimal
from breakoutd.daemon.disk import RESERVE_BYTES, START_ROOM, DiskError, describe_failure
from breakoutd.daemon.journal import Journal
from breakoutd.daemon.state import StateStore
from breakoutd.daemon.status_replay import journal_events
from breakoutd.daemon.trading_day import TradingDay
from breakoutd.errors import OperationalError
from breakoutd.ibkr.broker_clock import host_seconds
from breakoutd.ibkr.reconcile import ReconciledEntry

if TYPE_CHECKING:
    from breakoutd.daemon.app import Daemon

_NEW_DAY_KEY = "new-day"  # the disk failure of a day's journal that could not be opened
GATEWAY_EVENTS = (ev.GatewayMessage,)
# Events that change what the ledger holds: the data held for positions follows them.
HOLDING_EVENTS = (ev.OrderIntent, ev.OrderFilled, ev.OrderStatusChanged)
# Events after which the kill switch looks at the day's P&L and losing streak.
MONEY_EVENTS = (ev.OrderFilled, ev.CommissionReported)


class TradingDayFiles:
    """Today's journal and state (the :class:`TradingDay`), and the events into them."""

    def __init__(self, daemon: Daemon, log_event: Callable[[ev.Event], None]) -> None:
        self._d = daemon
        self._log = log_event
        self.day = exchange_date(daemon.clock())
        self.journal: Journal | None = None
        self._early: list[ev.Event] = []  # events before the broker's day is known
        self._early_ops: list[dict[str, Any]] = []
        self.today = TradingDay(daemon.var, self.day, RiskLimits(), daemon.disk)
        self._holding: asyncio.Task[None] | None = None
        self._hold_again = False

    @property
    def store(self) -> StateStore:
        """Today's state file (what fired, the order-id high-water mark)."""
        return self.today.store

    # --- events ----------------------------------------------------------------------

    def emit(self, event: ev.Event) -> None:
        """Journal an event, fold it into the day's ledger, then show it."""
        d = self._d
        if self.journal is None:
            self._early.append(event)
        else:
            stream = "gateway" if isinstance(event, GATEWAY_EVENTS) else "events"
            self.journal.write(event, stream)
            self._fold(event)
        d.notifier.observe(event)
        if d.metrics is not None:
            d.metrics.observe(event)
        d.status.on_event(event)
        self._log(event)

    def _fold(self, event: ev.Event) -> None:
        d = self._d
        self.today.observe(event)
        if isinstance(event, ev.OrderIntent) and event.symbol in d.instruments:
            # At once: the watcher that sent it is about to drop its subscription.
            d.held.hold(event.symbol, d.instruments[event.symbol])
        if isinstance(event, HOLDING_EVENTS):
            self._hold_soon()
        if isinstance(event, MONEY_EVENTS):
            d.controls.check_trip()

    def ops_sink(self, message: Any) -> None:
        """Every warning or error logged anywhere in the process goes to ops.jsonl."""
        record = message.record
        if "event" in record["extra"]:
            return  # events have their own journal
        fields = {"level": record["level"].name, "message": record["message"],
                  "where": f'{record["name"]}:{record["function"]}:{record["line"]}'}
        if record["exception"] is not None:
            fields["exception"] = repr(record["exception"].value)
        self.record_ops(fields)

    def record_ops(self, fields: dict[str, Any]) -> None:
        """An ops line into today's journal, or held until the day's journal opens."""
        if self.journal is not None:
            self.journal.record("ops", **fields)
        else:
            self._early_ops.append(fields)

    def _hold_soon(self) -> None:
        """Hold (or release) the market data of what the ledger holds, in a task of its own."""
        if self._d._phase not in ("starting", "running"):
            return
        self._hold_again = True  # a pass under way may have missed this event: one more
        if self._holding is None or self._holding.done():
            self._holding = asyncio.get_running_loop().create_task(self._hold_until_current())

    async def _hold_until_current(self) -> None:
        while self._hold_again:
            self._hold_again = False
            await self._d.held.update()

    def stop_holding(self) -> None:
        """At shutdown: no pass over the held data is left running."""
        if self._holding is not None:
            self._holding.cancel()

    # --- the day's files -------------------------------------------------------------

    def check_room(self) -> None:
        """Refuse to start (one line) where the journal has no room or cannot be written."""
        d = self._d
        try:
            d.var.mkdir(parents=True, exist_ok=True)
            d.reserve.hold()
            room = os.statvfs(d.var)
            if room.f_bavail * room.f_frsize < START_ROOM:  # room to trade, beyond the reserve
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(d.var))
        except OSError as exc:
            d.disk.close()
            raise OperationalError(
                f"cannot start: {d.var} cannot hold the journal ({describe_failure(exc)}); "
                f"free at least {(RESERVE_BYTES + START_ROOM) // 1024} KiB on its filesystem, or mend "
                f"the disk") from None

    def open_day(self) -> None:
        """The broker's day is known: open its journal and state, write what came before.

        The journal's directory is made first: when the disk refuses it (OSError),
        nothing of the day in force has changed."""
        d = self._d
        day = exchange_date(d.clock())
        journal = Journal(d.var, day, disk=d.disk, reserve=d.reserve)
        self.day = day
        so_far = journal_events(journal.dir / "events.jsonl")
        # A restart shows the day so far in status (before this run's first events).
        d.status.replay(so_far)
        limits = d.config.risk if d.config is not None else RiskLimits()
        self.today = TradingDay(d.var, self.day, limits, d.disk)
        self.today.rebuild(so_far)  # entries, positions, P&L and the halt of the day so far
        self.journal = journal
        early, self._early = self._early, []
        for event in early:
            self.journal.write(event, "gateway" if isinstance(event, GATEWAY_EVENTS) else "events")
            self.today.observe(event)
        early_ops, self._early_ops = self._early_ops, []
        for fields in early_ops:
            self.journal.record("ops", **fields)

    def journal_missed_fills(self, found: Iterable[ReconciledEntry]) -> None:
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
                now = self._d.clock()
                self.emit(ev.OrderFilled(
                    at=min(f.time_ns, now) if f.time_ns else now,
                    order_ref=entry.order_ref, role=f.role,
                    rung=f.rung, order_id=f.order_id, exec_id=f.exec_id, symbol=entry.symbol,
                    side=f.side, qty=f.qty, price=to_decimal(f.price),
                    cum_qty=cum if f.role == "entry" else f.qty, commission=f.commission))

    async def new_day(self) -> None:
        """The daily re-plan: a new exchange day gets its journal, state and watchers."""
        d = self._d
        d._freezer.sweep()  # 03:30, no session open: yesterday's garbage goes
        if exchange_date(d.clock()) == self.day or d.config is None:
            return
        now = d.clock()
        for runner in list(d.runners.values()):  # yesterday's windows have ended
            runner.on_time(now)
        yesterday = self.journal
        assert yesterday is not None
        if not await self._open_new_day():
            return
        yesterday.close()
        if d.router is not None:
            d.router.use_ids(self.today)
        d.held.release_all()
        d.instruments.clear()  # the contracts' hours are read again for the new days
        d.levels.forget()
        d.market.forget_instruments()
        d.manager.forget_all()
        d.slices.forget_all()
        await d._reconcile()
        d.manager.rebuild()
        d.slices.rebuild()
        await d.arming.plan(d.config.watchers)
        await d.held.update()
        d._set_state(d.engine_state()[0], f"new day {self.day}: {len(d.runners)} armed, "
                                          f"{len(d.pending)} waiting")

    async def _open_new_day(self) -> bool:
        """Open the new day's journal; while the disk refuses, halt entries and try again.

        Yesterday's journal stays open meanwhile, so the halt and what else happens
        is journalled; the disk guard says why and what to do (status, one ops line).
        False when the daemon stops first."""
        d = self._d
        while True:
            try:
                self.open_day()
            except OSError as exc:
                d.disk.fail(_NEW_DAY_KEY, exc)
                d.guard.check()
            else:
                d.disk.mended(_NEW_DAY_KEY)
                return True
            await asyncio.sleep(host_seconds(d.clock, d.guard.probe_every))
            if d._phase != "running":
                return False

    def close_day(self) -> None:
        """Save today's state and close its journal (opened now if start-up did not)."""
        d = self._d
        if self.journal is None:
            try:
                self.open_day()
            except OperationalError:  # today's state is unreadable: nothing is saved over it
                d.disk.close()
                return
        assert self.journal is not None
        try:
            self.store.flush()
        except DiskError as exc:  # logged by the disk thread; the journal still closes
            logger.error("today's state could not be saved at shutdown: {}", exc)
        self.journal.close()
        d.disk.close()


class TodaysDisk:
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
