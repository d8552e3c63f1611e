"""The fill model of a managed position: stop moves, time exits and slices (docs/backtest.md).

A position with ``breakeven``, ``trail``, ``exit_at``, ``max_hold`` or
``slices`` is walked one 1-second bar at a time with the core's own rules
(:mod:`breakoutd.core.stop_rules`, :mod:`breakoutd.core.time_exits`,
:mod:`breakoutd.core.slicing`):

- Slice k (k >= 2) is due at ``T + (k-1) * every``; it is priced like the
  entry from the quote in force then and fills at once at that price, before
  the second starting at its instant. A slice with no ask in force, or whose
  reference would break the exits (the take-profit, the stop in force), is
  not sent, nor are later ones; no slice is sent once the position is closed.
- In each second, first the stop (the low reaching it, filled as in
  :mod:`breakoutd.backtest.fills`), then the take-profits (the high reaching
  them, for what has filled), then the second's high is a print: breakeven
  and trail propose stops, the highest holds, and a moved stop is watched
  from the next second on (as a ladder's move).
- The time exit is due at ``exit_at`` or at the first fill plus
  ``max_hold``, before the second starting at that instant: what is open is
  sold at the bid in force then (MKT in regular hours and the marketable
  SELL LMT at bid - 0.05 outside them both fill at the bid, as the simulated
  gateway fills them). Without a bid in regular hours it sells at the last
  trade; outside them without a bid nothing is sold (live, the daemon alerts).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from breakoutd.backtest.fills import ExitFill, FillResult, SliceFill, StopMoveAt, stop_fill
from breakoutd.backtest.series import SymbolSeries
from breakoutd.core.ladder import LadderState, on_rung_fill, start_ladder
from breakoutd.core.params import EntryKind, Session, StrategyParams
from breakoutd.core.plans import STOP_LIMIT_OFFSET, OrderPlan
from breakoutd.core.prices import round_to_tick
from breakoutd.core.slicing import Slice, slice_keeps_exits, slice_schedule
from breakoutd.core.stop_rules import ManagedStop, on_ladder_stop, on_print, start_stop
from breakoutd.core.time_exits import TimeExit, time_exit

SessionAt = Callable[[int], Session | None]


class _Run:
    """One managed position walked over the seconds of its symbol."""

    def __init__(self, plan: OrderPlan, params: StrategyParams, level: int, trigger_at: int,
                 series: SymbolSeries) -> None:
        self.plan, self.params, self.series = plan, params, series
        price = plan.limit if plan.limit is not None else plan.reference_price
        schedule: tuple[Slice, ...] = ()
        if params.slices is not None:
            schedule = slice_schedule(plan.qty, params.slices, trigger_at, plan.order_ref)
        first_qty = schedule[0].qty if schedule else plan.qty
        ref = schedule[0].order_ref if schedule else plan.order_ref
        self.slices = [SliceFill(1, ref, trigger_at, price, first_qty)]
        self.pending = list(schedule[1:])
        self.exits: list[ExitFill] = []
        self.moves: list[StopMoveAt] = []
        self.ladder: LadderState | None = None
        if plan.stop is not None and len(plan.rungs) > 1:
            self.ladder = start_ladder(plan, level)
        self.stop: ManagedStop | None = None
        if plan.stop is not None:
            self.stop = start_stop(price, plan.stop) if plan.stop < price else None
        self.tp_done = 0  # rungs fully sold

    @property
    def filled(self) -> int:
        return sum(s.qty for s in self.slices)

    @property
    def open_qty(self) -> int:
        return self.filled - sum(e.qty for e in self.exits)

    def fill_due_slices(self, until: int) -> None:
        """Send and fill the slices due at or before ``until`` while the position is open."""
        while self.pending and self.pending[0].at <= until and self.open_qty > 0:
            due = self.pending.pop(0)
            quote = self.series.quote_at(due.at)
            ask = quote.valid_ask() if quote is not None else None
            ref = None if ask is None else (
                ask if self.plan.entry is EntryKind.MARKET else round_to_tick(ask))
            first_tp = self.plan.rungs[0].price if self.plan.rungs else None
            # The stop in force, as the daemon checks it: a breakeven or trail may have moved it.
            stop = self.stop.stop if self.stop is not None else self.plan.stop
            if ref is None or not slice_keeps_exits(ref, stop, first_tp):
                self.pending.clear()  # this one and every later one are not sent
                return
            self.slices.append(SliceFill(due.number, due.order_ref, due.at, ref, due.qty))
            if self.stop is not None:
                cost = sum(s.price * s.qty for s in self.slices)
                self.stop = self.stop._replace(fill=cost // self.filled)

    def time_exit(self, due: TimeExit, in_rth: bool) -> None:
        """Sell what is open at the bid in force at the due instant."""
        quote = self.series.quote_at(due.at)
        bid = quote.bid if quote is not None and quote.bid is not None and quote.bid > 0 else None
        if bid is None and in_rth:
            sec = self.series.seconds
            i = int(np.searchsorted(sec.start, due.at, side="left")) - 1
            bid = int(sec.close[max(i, 0)]) if len(sec) else None
        if bid is None or self.open_qty <= 0:
            return
        self.exits.append(ExitFill("time_exit", due.at, bid, self.open_qty))
        self.pending.clear()

    def second(self, i: int) -> None:
        """The stop, then the take-profits, then the high as a print (a moved stop from i+1)."""
        sec = self.series.seconds
        if self.stop is not None:
            stop = self.stop.stop
            limit = round_to_tick(stop - STOP_LIMIT_OFFSET)
            if int(sec.low[i]) <= stop:
                fill = stop_fill(self.series, i, stop, limit, self.open_qty)
                if fill is not None:
                    self.exits.append(fill)
                self.pending.clear()
                return
        self._take_profits(i)
        if self.stop is not None and self.open_qty > 0:
            before = self.stop.stop
            self.stop = on_print(self.params, self.stop, int(sec.high[i]))
            if self.stop.stop > before:
                self.moves.append(StopMoveAt(int(sec.start[i]) + int(sec.size), self.stop.stop,
                                             self.stop.rule))

    def _take_profits(self, i: int) -> None:
        sec = self.series.seconds
        at, high = int(sec.start[i]), int(sec.high[i])
        rungs = self.plan.rungs
        while self.tp_done < len(rungs) and self.open_qty > 0 and high >= rungs[self.tp_done].price:
            rung = self.tp_done
            if self.ladder is None:
                qty = self.open_qty  # one take-profit covers what has filled
            else:
                qty = self.ladder.qtys[rung] - self.ladder.filled[rung]
                self.ladder, move = on_rung_fill(self.ladder, rung, qty)
                if self.stop is not None:
                    before = self.stop.stop
                    self.stop = on_ladder_stop(self.stop, move.stop)
                    if self.stop.stop > before:
                        self.moves.append(StopMoveAt(at + int(sec.size), self.stop.stop,
                                                     self.stop.rule))
            self.exits.append(ExitFill(f"tp{rung + 1}", at, rungs[rung].price, qty))
            self.tp_done += 1

    def result(self, trigger_at: int) -> FillResult:
        sec = self.series.seconds
        filled = self.filled
        cost = sum(s.price * s.qty for s in self.slices)
        mark = int(sec.close[-1]) if len(sec) else self.slices[0].price
        open_qty = self.open_qty
        pnl = sum(e.price * e.qty for e in self.exits) + mark * open_qty - cost
        closed_at = self.exits[-1].at if self.exits and open_qty == 0 else None
        return FillResult(trigger_at, cost // filled, filled, tuple(self.exits), open_qty, mark,
                          closed_at, pnl, tuple(self.slices), tuple(self.moves))


def simulate_managed(plan: OrderPlan, params: StrategyParams, level: int, trigger_at: int,
                     series: SymbolSeries, midnight: int,
                     session_at: SessionAt | None = None) -> FillResult:
    """Simulate a managed entry at ``trigger_at`` over the rest of the tape.

    ``midnight`` is the epoch ns of the exchange day's 00:00 (for ``exit_at``);
    ``session_at`` maps an instant to its session (a callable), to price the
    time exit; None counts every instant as regular hours.
    """
    run = _Run(plan, params, level, trigger_at, series)
    due = time_exit(params, trigger_at, midnight)
    sec = series.seconds
    i = int(np.searchsorted(sec.start, trigger_at, side="left"))
    while i < len(sec) and run.open_qty > 0:
        start = int(sec.start[i])
        if due is not None and due.at <= start:
            run.fill_due_slices(due.at)
            run.time_exit(due, _in_rth(session_at, due.at))
            due = None
            continue
        run.fill_due_slices(start)
        if run.open_qty > 0:
            run.second(i)
        i += 1
    return run.result(trigger_at)  # a time exit after the tape's end: what is open is marked


def _in_rth(session_at: SessionAt | None, at: int) -> bool:
    return session_at is None or session_at(at) is Session.RTH
