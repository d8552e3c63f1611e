"""A backtest's entries as the events the daemon journals, for :func:`fold_trades`.

Each entered watcher becomes what the daemon would have journaled: the
intent, the entry's execution, its exits and the ladder's stop moves, with
the commission the simulated gateway charges (:mod:`breakoutd.core.commission`,
one order per exit as the broker holds them). Folding these through the day
ledger gives the backtest's trades by the same code as the live journals'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast, get_args

from breakoutd.backtest.engine import BacktestResult, WatcherResult
from breakoutd.backtest.fills import ExitFill
from breakoutd.core import events as ev
from breakoutd.core.commission import CommissionSchedule
from breakoutd.core.ladder import on_rung_fill, start_ladder
from breakoutd.core.prices import to_decimal, to_decimal_or_none
from breakoutd.report.trades import Trade, fold_trades

FEES = CommissionSchedule()


def backtest_trades(result: BacktestResult, presets: Mapping[str, str] | None = None
                    ) -> list[Trade]:
    """The trades of one backtest day; what is still held is marked at the tape's last trade."""
    events: list[ev.Event] = []
    marks: dict[str, int] = {}
    for r in result.results:
        if r.outcome == "entered" and r.fills is not None:
            events.extend(entry_events(r))
            if r.fills.open_qty:
                marks[r.spec.symbol] = r.fills.mark
    events.sort(key=lambda e: e.at)  # stable: each entry's own events keep their order
    return fold_trades(result.day.isoformat(), events, marks, presets)


def entry_events(r: WatcherResult) -> list[ev.Event]:
    """The events of one simulated entry and its exits."""
    plan, f, spec = r.plan, r.fills, r.spec
    assert plan is not None and f is not None and r.kind in get_args(ev.TriggerKind)
    ref = plan.order_ref
    kind = cast(ev.TriggerKind, r.kind)
    out: list[ev.Event] = [
        ev.WatcherStarted(at=f.entry_at, watcher_id=spec.id, symbol=spec.symbol,
                          level=to_decimal(spec.level), session_day="", disarm_at=f.entry_at),
        ev.OrderIntent(
            at=f.entry_at, watcher_id=spec.id, order_ref=ref, kind=kind,
            trigger_at=f.entry_at, symbol=spec.symbol, qty=plan.qty, entry=plan.entry.value,
            limit=to_decimal_or_none(plan.limit), take_profits=tuple(to_decimal(g.price) for g in plan.rungs),
            take_profit_qtys=tuple(g.qty for g in plan.rungs), stop=to_decimal_or_none(plan.stop),
            stop_limit=to_decimal_or_none(plan.stop_limit), outside_rth=plan.outside_rth, tif=plan.tif,
            reference=to_decimal(plan.reference_price)),
        _fill(f.entry_at, ref, f"{ref}:e", "entry", 0, spec.symbol, "BOT", f.qty, f.entry_price),
        ev.OrderStatusChanged(at=f.entry_at, order_ref=ref, role="entry", rung=0, order_id=0,
                              status="Filled", filled=f.qty, remaining=0),
    ]
    ladder = start_ladder(plan, spec.level) if len(plan.rungs) > 1 and plan.stop else None
    for n, x in enumerate(f.exits):
        role, rung = _role(x)
        if role == "flatten":  # the daemon says why before it sells
            out.append(ev.FlattenSent(at=x.at, order_ref=ref, watcher_id=spec.id,
                                      symbol=spec.symbol, qty=x.qty, order_type="MKT",
                                      limit=None, reason="halt" if x.kind == "flatten"
                                      else x.kind))
        out.append(_fill(x.at, ref, f"{ref}:x{n}", role, rung, spec.symbol, "SLD", x.qty,
                         x.price))
        if ladder is not None and role == "take_profit":
            before = ladder.stop
            ladder, move = on_rung_fill(ladder, rung - 1, x.qty)
            if move.qty and move.stop != before:
                out.append(ev.StopMoved(at=x.at, order_ref=ref, order_id=0,
                                        stop=to_decimal(move.stop),
                                        stop_limit=to_decimal(move.stop_limit), qty=move.qty))
    return out


def _role(x: ExitFill) -> tuple[ev.OrderRole, int]:
    if x.kind.startswith("tp"):
        return "take_profit", int(x.kind[2:])
    return ("stop" if x.kind == "stop" else "flatten"), 0  # flatten, time_exit: sold at once


def _fill(at: int, ref: str, exec_id: str, role: ev.OrderRole, rung: int, symbol: str, side: str,
          qty: int, price: int) -> ev.OrderFilled:
    fee = FEES.order_total(qty, qty * price)
    return ev.OrderFilled(at=at, order_ref=ref, role=role, rung=rung, order_id=0,
                          exec_id=exec_id, symbol=symbol, side=side, qty=qty,
                          price=to_decimal(price), cum_qty=qty, commission=fee / 1_000_000)

