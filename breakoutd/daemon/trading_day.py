"""The day's trading state, with one owner.

:class:`TradingDay` holds what the daemon must know about the trading day:
which watchers fired (single-fire) and the broker order-id high-water mark
(the state file, :class:`StateStore`), and the :class:`DayLedger` (entries,
positions, unfilled entries, P&L, losing streak, halt and pause). The ledger
is a fold of the day's events: it is fed every event the daemon emits, and at
start-up it is rebuilt by folding the day's journal, before reconciliation
adds what the broker did while the daemon was down and before anything is
armed. Beside the ledger the same fold keeps what a restart cannot ask the
broker for: each named level as it was resolved (``LevelResolved``: an
entered watcher is not armed again, yet its exits and status need its level)
and each position's stop moves (``StopMoved``: the rule that put the stop
there, and what the trail had seen), and which time exits were announced. The runner and the router see it through small interfaces
(:class:`breakoutd.daemon.runner.EntryGate`, :class:`breakoutd.ibkr.router.OrderIds`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import msgspec

from breakoutd.core import events as ev
from breakoutd.core.ledger import DayLedger, Trip, disk_rejection
from breakoutd.core.params import RiskLimits
from breakoutd.core.plans import OrderPlan, Rejection
from breakoutd.core.prices import to_micros
from breakoutd.daemon.disk import DiskWorker
from breakoutd.daemon.state import FiredEntry, StateStore
from breakoutd.errors import OperationalError


class TradingDay:
    """One trading day: the state file and the ledger, rebuilt from the journal."""

    def __init__(self, var: Path, day: dt.date, limits: RiskLimits,
                 disk: DiskWorker | None = None) -> None:
        self.day = day
        self._disk = disk
        try:
            self.store = StateStore(var, day, disk)
        except (OSError, msgspec.DecodeError) as exc:
            # What fired today is what keeps a watcher from buying twice: no guessing.
            path = var / "state" / f"{day.isoformat()}.json"
            raise OperationalError(
                f"{path}: today's state cannot be read ({exc}); the daemon does not start "
                "without it. Restore it, or move it aside to start anyway: entries sent "
                "today are found at the broker by their orderRef, but watchers rejected "
                "today would be armed again") from None
        self.ledger = DayLedger(limits)
        self.levels: dict[str, int] = {}  # watcher id -> its named level today, micros
        self.stop_moves: dict[str, list[ev.StopMoved]] = {}  # entry ref -> its stop moves
        self.time_exits: set[str] = set()  # entry refs whose time exit was announced

    def rebuild(self, journal: Iterable[ev.Event]) -> None:
        """Fold the day's journal so far (its events, in order) into the ledger."""
        for e in journal:
            self.observe(e)

    def observe(self, event: ev.Event) -> None:
        """Fold one event the daemon emitted."""
        self.ledger.apply(event)
        if isinstance(event, ev.LevelResolved):
            self.levels[event.watcher_id] = to_micros(event.price)
        elif isinstance(event, ev.StopMoved):
            self.stop_moves.setdefault(event.order_ref, []).append(event)
        elif isinstance(event, ev.TimeExit):
            self.time_exits.add(event.order_ref)

    def set_limits(self, limits: RiskLimits) -> None:
        """The risk limits of a reloaded configuration."""
        self.ledger.limits = limits

    # --- the runner's gate ----------------------------------------------------------

    def has_fired(self, watcher_id: str) -> bool:
        """True once the watcher's entry attempt (or its stop) was recorded today."""
        return self.store.has_fired(watcher_id)

    def mark_fired(self, watcher_id: str, entry: FiredEntry, *, soon: bool = False) -> None:
        """Record the watcher's entry attempt (durably; ``soon``: in the next loop turn)."""
        self.store.mark_fired(watcher_id, entry, soon=soon)

    def check(self, plan: OrderPlan) -> Rejection | None:
        """The ledger's verdict on an entry about to be sent; none while the disk fails
        (also in the moment before the daemon's disk guard has halted)."""
        if self._disk is not None and self._disk.failure() is not None:
            return disk_rejection(plan)
        return self.ledger.check(plan)

    def trip_due(self) -> Trip | None:
        """The kill switch's reason to trip now, if any."""
        return self.ledger.trip_due()

    # --- the router's order ids -------------------------------------------------------

    @property
    def order_id_high_water(self) -> int:
        """The highest broker order id used today."""
        return self.store.state.order_id_high_water

    def note_order_id(self, order_id: int) -> None:
        """Raise the order-id high-water mark (saved with the next save)."""
        self.store.note_order_id(order_id)

    def save(self) -> None:
        """Write the state file now."""
        self.store.save()
