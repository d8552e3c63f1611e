"""Per-symbol bar series for the backtest, built once and shared by watchers."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from breakoutd.core.bars import NS, Bar
from breakoutd.core.plans import Quote
from breakoutd.tape import SymbolTape


class BarSeries:
    """Columns of bars of one size (numpy), read one bar at a time with :meth:`bar`."""

    __slots__ = ("size", "start", "open", "high", "low", "close", "volume", "end", "_cum")

    def __init__(self, size: int, start: np.ndarray, o: np.ndarray, h: np.ndarray,
                 lo: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
        self.size = size
        self.start = start
        self.end = start + size
        self.open = o
        self.high = h
        self.low = lo
        self.close = c
        self.volume = v
        self._cum: np.ndarray | None = None

    @property
    def cumulative_volume(self) -> np.ndarray:
        """``[0, v0, v0+v1, ...]``: the volume of bars ``[i, j)`` is ``cum[j] - cum[i]``."""
        if self._cum is None:
            self._cum = np.concatenate(([0], np.cumsum(self.volume)))
        return self._cum

    def __len__(self) -> int:
        return len(self.start)

    def bar(self, i: int) -> Bar:
        """The i-th bar as a core value."""
        return Bar(int(self.start[i]), self.size, int(self.open[i]), int(self.high[i]),
                   int(self.low[i]), int(self.close[i]), int(self.volume[i]))


class SymbolSeries:
    """The 1-second bars of one symbol, its close-rule bars, and its quotes."""

    def __init__(self, tape: SymbolTape) -> None:
        self.tape = tape
        self._bars: dict[int, BarSeries] = {}

    @cached_property
    def seconds(self) -> BarSeries:
        """One bar per tape row that printed a trade."""
        t = self.tape
        m = t.has_trade
        return BarSeries(NS, t.time[m], t.open[m], t.high[m], t.low[m], t.close[m], t.volume[m])

    def bars(self, size: int) -> BarSeries:
        """Bars of ``size`` ns, labelled by start, aggregated from the seconds."""
        if size == NS:
            return self.seconds
        if size not in self._bars:
            self._bars[size] = _aggregate(self.seconds, size)
        return self._bars[size]

    def quote_at(self, instant: int) -> Quote | None:
        """The quote in force at ``instant``: the latest row with ``time + 1s <= instant``."""
        t = self.tape
        i = int(np.searchsorted(t.time, instant - NS, side="right")) - 1
        if i < 0:
            return None
        return Quote(
            time=int(t.time[i]) + NS,
            bid=int(t.bid[i]) if t.has_bid[i] else None,
            bid_size=int(t.bid_size[i]) if t.has_bid[i] else None,
            ask=int(t.ask[i]) if t.has_ask[i] else None,
            ask_size=int(t.ask_size[i]) if t.has_ask[i] else None,
        )


def _aggregate(sec: BarSeries, size: int) -> BarSeries:
    start = sec.start - sec.start % size
    if len(start) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return BarSeries(size, empty, empty, empty, empty, empty, empty)
    first = np.flatnonzero(np.r_[True, start[1:] != start[:-1]])
    last = np.r_[first[1:] - 1, len(start) - 1]
    return BarSeries(
        size,
        start[first],
        sec.open[first],
        np.maximum.reduceat(sec.high, first),
        np.minimum.reduceat(sec.low, first),
        sec.close[last],
        np.add.reduceat(sec.volume, first),
    )
