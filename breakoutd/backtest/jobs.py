"""A backtest cut into units of work that other processes run, merged back as one process's.

Each watcher's day is simulated on its own (``engine.run_backtest``); only
two things couple watchers. The ``risk:`` limits: the day ledger decides
across all of a day's symbols, so it replays each whole day after that day's
units (:class:`RiskDay`, in the parent: shipping a day's results costs more than
the replay), as one process does after its watchers. And a
``prior_*`` level needs the previous trading day's rows of its symbol: that
tape travels with the unit that uses it. So a unit is one tape-day, the
symbols read from the same files (one file per symbol: each symbol alone),
and some of their watchers: a symbol with many watchers is cut into
interleaved pieces, never so small that re-reading its rows costs more than
a fraction of the piece's work.

Units carry the paths of the files that hold their rows, not the rows, and
the worker reads them itself: a unit pickles in microseconds, and the files
are read in parallel too. Nor do they carry their watchers: the job's
watchers go to each worker once (``Runner.run_shared``), and a unit names
its own by their places among them. To plan the units the files are first indexed
(each file read in a worker: which symbols it has on which days, with their
row counts and first and last instants), which is also all the coverage
warnings need. The results come back in any order; each watcher is put
where one process's run puts it, so the output is byte for byte the same.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import cast

import numpy as np

from breakoutd.backtest.days import midnight_ns
from breakoutd.backtest.engine import (
    BacktestError,
    BacktestResult,
    WatcherResult,
    apply_risk,
    run_backtest,
)
from breakoutd.backtest.levels import previous_trading_day
from breakoutd.backtest.risk import RiskReplay
from breakoutd.backtest.series import SymbolSeries
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
        # (day, symbol) -> the files in order, and the day's spans: looked up per unit,
        # so a job of thousands of files plans in time linear in them.
        self._where: dict[tuple[dt.date, str], list[int]] = {}
        self._by_day: dict[dt.date, list[tuple[str, Span]]] = {}
        for k, f in enumerate(self.files):
            for (day, symbol), span in f.spans.items():
                self._where.setdefault((day, symbol), []).append(k)
                self._by_day.setdefault(day, []).append((symbol, span))
        self.days = sorted(self._by_day)

    def paths(self, day: dt.date, symbols: Sequence[str]) -> tuple[str, ...]:
        """The files with rows of ``symbols`` on ``day``, in the given order."""
        found = sorted({k for s in symbols for k in self._where.get((day, s), ())})
        return tuple(self.files[k].path for k in found)

    def rows(self, day: dt.date, symbol: str) -> int:
        """The rows of ``symbol`` on ``day`` over all files."""
        return sum(self.files[k].spans[(day, symbol)].rows
                   for k in self._where.get((day, symbol), ()))

    def day_spans(self, day: dt.date) -> dict[str, tuple[int, int]]:
        """Each symbol's first and last instant of ``day`` over all files."""
        out: dict[str, tuple[int, int]] = {}
        for symbol, span in self._by_day.get(day, ()):
            first, last = out.get(symbol, (span.first, span.last))
            out[symbol] = (min(first, span.first), max(last, span.last))
        return out

    def day_rows(self, day: dt.date) -> int:
        """The rows of ``day``, of every symbol."""
        return sum(span.rows for _, span in self._by_day.get(day, ()))

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
    """One piece of a backtest: a day, some of its watchers and where their rows are."""

    today: DayTapes
    symbols: tuple[str, ...]
    positions: tuple[int, ...]  # its watchers' places in the order one process runs them
    prior: DayTapes | None  # the previous trading day, for prior_* levels
    cost: int  # rows times watchers: the larger units are sent first
    # The day's sessions and those back to the previous trading day's, from the
    # parent's calendar: loading it costs a worker about a second.
    sessions: tuple[tuple[dt.date, DaySessions | None], ...] = ()


