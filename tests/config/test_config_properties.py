"""Invariants of loading under generated watchlists (hypothesis, derandomized)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from breakoutd.config import load_watchlist_text, plan_reload
from breakoutd.config.snapshot import parse_snapshot, snapshot_json
from breakoutd.core.prices import tick_size, to_micros

SETTINGS = settings(derandomize=True, max_examples=60, deadline=None, database=None)
SYMBOLS = ("AAPL", "TSLA", "BRK.B", "ON", "DEMO", "X")


def _text(micros: int, extra_zeros: int) -> str:
    """A price as an operator might write it: 190, 190.0 or 190.000."""
    whole, frac = divmod(micros, 1_000_000)
    digits = f"{frac:06d}".rstrip("0")
    digits += "0" * extra_zeros
    return f"{whole}.{digits}" if digits else str(whole)


@st.composite
def breakouts(draw: st.DrawFn, index: int) -> str:
    sub_dollar = draw(st.booleans())
    tick = 100 if sub_dollar else 10_000
    low, high = (400, 9_000) if sub_dollar else (200, 50_000)
    level = draw(st.integers(low, high)) * tick + draw(st.sampled_from([0, 1, tick // 2]))
    zeros = draw(st.integers(0, 2))
    # The stop stays above 0.03 so that its stop-limit (sl - 0.02) is a price.
    below = draw(st.integers(1, min(40, (level - level % tick - 30_000) // tick)))
    sl = level - level % tick - below * tick
    rungs = draw(st.lists(st.integers(1, 40), min_size=0, max_size=3, unique=True).map(sorted))
    tp = [level - level % tick + r * tick for r in rungs]
    lines = [f"  - symbol: {draw(st.sampled_from(SYMBOLS))}",
             f"    id: w{index}",
             f"    level: {_text(level, zeros)}",
             f"    qty: {draw(st.integers(len(tp) or 1, 5000))}"]
    if bool(tp) or draw(st.booleans()):
        lines.append(f"    sl: {_text(sl, zeros)}")
    if tp:
        lines.append(f"    tp: [{', '.join(_text(t, zeros) for t in tp)}]")
    if draw(st.booleans()):
        lines.append(f"    fast: {draw(st.sampled_from(['true', 'false', '{step: 5}']))}")
    if draw(st.booleans()):
        lines.append("    enabled: false")
    return "\n".join(lines)


@st.composite
def watchlists(draw: st.DrawFn) -> str:
    count = draw(st.integers(0, 6))
    preset = draw(st.sampled_from(["{}", "{max_bars: 5}", "{bar: 5 min, quote_age: 1.5}",
                                   "{sessions: [rth], rth: true, not_before: '09:45'}"]))
    body = "\n".join(draw(breakouts(i)) for i in range(count))
    return f"presets:\n  p: {preset}\ndefaults:\n  preset: p\nbreakouts:\n{body}\n"


@SETTINGS
@given(watchlists())
def test_loading_the_same_text_twice_is_equal(text: str) -> None:
    first, second = load_watchlist_text(text), load_watchlist_text(text)
    assert first == second
    assert first.digest == second.digest


@SETTINGS
@given(watchlists())
def test_a_reload_of_the_same_configuration_changes_nothing(text: str) -> None:
    wl = load_watchlist_text(text)
    plan = plan_reload(wl, load_watchlist_text("# edited comment\n" + text, "moved.yaml"))
    assert plan.is_empty()
    assert plan.unchanged == tuple(w.id for w in wl.watchers)


@SETTINGS
@given(watchlists())
def test_resolved_prices_are_exact_and_ordered(text: str) -> None:
    for spec in load_watchlist_text(text).watchers:
        assert spec.id.startswith("w")
        if spec.sl is not None:
            assert spec.sl < spec.level and spec.sl % tick_size(spec.sl) == 0
        assert all(spec.level < t for t in spec.tp)
        assert list(spec.tp) == sorted(set(spec.tp))
        written = text.split(f"id: {spec.id}\n    level: ")[1].split("\n")[0]
        assert spec.level == to_micros(Decimal(written))


@SETTINGS
@given(watchlists())
def test_the_snapshot_round_trips(text: str) -> None:
    wl = load_watchlist_text(text)
    assert parse_snapshot(snapshot_json(wl)) == wl
