"""The daemon over the sim at 1x decides what the backtest decides on the same tape."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from breakoutd.backtest import run_backtest
from breakoutd.backtest.report import iso_time, json_lines
from breakoutd.config import load_watchlist_text
from breakoutd.core import events as ev
from breakoutd.sim import Row
from breakoutd.tape import iter_rows, read_tape
from tests.daemon.daemonkit import running_daemon

TAPE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tapes" / "SPY_20131007.csv.gz"
DAY = dt.date(2013, 10, 7)

# A 20-second window of SPY on 2013-10-07 in which the price runs up through a
# ladder of levels: fast triggers at different seconds, a close-rule trigger at
# 10:24:00 (the 10:23 minute closes 168.28), and levels that are never reached.
WATCHLIST = "breakouts:\n" + "".join(
    f"  - symbol: SPY\n    level: {lv}\n    qty: 10\n    sessions: [rth]\n"
    f"    not_before: \"10:24:00\"\n    not_after: \"10:24:20\"\n"
    for lv in ("168.12", "168.13", "168.14", "168.15", "168.16", "168.17", "168.20", "168.40")
) + (
    "  - id: close-rule\n    symbol: SPY\n    level: 168.25\n    qty: 10\n    fast: false\n"
    "    sessions: [rth]\n    not_before: \"10:23:56\"\n    not_after: \"10:24:20\"\n"
    "  - id: close-never\n    symbol: SPY\n    level: 168.30\n    qty: 10\n    fast: false\n"
    "    sessions: [rth]\n    not_before: \"10:23:56\"\n    not_after: \"10:24:20\"\n")


def daemon_outcomes(events: list[ev.Event]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for e in events:
        if isinstance(e, ev.FastTriggered | ev.Confirmed):
            out[e.watcher_id] = {"kind": "fast" if isinstance(e, ev.FastTriggered) else "close",
                                 "trigger_time": iso_time(e.at)}
        elif isinstance(e, ev.OrderIntent):
            out[e.watcher_id].update(outcome="entered", reason=None,
                                     limit=float(e.limit) if e.limit is not None else None)
        elif isinstance(e, ev.Rejected):
            out[e.watcher_id].update(outcome="rejected", reason=e.reason, limit=None)
        elif isinstance(e, ev.Expired):
            out[e.watcher_id] = {"kind": None, "trigger_time": None, "outcome": "expired",
                                 "reason": e.reason, "limit": None}
    return out


def test_daemon_at_1x_matches_the_backtest(tmp_path: Path) -> None:
    if not TAPE.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    tape = read_tape(TAPE)
    wl = load_watchlist_text(WATCHLIST, "w.yaml")
    want = {r["id"]: {k: r[k] for k in ("outcome", "kind", "trigger_time", "limit", "reason")}
            for r in map(json.loads, json_lines(run_backtest(tape, wl.watchers)))}
    assert sum(1 for w in want.values() if w["outcome"] == "entered") >= 6  # a real test
    rows = [Row(*r) for r in iter_rows(tape)]

    async def body() -> dict[str, dict[str, object]]:
        async with running_daemon(rows, WATCHLIST, tmp_path, start="10:23:55", day=DAY,
                                  manual_clock=False) as r:
            ids = set(want)
            await r.events.wait(lambda: ids <= {
                k for k, v in daemon_outcomes(r.events.items).items() if "outcome" in v},
                timeout=45)
            assert await r.finish() == 0
            return daemon_outcomes(r.events.items)

    got = asyncio.run(asyncio.wait_for(body(), 90))
    assert got == want
    assert {w["limit"] for w in want.values()} >= {168.29, 168.31, 168.34, 168.35}
