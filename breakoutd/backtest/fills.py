"""How the backtest models fills (documented in docs/backtest.md).

- Entry: a limit at the ask is marketable when sent, so it fills at once at
  its limit, at the trigger instant T; a market entry fills at T at the ask
  in force. The displayed size is assumed to be enough.
- Take-profit: a SELL LMT at ``tp`` fills at ``tp`` on the first 1-second
  row from T on whose high reaches it.
- Stop: triggers on the first row from T on whose low reaches ``sl``; the
  first print at or below the stop is taken as ``min(sl, open)``; the STP LMT
  sells there if that is at or above its limit ``sl - 0.02``, else it rests and
  fills at the limit on the first later row whose high reaches the limit.
- When the stop and a take-profit are both reached in the same second, the
  stop is assumed to come first (the conservative order).
- Ladders follow :mod:`breakoutd.core.ladder`: rungs fill in price order, the
  stop moves after rungs 1 and 2, and a moved stop is watched from the next
  second on.
- Whatever is still held at the end of the tape is marked at the last trade.
- P&L is gross of commissions.
- Positions with stop moves, time exits or slices: :mod:`breakoutd.backtest.managed`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from breakoutd.backtest.series import SymbolSeries
from breakoutd.core.ladder import LadderState, on_rung_fill, start_ladder
from breakoutd.core.plans import OrderPlan


class ExitFill(NamedTuple):
    """A simulated exit: ``kind`` is ``tp1``.. or ``stop``."""

    kind: str
    at: int
    price: int
    qty: int


class SliceFill(NamedTuple):
    """A slice of the entry that was sent and filled (managed positions)."""

    number: int
    order_ref: str
    at: int
    price: int
    qty: int


class StopMoveAt(NamedTuple):
    """The stop moved to ``price`` by ``rule`` (a StopRule value), in force from ``at``."""

    at: int
    price: int
    rule: str


class FillResult(NamedTuple):
    """The simulated life of one entry."""

    entry_at: int
    entry_price: int
    qty: int
    exits: tuple[ExitFill, ...]
    open_qty: int
    mark: int  # last trade price, for what is still open
    closed_at: int | None  # when the position went flat, if it did
    pnl: int  # micro-dollars, realized + marked
    slices: tuple[SliceFill, ...] = ()  # managed positions: the entry's slices that filled
    stop_moves: tuple[StopMoveAt, ...] = ()  # managed positions: where the stop went and why


def simulate_fills(plan: OrderPlan, level: int, trigger_at: int, series: SymbolSeries
                   ) -> FillResult:
    """Simulate the entry at ``trigger_at`` and its exits over the rest of the tape."""
    sec = series.seconds
    entry_price = plan.limit if plan.limit is not None else plan.reference_price
    first = int(np.searchsorted(sec.start, trigger_at, side="left"))
    exits = _exits(plan, level, series, first)
    sold = sum(e.qty for e in exits)
    mark = int(sec.close[-1]) if len(sec) else entry_price
    open_qty = plan.qty - sold
    pnl = sum((e.price - entry_price) * e.qty for e in exits) + (mark - entry_price) * open_qty
    closed_at = exits[-1].at if exits and open_qty == 0 else None
    return FillResult(trigger_at, entry_price, plan.qty, tuple(exits), open_qty, mark,
                      closed_at, pnl)


def _first(mask: np.ndarray, offset: int) -> int | None:
    idx = int(np.argmax(mask)) if len(mask) else 0
    return offset + idx if len(mask) and mask[idx] else None


def stop_fill(series: SymbolSeries, i: int, stop: int, limit: int, qty: int) -> ExitFill | None:
    sec = series.seconds
    price = min(stop, int(sec.open[i]))
    if price >= limit:
        return ExitFill("stop", int(sec.start[i]), price, qty)
    j = _first(sec.high[i + 1:] >= limit, i + 1)
    return ExitFill("stop", int(sec.start[j]), limit, qty) if j is not None else None


def _exits(plan: OrderPlan, level: int, series: SymbolSeries, first: int) -> list[ExitFill]:
    sec = series.seconds
    if plan.stop is None or plan.stop_limit is None:
        return _take_profits_only(plan, series, first)
    if len(plan.rungs) <= 1:
        tp = plan.rungs[0].price if plan.rungs else None
        i_sl = _first(sec.low[first:] <= plan.stop, first)
        i_tp = _first(sec.high[first:] >= tp, first) if tp is not None else None
        if i_tp is not None and (i_sl is None or i_tp < i_sl):
            return [ExitFill("tp1", int(sec.start[i_tp]), tp or 0, plan.qty)]
        if i_sl is None:
            return []
        fill = stop_fill(series, i_sl, plan.stop, plan.stop_limit, plan.qty)
        return [fill] if fill else []
    return _ladder(start_ladder(plan, level), series, first)


def _take_profits_only(plan: OrderPlan, series: SymbolSeries, first: int) -> list[ExitFill]:
    sec = series.seconds
    out = []
    for n, rung in enumerate(plan.rungs, 1):
        i = _first(sec.high[first:] >= rung.price, first)
        if i is not None:
            out.append(ExitFill(f"tp{n}", int(sec.start[i]), rung.price, rung.qty))
    return sorted(out, key=lambda e: e.at)


def _ladder(state: LadderState, series: SymbolSeries, i: int) -> list[ExitFill]:
    sec = series.seconds
    out: list[ExitFill] = []
    rung = 0
    while rung < len(state.prices) and not state.done:
        i_sl = _first(sec.low[i:] <= state.stop, i)
        i_tp = _first(sec.high[i:] >= state.prices[rung], i)
        if i_tp is None or (i_sl is not None and i_sl <= i_tp):
            if i_sl is not None:
                fill = stop_fill(series, i_sl, state.stop, state.stop_limit, state.stop_qty)
                if fill is not None:
                    out.append(fill)
            return out
        qty = state.qtys[rung] - state.filled[rung]
        out.append(ExitFill(f"tp{rung + 1}", int(sec.start[i_tp]), state.prices[rung], qty))
        state, _ = on_rung_fill(state, rung, qty)
        rung += 1
        i = i_tp + 1  # a moved stop is watched from the next second
    return out
