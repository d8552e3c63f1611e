"""``breakoutd backtest``: tapes through the strategy core."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from breakoutd.backtest import BacktestError, run_backtest
from breakoutd.backtest.coverage import coverage_warnings
from breakoutd.backtest.report import json_lines, table
from breakoutd.config import ConfigError, load_watchlists
from breakoutd.tape import Tape, TapeError, read_tapes


def add_backtest_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``breakoutd backtest``."""
    p = sub.add_parser("backtest", help="replay tapes through the strategy core",
                       description="Replay recorded tapes through the same core the daemon runs.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--tape", action="append", type=Path, metavar="FILE",
                     help="a tape v1 file (.csv or .csv.gz); repeat for more")
    src.add_argument("--synthetic", type=int, metavar="SEED",
                     help="a seeded synthetic day with breakouts through the watchlist's levels")
    p.add_argument("--date", help="day of the synthetic tape (YYYY-MM-DD, default 2026-03-09)")
    p.add_argument("--watchlist", type=Path, action="append", required=True, metavar="PATH",
                   help="a watchlist file or directory; repeat for more")
    p.add_argument("--json", action="store_true", help="one JSON object per watcher, by id")
    p.set_defaults(func=run_backtest_cmd)


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
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} watchers")
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
        levels.setdefault(w.symbol, []).append(w.level)
    return synthetic_tape(seed, sorted(levels), day, levels=levels)


def _file_error(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else "?"
    if isinstance(exc, IsADirectoryError):
        return f"{where}: is a directory; give each tape file with its own --tape"
    if isinstance(exc, FileNotFoundError):
        return f"{where}: no such file"
    return f"{where}: cannot read: {exc.strerror or exc}"


def run_backtest_cmd(args: argparse.Namespace) -> int:
    """Run the backtest and print JSON lines or the table."""
    try:
        watchlist = load_watchlists(args.watchlist)
        if args.synthetic is not None:
            tape = _synthetic(args.synthetic, args.date, watchlist)
        else:
            tape = read_tapes(args.tape)
        for warning in coverage_warnings(tape, watchlist.watchers):
            print(warning, file=sys.stderr)
        progress = None if args.json else _Progress()
        result = run_backtest(tape, watchlist.watchers, watchlist.risk, progress=progress)
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
        for line in json_lines(result):
            print(line)
    else:
        print(table(result))
    return 0
