"""Named levels and rule variants live: resolved from the sim's history as the backtest does."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from breakoutd.backtest import run_backtest
from breakoutd.backtest.report import iso_time, json_lines
from breakoutd.cli.ctl_status import render_status
from breakoutd.config import load_watchlist_text
from breakoutd.core import events as ev
from breakoutd.daemon.status import status_path
from breakoutd.sim import Row
from breakoutd.tape import iter_rows, read_tape
from tests.daemon.daemonkit import running_daemon
from tests.daemon.test_daemon_vs_backtest import DAY, TAPE

pytestmark = pytest.mark.realdata

# SPY 2013-10-07: the premarket high (168.08) is known at 09:30, the 5-minute
# opening range's high (167.53) at 09:35; momentum on the opening range
# triggers at 09:36:00 (backtest), with its mean volume over the day's bars
# from 04:00, which the daemon must take from the broker's history.
WATCHLIST = """\
breakouts:
  - symbol: SPY
    level: premarket_high
    rule: retest
    qty: 10
    sessions: [rth]
  - symbol: SPY
    level: opening_range_high
    rule: momentum
    qty: 10
    sessions: [rth]
    fast: false
  - id: spy-pm-offset
    symbol: SPY
    level: premarket_high
    level_offset: -1.00
    rule: momentum
    volume_mult: 50
    qty: 10
    sessions: [rth]
    fast: false
"""


def test_named_levels_from_the_sims_history_equal_the_backtests(tmp_path: Path) -> None:
    if not TAPE.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    tape = read_tape(TAPE)
    result = run_backtest(tape, load_watchlist_text(WATCHLIST, "w.yaml").watchers)
    want_levels = {r.spec.id: r.resolved for r in result.results}
    want = {r["id"]: r for r in map(json.loads, json_lines(result))}
    assert want["SPY@opening_range_high"]["trigger_time"] == "2013-10-07T09:36:00-04:00"
    rows = [Row(*r) for r in iter_rows(tape)]

    async def body() -> list[ev.Event]:
        async with running_daemon(rows, WATCHLIST, tmp_path, start="09:29:55", day=DAY) as r:
            await r.step(380, until=lambda: bool(r.events.of(ev.OrderIntent)))
            await r.step(2)
            assert await r.finish() == 0
            return r.events.items

    events = asyncio.run(asyncio.wait_for(body(), 120))
    got = {e.watcher_id: e for e in events if isinstance(e, ev.LevelResolved)}
    assert set(got) == set(want_levels)
    for wid, event in got.items():
        expected = want_levels[wid]
        assert expected is not None
        assert (event.name, event.price, event.raw, event.offset, event.at) == (
            expected.name, expected.price, expected.raw, expected.offset, expected.at), wid
        assert event.source.startswith("broker historical TRADES")
    # Armed at the later of A (09:30) and the instant the level is known.
    started = {e.watcher_id: e for e in events if isinstance(e, ev.WatcherStarted)}
    assert iso_time(started["SPY@opening_range_high"].at) == "2013-10-07T09:35:00-04:00"
    assert started["SPY@opening_range_high"].level == got["SPY@opening_range_high"].price
    # The momentum trigger the backtest found, at the same bar and price.
    confirmed = [e for e in events if isinstance(e, ev.Confirmed)]
    assert [(e.watcher_id, e.kind, iso_time(e.at)) for e in confirmed] == [
        ("SPY@opening_range_high", "momentum", "2013-10-07T09:36:00-04:00")]
    intent = next(e for e in events if isinstance(e, ev.OrderIntent))
    assert float(intent.limit or 0) == want["SPY@opening_range_high"]["limit"]
    # Near misses are journalled: the 09:30 bars close above 167.08 without 50x the mean volume.
    misses = [e for e in events if isinstance(e, ev.NearMiss)]
    assert misses and {e.watcher_id for e in misses} >= {"spy-pm-offset"}
    assert all(e.kind in ("no_volume", "awaiting_retest", "break_cancelled") for e in misses)
    # The status file and `breakoutctl status` show the resolved level and the near miss.
    status = json.loads(status_path(tmp_path).read_text())
    rows = {w["id"]: w for w in status["watchers"]}
    assert (rows["spy-pm-offset"]["level"], rows["spy-pm-offset"]["level_name"]) == (
        167.08, "premarket_high")
    assert rows["spy-pm-offset"]["near_miss"].startswith("no_volume at 09:")
    shown = render_status(status, time.time())
    assert "167.08 premarket_high" in shown and "168.08 premarket_high" in shown

