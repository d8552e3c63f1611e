"""In-memory tapes (tape-format.md): one column array per field, per symbol.

Prices are int64 micro-dollars and instants int64 epoch nanoseconds, as in
``breakoutd.core``. An absent value (no trade in that second, no quote yet)
is 0 in its array and False in the matching ``has_*`` mask, so the arrays
stay plain int64 and fast to scan.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np

from breakoutd.core.bars import NS

EXCHANGE_TZ = ZoneInfo("America/New_York")
COLUMNS = ("time", "symbol", "open", "high", "low", "close", "volume",
           "bid", "bid_size", "ask", "ask_size")
HEADER = ",".join(COLUMNS)
_HOUR_NS = 3600 * NS
_ITER_CHUNK = 65536


class TapeError(ValueError):
    """Malformed tape input, located as ``path:line: column: what is wrong``."""

    def __init__(self, path: str, line: int | None, column: str, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {column}: {reason}")
        self.path = path
        self.line = line
        self.column = column
        self.reason = reason

    def __reduce__(self) -> tuple[type[TapeError], tuple[str, int | None, str, str]]:
        # Raised in a worker process of a parallel backtest, it crosses back by pickle.
        return (type(self), (self.path, self.line, self.column, self.reason))


class TapeRow(NamedTuple):
    """One tape row; prices in micro-dollars, None where the field is empty."""

    time: int
    symbol: str
    open: int | None
    high: int | None
    low: int | None
    close: int | None
    volume: int | None
    bid: int | None
    bid_size: int | None
    ask: int | None
    ask_size: int | None


_new_row = functools.partial(tuple.__new__, TapeRow)
_ARRAYS = ("time", "has_trade", "open", "high", "low", "close", "volume",
           "has_bid", "bid", "bid_size", "has_ask", "ask", "ask_size")
_MASKS = frozenset({"has_trade", "has_bid", "has_ask"})


@dataclass(frozen=True, eq=False)
class SymbolTape:
    """The rows of one symbol as read-only column arrays, in time order."""

    symbol: str
    time: np.ndarray
    has_trade: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    has_bid: np.ndarray
    bid: np.ndarray
    bid_size: np.ndarray
    has_ask: np.ndarray
    ask: np.ndarray
    ask_size: np.ndarray

    def __post_init__(self) -> None:
        length = len(self.time)
        for name in _ARRAYS:
            dtype = np.bool_ if name in _MASKS else np.int64
            arr: np.ndarray = np.asarray(getattr(self, name), dtype=dtype)
            if arr.shape != (length,):
                raise ValueError(f"{self.symbol}: {name} has shape {arr.shape}, "
                                 f"expected ({length},)")
            if arr.flags.writeable:
                arr = arr.view()
                arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return len(self.time)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SymbolTape):
            return NotImplemented
        return self.symbol == other.symbol and all(
            np.array_equal(getattr(self, name), getattr(other, name)) for name in _ARRAYS)

    __hash__ = None  # type: ignore[assignment]

    def dates(self) -> list[dt.date]:
        """The exchange (America/New_York) dates present, sorted."""
        return exchange_dates(self.time)

    def row(self, i: int) -> TapeRow:
        """Row ``i`` as a TapeRow (slow path: for tests and diagnostics)."""
        trade, bid, ask = bool(self.has_trade[i]), bool(self.has_bid[i]), bool(self.has_ask[i])

        def pick(flag: bool, arr: np.ndarray) -> int | None:
            return int(arr[i]) if flag else None

        return TapeRow(int(self.time[i]), self.symbol,
                       pick(trade, self.open), pick(trade, self.high), pick(trade, self.low),
                       pick(trade, self.close), pick(trade, self.volume),
                       pick(bid, self.bid), pick(bid, self.bid_size),
                       pick(ask, self.ask), pick(ask, self.ask_size))


@dataclass(frozen=True)
class Tape:
    """Tapes of one or more symbols (``symbols`` sorted by name)."""

    symbols: dict[str, SymbolTape]
    sources: tuple[str, ...] = ()
    rows: int = field(default=-1)  # computed from the symbols when not given

    def __post_init__(self) -> None:
        ordered = dict(sorted(self.symbols.items()))
        object.__setattr__(self, "symbols", ordered)
        object.__setattr__(self, "sources", tuple(self.sources))
        total = sum(len(s) for s in ordered.values())
        if self.rows == -1:
            object.__setattr__(self, "rows", total)
        elif self.rows != total:
            raise ValueError(f"rows={self.rows} but the symbols hold {total} rows")

    def dates(self) -> list[dt.date]:
        """All exchange dates present, sorted."""
        days: set[dt.date] = set()
        for sym in self.symbols.values():
            days.update(sym.dates())
        return sorted(days)


def exchange_dates(times_ns: np.ndarray) -> list[dt.date]:
    """Sorted exchange dates of epoch-ns instants.

    New York is always a whole number of hours from UTC, so every instant of
    one UTC hour has the same exchange date: convert one instant per hour.
    """
    hours = np.unique(np.asarray(times_ns) // _HOUR_NS)
    return sorted({dt.datetime.fromtimestamp(int(h) * 3600, EXCHANGE_TZ).date() for h in hours})


def tape_from_rows(rows: Iterable[TapeRow], sources: tuple[str, ...] = ()) -> Tape:
    """Build a Tape from rows in any order (each symbol's rows get sorted by time)."""
    by_symbol: dict[str, list[TapeRow]] = {}
    for row in rows:
        by_symbol.setdefault(row.symbol, []).append(row)
    return Tape({sym: _symbol_from_rows(sym, sorted(group, key=lambda r: r.time))
                 for sym, group in by_symbol.items()}, sources)


def _symbol_from_rows(symbol: str, rows: list[TapeRow]) -> SymbolTape:
    def col(name: str) -> list[int]:
        return [getattr(r, name) or 0 for r in rows]

    def has(name: str) -> list[bool]:
        return [getattr(r, name) is not None for r in rows]

    return SymbolTape(symbol, time=np.array(col("time"), dtype=np.int64),
                      has_trade=np.array(has("open"), dtype=np.bool_),
                      **{n: np.array(col(n), dtype=np.int64)
                         for n in ("open", "high", "low", "close", "volume")},
                      has_bid=np.array(has("bid"), dtype=np.bool_),
                      bid=np.array(col("bid"), dtype=np.int64),
                      bid_size=np.array(col("bid_size"), dtype=np.int64),
                      has_ask=np.array(has("ask"), dtype=np.bool_),
                      ask=np.array(col("ask"), dtype=np.int64),
                      ask_size=np.array(col("ask_size"), dtype=np.int64))


def iter_rows(tape: Tape) -> Iterator[TapeRow]:
    """All rows of all symbols in time order, ties in symbol order."""
    # Chained C iterators: no Python frame runs per row.
    return itertools.chain.from_iterable(_row_chunks(tape))


def _row_chunks(tape: Tape) -> Iterator[Iterator[TapeRow]]:
    if not tape.symbols:
        return
    syms = list(tape.symbols.values())
    names = [s.symbol for s in syms]
    order, sym_index = merged_order(syms)
    cols = {name: np.concatenate([getattr(s, name) for s in syms]) for name in _ARRAYS}
    for start in range(0, len(order), _ITER_CHUNK):
        take = order[start:start + _ITER_CHUNK]
        yield _rows_of_chunk({k: v[take] for k, v in cols.items()}, sym_index[take], names)


def merged_order(syms: list[SymbolTape]) -> tuple[np.ndarray, np.ndarray]:
    """For the concatenated columns of ``syms``: the order by (time, symbol), and
    each row's index into ``syms`` (in concatenated order)."""
    times = np.concatenate([s.time for s in syms])
    sym_index = np.repeat(np.arange(len(syms)), [len(s) for s in syms])
    return np.lexsort((sym_index, times)), sym_index


def _rows_of_chunk(chunk: dict[str, np.ndarray], sym_index: np.ndarray,
                   names: list[str]) -> Iterator[TapeRow]:
    # Whole columns become lists at once (None where absent), so the work per
    # row is building one tuple, without a Python-level call.
    def masked(name: str, mask: str) -> list[int | None]:
        values = chunk[name].astype(object)
        values[~chunk[mask]] = None
        listed: list[int | None] = values.tolist()
        return listed

    trade = [masked(n, "has_trade") for n in ("open", "high", "low", "close", "volume")]
    quote = [masked("bid", "has_bid"), masked("bid_size", "has_bid"),
             masked("ask", "has_ask"), masked("ask_size", "has_ask")]
    symbols = np.array(names, dtype=object)[sym_index].tolist()
    return map(_new_row, zip(chunk["time"].tolist(), symbols, *trade, *quote, strict=True))
