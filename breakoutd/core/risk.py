"""The risk ledger: daemon-wide limits checked before every entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from breakoutd.core.params import RiskLimits
from breakoutd.core.plans import OrderPlan, Rejection
from breakoutd.core.prices import MICROS_PER_DOLLAR


@dataclass(slots=True)
class RiskLedger:
    """Today's entries, open positions and realized P&L against the limits."""

    limits: RiskLimits
    entries: int = 0
    open_notional: dict[str, int] = field(default_factory=dict)  # watcher id -> micros
    realized_pnl: int = 0  # micro-dollars
    halted: bool = False

    def check(self, plan: OrderPlan) -> Rejection | None:
        """The first limit this entry would break, or None."""
        lim = self.limits
        if self.halted:
            return Rejection("risk_halted", "trading is halted for the day")
        if lim.max_entries_per_day is not None and self.entries >= lim.max_entries_per_day:
            return Rejection("risk_max_entries", f"{self.entries} entries today", plan.limit)
        if lim.max_positions is not None and len(self.open_notional) >= lim.max_positions:
            return Rejection("risk_max_positions", f"{len(self.open_notional)} open", plan.limit)
        if lim.max_daily_loss_usd is not None and self.realized_pnl <= -_micros(lim.max_daily_loss_usd):
            return Rejection("risk_daily_loss", "the daily loss limit is reached", plan.limit)
        if lim.max_notional_usd is not None:
            total = sum(self.open_notional.values()) + plan.notional
            if total > _micros(lim.max_notional_usd):
                return Rejection("risk_max_notional", f"notional would be {total / MICROS_PER_DOLLAR:.2f}", plan.limit)
        return None

    def on_entry(self, plan: OrderPlan) -> None:
        """Count an entry that was sent; its notional is open until it closes."""
        self.entries += 1
        self.open_notional[plan.watcher_id] = plan.notional

    def on_closed(self, watcher_id: str, pnl: int) -> None:
        """A position (or an entry that never filled) is closed with ``pnl`` micros."""
        self.open_notional.pop(watcher_id, None)
        self.realized_pnl += pnl


def _micros(usd: Decimal) -> int:
    return int(usd * MICROS_PER_DOLLAR)
