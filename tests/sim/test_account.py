"""The simulated account: IBKR Pro fixed commissions, average cost, P&L, account values."""

from __future__ import annotations

import pytest

from breakoutd.sim.matching import MatchingEngine, SimOrder
from breakoutd.sim.matching.account import Account, CommissionSchedule, format_money
from tests.factories import at, px

FEES = CommissionSchedule()


@pytest.mark.parametrize(("qty", "price", "dollars"), [
    (100, "10.00", "1.00"),    # 0.50 by the share, the $1.00 minimum applies
    (1000, "10.00", "5.00"),   # $0.005 a share
    (300, "0.50", "1.50"),     # 1.50 a share-rate, equal to the 1% cap
    (100, "0.50", "0.50"),     # the 1% cap beats the minimum
    (10_000, "0.20", "20.00"),  # 50.00 by the share, capped at 1% of 2000.00
])
def test_commission_per_order(qty: int, price: str, dollars: str) -> None:
    assert format_money(FEES.order_total(qty, qty * px(price))) == dollars


def test_partial_fills_of_one_order_pay_what_one_fill_would() -> None:
    first = FEES.for_fill(0, 0, 100, 100 * px("10"))
    second = FEES.for_fill(100, 100 * px("10"), 300, 300 * px("10"))
    assert (first, second) == (px("1.00"), px("1.00"))  # 400 shares: $2.00 in all


def test_average_cost_includes_the_opening_commission() -> None:
    acct = Account("DU1", px("100000"))
    assert acct.apply_fill("BAC", 7, 100, px("10.00"), px("1.00")) is None
    assert acct.position("BAC") == (100, px("10.01"))
    assert acct.cash == px("98999.00")


def test_realized_pnl_of_a_partial_close_is_net_of_both_commissions() -> None:
    acct = Account("DU1", px("100000"))
    acct.apply_fill("BAC", 7, 100, px("10.00"), px("1.00"))
    realized = acct.apply_fill("BAC", 7, -40, px("11.00"), px("1.00"))
    assert realized == px("38.60")  # 40 * 11.00 - 40 * 10.01 - 1.00
    assert acct.position("BAC") == (60, px("10.01"))


def test_short_position_and_cover() -> None:
    acct = Account("DU1", px("100000"))
    acct.apply_fill("XYZ", 0, -100, px("20.00"), px("1.00"))
    assert acct.position("XYZ") == (-100, px("19.99"))  # proceeds net of commission
    assert acct.apply_fill("XYZ", 0, 100, px("19.00"), px("1.00")) == px("98.00")
    assert acct.position("XYZ") == (0, 0)
    assert acct.cash == px("100098.00")


def test_a_fill_through_flat_closes_then_opens() -> None:
    acct = Account("DU1", px("100000"))
    acct.apply_fill("BAC", 0, 100, px("10.00"), px("1.00"))
    realized = acct.apply_fill("BAC", 0, -300, px("12.00"), px("1.50"))
    assert realized == px("198.50")  # 1200 - 1001 - 0.50 (a third of the commission)
    assert acct.position("BAC") == (-200, px("11.995"))  # (2400 - 1.00) / 200


def test_account_values_mark_positions_to_the_last_trade() -> None:
    acct = Account("DU1", px("100000"))
    acct.apply_fill("BAC", 0, 100, px("10.00"), px("1.00"))
    acct.mark("BAC", px("10.50"))
    values = acct.values()
    assert values["TotalCashValue"] == "98999.00"
    assert values["NetLiquidation"] == "100049.00"
    assert values["GrossPositionValue"] == "1050.00"
    assert values["UnrealizedPnL"] == "49.00"
    assert values["RealizedPnL"] == "0.00"
    assert values["AvailableFunds"] == "99786.50"  # 100049.00 - 25% of 1050.00
    assert values["BuyingPower"] == "399146.00"
    item = acct.portfolio()[0]
    assert (item.qty, item.market_price, item.market_value, item.unrealized_pnl) == (
        100, px("10.50"), px("1050"), px("49"))


def test_engine_account_follows_fills_and_trades() -> None:
    now = at("10:00:00")
    eng = MatchingEngine(clock=lambda: now, cash=50_000)
    eng.on_quote("BAC", 0, px("13.90"), 1000, px("13.91"), 1000)
    eng.place(SimOrder(client_id=1, order_id=1, symbol="BAC", con_id=10, action="BUY",
                       total_qty=200, order_type="MKT"))
    eng.on_trade("BAC", 0, px("14.00"), 100)
    assert eng.positions() == {"BAC": (200, px("13.915"))}  # 13.91 + 1.00 / 200
    values = eng.account_values()
    assert values["TotalCashValue"] == "47217.00"  # 50000 - 2782.00 - 1.00
    assert values["UnrealizedPnL"] == "17.00"  # 200 * 14.00 - 2783.00
    assert values["NetLiquidation"] == "50017.00"
