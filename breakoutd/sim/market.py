"""The replayed market: tape rows in time order and each symbol's state.

A tape row is the one-second interval starting at ``row.time``; everything
on it (its trades and the quote at its end) becomes known at ``row.time +
1s``, which is when the sim applies it. Trade bars for history and realtime
bars are the rows' own 1-second OHLCV bars, aggregated with the core's
:class:`BarAggregator`, so the sim serves exactly the bars the backtest
builds from the same tape.

How a 1-second OHLC row becomes trade prints is the matching engine's rule
(``matching.book.row_prints``: open, low, high, close, repeats dropped); the
tick-by-tick feed sends the very same prints, so what a client sees trade is
what orders were matched against.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from breakoutd.calendar import exchange_date
from breakoutd.core.bars import NS, Bar, BarAggregator
from breakoutd.sim.matching import book
from breakoutd.tape import Tape, TapeRow, iter_rows, read_tapes, synthetic_tape

Row = TapeRow  # one tape row: prices in micro-dollars, None when empty


def row_prints(row: Row) -> list[tuple[int, int]]:
    """The (price, size) trade prints a row stands for: the matching engine's own."""
    if row.close is None or row.open is None or row.low is None or row.high is None:
        return []
    return book.row_prints(row.open, row.high, row.low, row.close, row.volume)


def row_bar(row: Row) -> Bar:
    """The 1-second trade bar of a row that has a trade."""
    assert row.open is not None and row.high is not None and row.low is not None
    assert row.close is not None
    return Bar(row.time, NS, row.open, row.high, row.low, row.close, row.volume or 0)


class QuoteChange(NamedTuple):
    """Which sides of the quote a row changed."""

    bid: bool
    bid_size: bool
    ask: bool
    ask_size: bool

    @property
    def any(self) -> bool:
        """True when anything of the quote changed."""
        return self.bid or self.bid_size or self.ask or self.ask_size


@dataclass(slots=True)
class SymbolState:
    """What the market shows for one symbol at the current virtual instant."""

    symbol: str
    bid: int | None = None
    bid_size: int = 0
    ask: int | None = None
    ask_size: int = 0
    last: int | None = None
    last_size: int = 0
    last_time: int = 0
    volume: int = 0
    volume_day: dt.date | None = None
    bars: list[Bar] = field(default_factory=list)
    bar_starts: list[int] = field(default_factory=list)
    first_quote: int | None = None  # the start of the first row with a bid or an ask


