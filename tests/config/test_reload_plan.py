"""The reload plan by watcher id, the applied-config snapshot, and ``breakoutctl plan``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from breakoutd.cli.ctl import main
from breakoutd.config import (
    ConfigError,
    field_changes,
    in_force,
    load_watchlist_text,
    load_watchlists,
    plan_reload,
    read_snapshot,
    snapshot_path,
    write_snapshot,
)
from breakoutd.config.snapshot import snapshot_json
from breakoutd.core.params import OnHalt, RiskLimits, WatcherSpec

REPO = Path(__file__).resolve().parents[2]

BASE = """\
presets:
  p: {max_bars: 30}
defaults: {preset: p}
breakouts:
  - {symbol: AAA, level: 10.00, qty: 100, tp: 10.50, sl: 9.80}
  - {symbol: BBB, level: 4.50, qty: 300, tp: [4.60, 4.75], sl: 4.40}
  - {symbol: CCC, level: 0.85, qty: 2000}
"""


def _ids(specs: tuple[WatcherSpec, ...]) -> list[str]:
    return [s.id for s in specs]


def test_first_load_adds_everything() -> None:
    new = load_watchlist_text(BASE)
    plan = plan_reload(None, new)
    assert _ids(plan.added) == ["AAA@10.00", "BBB@4.50", "CCC@0.85"]
    assert (plan.removed, plan.changed, plan.unchanged) == ((), (), ())
    assert not plan.is_empty()


def test_what_failed_to_apply_keeps_the_old_watcher_or_stays_out() -> None:
    old = load_watchlist_text(BASE)
    new = load_watchlist_text(
        BASE.replace("sl: 9.80", "sl: 9.75").replace("qty: 300", "qty: 301")
        .replace("  - {symbol: CCC, level: 0.85, qty: 2000}\n", "")
        + "  - {symbol: DDD, level: 20, qty: 5}\n  - {symbol: EEE, level: 3, qty: 5}\n"
    )
    # AAA's change, CCC's removal and DDD's add failed; BBB's change and EEE's add applied.
    applied = in_force(old, new, {"AAA@10.00", "CCC@0.85", "DDD@20.00"})
    by_id = {w.id: w for w in applied.watchers}
    assert sorted(by_id) == ["AAA@10.00", "BBB@4.50", "CCC@0.85", "EEE@3.00"]
    assert by_id["AAA@10.00"].sl == old.watcher("AAA@10.00").sl  # type: ignore[union-attr]
    assert by_id["BBB@4.50"].qty == 301
    assert applied.digest != new.digest and applied.digest != old.digest
    # The next reload of the same files plans the failed ones again, and only them.
    again = plan_reload(applied, new)
    assert (_ids(again.added), _ids(again.removed)) == (["DDD@20.00"], ["CCC@0.85"])
    assert [b.id for _, b in again.changed] == ["AAA@10.00"]
    assert in_force(old, new, set()) is new


def test_add_remove_change_and_unchanged_by_id() -> None:
    old = load_watchlist_text(BASE)
    new = load_watchlist_text(
        BASE.replace("sl: 9.80", "sl: 9.75")
        .replace("  - {symbol: CCC, level: 0.85, qty: 2000}\n", "")
        + "  - {symbol: DDD, level: 20, qty: 5}\n"
    )
    plan = plan_reload(old, new)
    assert _ids(plan.added) == ["DDD@20.00"]
    assert _ids(plan.removed) == ["CCC@0.85"]
    assert [(a.id, b.id) for a, b in plan.changed] == [("AAA@10.00", "AAA@10.00")]
    assert field_changes(*plan.changed[0]) == ("sl 9.80 -> 9.75",)
    assert plan.unchanged == ("BBB@4.50",)
    assert plan.summary() == "1 added, 1 removed, 1 changed, 1 unchanged"


def test_a_preset_change_changes_every_watcher_using_it() -> None:
    old = load_watchlist_text(BASE)
    new = load_watchlist_text(BASE.replace("max_bars: 30", "max_bars: 20"))
    plan = plan_reload(old, new)
    assert len(plan.changed) == 3
    assert {field_changes(a, b) for a, b in plan.changed} == {("max_bars 30 -> 20",)}
    assert old.digest != new.digest


def test_comments_layout_and_spelling_change_nothing() -> None:
    old = load_watchlist_text(BASE)
    moved = """\
# reordered, reformatted, commented: the same configuration
breakouts:
  - symbol: CCC
    qty: 2000
    level: 0.8500
  - {symbol: BBB, level: 4.5, qty: 300, tp: [4.6, 4.75], sl: 4.4}
  - {symbol: AAA, level: 10, qty: 100, tp: 10.5, sl: 9.8}   # note
defaults: {preset: p}
presets:
  p: {max_bars: 30}
