"""Why a watcher did not enter: its near miss, tallied from the bars it was fed.

For every watcher that ends without entering the trader wants to know how
close it came, so the level or the rule can be tuned:

- the closest approach: the highest 1-second high in its window, when it was
  first reached, and how far below the level it stayed (cents and percent;
  zero or less when the price reached the level);
- the 1-second bars that closed at or above the level without firing the
  fast rule, and the close-rule bars that closed at or above it without
  firing (the plain close rule fires on the first, so that count is 0 for
  it; a rule with another condition leaves bars there);
- for the fast rule, among the 1-second bars whose high reached the level
  (``touched``), how many failed each condition: the distance (high below
  level + D[k]), the close (below the level), the spread (high - low above
  S[k]); a bar may fail several.

Live, the runner feeds a :class:`NearMissTally` every bar the machine
evaluated without deciding; the backtest computes the same figures with numpy
over the same bars (``breakoutd.backtest.near_miss``).
"""

from __future__ import annotations

from typing import NamedTuple

from breakoutd.core import events as ev
from breakoutd.core.bars import NS, Bar
from breakoutd.core.prices import MICROS_PER_CENT, format_price, to_micros
from breakoutd.core.rules import FastThresholds

FAST_CONDITIONS = ("distance", "close", "spread")


class NearMiss(NamedTuple):
    """The tally of the bars a watcher saw without deciding (prices in micro-dollars)."""

    level: int
    closest: int | None  # the highest 1-second high; None without a bar
    closest_at: int | None  # the start of the first 1-second bar that reached it
    seconds: int  # 1-second bars seen
    seconds_closed_above: int
    bars_closed_above: int
    touched: int  # 1-second bars whose high reached the level
    failed_distance: int
    failed_close: int
    failed_spread: int

    @property
    def short_by(self) -> int | None:
        """How far the closest approach stayed below the level (<= 0: it reached it)."""
        return self.level - self.closest if self.closest is not None else None

    @property
    def short_pct(self) -> float | None:
        """``short_by`` in percent of the level."""
        short = self.short_by
        return short * 100 / self.level if short is not None and self.level else None

    @property
    def most_failed(self) -> str | None:
        """The fast rule's condition failed most by the touching bars (ties: the first)."""
        counts = (self.failed_distance, self.failed_close, self.failed_spread)
        if not any(counts):
            return None
        return FAST_CONDITIONS[counts.index(max(counts))]


def from_event(e: ev.NearMissed) -> NearMiss:
    """The tally a NearMissed event carries."""
    return NearMiss(to_micros(e.level), to_micros(e.closest) if e.closest is not None else None,
                    e.closest_at, e.seconds, e.seconds_closed_above, e.bars_closed_above,
                    e.touched, e.failed_distance, e.failed_close, e.failed_spread)


def fast_failures(bar: Bar, level: int, th: FastThresholds) -> tuple[bool, bool, bool]:
    """Which of the fast rule's conditions a 1-second bar fails: distance, close, spread."""
    k = (bar.start // NS) % 60 // th.step
    return (bar.high < level + th.distance[k], bar.close < level,
            bar.high - bar.low > th.spread[k])


class NearMissTally:
    """Counts, bar by bar, what :class:`NearMiss` reports."""

    __slots__ = ("level", "th", "closest", "closest_at", "seconds", "seconds_above",
                 "bars_above", "touched", "failed")

    def __init__(self, level: int, th: FastThresholds | None) -> None:
        self.level = level
        self.th = th
        self.closest: int | None = None
        self.closest_at: int | None = None
        self.seconds = self.seconds_above = self.bars_above = self.touched = 0
        self.failed = [0, 0, 0]

    def fast(self, bar: Bar) -> None:
        """A 1-second bar of the window that did not fire the fast rule."""
        self.seconds += 1
        high = bar.high
        if self.closest is None or high > self.closest:
            self.closest, self.closest_at = high, bar.start
        if bar.close >= self.level:
            self.seconds_above += 1
        if high >= self.level:
            self.touched += 1
            if self.th is not None:
                for n, failed in enumerate(fast_failures(bar, self.level, self.th)):
                    self.failed[n] += failed

    def close(self, bar: Bar) -> None:
        """A close-rule bar of the window that did not fire the close rule."""
        if bar.close >= self.level:
            self.bars_above += 1

    def result(self) -> NearMiss:
        """The tally so far."""
        return NearMiss(self.level, self.closest, self.closest_at, self.seconds,
                        self.seconds_above, self.bars_above, self.touched, *self.failed)


def describe(nm: NearMiss | None, reason: str | None = None, detail: str = "",
             when: str = "") -> str:
    """One line: the rejection with its numbers, or how close the price came (``when``:
    the closest approach's time as the caller writes it)."""
    if reason is not None and reason not in ("max_bars", "session_end"):
        return f"{reason}: {detail}" if detail else reason
    if nm is None or nm.closest is None:
        return "no bar in the window"
    short = nm.short_by or 0
    parts = [f"closest {format_price(nm.closest)}"
             + (f" ({short / MICROS_PER_CENT:g}c, {nm.short_pct:.2f}% short)" if short > 0
                else " (reached the level)") + (f" at {when}" if when else "")]
    if nm.seconds_closed_above:
        parts.append(f"{nm.seconds_closed_above} seconds closed at or above it without the "
                     "fast rule")
    if nm.bars_closed_above:
        parts.append(f"{nm.bars_closed_above} bars closed at or above it without the rule")
    if nm.most_failed is not None:
        parts.append(f"fast failed on {nm.most_failed} (distance {nm.failed_distance}, "
                     f"close {nm.failed_close}, spread {nm.failed_spread} of {nm.touched})")
    return "; ".join(parts)
