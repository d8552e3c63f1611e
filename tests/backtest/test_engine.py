"""The backtest engine on small hand-made tapes: windows, quotes, outcomes, output."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakoutd.backtest import BacktestError, run_backtest
from breakoutd.backtest.report import json_lines, table
from breakoutd.config import load_watchlist_text
from breakoutd.tape import TapeRow, synthetic_tape, tape_from_rows
from tests.factories import at, px

SYM = "TEST"


def row(hms: str, close: str | None = None, ask: str | None = "5.01", *,
        high: str | None = None, low: str | None = None, day: dt.date | None = None) -> TapeRow:
    t = at(hms) if day is None else at(hms, day)
    c = px(close) if close is not None else None
    h = px(high) if high is not None else c
    lo = px(low) if low is not None else c
    a = px(ask) if ask is not None else None
    return TapeRow(t, SYM, c, h, lo, c, 100 if c is not None else None,
                   a - 10_000 if a is not None else None, 100 if a is not None else None,
                   a, 100 if a is not None else None)


def run(yaml: str, rows: list[TapeRow]) -> dict[str, dict[str, object]]:
    wl = load_watchlist_text(yaml, "t.yaml")
    result = run_backtest(tape_from_rows(rows), wl.watchers, wl.risk)
    return {r["id"]: r for r in map(json.loads, json_lines(result))}


def one(extra: str = "", level: str = "5.00") -> str:
    return f"breakouts:\n  - id: w\n    symbol: {SYM}\n    level: {level}\n    qty: 10\n{extra}"


def test_json_has_exactly_the_contract_keys_in_order() -> None:
    out = run(one(), [row("09:40:10", "5.00", "5.02")])
    assert list(out["w"]) == ["id", "symbol", "level", "outcome", "kind", "trigger_time",
                              "limit", "reason"]
    assert out["w"] == {"id": "w", "symbol": SYM, "level": 5.0, "outcome": "entered",
                        "kind": "close", "trigger_time": "2026-03-09T09:41:00-04:00",
                        "limit": 5.02, "reason": None}


def test_the_row_stamped_at_the_trigger_second_is_not_the_quote() -> None:
    rows = [row("09:40:10", "5.00", "5.02"), row("09:41:00", None, "5.09")]
    assert run(one(), rows)["w"]["limit"] == 5.02


def test_no_row_in_force_is_no_quote_with_kind_and_time() -> None:
    rows = [row("09:40:59", "5.00", None)]
    out = run(one(), rows)["w"]
    assert (out["outcome"], out["reason"], out["kind"]) == ("rejected", "no_quote", "close")
    assert out["trigger_time"] == "2026-03-09T09:41:00-04:00" and out["limit"] is None


def test_earlier_quotes_are_not_consulted_when_the_row_in_force_has_no_ask() -> None:
    rows = [row("09:40:00", "4.90", "4.91"), row("09:40:30", "5.00", None)]
    assert run(one(), rows)["w"]["reason"] == "no_quote"


def test_ask_of_zero_is_no_quote() -> None:
    assert run(one(), [row("09:40:30", "5.00", "0")])["w"]["reason"] == "no_quote"


def test_fast_rule_wins_and_the_close_rule_is_bypassed() -> None:
    rows = [row("09:41:23", "5.10", "5.11", high="5.12", low="5.09"),
            row("09:41:40", "5.20", "5.21")]
    out = run(one(), rows)["w"]
    assert (out["kind"], out["trigger_time"], out["limit"]) == (
        "fast", "2026-03-09T09:41:24-04:00", 5.11)


def test_not_before_and_not_after_bound_the_window() -> None:
    extra = '    sessions: [rth]\n    not_before: "10:00"\n    not_after: "10:05"\n'
    early = run(one(extra), [row("09:50:00", "5.00"), row("10:07:00", "5.00")])["w"]
    assert (early["outcome"], early["reason"]) == ("expired", "session_end")
    inside = run(one(extra), [row("09:50:00", "4.00"), row("10:04:30", "5.00")])["w"]
    assert inside["trigger_time"] == "2026-03-09T10:05:00-04:00"  # a bar closing at Z counts


def test_arming_mid_bar_evaluates_that_bar_with_trades_before_arming() -> None:
    extra = '    sessions: [rth]\n    not_before: "10:00:30"\n'
    out = run(one(extra + "    fast: false\n"), [row("10:00:10", "5.00")])["w"]
    assert out["trigger_time"] == "2026-03-09T10:01:00-04:00"


def test_max_bars_and_minutes_without_trades() -> None:
    extra = "    sessions: [rth]\n    max_bars: 2\n"
    rows = [row("09:30:05", "4.90"), row("09:45:05", "4.90"), row("09:50:05", "5.00")]
    out = run(one(extra), rows)["w"]
    assert (out["outcome"], out["reason"]) == ("expired", "max_bars")
    rows = [row("09:30:05", "4.90"), row("09:45:05", "5.00")]
    assert run(one(extra), rows)["w"]["outcome"] == "entered"


def test_premarket_session_and_its_end() -> None:
    extra = "    sessions: [premarket]\n"
    assert run(one(extra), [row("09:30:10", "5.00")])["w"]["reason"] == "session_end"
    assert run(one(extra), [row("09:29:10", "5.00")])["w"]["trigger_time"] == (
        "2026-03-09T09:30:00-04:00")


def test_early_close_moves_the_session_end() -> None:
    day = dt.date(2026, 11, 27)  # the day after Thanksgiving: close 13:00
    extra = "    sessions: [rth]\n"
    out = run(one(extra), [row("13:10:00", "5.00", day=day)])["w"]
    assert out["reason"] == "session_end"
    out = run(one("    sessions: [afterhours]\n"), [row("13:10:00", "5.00", day=day)])["w"]
    assert out["trigger_time"] == "2026-11-27T13:11:00-05:00"


def test_a_holiday_has_no_session() -> None:
    day = dt.date(2026, 12, 25)
    assert run(one(), [row("10:00:00", "5.00", day=day)])["w"]["reason"] == "no_session"


def test_disabled_watchers_are_left_out_and_several_days_are_refused() -> None:
    yaml = one() + f"  - id: off\n    symbol: {SYM}\n    level: 5\n    qty: 1\n    enabled: false\n"
    assert set(run(yaml, [row("10:00:00", "5.00")])) == {"w"}
    rows = [row("10:00:00", "5.00"), row("10:00:00", "5.00", day=dt.date(2026, 3, 10))]
    with pytest.raises(BacktestError, match="several days"):
        run(one(), rows)


def test_risk_limits_apply_in_trigger_order() -> None:
    yaml = ("risk:\n  max_entries_per_day: 1\nbreakouts:\n"
            f"  - id: a\n    symbol: {SYM}\n    level: 5.00\n    qty: 10\n"
            f"  - id: b\n    symbol: {SYM}\n    level: 4.00\n    qty: 10\n")
    out = run(yaml, [row("09:40:10", "4.50"), row("09:50:10", "5.00")])
    assert out["b"]["outcome"] == "entered"
    assert (out["a"]["outcome"], out["a"]["reason"]) == ("rejected", "risk_max_entries")


def test_table_shows_fills_exits_and_pnl() -> None:
    yaml = one("    tp: 5.20\n    sl: 4.80\n")
    rows = [row("09:40:10", "5.00", "5.02"), row("09:45:00", "5.25", "5.26")]
    wl = load_watchlist_text(yaml, "t.yaml")
    text = table(run_backtest(tape_from_rows(rows), wl.watchers))
    assert "tp1@5.20x10" in text and "1.80" in text  # (5.20 - 5.02) * 10


LEVELS = {"AAA": ["10.00", "10.40"], "BBB": ["4.50"], "CCC": ["0.85"]}
YAML = "breakouts:\n" + "".join(
    f"  - id: {s}-{n}\n    symbol: {s}\n    level: {lv}\n    qty: 100\n{extra}"
    for s, levels in LEVELS.items() for n, lv in enumerate(levels)
    for extra in ["", "    sessions: [rth]\n    max_bars: 40\n"][:1]
)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(st.integers(min_value=0, max_value=10_000))
def test_replay_is_deterministic_and_prefilter_changes_nothing(seed: int) -> None:
    tape = synthetic_tape(seed, sorted(LEVELS), dt.date(2026, 3, 9),
                          levels={s: [px(v) for v in lv] for s, lv in LEVELS.items()},
                          density=0.3)
    wl = load_watchlist_text(YAML, "p.yaml")
    first = list(json_lines(run_backtest(tape, wl.watchers)))
    again = list(json_lines(run_backtest(tape, wl.watchers)))
    slow = list(json_lines(run_backtest(tape, wl.watchers, prefilter=False)))
    assert first == again == slow
