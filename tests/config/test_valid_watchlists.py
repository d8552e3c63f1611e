"""Valid watchlists become exact WatcherSpec values: presets, defaults and overrides resolved."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from breakoutd.config import ConfigError, Problem, load_watchlist_text, load_watchlists
from breakoutd.config.breakouts import rung_shares
from breakoutd.core.params import (
    EntryKind,
    FastSchedule,
    OnHalt,
    RiskLimits,
    Session,
    SourceRef,
    StrategyParams,
    WatcherSpec,
)

REPO = Path(__file__).resolve().parents[2]

CONTRACT = """\
presets:
  momo:
    sessions: [premarket, rth]
    not_before: "09:35"
    not_after: "11:30"
    entry: limit_at_ask
    bar: 1 min
    fast: true
    quote_age: 2.0
    max_bars: 30
    rth: false
    tif: DAY
    risk_usd: 50

defaults:
  preset: momo

breakouts:
  - symbol: AAPL
    level: 190.00
    qty: 100
    tp: 195
    sl: 187
  - id: tsla-pm
    symbol: TSLA
    level: 250.50
    qty: 10
    tp: [255, 260, 270]
    tp_split: [0.5, 0.25, 0.25]
    sl: 247
    fast: false
    enabled: true
"""


def test_contract_example_resolves_to_exact_specs() -> None:
    wl = load_watchlist_text(CONTRACT, "today.yaml")
    momo = StrategyParams(
        sessions=(Session.PREMARKET, Session.RTH), not_before=9 * 3600 + 35 * 60,
        not_after=11 * 3600 + 30 * 60, max_bars=30, risk_usd=Decimal(50),
    )
    assert wl.presets == {"momo": momo}
    assert wl.watchers == (
        WatcherSpec(id="AAPL@190.00", symbol="AAPL", level=190_000_000, params=momo, qty=100,
                    tp=(195_000_000,), sl=187_000_000),
        WatcherSpec(id="tsla-pm", symbol="TSLA", level=250_500_000,
                    params=replace(momo, fast=None), qty=10,
                    tp=(255_000_000, 260_000_000, 270_000_000),
                    tp_split=(Decimal("0.5"), Decimal("0.25"), Decimal("0.25")), sl=247_000_000),
    )
    assert [w.source for w in wl.watchers] == [SourceRef("today.yaml", 19), SourceRef("today.yaml", 24)]
    assert wl.files == ("today.yaml",)
    assert wl.risk == RiskLimits()


def test_layers_apply_in_order_builtin_preset_defaults_breakout() -> None:
    wl = load_watchlist_text("""\
presets:
  slow:
    bar: 5 min
    max_bars: 12
    quote_age: 3
    fast: {distance_start: 20, step: 15}
defaults:
  preset: slow
  quote_age: 1.5
  qty: 40
breakouts:
  - symbol: AAA
    level: 10
    qty: 25
  - symbol: BBB
    level: 20
    max_bars: null
    fast: {spread_end: 0}
    enabled: false
""")
    a, b = wl.watchers
    assert (a.params.bar_seconds, a.params.max_bars, a.params.quote_age) == (300, 12, Decimal("1.5"))
    assert a.params.fast == FastSchedule(distance_start=Decimal(20), step=15)
    assert (a.qty, b.qty) == (25, 40)
    assert b.params.max_bars is None
    # A fast mapping replaces the preset's wholesale, starting from the default schedule.
    assert b.params.fast == FastSchedule(spread_end=Decimal(0))
    assert (a.enabled, b.enabled) == (True, False)
    assert wl.presets["slow"].quote_age == Decimal(3)


def test_breakout_preset_overrides_the_files_default_preset() -> None:
    wl = load_watchlist_text("""\
presets:
  a: {entry: market, sessions: [rth]}
  b: {tif: gtc}
defaults: {preset: a}
breakouts:
  - {symbol: XX, level: 1, qty: 1}
  - {symbol: YY, level: 1, qty: 1, preset: b}
  - {symbol: ZZ, level: 1, qty: 1, preset: null}
