"""The close rule and the fast rule (strategy.md), as pure functions."""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

from breakoutd.core.bars import NS, Bar
from breakoutd.core.params import FastSchedule
from breakoutd.core.prices import MICROS_PER_CENT, MICROS_PER_DOLLAR

_FOUR = 4 * MICROS_PER_DOLLAR
_SEVEN = 7 * MICROS_PER_DOLLAR


def regime_multiplier(level: int) -> Fraction:
    """m from the level: below $4 -> 1.0, $4 to below $7 -> 1.1, $7 and up -> 1.25."""
    if level < _FOUR:
        return Fraction(1)
    if level < _SEVEN:
        return Fraction(11, 10)
    return Fraction(5, 4)


def _cents_half_up(value: Fraction) -> int:
    """Whole cents, ties rounded up, exactly (not Python's banker's round)."""
    return (value + Fraction(1, 2)).__floor__()


class FastThresholds(NamedTuple):
    """Per-k distance and spread limits for one level, in micro-dollars."""

    step: int
    distance: tuple[int, ...]
    spread: tuple[int, ...]

    def k_of(self, bar_start_ns: int) -> int:
        """k for the 1-second bar starting at ``bar_start_ns``."""
        return (bar_start_ns // NS) % 60 // self.step


def fast_thresholds(schedule: FastSchedule, level: int) -> FastThresholds:
    """Distance D and spread S for k = 0..K, scaled by the level's regime."""
    return _thresholds(schedule, regime_multiplier(level))


@lru_cache(maxsize=256)
def _thresholds(schedule: FastSchedule, m: Fraction) -> FastThresholds:
    big_k = 59 // schedule.step
    d0, d1 = Fraction(schedule.distance_start), Fraction(schedule.distance_end)
    s0, s1 = Fraction(schedule.spread_start), Fraction(schedule.spread_end)
    dist: list[int] = []
    spread: list[int] = []
    for k in range(big_k + 1):
        frac = Fraction(k, big_k) if big_k else Fraction(0)
        dist.append(_cents_half_up((d0 - (d0 - d1) * frac) * m) * MICROS_PER_CENT)
        spread.append(_cents_half_up((s0 - (s0 - s1) * frac) * m) * MICROS_PER_CENT)
    return FastThresholds(schedule.step, tuple(dist), tuple(spread))


def fast_rule_fires(bar: Bar, level: int, th: FastThresholds) -> bool:
    """True when a closed 1-second bar meets the fast rule for ``level``."""
    k = (bar.start // NS) % 60 // th.step
    return (
        bar.high >= level + th.distance[k]
        and bar.close >= level
        and bar.high - bar.low <= th.spread[k]
    )


def close_rule_fires(bar: Bar, level: int) -> bool:
    """True when a closed close-rule bar closes at or above the level."""
    return bar.close >= level
