"""The latent price of a synthetic day: a walk that breaks given levels on cue.

Per second, in log space: a random walk whose drift and volatility change in
stretches (trending or ranging), bent into Brownian bridges that approach
each level from below and are reflected off a ceiling just under it, then a
breakout of a chosen style at a chosen second. Trade prices are later capped
at the same ceiling, so before its breakout no trade reaches the level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from breakoutd.core.prices import MICROS_PER_DOLLAR, ONE_DOLLAR

NO_CAP = np.iinfo(np.int64).max // 4
# Distance of a spike's high above the level: the fast rule's largest
# distance is 19 cents (k = 0, L >= 7; strategy.md), plus a cent of margin.
SPIKE_CENTS = 20
SPIKE_RANGE_TICKS = 2  # high - low of the spike second; the smallest spread cap is 4 cents
GRIND_TICKS_ABOVE = 4  # the grind minute stays within 4 ticks above L (fast rule needs 5c)


def floor_tick(micros: np.ndarray | int) -> np.ndarray:
    """Round prices down to their tick (0.01 at or above $1, 0.0001 below)."""
    p = np.asarray(micros, dtype=np.int64)
    return np.where(p >= ONE_DOLLAR, p // 10_000 * 10_000, p // 100 * 100)


def ceil_tick(micros: np.ndarray | int) -> np.ndarray:
    """Round prices up to their tick."""
    p = np.asarray(micros, dtype=np.int64)
    return np.where(p > ONE_DOLLAR, -(-p // 10_000) * 10_000, -(-p // 100) * 100)


def tick_of(micros: np.ndarray | int) -> np.ndarray:
    """The tick size at each price, in micros."""
    return np.where(np.asarray(micros) >= ONE_DOLLAR, 10_000, 100)


@dataclass(frozen=True)
class Breakout:
    """A level and how and when the walk breaks it (second offsets from the start)."""

    level: int  # micros
    style: str  # "fast" (one-second spike) or "grind" (a minute that closes above)
    at: int  # the spike's second, or the grind minute's first second


@dataclass
class PricePath:
    """The walk (dollars), the per-second trade ceiling (micros), required trades."""

    mid: np.ndarray
    cap: np.ndarray
    # Seconds that must print a trade; those in ``forced`` with these exact OHLC.
    must_trade: set[int] = field(default_factory=set)
    forced: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)


def day_steps(rng: np.random.Generator, sigma: np.ndarray) -> np.ndarray:
    """Log-price steps per second with trending and ranging stretches."""
    n = len(sigma)
    drift = np.zeros(n)
    scale = np.ones(n)
    at = 0
    while at < n:
        length = int(rng.exponential(1200.0)) + 60
        if rng.random() < 0.5:  # trending stretch
            drift[at:at + length] = rng.choice((-1.0, 1.0)) * rng.uniform(0.02, 0.06)
        else:  # ranging stretch: quieter, no drift
            scale[at:at + length] = 0.7
        at += length
    return sigma * (drift + scale * rng.standard_normal(n))


def _reflect(walk: np.ndarray, lo: float, hi: float | None) -> np.ndarray:
    if hi is None:
        return lo + np.abs(walk - lo)
    width = hi - lo
    if width <= 0:
        return np.full_like(walk, hi)
    folded = np.mod(walk - lo, 2 * width)
    return lo + np.where(folded > width, 2 * width - folded, folded)


def bridge(steps: np.ndarray, start: float, end: float | None,
           lo: float, hi: float | None) -> np.ndarray:
    """``len(steps) + 1`` log prices from ``start`` (to ``end``), kept in [lo, hi]."""
    walk = start + np.concatenate(([0.0], np.cumsum(steps)))
    if end is not None:
        walk += np.linspace(0.0, 1.0, len(walk)) * (end - walk[-1])
    return _reflect(walk, lo, hi)


def build_path(rng: np.random.Generator, steps: np.ndarray, base: int,
               plan: list[Breakout]) -> PricePath:
    """The day's walk from ``base`` through every planned breakout, in order."""
    n = len(steps)
    log_mid = np.empty(n)
    path = PricePath(np.empty(0), np.full(n, NO_CAP, dtype=np.int64))
    pos, current, broken = 0, math.log(base / MICROS_PER_DOLLAR), 0
    for index, brk in enumerate(plan):
        if brk.level <= broken:
            continue  # an earlier breakout already went through this level too
        ceiling = int(floor_tick(brk.level - 1))
        gap = int(rng.integers(1, 4)) * int(tick_of(ceiling))
        target = max(int(floor_tick(brk.level - gap)), 100)
        lo = math.log(min(math.exp(current), target / MICROS_PER_DOLLAR) * 0.6)
        hi = math.log(ceiling / MICROS_PER_DOLLAR)
        seg = bridge(steps[pos + 1:brk.at], current, math.log(target / MICROS_PER_DOLLAR), lo, hi)
        log_mid[pos:brk.at] = seg
        path.cap[pos:brk.at] = ceiling
        if brk.style == "fast":
            pos, close = _spike(rng, brk, log_mid, path)
        else:
            later = [b.level for b in plan[index + 1:] if b.level > brk.level]
            pos, close = _grind(rng, brk, log_mid, path, min(later, default=NO_CAP))
        # Later levels at or below the highest forced trade are broken too.
        broken = max(broken, max(path.forced[pos - 1][1], close))
        current = math.log(close / MICROS_PER_DOLLAR)
    lo = current + math.log(0.6)
    log_mid[pos:] = bridge(steps[pos + 1:], current, None, lo, None)
    path.mid = np.exp(log_mid)
    return path


def _spike(rng: np.random.Generator, brk: Breakout, log_mid: np.ndarray,
           path: PricePath) -> tuple[int, int]:
    high = int(ceil_tick(brk.level + SPIKE_CENTS * 10_000))
    tick = int(tick_of(high))
    low = high - SPIKE_RANGE_TICKS * tick
    close = high - int(rng.integers(0, SPIKE_RANGE_TICKS + 1)) * tick
    path.forced[brk.at] = (low, high, low, close)
    path.must_trade.add(brk.at)
    log_mid[brk.at] = math.log(close / MICROS_PER_DOLLAR)
    return brk.at + 1, close


def _grind(rng: np.random.Generator, brk: Breakout, log_mid: np.ndarray,
           path: PricePath, next_level: int) -> tuple[int, int]:
    first_above = int(ceil_tick(brk.level + 1))
    tick = int(tick_of(first_above))
    close = first_above + int(rng.integers(0, 2)) * tick  # the minute closes above L
    # Stay under the next level within the minute unless the close itself breaks it.
    ceiling = min(first_above + (GRIND_TICKS_ABOVE - 1) * tick, int(floor_tick(next_level - 1)))
    ceiling = max(ceiling, close)
    minute = slice(brk.at, brk.at + 60)
    ramp = brk.level + tick * (np.linspace(-2.0, 2.0, 60) + rng.uniform(-1.0, 1.0, 60))
    log_mid[minute] = np.log(np.clip(ramp, 100, ceiling) / MICROS_PER_DOLLAR)
    path.cap[minute] = ceiling
    path.forced[brk.at + 59] = (close, close, close, close)
    path.must_trade.update(brk.at + int(s) for s in rng.choice(60, size=12, replace=False))
    path.must_trade.add(brk.at + 59)
    return brk.at + 60, close
