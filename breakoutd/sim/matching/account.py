"""The simulated account: cash, positions, P&L and IBKR Pro fixed commissions.

Money is integer micro-dollars inside. IB's conventions are kept where a
client can see them: a position's average cost includes the commissions paid
to open it (a short's is its proceeds net of commission), and realized P&L of
a closing fill is net of both the opening and the closing commissions.

Margin is simplified to an intraday (pattern day trader) account: initial and
maintenance requirement 25% of the gross position value, buying power four
times the available funds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from breakoutd.core.commission import CommissionSchedule
from breakoutd.core.prices import MICROS_PER_DOLLAR

_CENT = Decimal("0.01")

__all__ = ["Account", "CommissionSchedule", "PortfolioItem", "format_money"]


class PortfolioItem(NamedTuple):
    """One position as updatePortfolio (7) reports it; money in micro-dollars."""

    symbol: str
    con_id: int
    qty: int
    market_price: int
    market_value: int
    avg_cost: int
    unrealized_pnl: int
    realized_pnl: int


@dataclass
class _Position:
    con_id: int = 0
    qty: int = 0
    cost: int = 0  # signed: qty * average cost, commissions included
    realized: int = 0


@dataclass
class Account:
    """Cash and positions of one account, marked to the last trade price."""

    name: str
    cash: int  # micro-dollars
    realized: int = 0
    _positions: dict[str, _Position] = field(default_factory=dict)
    _marks: dict[str, int] = field(default_factory=dict)

    def mark(self, symbol: str, price: int) -> None:
        """Record the latest price of a symbol for valuation."""
        self._marks[symbol] = price

    def has_mark(self, symbol: str) -> bool:
        """True once a price is known for the symbol."""
        return symbol in self._marks

    def apply_fill(
        self, symbol: str, con_id: int, signed_qty: int, price: int, commission: int
    ) -> int | None:
        """Book one execution; return its realized P&L, or None when it only opens."""
        pos = self._positions.setdefault(symbol, _Position(con_id=con_id))
        pos.con_id = pos.con_id or con_id
        self.cash -= signed_qty * price + commission
        self._marks.setdefault(symbol, price)
        closing = 0
        if pos.qty and (pos.qty > 0) != (signed_qty > 0):
            closing = min(abs(signed_qty), abs(pos.qty))
        if closing == 0:
            pos.cost += signed_qty * price + commission
            pos.qty += signed_qty
            return None
        close_commission = commission * closing // abs(signed_qty)
        cost_part = pos.cost * closing // abs(pos.qty)
        step = closing if signed_qty > 0 else -closing
        realized = -step * price - cost_part - close_commission
        pos.cost -= cost_part
        pos.qty += step
        opening = signed_qty - step
        if opening:
            pos.cost += opening * price + commission - close_commission
            pos.qty += opening
        pos.realized += realized
        self.realized += realized
        return realized

    def position(self, symbol: str) -> tuple[int, int]:
        """``(qty, avg_cost)`` of a symbol, average cost rounded to the micro-dollar."""
        pos = self._positions.get(symbol)
        if pos is None or pos.qty == 0:
            return 0, 0
        return pos.qty, _div_round(pos.cost, pos.qty)

    def positions(self) -> dict[str, tuple[int, int]]:
        """Every symbol ever held (flat ones with qty 0, as IB lists them today)."""
        return {symbol: self.position(symbol) for symbol in self._positions}

    def con_id(self, symbol: str) -> int:
        """The contract id recorded for a held symbol (0 when unknown)."""
        pos = self._positions.get(symbol)
        return pos.con_id if pos else 0

    def portfolio(self) -> list[PortfolioItem]:
        """Positions with market value and P&L, for updatePortfolio."""
        items = []
        for symbol, pos in self._positions.items():
            price = self._marks.get(symbol, 0)
            qty, avg = self.position(symbol)
            value = qty * price
            items.append(PortfolioItem(
                symbol, pos.con_id, qty, price, value, avg, value - pos.cost, pos.realized,
            ))
        return items

    def values(self) -> dict[str, str]:
        """Account values under IB's tag names, as IB formats them (USD, cents)."""
        market = sum(p.qty * self._marks.get(s, 0) for s, p in self._positions.items())
        gross = sum(abs(p.qty * self._marks.get(s, 0)) for s, p in self._positions.items())
        unrealized = market - sum(p.cost for p in self._positions.values())
        net_liq = self.cash + market
        margin = gross // 4
        available = net_liq - margin
        micros = {
            "NetLiquidation": net_liq,
            "TotalCashValue": self.cash,
            "CashBalance": self.cash,
            "EquityWithLoanValue": net_liq,
            "GrossPositionValue": gross,
            "RealizedPnL": self.realized,
            "UnrealizedPnL": unrealized,
            "InitMarginReq": margin,
            "MaintMarginReq": margin,
            "AvailableFunds": available,
            "ExcessLiquidity": available,
            "BuyingPower": 4 * available,
        }
        return {tag: format_money(value) for tag, value in micros.items()}


def format_money(micros: int) -> str:
    """Dollars with two decimals, rounded half up, as IB writes account values."""
    dollars = Decimal(micros) / MICROS_PER_DOLLAR
    return str(dollars.quantize(_CENT, rounding=ROUND_HALF_UP))


def _div_round(num: int, den: int) -> int:
    """num / den rounded half away from zero, for signed integers."""
    q, r = divmod(abs(num), abs(den))
    if 2 * r >= abs(den):
        q += 1
    return q if (num >= 0) == (den > 0) else -q
