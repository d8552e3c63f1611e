"""A backtest cut into units of work that other processes run, merged back as one process's.

A unit is one tape-day and one symbol: its watchers need nothing else. With
``risk:`` limits the unit is the whole day, because the day ledger decides
across the day's symbols. A watcher on a ``prior_*`` level also needs the
previous trading day's rows of its symbol: that tape travels with its unit.
Units carry the paths of the files that hold their rows, not the rows, and
the worker reads them itself: a unit pickles in microseconds, and the files
are read in parallel too.

To plan the units the files are first indexed (each file read in a worker:
which symbols it has on which days, with their row counts and first and last
instants), which is also all the coverage warnings need. The results come
back in any order; :func:`merge_results` puts each watcher where one
process's run puts it, so the output is byte for byte the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from breakoutd.backtest.days import midnight_ns
from breakoutd.backtest.engine import BacktestError, BacktestResult, WatcherResult, run_backtest
from breakoutd.backtest.levels import previous_trading_day
from breakoutd.backtest.risk import RiskReplay
from breakoutd.calendar import DaySessions, day_sessions, given_sessions
from breakoutd.core.params import LevelName, RiskLimits, WatcherSpec
from breakoutd.tape import SymbolTape, Tape, read_tape, read_tapes

_PRIOR_LEVELS = frozenset({LevelName.PRIOR_HIGH, LevelName.PRIOR_CLOSE})
_ARRAYS = ("time", "has_trade", "open", "high", "low", "close", "volume",
           "has_bid", "bid", "bid_size", "has_ask", "ask", "ask_size")


@dataclass(frozen=True, slots=True)
class Span:
    """One symbol's rows on one day in one file: how many, the first and last instants."""

    rows: int
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class FileIndex:
    """What one tape file holds, without its rows."""

    path: str
    spans: dict[tuple[dt.date, str], Span]


def index_file(path: str) -> FileIndex:
    """Read one file (in a worker) and say which symbols it has on which days."""
    tape = read_tape(path)
    spans = {}
    for symbol, st in tape.symbols.items():
        for day in st.dates():
            i, j = _day_bounds(st, day)
            if j > i:
                spans[(day, symbol)] = Span(j - i, int(st.time[i]), int(st.time[j - 1]))
    return FileIndex(path, spans)


def _day_bounds(st: SymbolTape, day: dt.date) -> tuple[int, int]:
    lo, hi = midnight_ns(day), midnight_ns(day + dt.timedelta(days=1))
    i, j = np.searchsorted(st.time, [lo, hi], side="left")
    return int(i), int(j)


class TapeIndex:
    """The index of a set of tape files, in the order they were given."""

    def __init__(self, files: Sequence[FileIndex]) -> None:
        self.files = tuple(files)
        self.sources = tuple(f.path for f in self.files)
        self.days = sorted({day for f in self.files for day, _ in f.spans})

    def paths(self, day: dt.date, symbols: Sequence[str]) -> tuple[str, ...]:
        """The files with rows of ``symbols`` on ``day``, in the given order."""
        return tuple(f.path for f in self.files if any((day, s) in f.spans for s in symbols))

    def day_spans(self, day: dt.date) -> dict[str, tuple[int, int]]:
        """Each symbol's first and last instant of ``day`` over all files."""
        out: dict[str, tuple[int, int]] = {}
        for f in self.files:
            for (d, symbol), span in f.spans.items():
                if d == day:
                    first, last = out.get(symbol, (span.first, span.last))
                    out[symbol] = (min(first, span.first), max(last, span.last))
        return out

    def day_rows(self, day: dt.date) -> int:
        """The rows of ``day``, of every symbol."""
        return sum(s.rows for f in self.files for (d, _), s in f.spans.items() if d == day)

    def files_overlap(self) -> bool:
        """Whether some symbol's rows of two files interleave (or meet at one instant).

        Only then can merging the files find a second row for one second, an
        error one process reports from all the files at once."""
        ranges: dict[str, list[tuple[int, int]]] = {}
        for f in self.files:
            per_symbol: dict[str, tuple[int, int]] = {}
            for (_, symbol), s in f.spans.items():
                lo, hi = per_symbol.get(symbol, (s.first, s.last))
                per_symbol[symbol] = (min(lo, s.first), max(hi, s.last))
            for symbol, r in per_symbol.items():
                ranges.setdefault(symbol, []).append(r)
        for spans in ranges.values():
            spans.sort()
            if any(b[0] <= a[1] for a, b in zip(spans, spans[1:], strict=False)):
                return True
        return False


@dataclass(frozen=True, slots=True)
class DayTapes:
    """Where a unit's rows of one day are: the files, and the sources its tape names."""

    day: dt.date
    paths: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unit:
    """One piece of a backtest: a day, its symbols, their watchers and where their rows are."""

    today: DayTapes
    symbols: tuple[str, ...]
    specs: tuple[WatcherSpec, ...]  # in the order one process runs them
    positions: tuple[int, ...]  # each spec's place in that order
    risk: RiskLimits | None
    prior: DayTapes | None  # the previous trading day, for prior_* levels
    cost: int  # rows times watchers: the larger units are sent first
    # The day's sessions and those back to the previous trading day's, from the
    # parent's calendar: loading it costs a worker about a second.
    sessions: tuple[tuple[dt.date, DaySessions | None], ...] = ()


