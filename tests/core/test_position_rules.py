"""Position management rules on hand-made prints, and their invariants under hypothesis."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from breakoutd.core.params import Slices, StrategyParams
from breakoutd.core.prices import round_to_tick, tick_size
from breakoutd.core.relative_exits import r_price, stop_below, tp_from_r
from breakoutd.core.slicing import (
    entry_ref_of,
    slice_keeps_exits,
    slice_ref,
    slice_schedule,
    slice_shares,
)
from breakoutd.core.stop_rules import (
    MODIFY_INTERVAL_NS,
    ManagedStop,
    StopProposal,
    StopRule,
    breakeven_proposal,
    modify_due,
    on_ladder_stop,
    on_print,
    resume_stop,
    start_stop,
    trail_proposal,
)
from breakoutd.core.time_exits import TimeRule, time_exit
from tests.factories import px

settings.register_profile("breakoutd", derandomize=True, max_examples=200, deadline=None)
settings.load_profile("breakoutd")

S = 1_000_000_000


def _walk(params: StrategyParams, fill: str, stop: str, prints: list[str]) -> list[ManagedStop]:
    state = start_stop(px(fill), px(stop))
    out = []
    for p in prints:
        state = on_print(params, state, px(p))
        out.append(state)
    return out


def test_breakeven_moves_the_stop_to_the_fill_at_the_first_1r_print() -> None:
    params = StrategyParams(breakeven=Decimal(1))
    # fill 5.10, stop 4.90: R 0.20, 1R at 5.30.
    states = _walk(params, "5.10", "4.90", ["5.20", "5.29", "5.30", "5.05", "5.40"])
    assert [s.stop for s in states] == [px("4.90")] * 2 + [px("5.10")] * 3
    assert states[2].rule is StopRule.BREAKEVEN


def test_breakeven_of_an_average_fill_off_the_tick_is_on_the_tick() -> None:
    assert breakeven_proposal(px("5.105"), px("0.2"), Decimal("0.5"), px("5.205")) == px("5.11")
    assert breakeven_proposal(px("5.105"), px("0.2"), Decimal("0.5"), px("5.204")) is None


def test_trail_follows_a_rising_market_and_holds_when_it_falls() -> None:
    params = StrategyParams(trail=px("0.15"))
    states = _walk(params, "5.00", "4.80", ["5.10", "5.20", "5.12", "5.31", "5.00", "5.25"])
    # The trail starts at the fill (trail_after 0): 5.10 - 0.15 = 4.95 is above the stop.
    assert [s.stop for s in states] == [px(p) for p in
                                        ("4.95", "5.05", "5.05", "5.16", "5.16", "5.16")]
    assert {s.rule for s in states} == {StopRule.TRAIL}


def test_trail_after_waits_for_its_r_multiple() -> None:
    params = StrategyParams(trail=px("0.10"), trail_after=Decimal(1))
    states = _walk(params, "5.00", "4.80", ["5.15", "5.19", "5.20", "5.25"])
    assert [s.stop for s in states] == [px("4.80"), px("4.80"), px("5.10"), px("5.15")]
    assert trail_proposal(px("5.00"), px("0.20"), px("0.10"), Decimal(1), px("5.199")) is None


def test_the_highest_proposal_wins_with_the_ladders() -> None:
    params = StrategyParams(breakeven=Decimal(1), trail=px("0.30"))
    state = _walk(params, "5.00", "4.80", ["5.20"])[-1]
    # breakeven 5.00 beats the trail's 4.90
    assert (state.stop, state.rule) == (px("5.00"), StopRule.BREAKEVEN)
    state = on_print(params, state, px("5.45"))
    assert (state.stop, state.rule) == (px("5.15"), StopRule.TRAIL)
    assert on_ladder_stop(state, px("5.10")) == state  # a lower ladder stop changes nothing
    laddered = on_ladder_stop(state, px("5.30"))
    assert (laddered.stop, laddered.rule) == (px("5.30"), StopRule.LADDER)


def test_a_modify_is_due_by_whole_ticks_at_most_once_a_second() -> None:
    assert not modify_due(px("5.00"), px("5.009"), None, 0)
    assert modify_due(px("5.00"), px("5.01"), None, 0)
    assert not modify_due(px("5.00"), px("4.99"), None, 0)
    assert not modify_due(px("5.00"), px("5.05"), 10 * S, 10 * S + MODIFY_INTERVAL_NS - 1)
    assert modify_due(px("5.00"), px("5.05"), 10 * S, 10 * S + MODIFY_INTERVAL_NS)
    assert modify_due(px("0.50"), px("0.5001"), None, 0)  # below $1 the tick is 0.0001


prices = st.integers(min_value=50, max_value=200_000).map(lambda c: c * 100)


@given(
    fill=st.integers(min_value=200, max_value=10_000).map(lambda c: c * 10_000),
    risk=st.integers(min_value=1, max_value=100).map(lambda c: c * 10_000),
    prints=st.lists(st.integers(min_value=-3000, max_value=3000), max_size=60),
    breakeven=st.none() | st.sampled_from([Decimal("0.5"), Decimal(1), Decimal(2)]),
    trail=st.none() | st.integers(min_value=1, max_value=50).map(lambda c: c * 10_000),
    after=st.none() | st.sampled_from([Decimal(0), Decimal("0.5"), Decimal(1)]),
)
def test_the_stop_never_moves_down_and_stays_on_the_tick(
    fill: int, risk: int, prints: list[int], breakeven: Decimal | None, trail: int | None,
    after: Decimal | None,
) -> None:
    params = StrategyParams(breakeven=breakeven, trail=trail,
                            trail_after=after if trail is not None else None)
    state = start_stop(fill, fill - risk)
    for step in prints:
        price = max(fill + step * 1000, 10_000)
        new = on_print(params, state, price)
        assert new.stop >= state.stop
        assert new.stop % tick_size(new.stop) == 0
        assert new.highest == max(state.highest, price)
        if new.rule is StopRule.BREAKEVEN:
            assert new.stop == round_to_tick(fill)
        if new.rule is StopRule.TRAIL and trail is not None:
            assert new.stop == round_to_tick(new.highest - trail)
        state = new


def test_after_a_restart_a_trail_goes_on_from_its_journalled_moves_never_lower() -> None:
    params = StrategyParams(trail=px("0.15"))
    moves = [StopProposal(px("4.95"), StopRule.TRAIL), StopProposal(px("5.05"), StopRule.TRAIL)]
    state = resume_stop(params, px("5.00"), px("4.80"), px("5.05"), moves)  # 5.10, 5.20 seen
    assert (state.stop, state.rule, state.highest) == (px("5.05"), StopRule.TRAIL, px("5.195"))
    after = [on_print(params, state, px(p)) for p in ("5.12", "5.20", "5.31")]
    assert [s.stop for s in after] == [px("5.05"), px("5.05"), px("5.16")]
    # The last move did not reach the broker (the process died with it): asked for again.
    lost = resume_stop(params, px("5.00"), px("4.80"), px("4.95"), moves)
    assert lost.rule is StopRule.TRAIL and on_print(params, lost, px("5.01")).stop == px("5.05")
    fresh = resume_stop(params, px("5.00"), px("4.80"), px("4.80"), [])
    assert fresh == start_stop(px("5.00"), px("4.80"))


def test_a_breakeven_move_vouches_for_its_1r_print_after_a_restart() -> None:
    params = StrategyParams(breakeven=Decimal(1))
    moves = [StopProposal(px("5.10"), StopRule.BREAKEVEN)]
    lost = resume_stop(params, px("5.10"), px("4.90"), px("4.90"), moves)
    assert lost.rule is StopRule.INITIAL  # the broker still holds the initial stop
    assert on_print(params, lost, px("5.00")).stop == px("5.10")
    # Later slices raised the average to 5.20: the 1R print of then (5.295 at least)
    # is not the new average's 1R (5.50), so breakeven does not move again.
    resumed = resume_stop(params, px("5.20"), px("4.90"), px("5.10"), moves)
    assert on_print(params, resumed, px("5.25")).stop == px("5.10")


@given(
    fill=st.integers(min_value=200, max_value=10_000).map(lambda c: c * 10_000),
    risk=st.integers(min_value=1, max_value=100).map(lambda c: c * 10_000),
    prints=st.lists(st.integers(min_value=-3000, max_value=3000), max_size=40),
    split=st.integers(min_value=0, max_value=40),
    breakeven=st.none() | st.sampled_from([Decimal("0.5"), Decimal(1)]),
    trail=st.none() | st.integers(min_value=1, max_value=50).map(lambda c: c * 10_000),
    after=st.none() | st.sampled_from([Decimal(0), Decimal(1)]),
)
def test_a_restart_anywhere_moves_the_stop_as_an_uninterrupted_run_does(
    fill: int, risk: int, prints: list[int], split: int, breakeven: Decimal | None,
    trail: int | None, after: Decimal | None,
) -> None:
    params = StrategyParams(breakeven=breakeven, trail=trail,
                            trail_after=after if trail is not None else None)
    prices = [max(fill + step * 1000, 10_000) for step in prints]
    state = start_stop(fill, fill - risk)
    moves: list[StopProposal] = []
    for price in prices[:split]:
        new = on_print(params, state, price)
        if new.stop != state.stop:
            moves.append(StopProposal(new.stop, new.rule))
        state = new
    resumed = resume_stop(params, fill, fill - risk, state.stop, moves)
    assert (resumed.stop, resumed.rule) == (state.stop, state.rule)
    for price in prices[split:]:
        state, resumed = on_print(params, state, price), on_print(params, resumed, price)
        assert (resumed.stop, resumed.rule) == (state.stop, state.rule)


def test_tp_r_and_sl_below_prices_are_on_the_tick() -> None:
    assert stop_below(px("5.00"), px("0.30")) == px("4.70")
    assert stop_below(px("5.00"), px("0.305")) == px("4.70")  # 4.695 half-up to 4.70
    # entry 5.03, stop 4.70: R 0.33; 1.5R = 5.525 -> 5.53 (half-up).
    assert tp_from_r(px("5.03"), px("4.70"), (Decimal(1), Decimal("1.5"))) == (
        px("5.36"), px("5.53"))
    assert r_price(px("0.5"), px("0.45"), Decimal("0.33")) == px("0.5165")


@given(entry=st.integers(min_value=1, max_value=500_000).map(lambda c: c * 100),
       risk=st.integers(min_value=1, max_value=100_000).map(lambda c: c * 100),
       rs=st.lists(st.integers(min_value=1, max_value=80), min_size=1, max_size=4, unique=True))
def test_tp_r_prices_are_on_the_tick_ascending_and_above_the_entry(
    entry: int, risk: int, rs: list[int]
) -> None:
    multiples = tuple(Decimal(r) / 4 for r in sorted(rs))
    stop = entry - risk
    prices = tp_from_r(entry, stop, multiples)
    assert all(p % tick_size(p) == 0 for p in prices)
    assert list(prices) == sorted(prices)
    assert all(p > entry for p in prices)


@given(qty=st.integers(min_value=1, max_value=100_000), count=st.integers(min_value=1, max_value=20))
def test_slices_add_up_to_the_quantity(qty: int, count: int) -> None:
    shares = slice_shares(qty, count)
    assert sum(shares) == qty and len(shares) == count
    assert max(shares[1:], default=shares[0]) <= shares[0] <= shares[-1] + count - 1


def test_slice_schedule_refs_and_the_exits_check() -> None:
    sched = slice_schedule(100, Slices(3, 20), 1000 * S, "bo:20260309:rth:X@5.00")
    assert [(s.number, s.at, s.qty) for s in sched] == [
        (1, 1000 * S, 34), (2, 1020 * S, 33), (3, 1040 * S, 33)]
    assert [s.order_ref for s in sched] == [f"bo:20260309:rth:X@5.00:s{k}" for k in (1, 2, 3)]
    assert entry_ref_of(slice_ref("bo:1:rth:X@5.00", 2)) == ("bo:1:rth:X@5.00", 2)
    assert entry_ref_of("bo:1:rth:X@5.00") == ("bo:1:rth:X@5.00", 0)
    assert slice_keeps_exits(px("5.10"), px("4.90"), px("5.50"))
    assert not slice_keeps_exits(px("5.50"), px("4.90"), px("5.50"))
    assert not slice_keeps_exits(px("4.90"), px("4.90"), None)


def test_time_exit_is_the_earliest_rule_and_a_late_fill_is_due_at_once() -> None:
    midnight = 0
    params = StrategyParams(exit_at=15 * 3600 + 55 * 60, max_hold=1800)
    fill = (15 * 3600) * S
    assert time_exit(params, fill, midnight) == (fill + 1800 * S, TimeRule.MAX_HOLD)
    later = (15 * 3600 + 40 * 60) * S
    assert time_exit(params, later, midnight) == ((15 * 3600 + 55 * 60) * S, TimeRule.EXIT_AT)
    after = 16 * 3600 * S
    assert time_exit(StrategyParams(exit_at=15 * 3600), after, midnight) == (
        after, TimeRule.EXIT_AT)
    assert time_exit(StrategyParams(), fill, midnight) is None
