"""Bars closing exactly at a watcher's end are evaluated live, as strategy.md says: the
disarm waits until the market data has delivered every bar that closes at Z."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from breakoutd.backtest import run_backtest
from breakoutd.backtest.report import json_lines
from breakoutd.config import load_watchlist_text
from breakoutd.core import events as ev
from breakoutd.core.bars import NS
from breakoutd.sim import Row
from breakoutd.tape import tape_from_rows
from tests.daemon.daemonkit import at, row, running_daemon
from tests.daemon.test_daemon_vs_backtest import daemon_outcomes


def quiet(start: str, n: int, bid: str, ask: str) -> list[Row]:
    """n seconds of quotes only (a changing size keeps them fresh)."""
    return [row(at(start) + i * NS, "QQ", None, bid, ask, bid_size=100 + 100 * (i % 2))
            for i in range(n)]


# QQ sits at 9.95 until its only trade above 10.00, at 10.06 in the 09:30:59 second: that
# second (the fast rule's 6 cents at k = 5, no range) and the 09:30 minute (close 10.06)
# both close at 09:31:00, the end of both watchers' windows. No trade comes after it, so
# only the clock closes the second and the minute.
ROWS = (quiet("09:29:50", 69, "9.94", "9.96")
        + [row(at("09:30:59"), "QQ", ("10.06", "10.06", "10.06", "10.06", 500), "10.05", "10.07")]
        )

WATCHLIST = (
    "breakouts:\n"
    "  - id: last-second\n    symbol: QQ\n    level: 10.00\n    qty: 100\n"
    "    sessions: [rth]\n    not_after: \"09:31:00\"\n"
    "  - id: last-minute\n    symbol: QQ\n    level: 10.01\n    qty: 100\n    fast: false\n"
    "    sessions: [rth]\n    not_after: \"09:31:00\"\n")


def test_a_breakout_in_the_bar_that_closes_at_the_end_of_the_window_enters(
        tmp_path: Path) -> None:
    wl = load_watchlist_text(WATCHLIST, "w.yaml")
    want = {r["id"]: {k: r[k] for k in ("outcome", "kind", "trigger_time", "limit", "reason")}
            for r in map(json.loads, json_lines(run_backtest(tape_from_rows(ROWS), wl.watchers)))}
    assert {k: (v["outcome"], v["kind"], v["trigger_time"][11:19]) for k, v in want.items()} == {
        "last-second": ("entered", "fast", "09:31:00"),
        "last-minute": ("entered", "close", "09:31:00")}

    async def body() -> dict[str, dict[str, object]]:
        async with running_daemon(ROWS, WATCHLIST, tmp_path, data_latency=0.3) as r:
            # The daemon's clock 0.3 s ahead of the data: the second and the minute that
            # close at 09:31:00 reach it after its clock has passed 09:31:00. Slow steps
            # through the end, so its loop sees each 0.1 s of the clock.
            await r.step(68)
            await r.step(5, pause=0.06)
            await r.step(10, until=lambda: set(want) <= {
                k for k, v in daemon_outcomes(r.events.items).items() if "outcome" in v})
            assert not r.events.of(ev.Expired)
            assert await r.finish() == 0
            return daemon_outcomes(r.events.items)

    assert asyncio.run(asyncio.wait_for(body(), 60)) == want
