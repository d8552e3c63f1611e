"""Named levels on hand-made bars (strategy.md, Levels from the market)."""

from __future__ import annotations

import datetime as dt

from breakoutd.core.bars import MINUTE
from breakoutd.core.levels import (
    armed_after_known,
    level_from_bars,
    level_range,
    with_offset,
)
from breakoutd.core.params import LevelName
from breakoutd.core.watcher import WatcherMachine
from tests.factories import at, min_bar, px, sec_bar, spec

PRIOR = dt.date(2026, 3, 6)  # the Friday before DAY (Monday 2026-03-09)
DAY_START, RTH = at("04:00:00"), (at("09:30:00"), at("16:00:00"))
PRIOR_RTH = (at("09:30:00", PRIOR), at("16:00:00", PRIOR))


def rng(name: LevelName, minutes: int = 5):  # type: ignore[no-untyped-def]
    return level_range(name, minutes, DAY_START, RTH, PRIOR_RTH)


def test_premarket_high_is_the_highest_print_before_the_open_known_at_0930() -> None:
    r = rng(LevelName.PREMARKET_HIGH)
    assert (r.start, r.end, r.known_at) == (DAY_START, RTH[0], RTH[0])
    bars = [sec_bar(at("03:59:59"), "9", "9", "9", "9"),  # before 04:00: not premarket
            sec_bar(at("04:00:00"), "5", "5.31", "5", "5.1"),
            sec_bar(at("09:29:59"), "5.2", "5.30", "5.2", "5.2"),
            sec_bar(at("09:30:00"), "6", "6", "6", "6")]  # the open: not premarket
    assert level_from_bars(r, bars) == px("5.31")


def test_opening_range_high_over_the_configured_minutes() -> None:
    r = rng(LevelName.OPENING_RANGE_HIGH, 15)
    assert (r.start, r.end, r.known_at) == (RTH[0], at("09:45:00"), at("09:45:00"))
    bars = [min_bar(at("09:30:00"), "5", "5.10", "5", "5"),
            min_bar(at("09:44:00"), "5", "5.40", "5", "5"),
            min_bar(at("09:45:00"), "5", "7.00", "5", "5")]
    assert level_from_bars(r, bars) == px("5.40")
    assert level_from_bars(rng(LevelName.OPENING_RANGE_HIGH, 1), bars) == px("5.10")


def test_prior_high_and_close_come_from_the_previous_sessions_regular_hours() -> None:
    bars = [sec_bar(at("09:29:59", PRIOR), "9", "9", "9", "9"),  # premarket: not counted
            sec_bar(at("10:00:00", PRIOR), "5", "5.50", "5", "5.2"),
            sec_bar(at("15:59:59", PRIOR), "5.3", "5.3", "5.25", "5.27"),
            sec_bar(at("16:00:00", PRIOR), "4", "4", "4", "4.00")]  # after hours
    high, close = rng(LevelName.PRIOR_HIGH), rng(LevelName.PRIOR_CLOSE)
    assert high.known_at == close.known_at == DAY_START and high.prior
    assert level_from_bars(high, bars) == px("5.50")
    assert level_from_bars(close, bars) == px("5.27")
    assert level_range(LevelName.PRIOR_HIGH, 5, DAY_START, RTH, None) is None


def test_no_print_in_the_range_is_no_level() -> None:
    bars = [sec_bar(at("09:30:00"), "5", "5", "5", "5")]
    assert level_from_bars(rng(LevelName.PREMARKET_HIGH), bars) is None
    assert level_from_bars(rng(LevelName.PRIOR_CLOSE), []) is None


def test_offset_is_added_exactly_and_a_level_must_stay_a_price() -> None:
    assert with_offset(px("5.31"), px("0.02")) == px("5.33")
    assert with_offset(px("5.31"), -px("0.005")) == px("5.305")  # no rounding to the tick
    assert with_offset(px("0.10"), -px("0.10")) is None


def test_armed_at_the_later_of_a_and_known_at() -> None:
    known = at("09:35:00")
    assert armed_after_known((at("04:00:00"), at("16:00:00")), known) == (known, at("16:00:00"))
    assert armed_after_known((at("10:00:00"), at("16:00:00")), known) == (
        at("10:00:00"), at("16:00:00"))
    assert armed_after_known((at("04:00:00"), at("09:30:00")), at("09:30:00")) is None
    # Armed at known-at 09:35: the 09:34 bar closes exactly then and is not evaluated.
    m = WatcherMachine(spec("5.00"), known, at("16:00:00"))
    assert m.on_close_bar(min_bar(at("09:34:00"), "5", "5.2", "5", "5.2")) is None
    assert m.on_close_bar(min_bar(at("09:35:00"), "5", "5.2", "5", "5.2")) is not None
    assert MINUTE == 60 * 10**9
