"""Per-symbol bar series for the backtest, built once and shared by watchers."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from breakoutd.core.bars import NS
from breakoutd.core.plans import Quote
from breakoutd.tape import SymbolTape


class BarSeries:
    """Columns of bars of one size: plain Python lists for a fast scalar loop."""

    __slots__ = ("size", "start", "open", "high", "low", "close", "volume", "end_np", "start_np",
                 "close_np", "high_np", "low_np")

    def __init__(self, size: int, start: np.ndarray, o: np.ndarray, h: np.ndarray,
                 lo: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
        self.size = size
        self.start_np = start
        self.end_np = start + size
        self.close_np = c
        self.high_np = h
        self.low_np = lo
        self.start: list[int] = start.tolist()
        self.open: list[int] = o.tolist()
        self.high: list[int] = h.tolist()
        self.low: list[int] = lo.tolist()
        self.close: list[int] = c.tolist()
        self.volume: list[int] = v.tolist()

    def __len__(self) -> int:
        return len(self.start)


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
    start = sec.start_np - sec.start_np % size
    if len(start) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return BarSeries(size, empty, empty, empty, empty, empty, empty)
    first = np.flatnonzero(np.r_[True, start[1:] != start[:-1]])
    last = np.r_[first[1:] - 1, len(start) - 1]
    opens = np.asarray(sec.open, dtype=np.int64)[first]
    volume = np.add.reduceat(np.asarray(sec.volume, dtype=np.int64), first)
    return BarSeries(
        size,
        start[first],
        opens,
        np.maximum.reduceat(sec.high_np, first),
        np.minimum.reduceat(sec.low_np, first),
        sec.close_np[last],
        volume,
    )
