"""The synthetic day: deterministic, realistic in shape, breaks every level in RTH."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest

from breakoutd.core.bars import NS
from breakoutd.core.params import FastSchedule
from breakoutd.core.prices import to_micros
from breakoutd.core.rules import fast_thresholds
from breakoutd.tape import SymbolTape, format_tape, parse_tape, synthetic_tape
from breakoutd.tape.model import EXCHANGE_TZ

DAY = dt.date(2024, 3, 5)
LEVELS = {"PENY": ["0.55"], "MIDA": ["4.10", "4.12", "5.00"], "BAC": ["14.25"],
          "SPY": ["501.50", "503"]}


def at(hour: int, minute: int, day: dt.date = DAY) -> int:
    return int(dt.datetime.combine(day, dt.time(hour, minute), EXCHANGE_TZ).timestamp()) * NS


RTH = (at(9, 30), at(16, 0))


def levels_of(raw: dict[str, list[str]]) -> dict[str, list[Decimal]]:
    return {sym: [Decimal(v) for v in values] for sym, values in raw.items()}


def first_trigger(sym: SymbolTape, level: int) -> tuple[str, int] | None:
    """(kind, instant) of the first close-rule (1 min) or fast-rule trigger, armed all day."""
    trade = np.flatnonzero(sym.has_trade)
    t, high, low, close = sym.time[trade], sym.high[trade], sym.low[trade], sym.close[trade]
    th = fast_thresholds(FastSchedule(), level)
    k = (t // NS) % 60 // th.step
    fast = (high >= level + np.array(th.distance)[k]) & (close >= level) & (
        high - low <= np.array(th.spread)[k])
    minute = t // (60 * NS)
    last_of_minute = np.r_[minute[1:] != minute[:-1], True]
    closes = last_of_minute & (close >= level)
    candidates = []
    if fast.any():
        candidates.append((int(t[fast.argmax()]) + NS, 0, "fast"))
    if closes.any():
        candidates.append((int(minute[closes.argmax()] + 1) * 60 * NS, 1, "close"))
    if not candidates:
        return None
    when, _, kind = min(candidates)  # at the same instant the fast rule goes first
    return kind, when


@pytest.fixture(scope="module")
def mixed() -> dict[int, object]:
    return {seed: synthetic_tape(seed, list(LEVELS), DAY, levels_of(LEVELS)) for seed in (1, 2, 3)}


def test_same_seed_same_tape_other_seed_other_tape(mixed):
    again = synthetic_tape(1, list(LEVELS), DAY, levels_of(LEVELS))
    assert again.symbols == mixed[1].symbols
    assert mixed[2].symbols["BAC"] != mixed[1].symbols["BAC"]


def test_a_symbol_does_not_change_when_others_are_added():
    alone = synthetic_tape(5, ["BAC"], DAY, {"BAC": [Decimal("14.25")]})
    with_others = synthetic_tape(5, ["AAA", "BAC", "ZZZ"], DAY, {"BAC": [Decimal("14.25")]})
    assert with_others.symbols["BAC"] == alone.symbols["BAC"]


def test_rows_are_sorted_quoted_and_consistent(mixed):
    for tape in mixed.values():
        for sym in tape.symbols.values():
            assert (np.diff(sym.time) > 0).all()
            assert sym.has_bid.all() and sym.has_ask.all()
            assert (sym.bid < sym.ask).all() and (sym.bid_size > 0).all()
            assert (sym.ask_size % 100 == 0).all()
            tr = sym.has_trade
            assert (sym.low[tr] <= np.minimum(sym.open[tr], sym.close[tr])).all()
            assert (sym.high[tr] >= np.maximum(sym.open[tr], sym.close[tr])).all()
            assert (sym.volume[tr] > 0).all() and (sym.open[~tr] == 0).all()


def test_every_price_is_on_its_tick(mixed):
    for tape in mixed.values():
        for sym in tape.symbols.values():
            for name in ("open", "high", "low", "close", "bid", "ask"):
                prices = getattr(sym, name)
                prices = prices[prices != 0]
                tick = np.where(prices >= 1_000_000, 10_000, 100)
                assert (prices % tick == 0).all(), (sym.symbol, name)
    assert (mixed[1].symbols["PENY"].bid < 1_000_000).any()  # sub-dollar ticks are used


def test_the_file_it_makes_passes_the_reader(mixed):
    tape = mixed[2]
    assert parse_tape(format_tape(tape)).symbols == tape.symbols


def test_a_day_looks_like_the_recorded_ones(mixed):
    sym = mixed[3].symbols["BAC"]
    assert 20_000 <= len(sym) <= 30_000
    assert (sym.time[0], sym.time[-1]) == (at(4, 0), at(20, 0))
    in_rth = (sym.time >= RTH[0]) & (sym.time < RTH[1])
    premarket = sym.time < RTH[0]
    rth_per_hour = in_rth.sum() / 6.5
    assert premarket.sum() / 5.5 < rth_per_hour / 5  # sparse before the open
    assert 0.5 < sym.has_trade[in_rth].mean() < 0.8
    spread = (sym.ask - sym.bid) // 10_000
    assert np.median(spread[in_rth]) <= 2 < np.median(spread[premarket])


def test_density_scales_the_rows():
    thin = synthetic_tape(4, ["BAC"], DAY, density=0.5).rows
    full = synthetic_tape(4, ["BAC"], DAY).rows
    assert 0.4 < thin / full < 0.65


def assert_levels_break_in_rth(tape, levels: dict[str, list[str]]) -> None:
    """Each level is first reached, and first triggers, in RTH, coming from below."""
    for symbol, raw in levels.items():
        sym = tape.symbols[symbol]
        trades = np.flatnonzero(sym.has_trade)
        for text in raw:
            level = to_micros(text)
            kind, when = first_trigger(sym, level)
            assert RTH[0] < when <= RTH[1], (symbol, text)
            reached = trades[sym.high[trades] >= level][0]
            assert RTH[0] <= sym.time[reached] < when
            # It came from below: the trades just before were close under the level.
            before = sym.close[trades[trades < reached]][-20:]
            assert (before < level).all() and (before >= level * 0.98).any()


def test_each_level_is_first_reached_and_triggered_during_regular_hours(mixed):
    for tape in mixed.values():
        assert_levels_break_in_rth(tape, LEVELS)


def test_levels_in_every_price_regime_and_crowded_levels_break_in_rth():
    levels = {"PENY": ["0.0150", "0.55", "0.56"], "ONE": ["0.99", "1.00", "1.01"],
              "BIG": ["900000"], "MANY": [str(10 + k / 4) for k in range(20)]}
    for seed in (0, 1):
        tape = synthetic_tape(seed, list(levels), DAY, levels_of(levels))
        assert_levels_break_in_rth(tape, levels)


@pytest.mark.parametrize("style, kind", [("fast", "fast"), ("grind", "close")])
def test_the_breakout_style_decides_which_rule_fires(style, kind):
    tape = synthetic_tape(9, list(LEVELS), DAY, levels_of(LEVELS), style=style)
    for symbol, raw in LEVELS.items():
        # Levels a breakout of a lower level already went through do not count.
        assert first_trigger(tape.symbols[symbol], to_micros(raw[0]))[0] == kind


def test_a_spike_is_one_second_far_above_with_a_small_range():
    level = to_micros("14.25")
    sym = synthetic_tape(9, ["BAC"], DAY, {"BAC": [Decimal("14.25")]}, style="fast").symbols["BAC"]
    kind, when = first_trigger(sym, level)
    i = int(np.searchsorted(sym.time, when - NS))
    assert sym.high[i] >= level + 150_000 and sym.high[i] - sym.low[i] <= 40_000
    assert sym.high[i - 1] < level  # the second before was still under the level


def test_a_grind_closes_the_minute_above_the_level_without_spiking():
    level = to_micros("14.25")
    sym = synthetic_tape(9, ["BAC"], DAY, {"BAC": [Decimal("14.25")]}, style="grind").symbols["BAC"]
    kind, when = first_trigger(sym, level)
    minute = (sym.time >= when - 60 * NS) & (sym.time < when) & sym.has_trade
    assert sym.close[minute][-1] > level
    assert sym.high[minute].max() < level + 50_000


def test_breakouts_are_spread_over_the_day_at_seeded_times():
    levels = {"BAC": [Decimal("14.25"), Decimal("14.50"), Decimal("14.75"), Decimal("15.00")]}
    times = []
    for seed in (1, 2):
        sym = synthetic_tape(seed, ["BAC"], DAY, levels).symbols["BAC"]
        times.append([first_trigger(sym, to_micros(v))[1] for v in levels["BAC"]])
    for when in times:
        assert when == sorted(when) and when[-1] - when[0] > 2 * 3600 * NS
    assert times[0] != times[1]


def test_base_price_is_where_the_day_starts():
    tape = synthetic_tape(3, ["BAC"], DAY, {"BAC": [Decimal("15")]},
                          base_prices={"BAC": Decimal("14.20")})
    first = tape.symbols["BAC"]
    assert abs((first.bid[0] + first.ask[0]) // 2 - 14_200_000) <= 100_000


def test_without_levels_the_seed_picks_a_price_regime():
    tape = synthetic_tape(8, [f"S{k}" for k in range(30)], DAY)
    starts = np.array([int(s.bid[0]) for s in tape.symbols.values()])
    assert (starts < 1_000_000).any() and ((starts > 1_000_000) & (starts < 10_000_000)).any()
    assert (starts > 100_000_000).any()


def test_start_and_end_bound_the_rows():
    tape = synthetic_tape(1, ["BAC"], DAY, {"BAC": [Decimal("14.25")]}, start=dt.time(9, 0),
                          end=dt.time(16, 30))
    sym = tape.symbols["BAC"]
    assert (sym.time[0], sym.time[-1]) == (at(9, 0), at(16, 30))
    assert first_trigger(sym, 14_250_000) is not None


@pytest.mark.parametrize("kwargs, words", [
    ({"levels": {"BAC": [Decimal("14")]}, "base_prices": {"BAC": Decimal("14.5")}}, "below the lowest"),
    ({"levels": {"XYZ": [Decimal("14")]}}, "not asked for"),
    ({"levels": {"BAC": [Decimal("14")]}, "end": dt.time(12, 0)}, "must fall inside"),
    ({"levels": {"BAC": [Decimal("14"), Decimal("15"), Decimal("16")]},
      "breakouts_between": (dt.time(9, 30), dt.time(9, 30, 3))}, "too short for 3 levels"),
    ({"style": "sideways"}, "style must be"),
    ({"levels": {"BAC": [Decimal("950000")]}}, "at most 900000"),
    ({"levels": {"BAC": [Decimal("0")]}}, "above 0"),
    ({"density": 0}, "density"),
])
def test_bad_arguments_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        synthetic_tape(1, ["BAC"], DAY, **kwargs)


def test_a_lower_case_symbol_is_refused():
    with pytest.raises(ValueError, match="upper-case"):
        synthetic_tape(1, ["bac"], DAY)


def test_breakouts_can_be_packed_into_a_short_window():
    window = (dt.time(9, 30, 10), dt.time(9, 31, 20))
    levels = {"BAC": ["14.25", "14.50"], "SPY": ["501.50"], "PENY": ["0.55"]}
    for seed in (1, 2, 3):
        tape = synthetic_tape(seed, list(levels), DAY, levels_of(levels), breakouts_between=window)
        for symbol, raw in levels.items():
            for text in raw:
                kind, when = first_trigger(tape.symbols[symbol], to_micros(text))
                assert at(9, 30) + 10 * NS <= when <= at(9, 31) + 20 * NS, (seed, symbol, text)
