"""Exits relative to the level and to R (strategy.md, Levels from the market).

``sl_below`` is a price distance below the level L; ``tp_r`` places each
take-profit at ``entry + r * (entry - stop)`` with entry the entry reference
(the limit, or the ask of a market entry). Every price is on the tick,
rounded half-up, so what the daemon sends is what the backtest fills.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from breakoutd.core.prices import round_to_tick, tick_size


def stop_below(level: int, distance: int) -> int:
    """The stop ``distance`` below ``level``, on the tick (may be <= 0: the caller checks)."""
    price = level - distance
    return round_to_tick(price) if price > 0 else price


def r_price(entry: int, stop: int, r: Decimal) -> int:
    """``entry + r * (entry - stop)`` on the tick, exactly in decimal.

    A take-profit rounded to or below an entry off the tick (a market entry's
    ask) would sell at a loss: it is then the first tick above the entry.
    """
    exact = Decimal(entry) + r * Decimal(entry - stop)
    price = round_to_tick(int(exact.to_integral_value(rounding=ROUND_HALF_UP)))
    if price <= entry:
        tick = tick_size(entry)
        price = (entry // tick + 1) * tick
    return price


def tp_from_r(entry: int, stop: int, multiples: tuple[Decimal, ...]) -> tuple[int, ...]:
    """The take-profit prices of ``tp_r`` for an entry reference and its stop."""
    if stop >= entry:
        raise ValueError("R needs a stop below the entry")
    return tuple(r_price(entry, stop, r) for r in multiples)
