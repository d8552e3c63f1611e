"""The report over a backtest of a recorded tape: known trades, every figure recomputed here."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from breakoutd.cli.main import main

pytestmark = pytest.mark.realdata

TAPE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tapes" / "SPY_20131007.csv.gz"

WATCHLIST = """\
presets:
  scalp:
    sessions: [rth]
breakouts:
  # 10:30 closes 168.32 >= 168.30: close rule at 10:31:00 at the 10:30:59 ask 168.32;
  # the 10:45:55 second (o 168.10 l 168.10) takes the stop at 168.10.
  - id: spy-close
    symbol: SPY
    level: 168.30
    qty: 100
    tp: 168.60
    sl: 168.10
    preset: scalp
  # Fast at 09:47:54 at 167.76; rung 1 167.90 fills at 10:07:27 (h 167.92) and the
  # stop moves to the level, rung 2 168.05 at 10:09:38 moves it to 167.90, rung 3
  # 168.30 at 10:24:00.
  - id: spy-ladder
    symbol: SPY
    level: 167.70
    qty: 100
    tp: [167.90, 168.05, 168.30]
    sl: 167.45
    preset: scalp
  # 09:48 closes 167.80: close rule at 09:49:00 at the 09:48:59 ask 167.80; the
  # first second reaching 168.05 is 10:09:38 (h 168.07), no low reaches 167.60 before.
  - id: spy-win
    symbol: SPY
    level: 167.80
    qty: 200
    tp: 168.05
    sl: 167.60
    sessions: [rth]
  - id: spy-lose
    symbol: SPY
    level: 168.00
    qty: 50
    tp: 169.50
    sl: 167.90
    sessions: [rth]
  # No exits: held to the end of the tape and marked at its last trade, 167.30.
  - id: spy-open
    symbol: SPY
    level: 168.20
    qty: 30
    sessions: [rth]
  - id: spy-max
    symbol: SPY
    level: 169.00
    qty: 10
    sessions: [rth]
    max_bars: 5
"""

# (watcher, entry time, entry price, shares, exit reason) read off the tape by hand.
KNOWN = [
    ("spy-ladder", "09:47:54", 167.76, 100, "tp1+tp2+tp3"),
    ("spy-win", "09:49:00", 167.80, 200, "tp1"),
    ("spy-lose", "10:09:49", 168.09, 50, "stop"),
    ("spy-open", "10:21:00", 168.20, 30, "open"),
    ("spy-close", "10:31:00", 168.32, 100, "stop"),
]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


@pytest.fixture
def watchlist(tmp_path: Path) -> Path:
    if not TAPE.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    path = tmp_path / "w.yaml"
    path.write_text(WATCHLIST)
    return path


def _fee(qty: int, price: Decimal) -> Decimal:
    """IBKR Pro fixed: $0.005 a share, at least $1, at most 1% of the value, per order."""
    return min(max(Decimal("0.005") * qty, Decimal(1)), qty * price / 100)


def _pnl(t: dict) -> Decimal:  # type: ignore[type-arg]
    """Sales minus purchases minus every order's commission, the rest marked at 167.30."""
    total = Decimal(0)
    for f in t["fills"]:
        price = Decimal(str(f["price"]))
        sign = -1 if f["side"] == "BOT" else 1
        total += sign * f["qty"] * price - _fee(f["qty"], price)
    held = sum(f["qty"] if f["side"] == "BOT" else -f["qty"] for f in t["fills"])
    return total + held * Decimal("167.30")


def _drawdown(steps: list[float]) -> float:
    curve, peak, worst = 0.0, 0.0, 0.0
    for s in steps:
        curve += s
        peak = max(peak, curve)
        worst = max(worst, peak - curve)
    return worst


