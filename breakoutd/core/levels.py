"""Levels from the market (strategy.md): which prints make a named level, and when.

Pure: the caller hands in the session instants and the bars (1-second bars
from a tape, or the broker's historical bars); bars are aligned to whole
seconds or minutes, so "a print in ``[start, end)``" is a bar starting there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import NamedTuple

from breakoutd.core.bars import MINUTE, Bar
from breakoutd.core.params import LevelName, WatcherSpec
from breakoutd.core.relative_exits import stop_below

PRIOR = frozenset({LevelName.PRIOR_HIGH, LevelName.PRIOR_CLOSE})


class LevelRange(NamedTuple):
    """The prints a named level is made of: those in ``[start, end)``, known at ``known_at``."""

    name: LevelName
    start: int
    end: int
    known_at: int

    @property
    def prior(self) -> bool:
        """True when the prints are of the previous trading day."""
        return self.name in PRIOR


def level_range(name: LevelName, opening_range_min: int, day_start: int, rth: tuple[int, int],
                prior_rth: tuple[int, int] | None) -> LevelRange | None:
    """The range of ``name`` on a day whose extended hours start at ``day_start``.

    ``rth`` is the day's regular session, ``prior_rth`` the previous trading
    day's (None when unknown: a ``prior_*`` level then has no range).
    """
    if name is LevelName.PREMARKET_HIGH:
        return LevelRange(name, day_start, rth[0], rth[0])
    if name is LevelName.OPENING_RANGE_HIGH:
        end = rth[0] + opening_range_min * MINUTE
        return LevelRange(name, rth[0], end, end)
    if prior_rth is None:
        return None
    return LevelRange(name, prior_rth[0], prior_rth[1], day_start)


def level_from_bars(rng: LevelRange, bars: Iterable[Bar]) -> int | None:
    """The highest print, or the last one for ``prior_close``, of bars in the range (None: none)."""
    best: int | None = None
    last_start = -1
    for bar in bars:
        if not rng.start <= bar.start < rng.end:
            continue
        if rng.name is LevelName.PRIOR_CLOSE:
            if bar.start >= last_start:
                best, last_start = bar.close, bar.start
        elif best is None or bar.high > best:
            best = bar.high
    return best


def with_offset(raw: int, offset: int) -> int | None:
    """The level: the prints' price plus ``level_offset``; None when that is not a price."""
    level = raw + offset
    return level if level > 0 else None


def armed_after_known(window: tuple[int, int], known_at: int) -> tuple[int, int] | None:
    """The window of a named-level watcher: armed at ``max(A, known at)``; None if never."""
    start, end = window
    start = max(start, known_at)
    return (start, end) if start < end else None


def resolved_spec(spec: WatcherSpec, level: int) -> WatcherSpec:
    """The watcher with its named level resolved to a price for the day (and its sl_below stop)."""
    below = spec.params.sl_below
    sl = stop_below(level, below) if below is not None and spec.sl is None else spec.sl
    return replace(spec, level=level, sl=sl)
