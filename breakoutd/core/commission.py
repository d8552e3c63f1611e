"""Commissions: IBKR Pro fixed pricing, shared by the simulated gateway and the backtest.

The backtest charges what the simulated gateway charges, so the day ledger's
realized P&L after commissions is the same in both on the same tape.
"""

from __future__ import annotations

from typing import NamedTuple


class CommissionSchedule(NamedTuple):
    """IBKR Pro fixed pricing: $0.005 a share, at least $1.00, at most 1% of value."""

    per_share: int = 5_000  # micro-dollars
    minimum: int = 1_000_000
    max_basis_points: int = 100  # 1% of the trade value

    def order_total(self, qty: int, value: int) -> int:
        """Commission in micro-dollars for an order of ``qty`` shares worth ``value``."""
        if qty <= 0:
            return 0
        fee = max(qty * self.per_share, self.minimum)
        return min(fee, value * self.max_basis_points // 10_000)

    def for_fill(self, prev_qty: int, prev_value: int, qty: int, value: int) -> int:
        """Commission of one execution: the order's total after it minus before it.

        The minimum and the cap apply per order, as at IBKR, so partial fills
        of one order together pay exactly what one fill of the whole would.
        """
        after = self.order_total(prev_qty + qty, prev_value + value)
        return after - self.order_total(prev_qty, prev_value)
