"""rule: momentum and rule: retest on hand-made bars (strategy.md, Rule variants)."""

from __future__ import annotations

from decimal import Decimal

from breakoutd.core.bars import MINUTE
from breakoutd.core.params import Rule
from breakoutd.core.variants import AWAITING_RETEST, BREAK_CANCELLED, NO_VOLUME
from breakoutd.core.watcher import Expiry, Trigger, WatcherMachine, WatcherState
from tests.factories import at, min_bar, sec_bar, spec

L = "5.00"


def machine(rule: Rule, a: str = "09:30:00", z: str = "16:00:00", **params: object
            ) -> WatcherMachine:
    return WatcherMachine(spec(L, rule=rule, **params), at(a), at(z))


def bar(hhmm: str, close: str, volume: int, low: str | None = None):  # type: ignore[no-untyped-def]
    """A 1-minute bar starting at ``hhmm``; its low is the close unless given."""
    lo = low or close
    return min_bar(at(hhmm + ":00"), lo, max(close, lo), lo, close, volume)


# --- momentum ----------------------------------------------------------------------


def test_momentum_triggers_on_a_close_above_with_twice_the_mean_volume() -> None:
    m = machine(Rule.MOMENTUM)
    for minute, v in (("09:30", 100), ("09:31", 300)):
        assert m.on_close_bar(bar(minute, "4.90", v)) is None
    # mean of the two earlier bars is 200: 400 is exactly 2.0 x, and that is enough.
    trig = m.on_close_bar(bar("09:32", "5.00", 400))
    assert trig == Trigger("momentum", at("09:33:00"), trig.bar)


def test_momentum_close_above_without_the_volume_is_a_near_miss_that_counts() -> None:
    m = machine(Rule.MOMENTUM, max_bars=3)
    m.on_close_bar(bar("09:30", "4.90", 100))
    assert m.on_close_bar(bar("09:31", "5.10", 199)) is None  # 199 < 2 x 100
    miss = m.near_miss
    assert miss is not None and miss.kind == NO_VOLUME and miss.mean == 100
    assert m.bars_evaluated == 2
    # A close below the level is not a near miss.
    m.on_close_bar(bar("09:32", "4.99", 10_000))
    assert m.near_miss is None
    assert isinstance(m.decision, Expiry) and m.decision.reason == "max_bars"


def test_momentum_mean_over_fewer_bars_than_the_lookback() -> None:
    # lookback 20, but only one earlier bar of the day: the mean is that one bar.
    m = machine(Rule.MOMENTUM)
    m.on_close_bar(bar("09:30", "4.90", 500))
    assert m.on_close_bar(bar("09:31", "5.00", 999)) is None
    m2 = machine(Rule.MOMENTUM)
    m2.on_close_bar(bar("09:30", "4.90", 500))
    assert m2.on_close_bar(bar("09:31", "5.00", 1000)) is not None


def test_momentum_with_no_earlier_bar_does_not_trigger() -> None:
    m = machine(Rule.MOMENTUM)
    assert m.on_close_bar(bar("09:30", "5.50", 1_000_000)) is None
    assert m.near_miss is not None and m.near_miss.mean is None


def test_momentum_mean_counts_bars_before_arming_and_only_the_last_lookback() -> None:
    # Armed at 09:30; premarket bars count toward the mean but are not evaluated.
    m = machine(Rule.MOMENTUM, volume_lookback=2, volume_mult=Decimal("1.5"))
    for minute, v in (("09:00", 10_000), ("09:10", 100), ("09:29", 300)):
        assert m.on_close_bar(bar(minute, "5.20", v)) is None  # above L, but before A
    assert m.bars_evaluated == 0
    # Mean of the last two (100, 300) = 200; 1.5 x 200 = 300. The 10,000 dropped out.
    trig = m.on_close_bar(bar("09:30", "5.01", 300))
    assert trig is not None and trig.kind == "momentum"


