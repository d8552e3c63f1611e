"""Translations between ib_async's values and ours (``x_to_y``)."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

from breakoutd.core.bars import NS
from breakoutd.core.ledger import UNSET_DOUBLE
from breakoutd.core.prices import MICROS_PER_DOLLAR, to_decimal


def price_to_micros(value: float | Decimal | None) -> int | None:
    """A price from IB to micro-dollars: the one conversion for quotes, bars, orders and
    executions (and the feed's parsed text); None for IB's empty or unset values
    (nan, -1, 0, the largest double)."""
    if value is None:
        return None
    number = float(value)
    if not 0 < number < UNSET_DOUBLE:  # also nan
        return None
    return round(number * MICROS_PER_DOLLAR)


def price_to_decimal(value: float | Decimal | None) -> Decimal | None:
    """A price from IB as the exact dollars events carry (via micro-dollars); None when unset."""
    micros = price_to_micros(value)
    return None if micros is None else to_decimal(micros)


def size_to_int(value: float | None) -> int | None:
    """A wire size to whole shares; None when empty."""
    if value is None or math.isnan(value) or value < 0:
        return None
    return int(value)


def datetime_to_ns(value: dt.datetime) -> int:
    """An aware datetime to epoch ns (whole microseconds)."""
    return int(value.timestamp()) * NS + value.microsecond * 1000
