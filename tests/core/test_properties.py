"""Invariants of the core under generated inputs (hypothesis, derandomized)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from breakoutd.core.bars import NS, Bar
from breakoutd.core.ladder import on_rung_fill, start_ladder
from breakoutd.core.params import StrategyParams, WatcherSpec
from breakoutd.core.plans import (
    OrderPlan,
    PlanTemplate,
    Quote,
    Rejection,
    plan_order,
    split_ladder,
)
from breakoutd.core.prices import to_decimal, to_float
from breakoutd.core.watcher import Trigger, WatcherMachine

settings.register_profile("breakoutd", derandomize=True, max_examples=200, deadline=None)
settings.load_profile("breakoutd")

cents = st.integers(min_value=1, max_value=50_000).map(lambda c: c * 10_000)


@st.composite
def bracket_specs(draw: st.DrawFn) -> tuple[WatcherSpec, Quote]:
    level = draw(cents)
    sl = draw(st.integers(min_value=1, max_value=level // 10_000).map(lambda c: c * 10_000))
    rungs = draw(st.lists(cents, min_size=1, max_size=4, unique=True).map(sorted))
    qty = draw(st.integers(min_value=1, max_value=5000))
    risk = draw(st.none() | st.integers(min_value=1, max_value=5000).map(Decimal))
    chase = draw(st.none() | st.integers(min_value=0, max_value=200_000).map(lambda c: c * 100))
    spec = WatcherSpec(id="w", symbol="T", level=level, qty=qty, tp=tuple(rungs), sl=sl,
                       params=StrategyParams(risk_usd=risk, max_chase=chase))
    ask = draw(st.none() | st.integers(min_value=-5, max_value=600_000).map(lambda c: c * 100))
    return spec, Quote(0, None, None, ask, 100)


@given(bracket_specs())
def test_every_plan_has_stop_below_entry_below_targets_or_a_reason(case: tuple[WatcherSpec, Quote]) -> None:
    spec, quote = case
    plan = plan_order(spec, quote, "ref")
    if isinstance(plan, Rejection):
        assert plan.reason
        return
    assert plan.stop is not None and plan.stop_limit is not None
    assert quote.ask is not None and spec.level <= quote.ask  # the quote confirms the break
    chase = spec.params.max_chase
    assert chase is None or quote.ask <= spec.level + chase
    assert 0 < plan.stop_limit < plan.stop < plan.reference_price
    assert all(plan.reference_price < r.price for r in plan.rungs)
    assert sum(r.qty for r in plan.rungs) == plan.qty
    assert all(r.qty >= 1 for r in plan.rungs)


@given(st.integers(min_value=1, max_value=100_000), st.integers(min_value=1, max_value=6))
def test_ladder_split_adds_up(qty: int, rungs: int) -> None:
    shares = split_ladder(qty, (), rungs)
    assert sum(shares) == qty and len(shares) == rungs
    assert max(shares) - min(shares) <= rungs  # equal parts, remainder on the first


@given(bracket_specs(), st.data())
def test_ladder_fills_never_oversell_and_the_stop_only_rises(case: tuple[WatcherSpec, Quote],
                                                            data: st.DataObject) -> None:
    spec, quote = case
    plan = plan_order(spec, quote, "ref")
    if not isinstance(plan, OrderPlan) or not plan.rungs:
        return
    state = start_ladder(plan, spec.level)
    sold = 0
    for rung in range(len(plan.rungs)):
        left = state.qtys[rung]
        while left:
            qty = data.draw(st.integers(min_value=1, max_value=left))
            before = state.stop
            state, move = on_rung_fill(state, rung, qty)
            sold += qty
            left -= qty
            assert move.stop >= before
            assert move.qty == plan.qty - sold
    assert state.done


@st.composite
def bar_streams(draw: st.DrawFn) -> tuple[int, int, list[Bar]]:
    base = 1_773_000_000 * NS
    a = base + draw(st.integers(min_value=0, max_value=600)) * NS // 2
    z = a + draw(st.integers(min_value=0, max_value=1200)) * NS
    starts = sorted(draw(st.lists(st.integers(min_value=-120, max_value=1500), max_size=60,
                                  unique=True)))
    bars = []
    for s in starts:
        lo = draw(st.integers(min_value=490, max_value=520)) * 10_000
        hi = lo + draw(st.integers(min_value=0, max_value=30)) * 10_000
        c = draw(st.integers(min_value=lo // 10_000, max_value=hi // 10_000)) * 10_000
        bars.append(Bar(base + s * NS, NS, lo, hi, lo, c, 100))
    return a, z, bars


@given(bar_streams())
def test_no_trigger_before_arming_or_after_disarming(case: tuple[int, int, list[Bar]]) -> None:
    a, z, bars = case
    spec = WatcherSpec(id="w", symbol="T", level=5_000_000, qty=1, params=StrategyParams())
    m = WatcherMachine(spec, a, z)
    for bar in bars:
        decision = m.on_fast_bar(bar)
        if isinstance(decision, Trigger):
            assert a <= decision.bar.start and decision.at <= z
            assert a < decision.at
    assert m.on_fast_bar(Bar(z, NS, 9_000_000, 9_000_000, 9_000_000, 9_000_000, 1)) is None


@given(st.integers(min_value=0, max_value=10**15) | st.integers(min_value=0, max_value=10**9))
def test_a_float_price_is_the_nearest_float_to_the_exact_decimal(micros: int) -> None:
    value = to_float(micros)
    assert value == float(to_decimal(micros))
    if micros <= 10**12:  # prices up to $1M: 13 digits, well inside a double's 15
        assert Decimal(repr(value)) == to_decimal(micros)  # the wire text reads back exactly


@given(bracket_specs(), st.lists(st.integers(min_value=-5, max_value=600_000), max_size=6))
def test_a_template_kept_across_quotes_prices_each_like_a_fresh_plan(
        case: tuple[WatcherSpec, Quote], asks: list[int]) -> None:
    spec, first = case
    template = PlanTemplate(spec, "ref")
    for quote in [first, *(Quote(0, None, None, c * 100, 100) for c in asks)]:
        assert template.at_quote(quote) == PlanTemplate(spec, "ref").at_quote(quote)
