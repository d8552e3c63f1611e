"""``breakoutctl why WATCHER``: why a watcher did or did not enter, from the journal and status.

The journal's events tell how the watcher's day went: armed (WatcherStarted),
triggered (FastTriggered / Confirmed), entered (OrderIntent), rejected
(Rejected: the reason and its numbers), expired (Expired), and for every
watcher that ended without entering its near miss (NearMissed: the closest
approach to the level, the closes above it without the rule, the fast rule's
failed conditions). A watcher still armed has no verdict yet: the status
file says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from breakoutd.cli.ctl_status import STATUS_FILE, _day, _start_day, var_dir
from breakoutd.core import events as ev
from breakoutd.core.near_miss import describe, from_event
from breakoutd.daemon.status_replay import journal_events


def _hms(at: int | None) -> str:
    # Imported here: the backtest's report pulls in numpy, which every breakoutctl
    # command (check on a large file among them) would pay for at start-up.
    from breakoutd.backtest.report import iso_time

    return iso_time(at)[11:19] if at is not None else "-"


def explain(events: list[ev.Event], watcher: str, status: dict[str, Any] | None) -> list[str]:
    """The lines ``why`` prints for one watcher (empty: the watcher is unknown)."""
    mine = [e for e in events if getattr(e, "watcher_id", None) == watcher]
    lines: list[str] = []
    for e in mine:
        if isinstance(e, ev.WatcherStarted):
            lines.append(f"armed at {_hms(e.at)} until {_hms(e.disarm_at)}, level {e.level}")
        elif isinstance(e, ev.FastTriggered):
            lines.append(f"fast rule fired at {_hms(e.at)} (1s bar h {e.high} l {e.low} "
                         f"c {e.close})")
        elif isinstance(e, ev.Confirmed):
            lines.append(f"close rule fired at {_hms(e.at)} (bar closed {e.close})")
        elif isinstance(e, ev.OrderIntent):
            price = f"limit {e.limit}" if e.limit is not None else "market"
            lines.append(f"ENTERED: {e.qty} {e.symbol} {price} ({e.order_ref})")
        elif isinstance(e, ev.Rejected):
            age = f", quote age {e.quote_age:.2f}s" if e.quote_age is not None else ""
            limit = f", limit {e.limit}" if e.limit is not None else ""
            lines.append(f"REJECTED {e.reason}: {e.detail}{limit}{age}".replace(": ,", ":"))
        elif isinstance(e, ev.Expired):
            lines.append(f"EXPIRED ({e.reason}) at {_hms(e.at)} after {e.bars_evaluated} bars")
        elif isinstance(e, ev.Stopped):
            lines.append(f"STOPPED ({e.reason}) at {_hms(e.at)}")
        elif isinstance(e, ev.NearMissed):
            nm = from_event(e)
            lines.append("near miss: " + describe(nm, when=_hms(nm.closest_at)))
    row = next((w for w in (status or {}).get("watchers", []) if w.get("id") == watcher), None)
    ended = any(isinstance(e, ev.OrderIntent | ev.Rejected | ev.Expired | ev.Stopped)
                for e in mine)
    if row is not None and not ended:
        lines.append(f"now {row.get('state')}: no verdict until it triggers or its window ends")
    return lines


def cmd_why(args: argparse.Namespace) -> int:
    """Print why WATCHER entered or not; exit 1 when the journal does not know it."""
    var = var_dir(args.var)
    root = var / "journal"
    day = _start_day(root, args.day)
    events = journal_events(root / day / "events.jsonl") if day else []
    status = _read_status(var / STATUS_FILE)
    lines = explain(events, args.watcher, status)
    if not lines:
        print(f"breakoutctl why: no watcher {args.watcher!r} in the journal of "
              f"{day or 'any day'} under {root}", file=sys.stderr)
        return 1
    print(f"{args.watcher} on {day}:")
    for line in lines:
        print(f"  {line}")
    return 0


def _read_status(path: Path) -> dict[str, Any] | None:
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def add_why_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``why``."""
    p = commands.add_parser("why", help="why a watcher entered or not: its trigger, rejection "
                                        "or near miss")
    p.add_argument("watcher", metavar="WATCHER", help="the watcher's id")
    p.add_argument("--var", metavar="DIR", help="runtime directory (default: $BREAKOUTD_VAR "
                                                "or var)")
    p.add_argument("--day", type=_day, metavar="YYYY-MM-DD",
                   help="the journal's day (default: today's, or the newest)")
    p.set_defaults(run=cmd_why)