def run_unit(unit: Unit, specs: Sequence[WatcherSpec]) -> tuple[WatcherResult, ...]:
    """Read the unit's tapes and backtest its watchers, each on its own (in a worker);
    ``specs`` are the job's watchers in one process's order."""
    given_sessions(unit.sessions)
    today = _read_day(unit.today, unit.symbols)
    prior = _read_day(unit.prior, unit.symbols) if unit.prior is not None else None
    chosen = [specs[n] for n in unit.positions]
    results = run_backtest(today, chosen, None, prior=prior, day=unit.today.day).results
    # The parent has the specs: one is not sent back (half the bytes to unpickle there), and
    # day_results puts it back. A named level's resolved spec is new, and kept.
    return tuple(_without_spec(r) if r.spec is spec else r
                 for r, spec in zip(results, chosen, strict=True))


_AFTER_SPEC = operator.attrgetter(*(f.name for f in fields(WatcherResult)[1:]))


def _without_spec(r: WatcherResult) -> WatcherResult:
    return WatcherResult(cast(WatcherSpec, None), *_AFTER_SPEC(r))


def _with_spec(r: WatcherResult, spec: WatcherSpec) -> WatcherResult:
    return r if r.spec is not None else WatcherResult(spec, *_AFTER_SPEC(r))


@dataclass(frozen=True, slots=True)
class RiskDay:
    """The day ledger's replay of one day: all its watchers' results, simulated alone."""

    today: DayTapes
    results: tuple[WatcherResult, ...]  # in id order
    risk: RiskLimits


def run_risk_day(day: RiskDay) -> tuple[tuple[WatcherResult, ...], RiskReplay]:
    """Apply the risk limits across a day's symbols, as one process does."""
    symbols = sorted({r.spec.symbol for r in day.results if r.outcome == "entered"})
    tape = _read_day(day.today, symbols)
    series = {s: SymbolSeries(st) for s, st in tape.symbols.items()}
    results, replay = apply_risk(list(day.results), day.risk, series)
    return tuple(results), replay


def _read_day(where: DayTapes, symbols: Sequence[str]) -> Tape:
    tape = _read_files(tuple((p, *_stamp(p)) for p in where.paths))
    cut = {}
    for symbol in symbols:
        st = tape.symbols.get(symbol)
        if st is not None:
            i, j = _day_bounds(st, where.day)
            if j > i:
                cut[symbol] = SymbolTape(symbol, *(getattr(st, n)[i:j] for n in _ARRAYS))
    return Tape(cut, where.sources)


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=4)
def _read_files(files: tuple[tuple[str, int, int], ...]) -> Tape:
    """The files' tape, kept for the next units of this worker.

    A symbol-day is cut into many units and a worker usually runs several of
    them one after the other: reading its file once instead of once per unit
    is what lets two workers beat one process by more than the reading costs.
    Keyed by each file's modification time and size, so a worker of a long-lived
    cluster never answers from a file since rewritten. The arrays are shared,
    never written (every unit cuts them into views): read-only, so a write would raise."""
    tape = read_tapes([path for path, _, _ in files])
    for st in tape.symbols.values():
        for name in _ARRAYS:
            getattr(st, name).flags.writeable = False
    return tape


def enabled_in_order(watchers: Sequence[WatcherSpec]) -> list[WatcherSpec]:
    """The watchers a day's backtest runs, in its order (by id)."""
    return sorted((w for w in watchers if w.enabled), key=lambda w: w.id)


# Reading a row costs about what 1/100 of a cheap watcher's simulation does:
# a unit re-reading its files should have at least rows/100 watchers.
_ROWS_PER_WATCHER = 100
_UNITS_PER_WORKER = 32  # pieces small enough that no worker waits long for the last


