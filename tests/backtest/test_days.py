"""Backtests over several days: each day on its own, in one call; the per-day and total results."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from breakoutd.backtest import run_backtest
from breakoutd.backtest.days import read_days, run_backtest_days, split_days
from breakoutd.backtest.report import json_lines
from breakoutd.cli.main import main
from breakoutd.config import load_watchlist_text
from breakoutd.tape import Tape, iter_rows, read_tape, synthetic_tape, tape_from_rows, write_tape

TAPES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tapes"
DAYS = (dt.date(2026, 3, 9), dt.date(2026, 3, 10), dt.date(2026, 3, 11))
YAML = "breakouts:\n" + "".join(
    f"  - symbol: {sym}\n    level: {lv}\n    qty: 100\n    tp: {tp}\n    sl: {sl}\n"
    for sym, lv, tp, sl in (("AAA", "10.00", "10.30", "9.80"), ("AAA", "10.40", "10.80", "10.20"),
                            ("BBB", "4.50", "4.70", "4.40")))
RISK = "risk:\n  max_entries_per_day: 1\n"


def _levels(yaml: str) -> dict[str, list[int]]:
    levels: dict[str, list[int]] = {}
    for w in load_watchlist_text(yaml, "w.yaml").watchers:
        levels.setdefault(w.symbol, []).append(w.level)
    return levels


def _day_tapes(tmp_path: Path) -> list[Path]:
    levels = _levels(YAML)
    paths = []
    for n, day in enumerate(DAYS):
        path = tmp_path / "tapes" / f"day{n}.csv.gz"
        path.parent.mkdir(exist_ok=True)
        write_tape(path, synthetic_tape(3 + n, sorted(levels), day, levels=levels))
        paths.append(path)
    return paths


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_each_day_is_backtested_as_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    paths = _day_tapes(tmp_path)
    (tmp_path / "w.yaml").write_text(YAML)
    wl = ["--watchlist", str(tmp_path / "w.yaml")]
    alone = [_run(capsys, "backtest", "--tape", str(p), *wl, "--json") for p in paths]
    together = _run(capsys, "backtest", "--tape", str(tmp_path / "tapes"), *wl, "--json")
    assert together == "".join(alone)
    files = [a for p in paths for a in ("--tape", str(p))]
    assert _run(capsys, "backtest", *files, *wl, "--json") == together
    records = [json.loads(line) for line in together.splitlines()]
    assert [r["day"] for r in records] == [d.isoformat() for d in DAYS for _ in range(3)]
    # The contract's keys are today's, value for value.
    wls = load_watchlist_text(YAML, "w.yaml").watchers
    contract = [json.loads(line) for p in paths for line in json_lines(run_backtest(
        read_tape(p), wls))]
    assert [{k: r[k] for k in contract[0]} for r in records] == contract
    traded = [r for r in records if r["trade"]]
    assert traded and all(r["trade"]["day"] == r["day"] for r in traded)
    assert all({"fills", "pnl_usd", "r", "exit_reason"} <= set(r["trade"]) for r in traded)


def test_the_table_has_each_day_and_the_total(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _day_tapes(tmp_path)
    (tmp_path / "w.yaml").write_text(YAML)
    text = _run(capsys, "backtest", "--tape", str(tmp_path / "tapes"), "--watchlist",
                str(tmp_path / "w.yaml"))
    for day in DAYS:
        assert f"\n{day}: 3 watchers (" in "\n" + text
    total = text.splitlines()[-1]
    assert total.startswith("total over 3 days (2026-03-09 to 2026-03-11): 9 watcher-days (")
    days = read_days([tmp_path / "tapes"])
    results = run_backtest_days(days, load_watchlist_text(YAML, "w.yaml").watchers)
    pnl = sum(r.fills.pnl for res in results for r in res.results if r.fills is not None)
    assert total.endswith(f"P&L {pnl / 1e6:,.2f} USD gross")


def test_the_risk_limits_start_over_each_day(tmp_path: Path) -> None:
    paths = _day_tapes(tmp_path)
    wl = load_watchlist_text(YAML + RISK, "w.yaml")
    results = run_backtest_days(read_days(paths), wl.watchers, wl.risk)
    free = run_backtest_days(read_days(paths), wl.watchers)
    assert [sum(r.outcome == "entered" for r in res.results) for res in free] == [2, 3, 3]
    # One entry a day: the day's first trigger enters, each day again.
    assert [[r.reason for r in res.results] for res in results] == [
        [None, "risk_max_entries", "entry_above_tp"],
        [None, "risk_max_entries", "risk_max_entries"],
        [None, "risk_max_entries", "risk_max_entries"]]
    assert [r.day for r in results] == list(DAYS)


def test_one_file_of_several_days_is_cut_at_midnight(tmp_path: Path) -> None:
    paths = _day_tapes(tmp_path)
    merged = tape_from_rows([row for p in paths for row in iter_rows(read_tape(p))])
    days = split_days(merged)
    assert [d for d, _ in days] == list(DAYS)
    for (_, got), path in zip(days, paths, strict=True):
        want: Tape = read_tape(path)
        assert got.symbols == want.symbols


@pytest.mark.realdata
def test_the_recorded_days_in_one_call(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    if not TAPES.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    (tmp_path / "w.yaml").write_text(
        "breakouts:\n  - symbol: SPY\n    level: 167.80\n    qty: 100\n    tp: 168.05\n"
        "    sl: 167.60\n  - symbol: BAC\n    level: 14.00\n    qty: 100\n")
    wl = ["--watchlist", str(tmp_path / "w.yaml")]
    together = _run(capsys, "backtest", "--tape", str(TAPES), *wl, "--json")
    days = sorted({p.name.split("_")[1][:8] for p in TAPES.glob("*.csv.gz")})
    alone = ""
    for day in days:
        files = [a for p in sorted(TAPES.glob(f"*_{day}.csv.gz")) for a in ("--tape", str(p))]
        alone += _run(capsys, "backtest", *files, *wl, "--json")
    assert together == alone
    report = json.loads(_run(capsys, "report", "--tape", str(TAPES), *wl, "--json"))
    assert set(report["by_day"]) <= {f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in days}
    assert report["total"]["trades"] == sum(g["trades"] for g in report["by_day"].values())
