"""Translations between ib_async's values and ours (``x_to_y``)."""

from __future__ import annotations

import datetime as dt
import math

from breakoutd.core.bars import NS

MICROS = 1_000_000


def float_to_micros(value: float | None) -> int | None:
    """A wire price (float) to micro-dollars; None for IB's empty values (nan, -1, 0)."""
    if value is None or math.isnan(value) or value <= 0:
        return None
    return round(value * MICROS)


def size_to_int(value: float | None) -> int | None:
    """A wire size to whole shares; None when empty."""
    if value is None or math.isnan(value) or value < 0:
        return None
    return int(value)


def micros_to_float(micros: int) -> float:
    """Micro-dollars to the float the wire carries (shortest repr of the decimal)."""
    return float(f"{micros / MICROS:.6f}")


def datetime_to_ns(value: dt.datetime) -> int:
    """An aware datetime to epoch ns (whole microseconds)."""
    return int(value.timestamp()) * NS + value.microsecond * 1000
