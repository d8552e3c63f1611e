"""The market scanner live: IB's scanner through ib_async against the sim, picks armed once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from breakoutd.core import events as ev
from breakoutd.daemon.console import describe
from breakoutd.daemon.status import status_path
from breakoutd.sim import Row
from tests.daemon.daemonkit import Run, at, row, running_daemon

FRIDAY = dt.date(2026, 3, 6)  # the trading day before DAY (Monday)

WATCHLIST = """\
breakouts:
  - symbol: MINE
    level: 20.00
    qty: 10
scan:
  at: ["09:20", "09:25"]
  code: TOP_PERC_GAIN
  rows: 10
  top: 2
  min_price: 2
  min_gap_pct: 10
  template:
    level: premarket_high
    level_offset: 0.01
    qty: 10
    sessions: [rth]
"""


def _trade(t: int, symbol: str, price: str, volume: int) -> Row:
    tick = Decimal("0.01")
    p = Decimal(price)
    return row(t, symbol, (price, price, price, price, volume), str(p - tick), str(p + tick))


def market() -> list[Row]:
    """Five tapes of two days: gappers, a flat one, one without a prior day, the operator's."""
    prior = {"GAPA": "10.00", "GAPB": "5.00", "FLAT": "10.00", "MINE": "10.00", "NEWB": "10.00"}
    rows = [_trade(at("15:59:00", FRIDAY), s, p, 1_000) for s, p in sorted(prior.items())]
    today = [  # (time, symbol, price, volume)
        ("09:00:00", "GAPA", "12.00", 50_000), ("09:00:00", "GAPB", "6.00", 30_000),
        ("09:00:00", "FLAT", "10.10", 90_000), ("09:00:00", "MINE", "13.00", 90_000),
        ("09:00:00", "NOREF", "8.00", 90_000), ("09:00:00", "NEWB", "10.20", 1_000),
        ("09:10:00", "GAPA", "12.50", 50_000),  # the premarket high: 12.50
        ("09:15:00", "GAPA", "12.40", 10_000),
        ("09:22:00", "NEWB", "15.00", 400_000),  # gaps up 50% between the scans
    ]
    rows += [_trade(at(hms), s, p, v) for hms, s, p, v in today]
    return sorted(rows, key=lambda r: (r.time, r.symbol))


async def _until(r: Run, hms: str) -> None:
    """Move the virtual clock second by second to ``hms``."""
    while r.gw.now_ns() < at(hms):
        await r.gw.advance(1.0)
        await asyncio.sleep(0.01)


def _scans(r: Run) -> list[ev.ScanResult]:
    return r.events.of(ev.ScanResult)


