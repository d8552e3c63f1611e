"""One conversion of IB's prices to micro-dollars, whatever carried them."""

from __future__ import annotations

from decimal import Decimal

from breakoutd.ibkr.convert import price_to_micros
from breakoutd.ibkr.feedwire import wire_to_micros


def test_a_price_is_the_same_micros_from_a_float_a_decimal_or_the_wire() -> None:
    assert price_to_micros(5.01) == price_to_micros(Decimal("5.01")) == wire_to_micros(b"5.01")
    assert price_to_micros(0.0001) == 100


def test_ibs_empty_and_unset_prices_are_no_price() -> None:
    unset = 1.7976931348623157e308  # what ib_async leaves in an order's unset price
    assert [price_to_micros(v) for v in (None, float("nan"), -1.0, 0.0, unset)] == [None] * 5
    assert wire_to_micros(b"1.7976931348623157E308") is None