""")
    params = {w.symbol: w.params for w in wl.watchers}
    assert params["XX"].entry is EntryKind.MARKET
    assert (params["YY"].entry, params["YY"].tif) == (EntryKind.LIMIT_AT_ASK, "GTC")
    assert params["ZZ"] == StrategyParams()


@pytest.mark.parametrize(("level", "expected_id", "micros"), [
    ("190", "AAPL@190.00", 190_000_000),
    ("13.5", "AAPL@13.50", 13_500_000),
    ("49.02", "AAPL@49.02", 49_020_000),
    ("0.8512", "AAPL@0.8512", 851_200),
    ("1234.567891", "AAPL@1234.567891", 1_234_567_891),
])
def test_levels_are_exact_and_name_the_default_id(level: str, expected_id: str, micros: int) -> None:
    wl = load_watchlist_text(f"breakouts:\n  - symbol: AAPL\n    level: {level}\n    qty: 1\n")
    (spec,) = wl.watchers
    assert (spec.id, spec.level) == (expected_id, micros)


def test_text_fields_keep_what_is_written() -> None:
    wl = load_watchlist_text("""\
breakouts:
  - symbol: ON
    level: 70.25
    qty: 10
    not_before: 09:35
    not_after: 10:00:30
    sessions: [rth, premarket]
    tif: ioc
    bar: 15min
    rth: no
""")
    (spec,) = wl.watchers
    assert spec.symbol == "ON"
    assert (spec.params.not_before, spec.params.not_after) == (34_500, 36_030)
    assert spec.params.sessions == (Session.PREMARKET, Session.RTH)
    assert (spec.params.tif, spec.params.bar_seconds, spec.params.rth) == ("IOC", 900, False)


def test_risk_sizing_needs_no_qty_and_qty_caps_it() -> None:
    wl = load_watchlist_text("""\
presets:
  r: {risk_usd: 75.5}
defaults: {preset: r}
breakouts:
  - {symbol: AAA, level: 10, sl: 9.5}
  - {symbol: BBB, level: 10, sl: 9.5, qty: 100}
risk:
  max_positions: 3
  max_daily_loss_usd: 500
  max_notional_usd: null
  max_entries_per_day: 8
