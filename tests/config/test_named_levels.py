"""Named levels and rule variants load into typed specs, and survive the snapshot codec."""

from __future__ import annotations

from decimal import Decimal

from breakoutd.config import load_watchlist_text
from breakoutd.config.codec import spec_from_json, spec_to_json
from breakoutd.core.params import LevelName, Rule, StrategyParams
from breakoutd.core.prices import to_micros

GAPPER = """\
presets:
  gapper:
    sessions: [rth]
    rule: momentum
    volume_mult: 2.5
    volume_lookback: 10
breakouts:
  - symbol: XYZ
    level: premarket_high
    level_offset: 0.02
    preset: gapper
    qty: 100
  - symbol: XYZ
    level: opening_range_high
    opening_range: 15
    rule: retest
    retest_within: 0.03
    qty: 100
  - symbol: XYZ
    level: prior_close
    level_offset: -0.10
    qty: 100
"""


def test_named_levels_and_variants_load() -> None:
    ws = {w.id: w for w in load_watchlist_text(GAPPER, "g.yaml").watchers}
    assert sorted(ws) == ["XYZ@opening_range_high", "XYZ@premarket_high", "XYZ@prior_close"]
    pm = ws["XYZ@premarket_high"]
    assert (pm.level_name, pm.level) == (LevelName.PREMARKET_HIGH, 0)
    assert pm.params.rule is Rule.MOMENTUM and pm.params.volume_mult == Decimal("2.5")
    assert (pm.params.volume_lookback, pm.params.level_offset) == (10, to_micros("0.02"))
    orh = ws["XYZ@opening_range_high"]
    assert (orh.params.rule, orh.params.opening_range, orh.params.retest_within) == (
        Rule.RETEST, 15, to_micros("0.03"))
    assert ws["XYZ@prior_close"].params.level_offset == -to_micros("0.10")
    for spec in ws.values():
        assert spec_from_json(spec_to_json(spec)) == spec


def test_a_plain_watchlist_snapshot_has_none_of_the_new_keys() -> None:
    spec = load_watchlist_text("breakouts:\n  - symbol: A\n    level: 5\n    qty: 1\n").watchers[0]
    out = spec_to_json(spec)
    assert "level_name" not in out and "rule" not in out["params"]
    assert spec.params == StrategyParams()
