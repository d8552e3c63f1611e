"""``breakoutd backtest``: tapes through the strategy core."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from breakoutd.backtest import BacktestError, BacktestResult
from breakoutd.backtest.coverage import coverage_warnings
from breakoutd.backtest.days import read_days, run_backtest_days, tape_files
from breakoutd.backtest.report import table, total_line
from breakoutd.config import ConfigError, Watchlist, load_watchlists
from breakoutd.core.params import WatcherSpec
from breakoutd.report.backtest_json import json_lines_with_trades
from breakoutd.report.sources import preset_names
from breakoutd.tape import Tape, TapeError, read_tapes

if TYPE_CHECKING:
    from breakoutd.backtest.workers import Runner


def add_backtest_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``breakoutd backtest``."""
    p = sub.add_parser("backtest", help="replay tapes through the strategy core",
                       description="Replay recorded tapes through the same core the daemon runs.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--tape", action="append", type=Path, metavar="FILE",
                     help="a tape v1 file (.csv or .csv.gz) or a directory of them; repeat for "
                          "more; several days are backtested day by day")
    src.add_argument("--synthetic", type=int, metavar="SEED",
                     help="a seeded synthetic day with breakouts through the watchlist's levels")
    p.add_argument("--prior-tape", action="append", type=Path, metavar="FILE",
                   help="the previous trading day's tape, for prior_high / prior_close levels")
    p.add_argument("--date", help="day of the synthetic tape (YYYY-MM-DD, default 2026-03-09)")
    p.add_argument("--watchlist", type=Path, action="append", required=True, metavar="PATH",
                   help="a watchlist file or directory; repeat for more")
    p.add_argument("--json", action="store_true", help="one JSON object per watcher, by id, with its trade")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=_positive, default=1, metavar="N",
                       help="run the days and symbols of --tape in N worker processes "
                            "(the same output as one)")
    where.add_argument("--dask", metavar="ADDRESS",
                       help="run them on the Dask cluster whose scheduler is at ADDRESS "
                            "(tcp://host:8786); its workers must see the tape paths")
    p.set_defaults(func=run_backtest_cmd)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (1 or more)")
    return n


class _Progress:
    """A one-line progress bar on stderr for runs longer than a second."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not sys.stderr.isatty() or time.monotonic() - self.started < 1.0:
            return
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                         "watcher-days")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def _synthetic(seed: int, day_text: str | None, watchlist) -> Tape:  # type: ignore[no-untyped-def]
    import datetime as dt

    from breakoutd.tape.synthetic import synthetic_tape

    day = dt.date.fromisoformat(day_text) if day_text else dt.date(2026, 3, 9)
    levels: dict[str, list[int]] = {}
    for w in watchlist.watchers:
        symbol_levels = levels.setdefault(w.symbol, [])
        if w.level_name is None:  # a named level comes from the market the tape makes
            symbol_levels.append(w.level)
    return synthetic_tape(seed, sorted(levels), day, levels=levels)


def _file_error(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else "?"
    if isinstance(exc, FileNotFoundError):
        return f"{where}: no such file"
    return f"{where}: cannot read: {exc.strerror or exc}"


def _warn_coverage(days: list[tuple[dt.date, Tape]], watchers: Sequence[WatcherSpec]) -> None:
    """What the tapes do not cover, on stderr before the results (each day named if several)."""
    for day, tape in days:
        for warning in coverage_warnings(tape, watchers):
            print(warning if len(days) == 1 else f"{day}: {warning}", file=sys.stderr)


def _in_one_process(args: argparse.Namespace, watchlist: Watchlist,
                    progress: _Progress | None) -> list[BacktestResult]:
    if args.synthetic is not None:
        tape = _synthetic(args.synthetic, args.date, watchlist)
        days = [(tape.dates()[0], tape)] if tape.rows else []
    else:
        days = read_days(args.tape)
    _warn_coverage(days, watchlist.watchers)
    prior = read_tapes(tape_files(args.prior_tape)) if args.prior_tape else None
    return run_backtest_days(days, watchlist.watchers, watchlist.risk, prior=prior,
                             progress=progress)


def _runner(args: argparse.Namespace) -> Runner | None:
    """Where the work goes: None for this process (one job, or the synthetic day)."""
    if args.synthetic is not None:
        return None
    if args.dask is not None:
        from breakoutd.backtest.workers import DaskRunner

        return DaskRunner(args.dask)
    if args.jobs > 1:
        from breakoutd.backtest.workers import ProcessRunner

        return ProcessRunner(args.jobs)
    return None


def _results(args: argparse.Namespace, progress: _Progress | None
             ) -> tuple[Watchlist, list[BacktestResult]]:
    runner = _runner(args)  # first: local workers start while the watchlists load
    if runner is None:
        watchlist = load_watchlists(args.watchlist)
        return watchlist, _in_one_process(args, watchlist, progress)
    from breakoutd.backtest.workers import run_backtest_jobs

    try:
        watchlist = load_watchlists(args.watchlist)
        return watchlist, run_backtest_jobs(runner, args.tape, watchlist.watchers,
                                            watchlist.risk, prior=args.prior_tape, warn=_warn,
                                            progress=progress)
    finally:
        runner.close()


def _warn(line: str) -> None:
    print(line, file=sys.stderr)


def run_backtest_cmd(args: argparse.Namespace) -> int:
    """Run the backtest, one day at a time, and print JSON lines or the tables."""
    try:
        progress = None if args.json else _Progress()
        watchlist, results = _results(args, progress)
        if progress is not None:
            progress.close()
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except OSError as exc:  # a path, not an errno: what is wrong with which file
        print(f"breakoutd backtest: {_file_error(exc)}", file=sys.stderr)
        return 1
    except (TapeError, BacktestError) as exc:
        print(f"breakoutd backtest: {exc}", file=sys.stderr)
        return 1
    if args.json:
        presets = preset_names(args.watchlist, watchlist.watchers)
        for result in results:
            for line in json_lines_with_trades(result, presets):
                print(line)
    else:
        print("\n\n".join(table(result) for result in results))
        if len(results) > 1:
            print("\n" + total_line(results))
    return 0