def _figures(trades: list[dict]) -> dict[str, object]:  # type: ignore[type-arg]
    ordered = sorted(trades, key=lambda t: (t["exit_ns"] or t["entry_ns"], t["entry_ns"]))
    pnls = [float(_pnl(t)) for t in ordered]
    rs = []
    for t in ordered:
        if t["stop_micros"] is not None:
            risk = (Decimal(str(t["entry_price"])) - Decimal(t["stop_micros"]) / 10**6) * t["shares"]
            rs.append(float(_pnl(t) / risk))
    wins, losses = [p for p in pnls if p > 0], [p for p in pnls if p < 0]
    return {
        "trades": len(pnls), "wins": len(wins), "losses": len(losses),
        "win_rate": len(wins) / len(pnls), "avg_r": sum(rs) / len(rs),
        "expectancy_usd": sum(pnls) / len(pnls),
        "profit_factor": sum(wins) / -sum(losses) if losses else None,
        "net_usd": sum(pnls), "gross_profit_usd": sum(wins), "gross_loss_usd": sum(losses),
        "commissions_usd": float(sum(_fee(f["qty"], Decimal(str(f["price"])))
                                     for t in trades for f in t["fills"])),
        "max_drawdown_usd": _drawdown(pnls), "max_drawdown_r": _drawdown(rs),
    }


def test_report_of_a_backtest_every_figure_recomputed(
        watchlist: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = json.loads(_run(capsys, "report", "--tape", str(TAPE), "--watchlist",
                             str(watchlist), "--json"))
    trades = report["trades"]
    assert [(t["watcher"], t["entry_time"][11:19], t["entry_price"], t["shares"],
             t["exit_reason"]) for t in trades] == KNOWN
    by_id = {t["watcher"]: t for t in trades}
    win = by_id["spy-win"]
    assert (win["exit_time"][11:19], win["exit_price"], win["pnl_usd"], win["r"]) == \
        ("10:09:38", 168.05, 48.0, pytest.approx(1.2))  # 200 x 0.25 - $2; risk 200 x 0.20
    assert [(m["time"][11:19], m["stop"]) for m in by_id["spy-ladder"]["stop_moves"]] == \
        [("10:07:27", 167.70), ("10:09:38", 167.90)]
    assert by_id["spy-open"]["r"] is None and by_id["spy-open"]["exit_time"] is None
    for t in trades:
        assert t["pnl_usd"] == pytest.approx(float(_pnl(t)), abs=1e-9), t["watcher"]
        assert t["commissions_usd"] == pytest.approx(
            float(sum(_fee(f["qty"], Decimal(str(f["price"]))) for f in t["fills"])))
    want = _figures(trades)
    assert report["total"] == pytest.approx(want)
    assert report["by_day"] == {"2013-10-07": pytest.approx(want)}
    assert report["by_symbol"] == {"SPY": pytest.approx(want)}
    for preset in ("scalp", "-"):
        group = [t for t in trades if t["preset"] == preset]
        assert report["by_preset"][preset] == pytest.approx(_figures(group))
    assert sorted(report["by_preset"]) == ["-", "scalp"]


def test_the_table_and_the_backtest_json_give_the_same_report(
        watchlist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--tape", str(TAPE), "--watchlist", str(watchlist)]
    lines = _run(capsys, "backtest", *args, "--json").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == sorted(r["id"] for r in records)
    assert all(list(r)[:8] == ["id", "symbol", "level", "outcome", "kind", "trigger_time",
                               "limit", "reason"] for r in records)  # the contract's keys first
    assert {r["id"] for r in records if r["trade"]} == {k[0] for k in KNOWN}
    saved = tmp_path / "bt.jsonl"
    saved.write_text("\n".join(lines) + "\n")
    from_run = _run(capsys, "report", *args, "--json")
    assert _run(capsys, "report", "--backtest-json", str(saved), "--json") == from_run
    table = _run(capsys, "report", *args)
    assert "spy-win     SPY     close  09:49:00  167.80  200     10:09:38  168.05    +1.20R  48.00" \
        in table
    assert "total           5       40.0%" in table
