"""``breakoutctl scan``: run the watchlists' scan once against the gateway, arm nothing.

It connects as its own client (``IB_CLIENT_ID`` + ``--client-offset``, read
only), asks the broker's scanner, snapshots and history exactly as the daemon
does (breakoutd.daemon.scanning), and prints every candidate with its numbers
and verdict: ``pick`` (the daemon would arm it), ``armed today`` (the day's
journal under ``--var`` shows an earlier scan armed it), ``below top N``, or
the filter that dropped it. ``--json`` prints the ScanResult event instead.
Exit 0 when the scan ran, 1 when the watchlists are invalid, have no scan
block, or the scan failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from breakoutd.config import ConfigError, describe_watcher, load_watchlists
from breakoutd.config.scan_block import PLACEHOLDER, describe_scan
from breakoutd.core import events as ev
from breakoutd.core.scan import ARMED, ARMED_BEFORE, BELOW_TOP, ScanSettings

CLIENT_OFFSET = 50  # beside the daemon's client id, so both can be connected


def _paths(given: Sequence[str]) -> list[str]:
    env = os.environ.get("BREAKOUTD_WATCHLISTS", "")
    return list(given) or [p for p in env.split(os.pathsep) if p] or ["watchlists"]


def print_scan_plan(scan: ScanSettings | None, var: str | None = None) -> None:
    """``check`` and ``plan``: the scan block in one line, its template, and (``plan``,
    with ``var``) the watchers the newest journal day's scans armed."""
    if scan is None:
        return
    print(f"scan: {describe_scan(scan)}")
    print(f"  each pick: {describe_watcher(scan.template).replace(PLACEHOLDER, 'SYMBOL', 1)}")
    if var is None:
        return
    days = sorted(p for p in (Path(var) / "journal").glob("*/events.jsonl"))
    if not days:
        return
    from breakoutd.daemon.status_replay import journal_events

    armed = [wid for e in journal_events(days[-1]) if isinstance(e, ev.ScanResult)
             for wid in e.armed]
    if armed:
        print(f"  scanned on {days[-1].parent.name}: {', '.join(armed)}")


def _verdict(c: ev.ScanCandidate, top: int) -> str:
    if c.outcome == ARMED:
        return "pick"
    if c.outcome == ARMED_BEFORE:
        return "armed today"
    if c.outcome == BELOW_TOP:
        return f"below top {top}"
    return c.reason


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def render_scan(result: ev.ScanResult, top: int) -> str:
    """The result as a table, the picks first."""
    head = ("RANK", "SYMBOL", "LAST", "PRIOR", "GAP%", "VOLUME", "SPREAD%", "SCORE", "VERDICT")
    rows = [head] + [
        (str(c.rank), c.symbol, _cell(c.last), _cell(c.prior_close), _cell(c.gap_pct),
         _cell(c.volume), _cell(c.spread_pct), _cell(c.score), _verdict(c, top))
        for c in result.candidates]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    picks = sum(1 for c in result.candidates if c.outcome == ARMED)
    lines.append(f"{result.code}: {len(result.candidates)} candidates, {picks} to arm "
                 "(nothing armed: breakoutctl scan only looks)")
    return "\n".join(lines)


def cmd_scan(args: argparse.Namespace) -> int:
    """Run the scan once and print its table."""
    try:
        config = load_watchlists(_paths(args.paths))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    if config.scan is None:
        print("the watchlists have no scan: block (docs/watchlists.md, The market scanner)",
              file=sys.stderr)
        return 1
    import asyncio  # here: check and plan start without the event loop

    from breakoutd.cli.ctl_scan_run import run_scan_command

    watched = {w.symbol for w in config.watchers if w.enabled}
    return asyncio.run(run_scan_command(args, config.scan, watched))


def add_scan_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``scan``."""
    p = commands.add_parser("scan", help="run the watchlists' market scan once and print the "
                                         "candidates, arming nothing")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="watchlist files or directories (default: $BREAKOUTD_WATCHLISTS or "
                        "watchlists)")
    p.add_argument("--var", metavar="DIR",
                   help="runtime directory, for what the daemon armed today (default: "
                        "$BREAKOUTD_VAR or var)")
    p.add_argument("--client-offset", type=int, default=CLIENT_OFFSET, metavar="N",
                   help=f"connect as IB_CLIENT_ID + N (default {CLIENT_OFFSET}), beside the "
                        "daemon")
    p.add_argument("--json", action="store_true", help="print the ScanResult event as JSON")
    p.set_defaults(run=cmd_scan)
