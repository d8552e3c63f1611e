"""Near misses: checked by hand on a recorded tape; the live tally equals the backtest's numpy."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from breakoutd.backtest import run_backtest
from breakoutd.backtest.series import SymbolSeries
from breakoutd.calendar import day_sessions, watcher_window
from breakoutd.cli.main import main
from breakoutd.config import load_watchlist_text
from breakoutd.core.near_miss import NearMiss, NearMissTally, describe
from breakoutd.core.watcher import Trigger, WatcherMachine, WatcherState
from breakoutd.tape import synthetic_tape

TAPE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tapes" / "SPY_20131007.csv.gz"

HAND_YAML = """\
breakouts:
  # 10:24:00..10:30:00: the highest second is 10:24:07 (h 168.35), 5c short.
  - id: late
    symbol: SPY
    level: 168.40
    qty: 10
    sessions: [rth]
    not_before: "10:24:00"
    not_after: "10:30:00"
  # Same window at 168.30: 30 seconds' highs reach it, 27 close at or above it, none
  # fires: the distance (19c at k=0 down to 6c, x1.25) is never met, the high being
  # at most 5c above; 3 of the 30 close below it (10:24:24 h 168.30 c 168.29, ...).
  - id: reached
    symbol: SPY
    level: 168.30
    qty: 10
    sessions: [rth]
    not_before: "10:24:00"
    not_after: "10:30:00"
  # The 10:24:00 second fires the fast rule; the 10:24:00 row's ask 168.31 is past
  # 168.12 + 0.02: rejected with those numbers.
  - id: chase
    symbol: SPY
    level: 168.12
    qty: 10
    sessions: [rth]
    not_before: "10:24:00"
    max_chase: 0.02
  # Five close-rule bars 09:30..09:34, none near 169: the high is 167.53 at 09:34:54.
  - id: max5
    symbol: SPY
    level: 169.00
    qty: 10
    sessions: [rth]
    max_bars: 5
"""


@pytest.mark.realdata
def test_near_misses_on_spy_2013_10_07_checked_by_hand(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not TAPE.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    wl = tmp_path / "hand.yaml"
    wl.write_text(HAND_YAML)
    assert main(["backtest", "--tape", str(TAPE), "--watchlist", str(wl), "--json"]) == 0
    got = {r["id"]: r["near_miss"] for r in map(json.loads, capsys.readouterr().out.splitlines())}
    keys = ("closest", "closest_time", "short_cents", "seconds_closed_above", "touched",
            "failed_distance", "failed_close", "failed_spread", "most_failed")
    assert {k: got["late"][k] for k in keys} == {
        "closest": 168.35, "closest_time": "2013-10-07T10:24:07-04:00", "short_cents": 5.0,
        "seconds_closed_above": 0, "touched": 0, "failed_distance": 0, "failed_close": 0,
        "failed_spread": 0, "most_failed": None}
    assert got["late"]["seconds"] == 258  # seconds that printed in the six minutes
    assert {k: got["reached"][k] for k in keys} == {
        "closest": 168.35, "closest_time": "2013-10-07T10:24:07-04:00", "short_cents": -5.0,
        "seconds_closed_above": 27, "touched": 30, "failed_distance": 30, "failed_close": 3,
        "failed_spread": 0, "most_failed": "distance"}
    assert got["chase"]["why"] == "ask 168.31 is above level 168.12 + max_chase 0.02"
    assert got["chase"]["seconds"] == 0  # it fired on its first second
    assert (got["max5"]["closest"], got["max5"]["closest_time"][11:19],
            got["max5"]["short_cents"]) == (167.53, "09:34:54", 147.0)
    assert main(["backtest", "--tape", str(TAPE), "--watchlist", str(wl)]) == 0
    table = capsys.readouterr().out
    assert "closest 168.35 (5c, 0.03% short) at 10:24:07" in table
    assert "27 seconds closed at or above it without the fast rule; fast failed on distance " \
           "(distance 30, close 3, spread 0 of 30)" in table


def _tally(machine: WatcherMachine, series: SymbolSeries) -> NearMiss:
    """What the live runner tallies: every bar in strategy.md's order until the decision."""
    tally = NearMissTally(machine.level, machine.thresholds)
    sec, bars = series.seconds, series.bars(machine.close_bar_size)
    items = [(int(sec.end[i]), 0, sec.bar(i)) for i in range(len(sec))]
    items += [(int(bars.end[i]), 1, bars.bar(i)) for i in range(len(bars))]
    for end, kind, bar in sorted(items, key=lambda x: (x[0], x[1])):
        if end > machine.disarm_at or machine.state is not WatcherState.ARMED:
            break
        if kind == 0:
            if machine.on_fast_bar(bar) is None and machine.state is WatcherState.ARMED \
                    and machine.fast_bar_in_window(bar):
                tally.fast(bar)
        else:
            decision = machine.on_close_bar(bar)
            if not isinstance(decision, Trigger) and machine.close_bar_in_window(bar):
                tally.close(bar)
    return tally.result()


SYNTH_YAML = "breakouts:\n" + "".join(
    f"  - id: {sym}-{lv}-{n}\n    symbol: {sym}\n    level: {lv}\n    qty: 100\n"
    f"    sessions: [rth]\n    not_before: \"{start}\"\n    not_after: \"{end}\"\n{extra}"
    for sym, lv in (("AAA", "10.00"), ("AAA", "10.40"), ("BBB", "4.50"), ("CCC", "0.85"))
    for n, (start, end, extra) in enumerate((
        ("09:30", "10:30", ""), ("09:45", "11:00", "    fast: false\n"),
        ("10:00", "10:40", "    max_bars: 7\n"), ("09:30", "12:00", "    max_chase: 0.01\n")))
)


def test_the_live_tally_equals_the_backtest_near_miss() -> None:
    day = dt.date(2026, 3, 9)
    wl = load_watchlist_text(SYNTH_YAML, "s.yaml")
    levels: dict[str, list[int]] = {}
    for w in wl.watchers:
        levels.setdefault(w.symbol, []).append(w.level)
    sessions = day_sessions(day)
    assert sessions is not None
    outcomes = set()
    for seed in (3, 5):  # between them: every way a watcher ends
        tape = synthetic_tape(seed, sorted(levels), day, levels=levels)
        for r in run_backtest(tape, wl.watchers).results:
            window = watcher_window(r.spec, sessions)
            assert window is not None
            series = SymbolSeries(tape.symbols[r.spec.symbol])
            assert _tally(WatcherMachine(r.spec, *window), series) == r.near_miss, r.spec.id
            outcomes.add((r.outcome, r.kind, r.reason if r.outcome == "expired" else None))
            assert describe(r.near_miss, r.reason, r.detail)
    assert {("expired", None, "session_end"), ("expired", None, "max_bars")} <= outcomes
    assert any(o[0] != "expired" and o[1] == "fast" for o in outcomes)
    assert any(o[0] != "expired" and o[1] == "close" for o in outcomes)


def test_a_near_miss_without_bars_says_so() -> None:
    nm = NearMiss(10 * 10**6, None, None, 0, 0, 0, 0, 0, 0, 0)
    assert describe(nm) == "no bar in the window"
    assert describe(nm, "chased", "ask 10.05 is above level 10.00 + max_chase 0.02") == \
        "chased: ask 10.05 is above level 10.00 + max_chase 0.02"
