"""Exact prices as integer micro-dollars.

Prices and levels are compared exactly (strategy.md): every price in the core
is an ``int`` number of micro-dollars (1e-6 USD). Decimal strings from the
watchlist and the tape convert exactly; a value with more than six decimal
places is refused at the edge rather than silently rounded.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICROS_PER_DOLLAR = 1_000_000
MICROS_PER_CENT = 10_000
ONE_DOLLAR = MICROS_PER_DOLLAR
TICK_ABOVE_DOLLAR = MICROS_PER_CENT  # 0.01
TICK_BELOW_DOLLAR = 100  # 0.0001

_MICRO = Decimal("0.000001")


class PriceError(ValueError):
    """A value that is not an exact price."""


def to_micros(value: Decimal | str | int | float) -> int:
    """Convert a decimal price to micro-dollars exactly, or raise PriceError.

    Floats are accepted through their shortest decimal repr (what YAML and
    CSV readers produce for a written number like ``49.02``).
    """
    try:
        dec = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise PriceError(f"{value!r} is not a number") from exc
    if not dec.is_finite():
        raise PriceError(f"{value!r} is not a finite number")
    scaled = dec * MICROS_PER_DOLLAR
    if scaled != scaled.to_integral_value():
        raise PriceError(f"{value} has more than 6 decimal places")
    return int(scaled)


def to_decimal(micros: int) -> Decimal:
    """The exact Decimal of a micro-dollar price, normalised to at least cents."""
    dec = (Decimal(micros) / MICROS_PER_DOLLAR).quantize(_MICRO)
    text = format(dec.normalize(), "f")
    if "." not in text:
        text += ".00"
    elif len(text.split(".")[1]) == 1:
        text += "0"
    return Decimal(text)


def to_decimal_or_none(micros: int | None) -> Decimal | None:
    """:func:`to_decimal`, None staying None (an order without a limit or a stop)."""
    return None if micros is None else to_decimal(micros)


def format_price(micros: int) -> str:
    """Human and JSON text of a price: at least two decimals, no trailing noise.

    The text of :func:`to_decimal`, in integer arithmetic: every id and every
    digest of a large watchlist formats its prices."""
    whole, fraction = divmod(abs(micros), MICROS_PER_DOLLAR)
    digits = f"{fraction:06d}".rstrip("0")
    sign = "-" if micros < 0 else ""
    return f"{sign}{whole}.{digits:0<2}"


def to_float(micros: int) -> float:
    """A float for APIs that need one (the broker wire, JSON numbers).

    The float is the nearest to the exact decimal, so ``repr`` prints the
    decimal back unchanged: Python's int division rounds the exact quotient
    once, as ``float(Decimal)`` does (and this is on the order path).
    """
    return micros / MICROS_PER_DOLLAR


def tick_size(micros: int) -> int:
    """The instrument tick for a price: 0.01 at or above $1.00, else 0.0001."""
    return TICK_ABOVE_DOLLAR if micros >= ONE_DOLLAR else TICK_BELOW_DOLLAR


def round_to_tick(micros: int) -> int:
    """Round a price to its tick, ties up, exactly (strategy.md, Entry)."""
    tick = tick_size(micros)
    # Half-up on non-negative integers: add half a tick, floor.
    return (micros + tick // 2) // tick * tick