""")
    a, b = wl.watchers
    assert (a.qty, b.qty, a.params.risk_usd) == (None, 100, Decimal("75.5"))
    assert wl.risk == RiskLimits(max_positions=3, max_daily_loss_usd=Decimal(500),
                                 max_entries_per_day=8)


def test_presets_risk_and_breakouts_can_live_in_different_files(tmp_path: Path) -> None:
    (tmp_path / "presets.yaml").write_text("presets:\n  p: {fast: false}\nrisk: {max_positions: 2}\n")
    (tmp_path / "today.yml").write_text("defaults: {preset: p}\nbreakouts:\n  - {symbol: A, level: 2, qty: 1}\n")
    (tmp_path / ".#today.yaml").write_text("not: [valid")  # an editor lock file is skipped
    (tmp_path / "notes.txt").write_text("not: [valid")
    wl = load_watchlists([tmp_path])
    assert wl.files == (str(tmp_path / "presets.yaml"), str(tmp_path / "today.yml"))
    assert wl.watchers[0].params.fast is None
    assert wl.risk.max_positions == 2


def test_a_shared_preset_sits_under_each_files_own_defaults(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "presets:\n  p: {bar: 5 min, max_bars: 12}\ndefaults: {preset: p, max_bars: 3}\n"
        "breakouts:\n  - {symbol: AAA, level: 10, qty: 1}\n"
        "  - {symbol: BBB, level: 10, qty: 1, max_bars: null}\n")
    (tmp_path / "b.yaml").write_text(
        "defaults: {preset: p}\nbreakouts:\n  - {symbol: CCC, level: 10, qty: 1}\n"
        "  - {symbol: DDD, level: 10, qty: 1, preset: null}\n")
    params = {w.symbol: w.params for w in load_watchlists([tmp_path]).watchers}
    assert {s: (p.bar_seconds, p.max_bars) for s, p in params.items()} == {
        "AAA": (300, 3), "BBB": (300, None), "CCC": (300, 12), "DDD": (60, None)}


def test_empty_files_and_sections_are_an_empty_watchlist(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("# nothing yet\n")
    (tmp_path / "b.yaml").write_text("presets:\ndefaults:\nbreakouts:\n")
    wl = load_watchlists([tmp_path])
    assert (wl.watchers, dict(wl.presets), len(wl.files)) == ((), {}, 2)


def test_example_watchlists_have_what_the_demo_needs() -> None:
    wl = load_watchlists([REPO / "watchlists"])
    by_symbol = {w.symbol: w for w in wl.watchers if w.enabled}
    assert {s: w.level for s, w in by_symbol.items()} == {
        "DEMO": 10_000_000, "ACME": 4_500_000, "PENNY": 850_000, "GAPR": 20_000_000}
    assert all(w.tp and w.sl is not None for w in wl.watchers)
    assert [w.symbol for w in wl.watchers if w.is_ladder] == ["ACME"]
    assert [w.symbol for w in wl.watchers if not w.enabled] == ["DEMO"]
    assert [w.symbol for w in wl.watchers if w.params.max_chase is not None] == ["GAPR"]
    allowed = {Session.PREMARKET, Session.RTH}
    assert all(set(w.params.sessions) <= allowed for w in wl.watchers)
    assert all(set(p.sessions) <= allowed for p in wl.presets.values())


def test_problem_text_names_file_line_and_path() -> None:
    assert str(Problem("w.yaml", 14, "breakouts[2].sl", "bad")) == "w.yaml:14: breakouts[2].sl: bad"
    assert str(Problem("w.yaml", None, "", "file is 2 bytes")) == "w.yaml: file is 2 bytes"


def test_config_error_carries_problems_sorted_by_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("breakouts:\n  - {symbol: A, level: 0, qty: 1}\n")
    (tmp_path / "a.yaml").write_text("x: 1\nbreakouts:\n  - {symbol: a, level: 1, qty: 1}\n")
    with pytest.raises(ConfigError) as err:
        load_watchlists([tmp_path])
    where = [(Path(p.file).name, p.line) for p in err.value.problems]
    assert where == [("a.yaml", 1), ("a.yaml", 3), ("b.yaml", 2)]
    assert str(err.value).count("\n") == 2


@pytest.mark.parametrize(("qty", "parts", "shares"), [
    (3, (), (1, 1, 1)),
    (10, (), (4, 3, 3)),
    (10, ("0.5", "0.25", "0.25"), (6, 2, 2)),
    (2, ("0.5", "0.5"), (1, 1)),
])
def test_ladder_rungs_share_a_fixed_qty(qty: int, parts: tuple[str, ...], shares: tuple[int, ...]) -> None:
    assert rung_shares(qty, tuple(Decimal(p) for p in parts), len(shares)) == shares
    split = f"\n    tp_split: [{', '.join(parts)}]" if parts else ""
    rungs = ", ".join(str(11 + i) for i in range(len(shares)))
    wl = load_watchlist_text(
        f"breakouts:\n  - symbol: A\n    level: 10\n    qty: {qty}\n    tp: [{rungs}]\n    sl: 9{split}\n")
    assert wl.watchers[0].is_ladder


def test_max_chase_is_a_price_distance_layered_like_other_keys() -> None:
    wl = load_watchlist_text("""\
presets:
  c: {max_chase: 0.10}
defaults: {preset: c}
breakouts:
  - {symbol: AAA, level: 10, qty: 1}
  - {symbol: BBB, level: 10, qty: 1, max_chase: 0}
  - {symbol: CCC, level: 0.85, qty: 1, max_chase: 0.005}
  - {symbol: DDD, level: 10, qty: 1, max_chase: null}
""")
    chases = {w.symbol: w.params.max_chase for w in wl.watchers}
    assert chases == {"AAA": 100_000, "BBB": 0, "CCC": 5_000, "DDD": None}
    assert wl.presets["c"].max_chase == 100_000
    assert StrategyParams().max_chase is None  # default: no limit


def test_a_market_entry_is_valid_with_sessions_rth_only() -> None:
    wl = load_watchlist_text("""\
breakouts:
  - {symbol: AAA, level: 10, qty: 1, entry: market, sessions: [rth]}
""")
    assert wl.watchers[0].params.entry is EntryKind.MARKET


def test_risk_halt_keys_and_their_defaults() -> None:
    wl = load_watchlist_text("risk:\n  max_consecutive_losses: 3\n  on_halt: flatten\n")
    assert wl.risk == RiskLimits(max_consecutive_losses=3, on_halt=OnHalt.FLATTEN)
    default = load_watchlist_text("risk:\n  max_positions: 2\n  max_consecutive_losses: null\n")
    assert (default.risk.max_consecutive_losses, default.risk.on_halt) == (None, OnHalt.HOLD)