"""
    new = load_watchlist_text(moved, "other.yaml")
    assert plan_reload(old, new).is_empty()
    assert new.digest == old.digest
    assert new.watchers[0].source != old.watchers[0].source


def test_changing_a_level_without_an_id_is_a_new_watcher() -> None:
    old = load_watchlist_text(BASE)
    plan = plan_reload(old, load_watchlist_text(BASE.replace("level: 10.00", "level: 10.10")))
    assert (_ids(plan.added), _ids(plan.removed)) == (["AAA@10.10"], ["AAA@10.00"])


def test_snapshot_round_trips_the_configuration(tmp_path: Path) -> None:
    wl = load_watchlists([REPO / "watchlists"])
    path = snapshot_path(tmp_path)
    assert read_snapshot(path) is None
    write_snapshot(path, wl)
    back = read_snapshot(path)
    assert back is not None
    assert (back.watchers, dict(back.presets), back.risk, back.files, back.digest) == (
        wl.watchers, dict(wl.presets), wl.risk, wl.files, wl.digest)
    assert [w.source for w in back.watchers] == [w.source for w in wl.watchers]
    assert plan_reload(back, wl).is_empty()
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_a_corrupt_snapshot_is_a_problem(tmp_path: Path) -> None:
    path = snapshot_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"format": "breakoutd.config/1", "watchers": [{"id": 1}]}')
    with pytest.raises(ConfigError, match="not a config snapshot"):
        read_snapshot(path)


def _watchlists(tmp_path: Path) -> Path:
    copy = tmp_path / "watchlists"
    shutil.copytree(REPO / "watchlists", copy)
    return copy


def test_plan_command_without_snapshot_lists_every_watcher_as_new(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--var", str(tmp_path / "var"), str(REPO / "watchlists")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("no applied configuration at ")
    assert "+ DEMO@10.00: DEMO level 10.00 qty 100 tp 10.50 sl 9.80 premarket/rth" in out
    assert out[-1] == "plan: 5 added, 0 removed, 0 changed, 0 unchanged"


def test_plan_command_against_the_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lists, var = _watchlists(tmp_path), tmp_path / "var"
    write_snapshot(snapshot_path(var), load_watchlists([lists]))
    monkeypatch.delenv("BREAKOUTD_WATCHLISTS", raising=False)
    monkeypatch.delenv("BREAKOUTD_VAR", raising=False)
    monkeypatch.chdir(tmp_path)  # default paths: ./watchlists and ./var
    assert main(["plan"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "nothing to change: 0 added, 0 removed, 0 changed, 5 unchanged")
    example = lists / "example.yaml"
    example.write_text(example.read_text().replace("sl: 9.80", "sl: 9.70"))
    assert main(["plan"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "~ DEMO@10.00: sl 9.80 -> 9.70" in out
    assert out[-1] == "plan: 0 added, 0 removed, 1 changed, 4 unchanged"


def test_plan_command_with_a_bad_watchlist_or_snapshot_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lists, var = _watchlists(tmp_path), tmp_path / "var"
    snapshot_path(var).parent.mkdir(parents=True)
    snapshot_path(var).write_text("{")
    assert main(["plan", "--var", str(var), str(lists)]) == 1
    assert "not a config snapshot" in capsys.readouterr().out
    (lists / "broken.yaml").write_text("breakouts: [{symbol: X}]\n")
    assert main(["plan", "--var", str(var), str(lists)]) == 1
    assert capsys.readouterr().out == f"{lists / 'broken.yaml'}:1: breakouts[0]: level is required\n"


def test_snapshot_keeps_max_chase_and_the_halt_keys(tmp_path: Path) -> None:
    wl = load_watchlist_text(BASE.replace("max_bars: 30", "max_bars: 30, max_chase: 0.005")
                             + "risk: {max_consecutive_losses: 2, on_halt: flatten}\n")
    path = snapshot_path(tmp_path)
    write_snapshot(path, wl)
    back = read_snapshot(path)
    assert back is not None
    assert {w.params.max_chase for w in back.watchers} == {5_000}
    assert (back.risk.max_consecutive_losses, back.risk.on_halt) == (2, OnHalt.FLATTEN)
    assert back.digest == wl.digest


def test_a_snapshot_written_before_the_new_keys_reads_as_their_defaults(tmp_path: Path) -> None:
    wl = load_watchlist_text(BASE)
    data = json.loads(snapshot_json(wl))
    for params in [*data["presets"].values(), *(w["params"] for w in data["watchers"])]:
        del params["max_chase"]
    del data["risk"]["max_consecutive_losses"], data["risk"]["on_halt"]
    path = snapshot_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    back = read_snapshot(path)
    assert back is not None and plan_reload(back, wl).is_empty()
    assert back.risk == RiskLimits()


def test_plan_command_shows_max_chase_and_risk_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lists, var = _watchlists(tmp_path), tmp_path / "var"
    assert main(["plan", "--var", str(var), str(lists)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert ("+ risk: max_positions 5, max_daily_loss_usd 1000, max_notional_usd 50000, "
            "max_entries_per_day 10, max_consecutive_losses 3, on_halt hold") in out
    write_snapshot(snapshot_path(var), load_watchlists([lists]))
    presets, example = lists / "presets.yaml", lists / "example.yaml"
    presets.write_text(presets.read_text().replace("on_halt: hold", "on_halt: flatten")
                       .replace("max_consecutive_losses: 3", "max_consecutive_losses: null"))
    example.write_text(example.read_text().replace("    sl: 9.80\n", "    sl: 9.80\n    max_chase: 0.05\n"))
    assert main(["plan", "--var", str(var), str(lists)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "~ DEMO@10.00: max_chase none -> 0.05" in out
    assert "~ risk: max_consecutive_losses 3 -> none; on_halt hold -> flatten" in out
    assert out[-1] == "plan: 0 added, 0 removed, 1 changed, 4 unchanged"
    (var / "state" / "config.json").unlink()
    assert main(["plan", "--var", str(var), str(lists)]) == 0
    assert ("+ DEMO@10.00: DEMO level 10.00 qty 100 tp 10.50 sl 9.80 max_chase 0.05 premarket/rth"
            in capsys.readouterr().out.splitlines())
