"""Named levels in the backtest on hand-made tapes: no_level, known-at arming, the prior tape."""

from __future__ import annotations

import datetime as dt
import json

from breakoutd.backtest import run_backtest
from breakoutd.backtest.report import json_lines, table
from breakoutd.config import load_watchlist_text
from breakoutd.tape import tape_from_rows
from tests.backtest.test_engine import SYM, row

FRIDAY = dt.date(2026, 3, 6)  # the trading day before the tests' Monday


def named(level: str, extra: str = "") -> str:
    return (f"breakouts:\n  - id: w\n    symbol: {SYM}\n    level: {level}\n    qty: 10\n"
            f"    fast: false\n{extra}")


def run(yaml: str, rows, prior=None):  # type: ignore[no-untyped-def]
    wl = load_watchlist_text(yaml, "t.yaml")
    result = run_backtest(tape_from_rows(rows), wl.watchers,
                          prior=tape_from_rows(prior) if prior else None)
    return json.loads(next(json_lines(result))), result


def test_no_print_in_the_premarket_is_no_level() -> None:
    out, result = run(named("premarket_high"), [row("09:40:10", "5.00")])
    assert (out["outcome"], out["reason"], out["level"]) == ("expired", "no_level", None)
    assert result.results[0].resolved is None
    assert "no_level" in table(result)


def test_premarket_high_arms_at_0930_and_takes_its_offset() -> None:
    rows = [row("08:00:00", "4.90"), row("09:10:00", "5.00", high="5.10"),
            row("09:29:00", "5.20"),  # closes at or above the level, but before it is known
            row("09:40:10", "5.11")]
    out, result = run(named("premarket_high", "    level_offset: 0.11\n"), rows)
    assert (out["level"], out["outcome"], out["kind"]) == (5.31, "expired", None)
    out, result = run(named("premarket_high", "    level_offset: -0.10\n"), rows)
    assert (out["level"], out["kind"], out["trigger_time"]) == (
        5.1, "close", "2026-03-09T09:41:00-04:00")
    event = result.results[0].resolved
    assert event is not None and str(event.raw) == "5.20" and str(event.offset) == "-0.10"
    assert "5.10 premarket_high" in table(result)


def test_opening_range_high_arms_at_the_end_of_the_range() -> None:
    # The 09:34 minute makes the 5-minute range's high and closes at 09:35, when the
    # level becomes known: that bar is not evaluated; the 09:35 one is.
    rows = [row("09:30:05", "5.00"), row("09:34:30", "5.05"), row("09:35:10", "5.05")]
    out, _ = run(named("opening_range_high"), rows)
    assert (out["level"], out["trigger_time"]) == (5.05, "2026-03-09T09:36:00-04:00")
    out, _ = run(named("opening_range_high", "    opening_range: 1\n"), rows)
    assert (out["level"], out["trigger_time"]) == (5.0, "2026-03-09T09:35:00-04:00")


def test_prior_levels_come_from_the_previous_trading_days_tape() -> None:
    prior = [row("09:00:00", "9.00", day=FRIDAY),  # premarket: not the regular session
             row("10:00:00", "5.00", high="5.40", day=FRIDAY),
             row("15:59:59", "5.20", day=FRIDAY), row("17:00:00", "1.00", day=FRIDAY)]
    today = [row("09:40:10", "5.21"), row("11:00:10", "5.40")]
    out, _ = run(named("prior_close"), today, prior)
    assert (out["level"], out["trigger_time"]) == (5.2, "2026-03-09T09:41:00-04:00")
    out, _ = run(named("prior_high"), today, prior)
    assert (out["level"], out["trigger_time"]) == (5.4, "2026-03-09T11:01:00-04:00")
    out, _ = run(named("prior_high"), today)  # no prior tape given
    assert out["reason"] == "no_level"
    # A tape of some other day is not the previous trading day's.
    other = [r._replace(time=r.time - 86_400 * 10**9) for r in prior]
    out, _ = run(named("prior_high"), today, other)
    assert out["reason"] == "no_level"


def test_sl_below_and_tp_r_are_priced_from_the_resolved_level() -> None:
    rows = [row("09:10:00", "5.00", high="5.10"), row("09:40:10", "5.11", ask="5.12")]
    extra = "    risk_usd: 10\n    sl_below: 0.10\n    tp_r: [1, 2]\n"
    yaml = named("premarket_high", extra).replace("    qty: 10\n", "")
    out, result = run(yaml, rows)
    assert (out["level"], out["outcome"], out["limit"]) == (5.1, "entered", 5.12)
    plan = result.results[0].plan
    assert plan is not None
    # stop 5.10 - 0.10 = 5.00; R = 0.12; qty floor(10 / 0.12) = 83; rungs 5.24 and 5.36.
    assert (plan.stop, plan.qty, [r.price for r in plan.rungs]) == (
        5_000_000, 83, [5_240_000, 5_360_000])
