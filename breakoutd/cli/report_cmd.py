"""``breakoutd report``: the trades and their figures, from a backtest or the live journals."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from breakoutd.backtest import BacktestError
from breakoutd.backtest.days import read_days, run_backtest_days
from breakoutd.backtest.series import BarSeries, SymbolSeries
from breakoutd.calendar import exchange_date
from breakoutd.config import ConfigError, load_watchlists
from breakoutd.core.bars import NS
from breakoutd.report.from_backtest import backtest_trades
from breakoutd.report.render import report_json, table
from breakoutd.report.sources import (
    Marks,
    ReportError,
    backtest_json_trades,
    journal_trades,
    preset_names,
)
from breakoutd.report.trades import Trade
from breakoutd.tape import Tape, TapeError


def add_report_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``breakoutd report``."""
    p = sub.add_parser(
        "report", help="trades, win rate, R, drawdown: from a backtest or the live journals",
        description="One row per trade and the totals (overall, by day, by symbol, by preset) "
                    "from the daemon's journals, a backtest's --json output, or a backtest run "
                    "on tapes (--tape with --watchlist).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--journal", type=Path, metavar="DIR",
                     help="the daemon's journal directory (var/journal): its YYYY-MM-DD days")
    src.add_argument("--backtest-json", type=Path, metavar="FILE",
                     help="the output of `breakoutd backtest --json`")
    p.add_argument("--from", dest="first", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                   help="first journal day (default: the first there is)")
    p.add_argument("--to", dest="last", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                   help="last journal day (default: the last there is)")
    p.add_argument("--tape", type=Path, action="append", metavar="FILE",
                   help="tape v1 files or directories of them, any number of days: "
                        "backtested without --journal/--backtest-json; in every case the "
                        "minute bars of the HTML trade charts")
    p.add_argument("--watchlist", type=Path, action="append", metavar="PATH",
                   help="watchlist files or directories: the backtest's, and the presets")
    p.add_argument("--json", action="store_true", help="the report as one JSON object")
    p.add_argument("--html", type=Path, metavar="DIR",
                   help="also write DIR/report.html, a self-contained page with the pictures")
    p.set_defaults(func=run_report_cmd)


def _trades(args: argparse.Namespace, tapes: list[Tape]) -> list[Trade]:
    watchlist = load_watchlists(args.watchlist) if args.watchlist else None
    presets = preset_names(args.watchlist, watchlist.watchers) if watchlist else None
    if args.journal is not None:
        return journal_trades(args.journal, args.first, args.last, presets, _last_trades(tapes))
    if args.backtest_json is not None:
        return backtest_json_trades(args.backtest_json)
    if not tapes or watchlist is None:
        raise ReportError("give --journal DIR, --backtest-json FILE, or --tape with --watchlist")
    days = [(t.dates()[0], t) for t in tapes]
    results = run_backtest_days(days, watchlist.watchers, watchlist.risk)
    return [t for result in results for t in backtest_trades(result, presets)]


def _by_day(tapes: list[Tape]) -> dict[tuple[str, str], SymbolSeries]:
    out: dict[tuple[str, str], SymbolSeries] = {}
    for tape in tapes:
        for symbol, st in tape.symbols.items():
            if len(st):
                out[(exchange_date(int(st.time[0])).isoformat(), symbol)] = SymbolSeries(st)
    return out


def _last_trades(tapes: list[Tape]) -> Marks:
    """Per day, each symbol's last trade on the tapes: the mark of what is still held."""
    series = _by_day(tapes)

    def marks(day: str) -> dict[str, int]:
        return {sym: int(s.seconds.close[-1]) for (d, sym), s in series.items()
                if d == day and len(s.seconds)}
    return marks


def _minute_bars(tapes: list[Tape]):  # type: ignore[no-untyped-def]
    by_day = _by_day(tapes)

    def bars(t: Trade) -> BarSeries | None:
        s = by_day.get((t.day, t.symbol))
        return s.bars(60 * NS) if s is not None else None
    return bars


def run_report_cmd(args: argparse.Namespace) -> int:
    """Build the report and print it (the table, or JSON), and write the HTML page."""
    try:
        tapes = [tape for _, tape in read_days(args.tape)] if args.tape else []
        trades = _trades(args, tapes)
        page = None
        if args.html is not None:
            from breakoutd.report.html import write_html

            page = write_html(trades, args.html, _minute_bars(tapes))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except (ReportError, TapeError, BacktestError, OSError) as exc:
        print(f"breakoutd report: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report_json(trades), indent=1))
    else:
        print(table(trades))
        if page is not None:
            print(f"\nwrote {page}")
    return 0
