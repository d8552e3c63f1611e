"""Position-management keys load into typed parameters, round-trip and show in the plan."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from breakoutd.cli.ctl import main
from breakoutd.config import load_watchlist_text
from breakoutd.config.codec import spec_from_json, spec_to_json
from breakoutd.config.plan import describe_watcher, field_changes
from breakoutd.core.params import Slices
from breakoutd.core.plans import OrderPlan, Quote, plan_order
from tests.factories import px

MANAGED = """\
presets:
  gapper:
    sessions: [rth]
    breakeven: 1.0
    exit_at: "15:55"
breakouts:
  - symbol: XYZ
    level: 5.00
    preset: gapper
    risk_usd: 100
    sl_below: 0.30
    tp_r: [1, 2, 3]
  - symbol: ABC
    level: 10.00
    qty: 90
    sl: 9.80
    tp_r: 2
    trail: 0.10
    trail_after: 0.5
    max_hold: 1h30m
    slices: {count: 3, every: 20}
"""


def test_the_keys_resolve_through_preset_and_breakout() -> None:
    watchlist = load_watchlist_text(MANAGED)
    xyz, abc = watchlist.watcher("XYZ@5.00"), watchlist.watcher("ABC@10.00")
    assert xyz is not None and abc is not None
    assert xyz.sl == px("4.70")  # sl_below 0.30 below the level
    assert (xyz.params.breakeven, xyz.params.exit_at) == (Decimal("1.0"), 15 * 3600 + 55 * 60)
    assert xyz.params.tp_r == (Decimal(1), Decimal(2), Decimal(3))
    assert abc.params.trail == px("0.10") and abc.params.trail_after == Decimal("0.5")
    assert abc.params.max_hold == 5400
    assert abc.params.slices == Slices(3, 20)
    assert abc.params.manages_position and xyz.params.manages_position


def test_tp_r_prices_the_take_profits_from_the_entry_on_the_tick() -> None:
    xyz = load_watchlist_text(MANAGED).watcher("XYZ@5.00")
    assert xyz is not None
    plan = plan_order(xyz, Quote(0, px("5.02"), 100, px("5.03"), 100), "ref")
    assert isinstance(plan, OrderPlan)
    # R = 5.03 - 4.70 = 0.33: 1R 5.36, 2R 5.69, 3R 6.02; qty floor(100 / 0.33) = 303 split evenly.
    assert [r.price for r in plan.rungs] == [px("5.36"), px("5.69"), px("6.02")]
    assert [r.qty for r in plan.rungs] == [101, 101, 101]


def test_the_codec_round_trips_every_key() -> None:
    for spec in load_watchlist_text(MANAGED).watchers:
        assert spec_from_json(spec_to_json(spec)) == spec


def test_plan_shows_the_rules_and_their_changes() -> None:
    watchlist = load_watchlist_text(MANAGED)
    abc = watchlist.watcher("ABC@10.00")
    assert abc is not None
    assert describe_watcher(abc) == (
        "ABC level 10.00 qty 90 sl 9.80 tp_r 2R trail 0.10 trail_after 0.5R max_hold 1h30m "
        "slices {count: 3, every: 20} premarket/rth")
    changed = load_watchlist_text(MANAGED.replace("trail: 0.10", "trail: 0.15"))
    new = changed.watcher("ABC@10.00")
    assert new is not None
    assert field_changes(abc, new) == ("trail 0.10 -> 0.15",)


def test_breakoutctl_plan_prints_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "w.yaml").write_text(MANAGED)
    assert main(["plan", "--var", str(tmp_path / "var"), str(tmp_path / "w.yaml")]) == 0
    out = capsys.readouterr().out
    assert ("XYZ level 5.00 risk_usd 100 sl 4.70 sl_below 0.30 tp_r [1R, 2R, 3R] breakeven 1R "
            "exit_at 15:55:00 rth") in out