def test_a_scan_over_several_tapes_arms_the_top_and_a_rescan_arms_nothing_twice(
        tmp_path: Path) -> None:
    async def first_run() -> list[ev.Event]:
        async with running_daemon(market(), WATCHLIST, tmp_path, start="09:21:00") as r:
            # 09:20 passed before the daemon started: it is made up at once.
            await r.events.wait(lambda: len(_scans(r)) == 1, timeout=60)
            await _until(r, "09:25:01")
            await r.events.wait(lambda: len(_scans(r)) == 2, timeout=60)
            await _until(r, "09:30:05")
            await r.events.wait(lambda: len(r.events.of(ev.WatcherStarted)) >= 4, timeout=30)
            status = json.loads(status_path(tmp_path).read_text())
            shown = {w["id"]: w for w in status["watchers"]}
            assert {"scan:GAPA", "scan:GAPB", "scan:NEWB"} <= set(shown)
            assert await r.finish() == 0
            return r.events.items

    events = asyncio.run(asyncio.wait_for(first_run(), 150))
    first, second = (e for e in events if isinstance(e, ev.ScanResult))
    assert (first.trigger, first.code, first.error) == ("start-up", "TOP_PERC_GAIN", "")
    # GAPA +24% on $1.364M (110,000 shares at 12.40) scores 28.03, GAPB +20% on $0.18M 8.49.
    assert first.armed == ("scan:GAPA", "scan:GAPB")
    assert describe(first) == ("scan TOP_PERC_GAIN (start-up): 6 candidates, armed scan:GAPA, "
                               "scan:GAPB")
    verdicts = {c.symbol: c for c in first.candidates}
    assert (verdicts["GAPA"].gap_pct, verdicts["GAPA"].score) == (Decimal("24.00"),
                                                                 Decimal("28.03"))
    assert {s: (v.outcome, v.reason) for s, v in verdicts.items()} == {
        "GAPA": ("armed", ""), "GAPB": ("armed", ""), "FLAT": ("filtered", "gap_below"),
        "MINE": ("filtered", "on_watchlist"), "NOREF": ("filtered", "no_prior_close"),
        "NEWB": ("filtered", "gap_below")}
    # The rescan: NEWB has gapped and leads; GAPA is still top but armed already.
    assert second.trigger == "schedule"
    assert second.armed == ("scan:NEWB",)
    outcomes = {c.symbol: c.outcome for c in second.candidates}
    assert (outcomes["NEWB"], outcomes["GAPA"], outcomes["GAPB"]) == (
        "armed", "armed_before", "below_top")
    started = [e.watcher_id for e in events if isinstance(e, ev.WatcherStarted)]
    assert sorted(started) == ["MINE@20.00", "scan:GAPA", "scan:GAPB", "scan:NEWB"]
    levels = {e.watcher_id: e.price for e in events if isinstance(e, ev.LevelResolved)}
    assert levels["scan:GAPA"] == Decimal("12.51")  # its premarket high + the offset

    async def restarted() -> list[ev.Event]:
        async with running_daemon(market(), WATCHLIST, tmp_path, start="09:29:00") as r:
            await _until(r, "09:30:05")
            await r.events.wait(lambda: len(r.events.of(ev.WatcherStarted)) >= 4, timeout=30)
            assert await r.finish() == 0
            return r.events.items

    again = asyncio.run(asyncio.wait_for(restarted(), 90))
    # The day's journal knows the scans: none is made up, and each pick is armed again once.
    assert not [e for e in again if isinstance(e, ev.ScanResult)]
    assert sorted(e.watcher_id for e in again if isinstance(e, ev.WatcherStarted)) == [
        "MINE@20.00", "scan:GAPA", "scan:GAPB", "scan:NEWB"]


def test_a_scan_code_the_broker_does_not_know_is_journalled_with_its_error(
        tmp_path: Path) -> None:
    async def body() -> list[ev.ScanResult]:
        listing = WATCHLIST.replace("code: TOP_PERC_GAIN", "code: NO_SUCH_SCAN")
        async with running_daemon(market(), listing, tmp_path, start="09:21:00") as r:
            await r.events.wait(lambda: len(_scans(r)) == 1, timeout=60)
            assert await r.finish() == 0
            return _scans(r)

    (result,) = asyncio.run(asyncio.wait_for(body(), 90))
    assert (result.code, result.armed, result.candidates) == ("NO_SUCH_SCAN", (), ())
    assert "162" in result.error and "NO_SUCH_SCAN" in result.error


def test_a_reload_that_adds_the_block_scans_at_once_and_removing_it_keeps_the_picks(
        tmp_path: Path) -> None:
    plain = WATCHLIST.split("scan:")[0]

    async def body() -> list[ev.Event]:
        async with running_daemon(market(), plain, tmp_path, start="09:26:00") as r:
            await _until(r, "09:26:05")
            assert not _scans(r)
            listing = tmp_path / "watchlists" / "test.yaml"
            listing.write_text(WATCHLIST)
            reloaded = await r.daemon.reload("test")  # no watcher changed, the scan applies
            assert (reloaded.result, reloaded.added) == ("applied", ())
            await r.events.wait(lambda: len(_scans(r)) == 1, timeout=60)
            listing.write_text(plain)
            await r.daemon.reload("test")
            await _until(r, "09:30:05")
            await r.events.wait(lambda: len(r.events.of(ev.WatcherStarted)) >= 3, timeout=30)
            assert await r.finish() == 0
            return r.events.items

    events = asyncio.run(asyncio.wait_for(body(), 120))
    (scan,) = (e for e in events if isinstance(e, ev.ScanResult))
    assert (scan.trigger, scan.armed) == ("schedule", ("scan:NEWB", "scan:GAPA"))
    assert sorted(e.watcher_id for e in events if isinstance(e, ev.WatcherStarted)) == [
        "MINE@20.00", "scan:GAPA", "scan:NEWB"]
