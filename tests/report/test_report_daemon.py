"""The report from the daemon's journals of a sim run equals the backtest's on the same window."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from breakoutd.backtest import run_backtest
from breakoutd.backtest.series import SymbolSeries
from breakoutd.cli.main import main
from breakoutd.config import load_watchlist_text
from breakoutd.core import events as ev
from breakoutd.report.from_backtest import backtest_trades
from breakoutd.report.render import report_json, table
from breakoutd.report.sources import journal_trades
from breakoutd.sim import Row
from breakoutd.tape import iter_rows, read_tape, tape_from_rows, write_tape
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
    "    sessions: [rth]\n    not_before: \"10:23:56\"\n    not_after: \"10:24:20\"\n")


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


def test_journal_report_equals_backtest_report(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    if not TAPE.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    end_ns = int(WINDOW_END.timestamp()) * 1_000_000_000
    rows = [r for r in iter_rows(read_tape(TAPE)) if r[0] < end_ns]
    window = tape_from_rows(rows)
    wl = load_watchlist_text(WATCHLIST, "w.yaml")
    want = backtest_trades(run_backtest(window, wl.watchers))
    assert len(want) >= 4 and any(t.stop for t in want) and all(t.open_qty for t in want)

    async def body() -> None:
        async with running_daemon([Row(*r) for r in rows], WATCHLIST, tmp_path,
                                  start="10:23:55", day=DAY, manual_clock=False,
                                  speed=SPEED) as r:
            def done() -> bool:  # every watcher decided, every entry filled
                filled = {e.order_ref for e in r.events.of(ev.OrderFilled)}
                return len(r.events.of(ev.Expired)) == 1 and len(filled) == len(want)
            await r.events.wait(done, timeout=60)
            assert await r.finish() == 0

    asyncio.run(asyncio.wait_for(body(), 90))
    marks = {sym: int(SymbolSeries(st).seconds.close[-1]) for sym, st in window.symbols.items()}
    got = journal_trades(tmp_path / "journal", DAY, DAY, marks=lambda day: marks)
    assert table(got) == table(want)
    got_json, want_json = report_json(got), report_json(want)
    assert {k: v for k, v in got_json.items() if k != "trades"} == \
        {k: v for k, v in want_json.items() if k != "trades"}
    assert [_second(t) for t in got_json["trades"]] == [_second(t) for t in want_json["trades"]]
    # The command line reads the same journals (and the window's tape for the marks).
    write_tape(tmp_path / "window.csv", window)
    assert main(["report", "--journal", str(tmp_path / "journal"), "--from", "2013-10-07",
                 "--to", "2013-10-07", "--tape", str(tmp_path / "window.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == got_json
