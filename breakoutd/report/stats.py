"""The figures a trader judges a setup by, from its trades.

- win rate: trades with P&L after commissions above zero over all trades;
- average R: the mean R multiple of the trades that have one (a stop);
- expectancy: the mean P&L per trade (equal to win rate x average win -
  loss rate x average loss), in USD;
- profit factor: the wins' P&L over the losses' (None without a loss);
- max drawdown: the deepest fall of the cumulative P&L (USD) or R from its
  running peak, the curve starting at 0 and trades counted when they close.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from breakoutd.report.trades import Trade


@dataclass(frozen=True, slots=True)
class Summary:
    """The totals of a set of trades (money in micro-dollars)."""

    trades: int
    wins: int
    losses: int
    net: int
    gross_profit: int
    gross_loss: int  # <= 0
    commissions: int
    win_rate: float | None
    avg_r: float | None
    expectancy: float | None  # micro-dollars per trade
    profit_factor: float | None
    max_drawdown: int
    max_drawdown_r: float


def in_close_order(trades: Iterable[Trade]) -> list[Trade]:
    """Trades in the order they count on the equity curve."""
    return sorted(trades, key=lambda t: (t.closed_at, t.entry_at, t.watcher_id))


def max_drawdown(steps: Iterable[float]) -> float:
    """The deepest fall of the running sum of ``steps`` from its peak (the peak starts at 0)."""
    total = peak = worst = 0.0
    for s in steps:
        total += s
        peak = max(peak, total)
        worst = max(worst, peak - total)
    return worst


def summarize(trades: Sequence[Trade]) -> Summary:
    """The totals of ``trades``."""
    ordered = in_close_order(trades)
    pnls = [t.pnl for t in ordered]
    rs = [t.r for t in ordered if t.r is not None]
    profit = sum(p for p in pnls if p > 0)
    loss = sum(p for p in pnls if p < 0)
    n = len(pnls)
    return Summary(
        trades=n, wins=sum(1 for p in pnls if p > 0), losses=sum(1 for p in pnls if p < 0),
        net=sum(pnls), gross_profit=profit, gross_loss=loss,
        commissions=sum(t.commissions for t in ordered),
        win_rate=sum(1 for p in pnls if p > 0) / n if n else None,
        avg_r=sum(rs) / len(rs) if rs else None,
        expectancy=sum(pnls) / n if n else None,
        profit_factor=profit / -loss if loss else None,
        max_drawdown=int(max_drawdown(pnls)),
        max_drawdown_r=max_drawdown(rs))


def grouped(trades: Sequence[Trade], key: Callable[[Trade], str]) -> dict[str, Summary]:
    """The totals per value of ``key``, sorted by it."""
    groups: dict[str, list[Trade]] = {}
    for t in trades:
        groups.setdefault(key(t), []).append(t)
    return {k: summarize(v) for k, v in sorted(groups.items())}


GROUPS: dict[str, Callable[[Trade], str]] = {
    "day": lambda t: t.day, "symbol": lambda t: t.symbol, "preset": lambda t: t.preset,
}
