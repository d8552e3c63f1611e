"""Quiet seconds and minutes live: the daemon over a sim sending IB's volume-0 bars
decides what the backtest decides on the same rows (strategy.md: a second or a
minute with no trade has no bar)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from breakoutd.backtest import run_backtest
from breakoutd.backtest.report import json_lines
from breakoutd.calendar import exchange_ns
from breakoutd.config import load_watchlist_text
from breakoutd.core.bars import NS
from breakoutd.sim import Row
from breakoutd.tape import iter_rows, read_tape, tape_from_rows
from tests.daemon.daemonkit import at, px, row, running_daemon
from tests.daemon.test_daemon_vs_backtest import daemon_outcomes
from tests.sim.ibbars import send_quiet_bars


def quote_text(price: str) -> tuple[str, str]:
    """A one-cent-wide bid and ask around ``price``."""
    p = px(price)
    return f"{(p - 10_000) / 1e6:.2f}", f"{(p + 10_000) / 1e6:.2f}"


def seconds(start: str, n: int, price: str, symbol: str = "QQ") -> list[Row]:
    """n seconds at ``price``: a trade in two of every three, a quote in each that keeps
    changing size (so it stays fresh)."""
    bid, ask = quote_text(price)
    trade = (price, price, price, price, 1000)
    return [row(at(start) + i * NS, symbol, None if i % 3 == 2 else trade, bid, ask,
                bid_size=100 + 100 * (i % 2)) for i in range(n)]


def quotes(start: str, n: int, price: str, symbol: str = "QQ") -> list[Row]:
    """n quiet seconds (no trade), the quote around ``price`` still changing."""
    bid, ask = quote_text(price)
    return [row(at(start) + i * NS, symbol, None, bid, ask, bid_size=100 + 100 * (i % 2))
            for i in range(n)]


# 09:30 trades at 9.95 (with quiet seconds), its last trade at 09:30:57; 09:31 and 09:32
# are quiet minutes (quotes only); 09:33 trades at 10.02.
ROWS = (seconds("09:29:50", 69, "9.95") + quotes("09:30:59", 121, "9.95")
        + seconds("09:33:00", 75, "10.02"))

# max-bars: its 2nd evaluated bar is 09:33 (entered); were the quiet 09:31 a bar, it
# would expire (max_bars) at 09:32:00. armed-late: armed when 09:30 has closed at its
# level; no bar closes in its window (the quiet minutes have none), were the 09:31 minute
# of volume-0 bars at the last price (9.95) a bar, it would trigger at 09:32:00.
WATCHLIST = (
    "breakouts:\n"
    "  - id: max-bars\n    symbol: QQ\n    level: 10.00\n    qty: 100\n    fast: false\n"
    "    max_bars: 2\n    sessions: [rth]\n"
    "  - id: armed-late\n    symbol: QQ\n    level: 9.95\n    qty: 100\n    fast: false\n"
    "    sessions: [rth]\n    not_before: \"09:31:00\"\n    not_after: \"09:32:30\"\n")


def test_quiet_seconds_and_minutes_decide_as_the_backtest(tmp_path: Path) -> None:
    wl = load_watchlist_text(WATCHLIST, "w.yaml")
    want = {r["id"]: {k: r[k] for k in ("outcome", "kind", "trigger_time", "limit", "reason")}
            for r in map(json.loads, json_lines(run_backtest(tape_from_rows(ROWS), wl.watchers)))}
    assert want["max-bars"]["outcome"] == "entered" and want["max-bars"]["kind"] == "close"
    assert (want["armed-late"]["outcome"], want["armed-late"]["reason"]) == ("expired",
                                                                            "session_end")

    async def body() -> tuple[dict[str, dict[str, object]], list[tuple[str, int]]]:
        async with running_daemon(ROWS, WATCHLIST, tmp_path) as r:
            quiet = send_quiet_bars(r.gw)
            await r.step(260, until=lambda: set(want) <= {
                k for k, v in daemon_outcomes(r.events.items).items() if "outcome" in v})
            assert await r.finish() == 0
            return daemon_outcomes(r.events.items), quiet

    got, quiet = asyncio.run(asyncio.wait_for(body(), 90))
    assert got == want
    # The sim did send IB's volume-0 bars through both quiet minutes.
    assert {("QQ", at("09:31:00") + 5 * NS * i) for i in range(24)} <= set(quiet)


TAPE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tapes" / "SPY_20131007.csv.gz"

# SPY before the open on 2013-10-07: the 08:54 and 08:56 minutes have no trade (the last
# price before each: 167.62 and 167.60), the minutes around them a few trades with quiet
# seconds between (08:55 closes 167.60, 08:57 167.59, 08:58 167.58). Were a quiet
# minute's volume-0 bars (at the last price) a bar, quiet-max would trigger at 08:55:00
# and quiet-window at 08:55:00; they expire instead, and after-quiet's first bar is 08:55.
REAL_WATCHLIST = "breakouts:\n" + "".join(
    f"  - id: {name}\n    symbol: SPY\n    level: {level}\n    qty: 10\n    fast: false\n"
    f"    sessions: [premarket]\n{extra}"
    for name, level, extra in (
        ("quiet-max", "167.61", "    max_bars: 3\n    not_before: \"08:54:00\"\n"),
        ("quiet-window", "167.62", "    not_before: \"08:54:00\"\n    not_after: \"08:55:30\"\n"),
        ("after-quiet", "167.60", "    not_before: \"08:54:30\"\n    not_after: \"08:58:30\"\n")))


@pytest.mark.realdata
def test_quiet_minutes_of_a_real_tape_decide_as_the_backtest(tmp_path: Path) -> None:
    if not TAPE.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    tape = read_tape(TAPE)
    wl = load_watchlist_text(REAL_WATCHLIST, "w.yaml")
    want = {r["id"]: {k: r[k] for k in ("outcome", "kind", "trigger_time", "limit", "reason")}
            for r in map(json.loads, json_lines(run_backtest(tape, wl.watchers)))}
    assert [want[w]["reason"] for w in ("quiet-max", "quiet-window")] == ["max_bars",
                                                                          "session_end"]
    assert want["after-quiet"]["kind"] == "close"
    rows = [Row(*r) for r in iter_rows(tape)]

    async def body() -> tuple[dict[str, dict[str, object]], list[tuple[str, int]]]:
        async with running_daemon(rows, REAL_WATCHLIST, tmp_path, start="08:53:50",
                                  day=dt.date(2013, 10, 7)) as r:
            quiet = send_quiet_bars(r.gw)
            await r.step(320, until=lambda: set(want) <= {
                k for k, v in daemon_outcomes(r.events.items).items() if "outcome" in v})
            assert await r.finish() == 0
            return daemon_outcomes(r.events.items), quiet

    got, quiet = asyncio.run(asyncio.wait_for(body(), 120))
    assert got == want
    assert ("SPY", exchange_ns(dt.date(2013, 10, 7), dt.time(8, 56, 30))) in set(quiet)