def test_momentum_minutes_without_trades_are_absent_not_zero() -> None:
    m = machine(Rule.MOMENTUM, volume_lookback=3)
    m.on_close_bar(bar("09:30", "4.90", 300))
    # 09:31-09:39 had no trades: the mean is still 300, not 300 / 3.
    assert m.on_close_bar(bar("09:40", "5.00", 599)) is None
    assert m.on_close_bar(bar("09:41", "5.00", 2 * (300 + 599) // 2)) is not None


def test_momentum_keeps_the_fast_rule() -> None:
    m = machine(Rule.MOMENTUM)
    trig = m.on_fast_bar(sec_bar(at("09:41:23"), "5.10", "5.12", "5.09", "5.10"))
    assert trig is not None and trig.kind == "fast"


def test_seeded_volumes_make_the_mean() -> None:
    m = machine(Rule.MOMENTUM, a="10:00:00")
    m.seed_volumes([100, 100, 100])
    assert m.on_close_bar(bar("10:00", "5.00", 200)) is not None


# --- retest ------------------------------------------------------------------------


def test_retest_break_then_a_bar_back_at_the_level_that_holds() -> None:
    m = machine(Rule.RETEST)
    assert m.on_close_bar(bar("09:40", "5.20", 100)) is None  # the break
    assert m.near_miss is not None and m.near_miss.kind == AWAITING_RETEST
    # low 5.06 is above L + 0.05: still waiting.
    assert m.on_close_bar(bar("09:41", "5.15", 100, low="5.06")) is None
    assert m.near_miss is not None and m.near_miss.kind == AWAITING_RETEST
    trig = m.on_close_bar(bar("09:42", "5.10", 100, low="5.05"))  # 5.05 <= 5.00 + 0.05
    assert trig == Trigger("retest", at("09:43:00"), trig.bar)


def test_retest_the_break_bar_itself_never_triggers() -> None:
    m = machine(Rule.RETEST)
    # Closes above L with its low right at L: a perfect retest shape, but it is the break.
    assert m.on_close_bar(bar("09:40", "5.02", 100, low="5.00")) is None
    assert m.state is WatcherState.ARMED
    assert m.on_close_bar(bar("09:41", "5.02", 100, low="5.00")) is not None


def test_retest_a_close_below_the_level_cancels_the_break() -> None:
    m = machine(Rule.RETEST, max_bars=4)
    m.on_close_bar(bar("09:40", "5.20", 100))
    assert m.on_close_bar(bar("09:41", "4.99", 100)) is None
    assert m.near_miss is not None and m.near_miss.kind == BREAK_CANCELLED
    # The next bar back above the level is a new break, not a retest.
    assert m.on_close_bar(bar("09:42", "5.01", 100, low="4.98")) is None
    assert m.near_miss is not None and m.near_miss.kind == AWAITING_RETEST
    expiry = m.on_close_bar(bar("09:43", "4.90", 100))
    assert isinstance(expiry, Expiry) and (expiry.reason, expiry.bars_evaluated) == ("max_bars", 4)


def test_retest_within_is_configurable_and_the_fast_rule_is_off() -> None:
    m = machine(Rule.RETEST, retest_within=0)
    assert m.thresholds is None
    assert m.on_fast_bar(sec_bar(at("09:41:23"), "5.10", "5.12", "5.09", "5.10")) is None
    m.on_close_bar(bar("09:40", "5.20", 100))
    assert m.on_close_bar(bar("09:41", "5.10", 100, low="5.01")) is None
    assert m.on_close_bar(bar("09:42", "5.10", 100, low="5.00")) is not None


def test_retest_bars_before_arming_are_no_break() -> None:
    m = machine(Rule.RETEST, a="09:41:00")
    assert m.on_close_bar(bar("09:40", "5.20", 100)) is None  # closes at A: not evaluated
    assert m.on_close_bar(bar("09:41", "5.02", 100, low="5.00")) is None  # the break
    assert m.on_close_bar(bar("09:42", "5.02", 100, low="5.00")) is not None


def test_close_rule_sets_no_near_miss() -> None:
    m = machine(Rule.CLOSE)
    m.on_close_bar(min_bar(at("09:40:00"), "4.9", "4.9", "4.9", "4.9"))
    assert m.near_miss is None and m.close_bar_size == MINUTE
