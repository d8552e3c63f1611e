"""Trade bars and their aggregation (strategy.md, Bars).

Instants are integer nanoseconds since the Unix epoch. Bars are labelled by
their start; a bar ``[start, start + size)`` closes at ``end``. Bars of size d
start at multiples of d counted from 00:00 exchange time. America/New_York
is always a whole number of hours from UTC, so for every bar size that
divides an hour (1 s, 5 s, 1, 2, 3, 5, 15 min) those starts are exactly the
multiples of d counted from the epoch, which is how they are computed here.
"""

from __future__ import annotations

from typing import NamedTuple

NS = 1_000_000_000
SECOND = NS
MINUTE = 60 * NS


class Bar(NamedTuple):
    """A trade bar: prices in micro-dollars, instants in epoch nanoseconds."""

    start: int
    size: int
    open: int
    high: int
    low: int
    close: int
    volume: int

    @property
    def end(self) -> int:
        """The instant the bar closes."""
        return self.start + self.size


def has_trades(bar: Bar) -> bool:
    """False for a bar in which nothing traded (volume 0).

    IB sends such bars: a 5-second realtime bar every 5 seconds, with volume 0
    at the last price when nothing traded, and volume-0 minutes in historical
    data. strategy.md: a second or a minute with no trade has no bar, so they
    are never evaluated nor aggregated; they only say that time has passed."""
    return bar.volume > 0


def bar_start(instant_ns: int, size_ns: int) -> int:
    """Start of the bar of ``size_ns`` containing ``instant_ns``."""
    if 3600 * NS % size_ns:
        raise ValueError(f"bar size {size_ns} ns does not divide an hour")
    return instant_ns - instant_ns % size_ns


class BarAggregator:
    """Builds bars of one size from finer bars; emits each bar once closed.

    Feed bars in time order with :meth:`add`; a bar is returned when a later
    bucket starts, or by :meth:`close_until` when the clock passes its end
    (a quiet market closes bars by time, not by the next trade).
    """

    __slots__ = ("size", "_start", "_open", "_high", "_low", "_close", "_volume")

    def __init__(self, size_ns: int) -> None:
        bar_start(0, size_ns)  # validates the size
        self.size = size_ns
        self._start: int | None = None
        self._open = self._high = self._low = self._close = self._volume = 0

    def add(self, bar: Bar) -> Bar | None:
        """Fold in a finer bar; return the bar it closed, if any."""
        start = bar.start - bar.start % self.size
        closed = None
        if self._start is not None and start != self._start:
            if start < self._start:
                raise ValueError("bars must be added in time order")
            closed = self._emit()
        if self._start is None:
            self._start = start
            self._open, self._high, self._low = bar.open, bar.high, bar.low
            self._close, self._volume = bar.close, bar.volume
        else:
            self._high = max(self._high, bar.high)
            self._low = min(self._low, bar.low)
            self._close = bar.close
            self._volume += bar.volume
        return closed

    @property
    def open_end(self) -> int | None:
        """When the bar being built ends (None when none is open)."""
        return None if self._start is None else self._start + self.size

    @property
    def open_high(self) -> int | None:
        """The high of the bar being built so far (None when none is open)."""
        return None if self._start is None else self._high

    def close_until(self, now_ns: int) -> Bar | None:
        """Return the open bar if it has closed by ``now_ns``."""
        if self._start is not None and self._start + self.size <= now_ns:
            return self._emit()
        return None

    def _emit(self) -> Bar:
        out = Bar(self._start or 0, self.size, self._open, self._high, self._low,
                  self._close, self._volume)
        self._start = None
        return out