def arrival_offsets(symbols: Sequence[str], spread_ns: int) -> dict[str, int]:
    """When each symbol's second arrives after the second ends, spread evenly (ns)."""
    ordered = sorted(symbols)
    n = max(len(ordered), 1)
    return {s: i * spread_ns // n for i, s in enumerate(ordered)}


class Market:
    """Tape rows of many symbols, replayed in time order, with each symbol's state."""

    def __init__(self, rows: Iterable[Row], spread_ns: int = 0) -> None:
        """``spread_ns``: a row of symbol *i* (of *n*, sorted) becomes known at its
        time + 1 s + *i* x ``spread_ns`` / *n* instead of all symbols' second at
        once, as a feed of many symbols arrives in practice (at most 1 s)."""
        if not 0 <= spread_ns <= NS:
            raise ValueError(f"spread_ns must lie in 0..{NS}, not {spread_ns}")
        rows = list(rows)
        symbols = sorted({r.symbol for r in rows})
        self.offsets = arrival_offsets(symbols, spread_ns)
        offsets = self.offsets
        # Stable sort: rows due at the same instant keep their input order.
        self._rows = sorted(rows, key=lambda r: r.time + offsets[r.symbol])
        self._due = [r.time + NS + offsets[r.symbol] for r in self._rows]
        self._cursor = 0
        self.known_ns = 0  # every row due (time + 1 s + its offset) by known_ns has been taken
        self.states = {s: SymbolState(s) for s in symbols}
        # History of 1-second trade bars, known in full in advance and
        # served only up to the virtual instant (see bars_between).
        for row in self._rows:
            state = self.states[row.symbol]
            if state.first_quote is None and (row.bid is not None or row.ask is not None):
                state.first_quote = row.time
            if row.close is not None:
                state = self.states[row.symbol]
                state.bars.append(row_bar(row))
                state.bar_starts.append(row.time)

    def add_symbol(self, rows: Sequence[Row]) -> None:
        """A symbol's rows from now on, joining the replay (a market for a symbol added late).

        Rows already due are dropped: what the market has replayed stays as it was."""
        symbol = rows[0].symbol if rows else None
        if symbol is None or symbol in self.states or any(r.symbol != symbol for r in rows):
            raise ValueError("add_symbol takes the rows of one symbol the market does not have")
        self.offsets[symbol] = 0
        state = self.states[symbol] = SymbolState(symbol)
        new = [r for r in rows if r.time + NS > self.known_ns]
        for row in new:
            if row.close is not None:
                state.bars.append(row_bar(row))
                state.bar_starts.append(row.time)
        done, rest = self._rows[:self._cursor], self._rows[self._cursor:] + new
        rest.sort(key=lambda r: r.time + self.offsets[r.symbol])
        self._rows = done + rest
        self._due = self._due[:self._cursor] + [r.time + NS + self.offsets[r.symbol] for r in rest]

    @classmethod
    def from_tape(cls, tape: Tape) -> Market:
        """A market from a ``breakoutd.tape`` Tape."""
        return cls(iter_rows(tape))

    @classmethod
    def from_files(cls, paths: Sequence[str | Path]) -> Market:
        """A market from tape files (gzip CSV, tape v1)."""
        return cls.from_tape(read_tapes([Path(p) for p in paths]))

    @classmethod
    def synthetic(cls, seed: int, symbols: Sequence[str], day: dt.date,
                  levels: Mapping[str, Sequence[int]] | None = None) -> Market:
        """A seeded synthetic market for one day; ``levels`` (micros) get broken in RTH."""
        return cls.from_tape(synthetic_tape(seed, list(symbols), day, levels=levels))

    @property
    def symbols(self) -> list[str]:
        """The symbols on the tape, sorted."""
        return list(self.states)

    @property
    def first_time(self) -> int | None:
        """The start of the first row, if any."""
        return self._rows[0].time if self._rows else None

    @property
    def day(self) -> dt.date | None:
        """The exchange date of the first row."""
        first = self.first_time
        return None if first is None else exchange_date(first)

    @property
    def exhausted(self) -> bool:
        """True once every row has been applied."""
        return self._cursor >= len(self._rows)

    def next_due(self) -> int | None:
        """The instant the next row becomes known, or None at the end."""
        if self._cursor >= len(self._rows):
            return None
        return self._due[self._cursor]

    def take_due(self, now_ns: int) -> list[Row]:
        """The rows known by ``now_ns`` (time + 1s (+ offset) <= now), to be applied in order."""
        rows, due = self._rows, self._due
        start = end = self._cursor
        while end < len(rows) and due[end] <= now_ns:
            end += 1
        self._cursor = end
        self.known_ns = max(self.known_ns, now_ns)
        return rows[start:end]

    def apply(self, row: Row) -> QuoteChange:
        """Update the symbol's state with a row; say what changed."""
        state = self.states[row.symbol]
        bid_px = bid_sz = ask_px = ask_sz = False
        if row.bid is not None:
            bid_px, bid_sz = row.bid != state.bid, (row.bid_size or 0) != state.bid_size
            state.bid, state.bid_size = row.bid, row.bid_size or 0
        if row.ask is not None:
            ask_px, ask_sz = row.ask != state.ask, (row.ask_size or 0) != state.ask_size
            state.ask, state.ask_size = row.ask, row.ask_size or 0
        if row.close is not None:
            day = exchange_date(row.time)
            if day != state.volume_day:
                state.volume_day, state.volume = day, 0
            state.volume += row.volume or 0
            state.last = row.close
            state.last_size = row_prints(row)[-1][1]
            state.last_time = row.time
        return QuoteChange(bid_px, bid_sz, ask_px, ask_sz)

    def preroll(self, now_ns: int) -> int:
        """Apply silently every row known by ``now_ns``; return how many."""
        rows = self.take_due(now_ns)
        for row in rows:
            self.apply(row)
        return len(rows)

    def bars_between(self, symbol: str, start_ns: int, end_ns: int) -> list[Bar]:
        """Known 1-second trade bars of ``symbol`` starting in ``[start_ns, end_ns)``."""
        state = self.states[symbol]
        end_ns = min(end_ns, self.known_ns - self.offsets.get(symbol, 0) - NS + 1)
        lo = bisect.bisect_left(state.bar_starts, start_ns)
        hi = bisect.bisect_left(state.bar_starts, end_ns)
        return state.bars[lo:hi]


    def last_price_before(self, symbol: str, instant_ns: int) -> int | None:
        """The close of the last known trade second starting before ``instant_ns``."""
        state = self.states[symbol]
        known = self.known_ns - self.offsets.get(symbol, 0) - NS + 1
        hi = bisect.bisect_left(state.bar_starts, min(instant_ns, known))
        return state.bars[hi - 1].close if hi else None


class AggBar(NamedTuple):
    """An aggregated trade bar with IB's extra fields: average price and count."""

    bar: Bar
    wap: int  # volume-weighted average of the 1-second closes, micro-dollars
    bar_count: int  # 1-second bars with trades (the tape has no trade count)


def aggregate(bars: Iterable[Bar], size_ns: int) -> list[AggBar]:
    """Aggregate 1-second bars into bars of ``size_ns``; the last may be partial."""
    agg = BarAggregator(size_ns)
    out: list[AggBar] = []
    notional = volume = count = 0
    for bar in bars:
        closed = agg.add(bar)
        if closed is not None:
            out.append(_agg_bar(closed, notional, volume, count))
            notional = volume = count = 0
        notional += bar.close * bar.volume
        volume += bar.volume
        count += 1
    tail = agg.close_until(1 << 62)
    if tail is not None:
        out.append(_agg_bar(tail, notional, volume, count))
    return out


def quiet_bar(start_ns: int, size_ns: int, price: int) -> AggBar:
    """IB's bar for an interval without trades: volume 0 at the last price."""
    return AggBar(Bar(start_ns, size_ns, price, price, price, price, 0), price, 0)


def _agg_bar(bar: Bar, notional: int, volume: int, count: int) -> AggBar:
    wap = (2 * notional + volume) // (2 * volume) if volume else bar.close
    return AggBar(bar, wap, count)


