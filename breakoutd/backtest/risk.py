"""The portfolio limits in backtest: the live daemon's day ledger, fed the same way.

Each watcher is first simulated on its own (``engine``). Then the entries are
replayed in time order through :class:`breakoutd.core.ledger.DayLedger`, the
code the daemon decides with: at each trigger the ledger checks the entry;
an accepted entry is sent and fills at once (its commission charged as the
simulated gateway charges it, :mod:`breakoutd.core.commission`), its exits
fill when the fill model says, and, when a daily loss limit is set, the close
of every 1-second bar of a held symbol is a mark, as live. At one instant the
exits come first, then the marks, then the triggers. When the kill switch
trips, later triggers are rejected ``risk_halted``; with ``on_halt: flatten``
every open position is sold at that second's close and its later exits are
dropped.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from breakoutd.backtest.fills import ExitFill, FillResult
from breakoutd.backtest.series import SymbolSeries
from breakoutd.core.bars import NS
from breakoutd.core.commission import CommissionSchedule
from breakoutd.core.ledger import DayLedger
from breakoutd.core.params import OnHalt, RiskLimits
from breakoutd.core.plans import OrderPlan

_EXIT, _MARK, _TRIGGER = 0, 1, 2  # the order of things at one instant
FEES = CommissionSchedule()


@dataclass(slots=True)
class RiskReplay:
    """The ledger's decisions over a day of simulated entries."""

    ledger: DayLedger
    rejected: dict[str, str] = field(default_factory=dict)  # watcher id -> reason
    flattened: dict[str, FillResult] = field(default_factory=dict)  # watcher id -> new fills
    halted_at: int | None = None


class Entered(NamedTuple):
    """One watcher the engine entered: its plan, its trigger and its simulated fills."""

    plan: OrderPlan
    trigger_at: int
    fills: FillResult

    @property
    def watcher_id(self) -> str:
        """The watcher's id."""
        return self.plan.watcher_id

    @property
    def symbol(self) -> str:
        """The symbol traded."""
        return self.plan.symbol

    @property
    def order_ref(self) -> str:
        """The entry's orderRef."""
        return self.plan.order_ref


def replay_risk(entered: Sequence[Entered], limits: RiskLimits,
                series: Mapping[str, SymbolSeries]) -> RiskReplay:
    """Decide every entry with the day ledger, in trigger order."""
    out = RiskReplay(DayLedger(limits))
    run = _Run(out, series, marks=limits.max_daily_loss_usd is not None)
    for e in sorted(entered, key=lambda e: (e.trigger_at, e.watcher_id)):
        run.push(e.trigger_at, _TRIGGER, e)
    run.drain()
    return out


class _Run:
    def __init__(self, out: RiskReplay, series: Mapping[str, SymbolSeries], marks: bool) -> None:
        self.out = out
        self.series = series
        self.marks = marks
        self.heap: list[tuple[int, int, int, object]] = []
        self.seq = 0
        self.live: dict[str, Entered] = {}  # watcher id -> entry still holding shares
        self.dropped: set[str] = set()  # flattened: their later exits never happen

    def push(self, at: int, kind: int, item: object) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, kind, self.seq, item))

    def drain(self) -> None:
        while self.heap:
            at, kind, _, item = heapq.heappop(self.heap)
            if kind == _TRIGGER:
                assert isinstance(item, Entered)
                self._trigger(item)
            elif kind == _EXIT:
                self._exit(at, item)
            else:
                self._mark(at, item)

    def _trigger(self, e: Entered) -> None:
        ledger = self.out.ledger
        rejection = ledger.check(e.plan)
        if rejection is not None:
            self.out.rejected[e.watcher_id] = rejection.reason
            if rejection.reason == "risk_halted" and ledger.halted is None:
                self._trip(e.trigger_at)
            return
        f = e.fills
        ledger.sent(e.order_ref, e.watcher_id, e.symbol, e.plan.qty, e.plan.reference_price)
        ledger.filled(e.order_ref, f"{e.order_ref}:e", e.symbol, "BOT", f.qty, f.entry_price,
                      FEES.order_total(f.qty, f.qty * f.entry_price))
        self.live[e.watcher_id] = e
        for n, x in enumerate(f.exits):
            self.push(x.at, _EXIT, (e, n, x))
        if self.marks:
            self._next_mark(e, e.trigger_at)

    def _exit(self, at: int, item: object) -> None:
        assert isinstance(item, tuple)
        e: Entered = item[0]
        n: int = item[1]
        x: ExitFill = item[2]
        if e.watcher_id in self.dropped:
            return
        self.out.ledger.filled(e.order_ref, f"{e.order_ref}:x{n}", e.symbol, "SLD", x.qty,
                               x.price, FEES.order_total(x.qty, x.qty * x.price))
        book = self.out.ledger.books[e.order_ref]
        if book.open_qty <= 0:
            self.live.pop(e.watcher_id, None)
        self._check(at)

    def _mark(self, at: int, item: object) -> None:
        assert isinstance(item, tuple)
        e: Entered = item[0]
        i: int = item[1]
        if e.watcher_id not in self.live:
            return
        sec = self.series[e.symbol].seconds
        self.out.ledger.mark(e.symbol, int(sec.close[i]))
        self._check(at)
        self._next_mark(e, at)

    def _next_mark(self, e: Entered, after: int) -> None:
        """Mark at the end of the next 1-second bar of the symbol ending after ``after``."""
        sec = self.series[e.symbol].seconds
        i = int(sec.start.searchsorted(after - NS, side="right"))
        if i < len(sec):
            self.push(int(sec.start[i]) + NS, _MARK, (e, i))

    def _check(self, at: int) -> None:
        if self.out.ledger.trip_due() is not None:
            self._trip(at)

    def _trip(self, at: int) -> None:
        ledger = self.out.ledger
        trip = ledger.trip_due()
        ledger.halt(trip.reason if trip is not None else "daily_loss")
        self.out.halted_at = at
        if ledger.limits.on_halt is not OnHalt.FLATTEN:
            return
        for wid, e in sorted(self.live.items()):
            self._flatten(e, at)
            self.dropped.add(wid)
        self.live.clear()

    def _flatten(self, e: Entered, at: int) -> None:
        """Sell what is held at the close of the symbol's last second up to ``at``."""
        ledger = self.out.ledger
        book = ledger.books[e.order_ref]
        qty = book.open_qty
        price = ledger.marks.get(e.symbol) or _close_at(self.series[e.symbol], at)
        ledger.filled(e.order_ref, f"{e.order_ref}:fx", e.symbol, "SLD", qty, price,
                      FEES.order_total(qty, qty * price))
        f = e.fills
        exits = tuple(x for x in f.exits if x.at < at) + (ExitFill("flatten", at, price, qty),)
        pnl = sum((x.price - f.entry_price) * x.qty for x in exits)
        self.out.flattened[e.watcher_id] = f._replace(exits=exits, open_qty=0, closed_at=at,
                                                      pnl=pnl)


def _close_at(series: SymbolSeries, at: int) -> int:
    sec = series.seconds
    i = max(int(sec.start.searchsorted(at - NS, side="right")) - 1, 0)
    return int(sec.close[i])