@dataclass(frozen=True, slots=True)
class UnitResult:
    """What a worker sends back for a unit."""

    results: tuple[WatcherResult, ...]
    risk: RiskReplay | None


def run_unit(unit: Unit) -> UnitResult:
    """Read the unit's tapes and backtest its watchers (in a worker)."""
    given_sessions(unit.sessions)
    today = _read_day(unit.today, unit.symbols)
    prior = _read_day(unit.prior, unit.symbols) if unit.prior is not None else None
    result = run_backtest(today, unit.specs, unit.risk, prior=prior, day=unit.today.day)
    return UnitResult(result.results, result.risk)


def _read_day(where: DayTapes, symbols: Sequence[str]) -> Tape:
    tape = read_tapes(where.paths)
    cut = {}
    for symbol in symbols:
        st = tape.symbols.get(symbol)
        if st is not None:
            i, j = _day_bounds(st, where.day)
            if j > i:
                cut[symbol] = SymbolTape(symbol, *(getattr(st, n)[i:j] for n in _ARRAYS))
    return Tape(cut, where.sources)


def enabled_in_order(watchers: Sequence[WatcherSpec]) -> list[WatcherSpec]:
    """The watchers a day's backtest runs, in its order (by id)."""
    return sorted((w for w in watchers if w.enabled), key=lambda w: w.id)


def plan_units(index: TapeIndex, prior_index: TapeIndex | None, watchers: Sequence[WatcherSpec],
               risk: RiskLimits | None) -> list[Unit]:
    """The units of the backtest of every day of ``index``, by day then symbol."""
    specs = enabled_in_order(watchers)
    whole_days = risk is not None and risk != RiskLimits()
    groups: dict[str, list[int]] = {}
    for n, spec in enumerate(specs):
        groups.setdefault(spec.symbol, []).append(n)
    if whole_days and groups:
        parts = [(tuple(sorted(groups)), list(range(len(specs))))]
    else:
        parts = [((symbol,), groups[symbol]) for symbol in sorted(groups)]
    units = []
    for day in index.days:
        sessions = _sessions_back_to_prior(day)
        for symbols, positions in parts:
            chosen = tuple(specs[n] for n in positions)
            prior = None
            if any(s.level_name in _PRIOR_LEVELS for s in chosen):
                prior = _prior_tapes(previous_trading_day(day), symbols, index, prior_index)
            cost = (1 + sum(_rows(index, day, s) for s in symbols)) * (1 + len(chosen))
            units.append(Unit(DayTapes(day, index.paths(day, symbols), index.sources), symbols,
                              chosen, tuple(positions), risk, prior, cost, sessions))
    return units


def _sessions_back_to_prior(day: dt.date) -> tuple[tuple[dt.date, DaySessions | None], ...]:
    """``day``'s sessions and each earlier day's down to the previous trading day."""
    out = [(day, day_sessions(day))]
    prior = previous_trading_day(day)
    back = day
    while back > prior:
        back -= dt.timedelta(days=1)
        out.append((back, day_sessions(back)))
    return tuple(out)


def _rows(index: TapeIndex, day: dt.date, symbol: str) -> int:
    return sum(f.spans[(day, symbol)].rows for f in index.files if (day, symbol) in f.spans)


def _prior_tapes(day: dt.date, symbols: Sequence[str], index: TapeIndex,
                 prior_index: TapeIndex | None) -> DayTapes | None:
    """The previous trading day as one process takes it: a day of the tapes backtested, else
    of ``--prior-tape``, else none."""
    for source in (index, prior_index):
        if source is not None and day in source.days:
            return DayTapes(day, source.paths(day, symbols), source.sources)
    return None


def merge_results(index: TapeIndex, units: Sequence[Unit], done: Sequence[UnitResult],
                  n_specs: int) -> list[BacktestResult]:
    """One BacktestResult per day, as one process's run gives them."""
    if not index.days:
        raise BacktestError("the tapes hold no rows")
    slots: dict[dt.date, list[WatcherResult | None]] = {d: [None] * n_specs for d in index.days}
    replays: dict[dt.date, RiskReplay | None] = dict.fromkeys(index.days)
    for unit, result in zip(units, done, strict=True):
        day = unit.today.day
        for n, r in zip(unit.positions, result.results, strict=True):
            slots[day][n] = r
        if result.risk is not None:
            replays[day] = result.risk
    out = []
    for day in index.days:
        results = tuple(r for r in slots[day] if r is not None)
        if len(results) != n_specs:
            raise RuntimeError(f"{day}: {n_specs - len(results)} watchers have no result")
        out.append(BacktestResult(day, results, index.day_rows(day),
                                  sum(r.evaluated for r in results), replays[day]))
    return out
