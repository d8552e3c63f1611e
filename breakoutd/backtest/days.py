"""Backtests over many days: the tapes cut into exchange days, each day backtested on its own.

Every watcher is armed afresh each day (its window from that day's
sessions), and the day ledger starts each day empty, as the daemon's does.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from breakoutd.backtest.engine import BacktestError, BacktestResult, run_backtest
from breakoutd.backtest.levels import previous_trading_day
from breakoutd.calendar import EXCHANGE_TZ
from breakoutd.core.bars import NS
from breakoutd.core.params import RiskLimits, WatcherSpec
from breakoutd.tape import SymbolTape, Tape, read_tapes

TAPE_SUFFIXES = (".csv", ".csv.gz")
_ARRAYS = ("time", "has_trade", "open", "high", "low", "close", "volume",
           "has_bid", "bid", "bid_size", "has_ask", "ask", "ask_size")


def tape_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The files named: files as given, a directory's ``*.csv`` and ``*.csv.gz`` sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.name.endswith(TAPE_SUFFIXES))
            if not found:
                raise BacktestError(f"{p}: no tape files (*.csv, *.csv.gz) in the directory")
            out.extend(found)
        else:
            out.append(p)
    return out


def midnight_ns(day: dt.date) -> int:
    """The instant the exchange day ``day`` starts, epoch ns."""
    return int(dt.datetime.combine(day, dt.time(), EXCHANGE_TZ).timestamp()) * NS


def _slice(st: SymbolTape, lo: int, hi: int) -> SymbolTape:
    i, j = np.searchsorted(st.time, [lo, hi], side="left")
    return SymbolTape(st.symbol, *(getattr(st, name)[i:j] for name in _ARRAYS))


def split_days(tape: Tape) -> list[tuple[dt.date, Tape]]:
    """The tape cut at exchange midnights, one Tape per day that has rows."""
    out = []
    for day in tape.dates():
        lo, hi = midnight_ns(day), midnight_ns(day + dt.timedelta(days=1))
        cut = {s: _slice(st, lo, hi) for s, st in tape.symbols.items()}
        out.append((day, Tape({s: st for s, st in cut.items() if len(st)}, tape.sources)))
    return out


def read_days(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[dt.date, Tape]]:
    """Tape files and directories of tapes, as one Tape per exchange day."""
    return split_days(read_tapes(tape_files(paths)))


def run_backtest_days(
    days: Sequence[tuple[dt.date, Tape]],
    watchers: Iterable[WatcherSpec],
    risk: RiskLimits | None = None,
    *,
    prior: Tape | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[BacktestResult]:
    """One backtest per day, in day order; ``progress`` counts watcher-days over the job.

    A day's ``prior_high`` / ``prior_close`` levels come from the previous
    trading day's tape: one of the days given, or ``prior`` (``--prior-tape``)."""
    specs = list(watchers)
    earlier = dict(split_days(prior)) if prior is not None else {}
    earlier.update(days)
    per_day = sum(1 for w in specs if w.enabled)
    total = per_day * len(days)
    results = []
    for n, (day, tape) in enumerate(days):
        def step(done: int, _: int, base: int = n * per_day) -> None:
            if progress is not None:
                progress(base + done, total)
        before = earlier.get(previous_trading_day(day))
        results.append(run_backtest(tape, specs, risk, prior=before, progress=step))
    if not results:
        raise BacktestError("the tapes hold no rows")
    return results
