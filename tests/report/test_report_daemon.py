"""The report from the daemon's journals of a sim run equals the backtest's on the same window."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import NamedTuple

import pytest

from breakoutd.backtest import BacktestResult, run_backtest
from breakoutd.backtest.report import iso_time
from breakoutd.backtest.series import SymbolSeries
from breakoutd.cli.ctl import main as ctl_main
from breakoutd.cli.main import main
from breakoutd.config import load_watchlist_text
from breakoutd.core import events as ev
from breakoutd.core.near_miss import from_event
from breakoutd.daemon.status_replay import journal_events
from breakoutd.report.from_backtest import backtest_trades
from breakoutd.report.render import report_json, table
from breakoutd.report.sources import journal_trades
from breakoutd.sim import Row
from breakoutd.tape import Tape, iter_rows, read_tape, tape_from_rows, write_tape
from tests.daemon.daemonkit import running_daemon

pytestmark = pytest.mark.realdata

TAPE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tapes" / "SPY_20131007.csv.gz"
DAY = dt.date(2013, 10, 7)
# The window replayed: SPY runs up through the levels from 10:24:00 (see
# tests/daemon/test_daemon_vs_backtest.py); the exits are out of reach in it, so
# the trades are open at its end and marked at its last trade, in both.
SPEED = 1.0  # the gateway's clock at the wall's pace, as in tests/daemon/test_daemon_vs_backtest.py
WINDOW_END = dt.datetime(2013, 10, 7, 10, 24, 40, tzinfo=dt.timezone(dt.timedelta(hours=-4)))
WATCHLIST = "breakouts:\n" + "".join(
    f"  - symbol: SPY\n    level: {lv}\n    qty: {qty}\n    sessions: [rth]\n"
    f"    not_before: \"10:24:00\"\n    not_after: \"10:24:20\"\n{exits}"
    for lv, qty, exits in (
        ("168.12", 10, "    tp: 169.00\n    sl: 168.00\n"),
        ("168.14", 20, "    tp: [168.90, 169.10]\n    sl: 168.05\n"),
        ("168.16", 300, "    sl: 168.02\n"),
        ("168.17", 10, ""),
        ("168.40", 10, "    tp: 169.00\n    sl: 168.00\n"),  # never reached
    )
) + (
    "  - id: close-rule\n    symbol: SPY\n    level: 168.25\n    qty: 10\n    fast: false\n"
    "    tp: 169.00\n    sl: 168.10\n"
    "    sessions: [rth]\n    not_before: \"10:23:56\"\n    not_after: \"10:24:20\"\n"
    # The 10:24:00 second fires the fast rule, but the ask 168.31 is past the chase.
    "  - id: chase\n    symbol: SPY\n    level: 168.12\n    qty: 10\n    max_chase: 0.02\n"
    "    sessions: [rth]\n    not_before: \"10:24:00\"\n    not_after: \"10:24:20\"\n")


def _second(record: dict[str, object]) -> dict[str, object]:
    """A trade's JSON with its instants to the second: the broker stamps fills in the
    milliseconds after the trigger, the backtest at the trigger."""
    out: dict[str, object] = {}
    for k, v in record.items():
        if k.endswith("_ns") and isinstance(v, int):
            v = v // 1_000_000_000
        elif k.endswith("_time") and isinstance(v, str):
            v = v[:19] + v[-6:]
        elif k == "fills" and isinstance(v, list):
            v = [_second(f) for f in v]
        elif k == "time" and isinstance(v, str):
            v = v[:19] + v[-6:]
        out[k] = v
    return out


class Day(NamedTuple):
    var: Path
    window: Tape
    backtest: BacktestResult


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    """The daemon over the sim on the window, once for the tests of this module."""
    if not TAPE.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    var = tmp_path_factory.mktemp("var")
    end_ns = int(WINDOW_END.timestamp()) * 1_000_000_000
    rows = [r for r in iter_rows(read_tape(TAPE)) if r[0] < end_ns]
    window = tape_from_rows(rows)
    result = run_backtest(window, load_watchlist_text(WATCHLIST, "w.yaml").watchers)
    entered = sum(1 for r in result.results if r.outcome == "entered")

    async def body() -> None:
        async with running_daemon([Row(*r) for r in rows], WATCHLIST, var,
                                  start="10:23:55", day=DAY, manual_clock=False,
                                  speed=SPEED) as r:
            def done() -> bool:  # every watcher decided, every entry filled
                filled = {e.order_ref for e in r.events.of(ev.OrderFilled)}
                return len(r.events.of(ev.NearMissed)) == 2 and len(filled) == entered
            await r.events.wait(done, timeout=60)
            assert await r.finish() == 0

    asyncio.run(asyncio.wait_for(body(), 90))
    return Day(var, window, result)


def test_journal_report_equals_backtest_report(day: Day, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    window = day.window
    want = backtest_trades(day.backtest)
    assert len(want) >= 4 and any(t.stop for t in want) and all(t.open_qty for t in want)

    marks = {sym: int(SymbolSeries(st).seconds.close[-1]) for sym, st in window.symbols.items()}
    got = journal_trades(day.var / "journal", DAY, DAY, marks=lambda day: marks)
    assert table(got) == table(want)
    got_json, want_json = report_json(got), report_json(want)
    assert {k: v for k, v in got_json.items() if k != "trades"} == \
        {k: v for k, v in want_json.items() if k != "trades"}
    assert [_second(t) for t in got_json["trades"]] == [_second(t) for t in want_json["trades"]]
    # The command line reads the same journals (and the window's tape for the marks).
    write_tape(tmp_path / "window.csv", window)
    assert main(["report", "--journal", str(day.var / "journal"), "--from", "2013-10-07",
                 "--to", "2013-10-07", "--tape", str(tmp_path / "window.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == got_json


def test_the_daemon_journals_the_backtests_near_misses(day: Day) -> None:
    journal = journal_events(day.var / "journal" / DAY.isoformat() / "events.jsonl")
    got = {e.watcher_id: (e.outcome, from_event(e)) for e in journal
           if isinstance(e, ev.NearMissed)}
    want = {r.spec.id: (r.outcome, r.near_miss) for r in day.backtest.results
            if r.outcome != "entered"}
    assert got == want
    expired = got["SPY@168.40"][1]  # 10:24:00..10:24:20: the high 168.35 first at 10:24:07
    assert (expired.closest, iso_time(expired.closest_at or 0)[11:19], expired.touched) == \
        (168_350_000, "10:24:07", 0)
    rejected = got["chase"][1]  # nothing before its trigger on the first second
    assert rejected.seconds == 0


def test_breakoutctl_why_tells_the_near_miss_and_the_rejection(
        day: Day, capsys: pytest.CaptureFixture[str]) -> None:
    def why(watcher: str) -> tuple[int, str]:
        code = ctl_main(["why", watcher, "--var", str(day.var), "--day", DAY.isoformat()])
        return code, capsys.readouterr().out
    code, out = why("SPY@168.40")
    assert code == 0
    assert "EXPIRED (session_end) at 10:24:20" in out
    assert "near miss: closest 168.35 (5c, 0.03% short) at 10:24:07" in out
    code, out = why("chase")
    assert code == 0 and "REJECTED chased: ask 168.31 is above level 168.12 + max_chase 0.02" in out
    code, out = why("SPY@168.12")
    assert code == 0 and "fast rule fired at 10:24:01" in out and "ENTERED: 10 SPY limit 168.31" in out
    assert why("nosuch")[0] == 1