def plan_units(index: TapeIndex, prior_index: TapeIndex | None,
               watchers: Sequence[WatcherSpec], workers: int = 1) -> list[Unit]:
    """The units of every day of ``index``: by day, then by symbols read from the same
    files (one file per symbol: each symbol alone), cut by watchers into about
    ``_UNITS_PER_WORKER`` units per worker over the job."""
    specs = enabled_in_order(watchers)
    by_symbol: dict[str, list[int]] = {}
    for n, spec in enumerate(specs):
        by_symbol.setdefault(spec.symbol, []).append(n)
    target = max(1, -(-len(specs) * len(index.days) // (_UNITS_PER_WORKER * workers)))
    units = []
    for day in index.days:
        sessions = sessions_back_to_prior(day)
        for symbols in _groups(index, day, sorted(by_symbol)):
            positions = sorted(n for s in symbols for n in by_symbol[s])
            rows = sum(index.rows(day, s) for s in symbols)
            size = max(target, rows // _ROWS_PER_WATCHER)
            pieces = -(-len(positions) // size)
            today = DayTapes(day, index.paths(day, symbols), index.sources)
            for k in range(pieces):  # every pieces-th watcher: each kind spread over them
                part = positions[k::pieces]
                chosen = tuple(specs[n] for n in part)
                used = tuple(sorted({w.symbol for w in chosen}))
                prior = None
                if any(w.level_name in _PRIOR_LEVELS for w in chosen):
                    prior = _prior_tapes(previous_trading_day(day), used, index, prior_index)
                units.append(Unit(today, used, tuple(part), prior,
                                  (1 + rows) * (1 + len(chosen)), sessions))
    return units


def _groups(index: TapeIndex, day: dt.date, symbols: Sequence[str]) -> list[tuple[str, ...]]:
    """The symbols by the files that hold their rows of ``day``: read together."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for symbol in symbols:
        groups.setdefault(index.paths(day, [symbol]), []).append(symbol)
    return [tuple(g) for g in groups.values()]


def sessions_back_to_prior(day: dt.date) -> tuple[tuple[dt.date, DaySessions | None], ...]:
    """``day``'s sessions and each earlier day's down to the previous trading day: all a
    unit of ``day`` asks the calendar (computed in a worker, which loaded it at start)."""
    out = [(day, day_sessions(day))]
    prior = previous_trading_day(day)
    back = day
    while back > prior:
        back -= dt.timedelta(days=1)
        out.append((back, day_sessions(back)))
    return tuple(out)


def _prior_tapes(day: dt.date, symbols: Sequence[str], index: TapeIndex,
                 prior_index: TapeIndex | None) -> DayTapes | None:
    """The previous trading day as one process takes it: a day of the tapes backtested, else
    of ``--prior-tape``, else none."""
    for source in (index, prior_index):
        if source is not None and day in source.days:
            return DayTapes(day, source.paths(day, symbols), source.sources)
    return None


def day_results(index: TapeIndex, units: Sequence[Unit],
                done: Sequence[tuple[WatcherResult, ...]], specs: Sequence[WatcherSpec]
                ) -> dict[dt.date, tuple[WatcherResult, ...]]:
    """Each day's results in one process's order, from its units'; ``specs`` as the units
    were run with."""
    n_specs = len(specs)
    slots: dict[dt.date, list[WatcherResult | None]] = {d: [None] * n_specs for d in index.days}
    for unit, results in zip(units, done, strict=True):
        for n, r in zip(unit.positions, results, strict=True):
            slots[unit.today.day][n] = _with_spec(r, specs[n])
    out = {}
    for day, got in slots.items():
        results = tuple(r for r in got if r is not None)
        if len(results) != n_specs:
            raise RuntimeError(f"{day}: {n_specs - len(results)} watchers have no result")
        out[day] = results
    return out


def risk_days(index: TapeIndex, by_day: dict[dt.date, tuple[WatcherResult, ...]],
              risk: RiskLimits) -> list[RiskDay]:
    """The day ledger's replays to run, a day each, over every symbol traded that day."""
    out = []
    for day in index.days:
        symbols = sorted({r.spec.symbol for r in by_day[day] if r.outcome == "entered"})
        out.append(RiskDay(DayTapes(day, index.paths(day, symbols), index.sources),
                           by_day[day], risk))
    return out


def backtest_results(index: TapeIndex, by_day: dict[dt.date, tuple[WatcherResult, ...]],
                     replays: dict[dt.date, RiskReplay] | None = None) -> list[BacktestResult]:
    """One BacktestResult per day, as one process's run gives them."""
    if not index.days:
        raise BacktestError("the tapes hold no rows")
    replays = replays or {}
    return [BacktestResult(day, by_day[day], index.day_rows(day),
                           sum(r.evaluated for r in by_day[day]), replays.get(day))
            for day in index.days]
