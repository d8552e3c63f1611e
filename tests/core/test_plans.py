"""Entry and exit plans: prices, ticks, sizing, brackets, ladders, rejections."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakoutd.core.ladder import on_rung_fill, start_ladder
from breakoutd.core.params import EntryKind, WatcherSpec
from breakoutd.core.plans import OrderPlan, Quote, Rejection, Rung, plan_order, split_ladder
from breakoutd.core.prices import format_price, round_to_tick, to_decimal
from breakoutd.core.window import arm_at, arming_window
from tests.factories import at, px, spec


def quote(ask: str | None, bid: str | None = None) -> Quote:
    return Quote(0, px(bid) if bid else None, 100, px(ask) if ask else None, 100)


def test_bracket_plan_prices() -> None:
    plan = plan_order(spec("190.00", tp=("195",), sl="187"), quote("190.05"), "ref")
    assert isinstance(plan, OrderPlan)
    assert plan.limit == px("190.05") and plan.qty == 100
    assert plan.rungs == (Rung(px("195"), 100),)
    assert plan.stop == px("187") and plan.stop_limit == px("186.98")
    assert plan.oca_group == "oca:ref" and plan.outside_rth and plan.tif == "DAY"


def test_rth_preset_turns_outside_rth_off() -> None:
    plan = plan_order(spec("190.00", tp=("195",), sl="187", rth=True), quote("190.05"), "r")
    assert isinstance(plan, OrderPlan) and plan.outside_rth is False


@pytest.mark.parametrize(("ask", "limit"), [("0.85005", "0.8501"), ("0.85004", "0.8500"),
                                            ("1.005", "1.01"), ("0.99995", "1.00"),
                                            ("12.344999", "12.34")])
def test_limit_rounds_to_the_tick_half_up(ask: str, limit: str) -> None:
    assert round_to_tick(px(ask)) == px(limit)


def test_no_quote_rejects() -> None:
    s = spec("5.00")
    assert plan_order(s, None, "r") == Rejection("no_quote", "no ask in force at the trigger")
    assert isinstance(plan_order(s, quote(None, "4.99"), "r"), Rejection)
    zero = Quote(0, None, None, 0, 100)
    assert plan_order(s, zero, "r").reason == "no_quote"  # type: ignore[union-attr]


def test_market_entry_has_no_limit() -> None:
    plan = plan_order(spec("5.00", entry=EntryKind.MARKET), quote("5.02"), "r")
    assert isinstance(plan, OrderPlan) and plan.limit is None and plan.reference_price == px("5.02")


def test_entry_at_or_above_tp_is_rejected() -> None:
    r = plan_order(spec("5.00", tp=("5.10",), sl="4.90"), quote("5.10"), "r")
    assert isinstance(r, Rejection) and r.reason == "entry_above_tp"


def test_entry_at_or_below_stop_is_rejected() -> None:
    # A stop at the level (the config refuses it; the core still guards it).
    r = plan_order(spec("5.00", tp=("5.50",), sl="5.00"), quote("5.00"), "r")
    assert isinstance(r, Rejection) and r.reason == "entry_below_stop"


def reason(s: WatcherSpec, ask: str | None) -> tuple[str, int | None] | None:
    """The rejection reason and limit of a trigger at ``ask``, None when it enters."""
    r = plan_order(s, quote(ask), "r")
    return (r.reason, r.limit) if isinstance(r, Rejection) else None


def test_a_bad_print_above_a_quote_below_the_level_is_rejected_with_its_limit() -> None:
    # The motivating day: a print at 167.51 fired the fast rule on 167.00 while the
    # quote was 165.98/165.99; buying at 165.99 would be a dollar below the level.
    s = spec("167.00", tp=("168.00",), sl="166.50")
    r = plan_order(s, quote("165.99", "165.98"), "r")
    assert r == Rejection("quote_below_level", "ask 165.99 is below level 167.00", px("165.99"))


@pytest.mark.parametrize(("ask", "expected"), [
    ("4.99", ("quote_below_level", px("4.99"))),
    ("5.00", None),               # the ask exactly at L confirms
    ("5.10", None),               # exactly at L + max_chase
    ("5.11", ("chased", px("5.11"))),  # one tick above
])
def test_the_ask_must_lie_in_level_to_level_plus_max_chase(
        ask: str, expected: tuple[str, int] | None) -> None:
    assert reason(spec("5.00", max_chase=px("0.10")), ask) == expected


def test_without_max_chase_any_ask_at_or_above_the_level_is_taken() -> None:
    s = spec("5.00")
    assert reason(s, "4.99") == ("quote_below_level", px("4.99"))
    assert reason(s, "9.00") is None


def test_max_chase_zero_takes_only_an_ask_at_the_level() -> None:
    s = spec("5.00", max_chase=0)
    assert (reason(s, "5.00"), reason(s, "5.01")) == (None, ("chased", px("5.01")))


@pytest.mark.parametrize(("ask", "expected"), [
    ("0.8499", ("quote_below_level", px("0.8499"))),
    ("0.8500", None),
    ("0.8550", None),
    ("0.8551", ("chased", px("0.8551"))),
])
def test_sub_dollar_asks_are_compared_on_their_own_ticks(
        ask: str, expected: tuple[str, int] | None) -> None:
    assert reason(spec("0.85", max_chase=px("0.005")), ask) == expected


def test_an_off_tick_level_is_compared_exactly() -> None:
    # level is used exactly as written: an ask of 10.00 is below 10.005
    s = spec("10.005", max_chase=px("0.015"))
    assert reason(s, "10.00") == ("quote_below_level", px("10.00"))
    assert (reason(s, "10.01"), reason(s, "10.02")) == (None, None)
    assert reason(s, "10.03") == ("chased", px("10.03"))


def test_a_market_entry_is_rejected_without_a_limit() -> None:
    s = spec("5.00", entry=EntryKind.MARKET, max_chase=px("0.05"))
    assert reason(s, "4.99") == ("quote_below_level", None)
    r = plan_order(s, quote("5.06"), "r")
    assert r == Rejection("chased", "ask 5.06 is above level 5.00 + max_chase 0.05", None)


def test_checks_run_no_quote_then_below_level_then_chased_then_exits() -> None:
    # Each ask also fails every later check (the exits sit inside the chase band).
    s = spec("5.00", tp=("5.02",), sl="4.99", max_chase=px("0.10"))
    assert reason(s, None) == ("no_quote", None)
    assert reason(s, "4.98") == ("quote_below_level", px("4.98"))  # also below the stop
    assert reason(s, "5.20") == ("chased", px("5.20"))  # also above the tp
    assert reason(s, "5.05") == ("entry_above_tp", px("5.05"))  # the exits come after


def test_risk_sizing() -> None:
    s = spec("10.00", qty=None, tp=("11",), sl="9.50", risk_usd=Decimal(50))
    plan = plan_order(s, quote("10.03"), "r")
    assert isinstance(plan, OrderPlan) and plan.qty == 94  # floor(50 / 0.53)


def test_risk_sizing_below_one_share_is_rejected() -> None:
    s = spec("10.00", qty=None, tp=("20",), sl="1.00", risk_usd=Decimal(5))
    r = plan_order(s, quote("10.03"), "r")
    assert isinstance(r, Rejection) and r.reason == "size_zero"


def test_ladder_equal_parts_remainder_to_first_rung() -> None:
    assert split_ladder(100, (), 3) == (34, 33, 33)
    assert split_ladder(10, (Decimal("0.5"), Decimal("0.25"), Decimal("0.25")), 3) == (6, 2, 2)


def test_ladder_plan_and_stop_moves() -> None:
    s = spec("5.00", qty=90, tp=("5.50", "6.00", "6.50"), sl="4.80")
    plan = plan_order(s, quote("5.02"), "r")
    assert isinstance(plan, OrderPlan)
    assert [r.qty for r in plan.rungs] == [30, 30, 30]
    state = start_ladder(plan, s.level)
    assert (state.stop, state.stop_qty) == (px("4.80"), 90)
    state, move = on_rung_fill(state, 0, 10)  # partial: stop stays, qty shrinks
    assert (move.stop, move.qty) == (px("4.80"), 80)
    state, move = on_rung_fill(state, 0, 20)
    assert (move.stop, move.stop_limit, move.qty) == (px("5.00"), px("4.98"), 60)
    state, move = on_rung_fill(state, 1, 30)
    assert (move.stop, move.qty) == (px("5.50"), 30)
    state, move = on_rung_fill(state, 2, 30)
    assert move.qty == 0 and state.done
    with pytest.raises(ValueError):
        on_rung_fill(state, 2, 1)


def test_ladder_too_small_is_rejected() -> None:
    s = spec("5.00", qty=2, tp=("5.50", "6.00", "6.50"), sl="4.80")
    r = plan_order(s, quote("5.02"), "r")
    assert isinstance(r, Rejection) and r.reason == "ladder_too_small"


def test_arming_window_spans_named_sessions_within_not_before_after() -> None:
    pre, rth = (at("04:00:00"), at("09:30:00")), (at("09:30:00"), at("16:00:00"))
    assert arming_window([pre, rth]) == (at("04:00:00"), at("16:00:00"))
    assert arming_window([pre, rth], at("09:35:00"), at("11:30:00")) == (at("09:35:00"), at("11:30:00"))
    assert arming_window([rth], at("17:00:00")) is None
    assert arm_at((at("09:30:00"), at("16:00:00")), at("10:00:00")) == (at("10:00:00"), at("16:00:00"))
    assert arm_at((at("09:30:00"), at("16:00:00")), at("16:00:00")) is None


def test_format_price() -> None:
    assert format_price(px("190")) == "190.00"
    assert format_price(px("0.4567")) == "0.4567"
    assert format_price(px("13.5")) == "13.50"
    assert format_price(0) == "0.00" and format_price(-500_000) == "-0.50"
    assert format_price(px("0.000001")) == "0.000001"


@settings(derandomize=True, max_examples=300, database=None)
@given(st.integers(min_value=-10**15, max_value=10**15))
def test_format_price_is_the_text_of_the_exact_decimal(micros: int) -> None:
    assert format_price(micros) == str(to_decimal(micros))


def test_equal_ladder_parts_are_exact_whole_shares() -> None:
    assert split_ladder(3, (), 3) == (1, 1, 1)
    assert split_ladder(7, (), 3) == (3, 2, 2)
