"""Trades folded from journal events: partial fills, late commissions, days, open shares."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from breakoutd.core import events as ev
from breakoutd.report.render import report_json
from breakoutd.report.sources import ReportError, journal_trades
from breakoutd.report.stats import max_drawdown, summarize
from breakoutd.report.trades import fold_trades

S = 1_000_000_000
REF = "bo:20260309:rth:ACME@4.50"


def _intent(at: int, ref: str = REF, watcher: str = "ACME@4.50") -> ev.OrderIntent:
    return ev.OrderIntent(at=at, watcher_id=watcher, order_ref=ref, kind="fast",
                          trigger_at=at, symbol="ACME", qty=300, entry="limit_at_ask",
                          limit=Decimal("4.52"), take_profits=(Decimal("4.60"),),
                          take_profit_qtys=(300,), stop=Decimal("4.40"),
                          stop_limit=Decimal("4.38"), outside_rth=False, tif="DAY")


def _fill(at: int, side: str, qty: int, price: str, role: str = "entry", rung: int = 0,
          commission: float | None = None, ref: str = REF, n: int = 0) -> ev.OrderFilled:
    return ev.OrderFilled(at=at, order_ref=ref, role=role, rung=rung, order_id=1,  # type: ignore[arg-type]
                          exec_id=f"{ref}.{at}.{n}", symbol="ACME", side=side, qty=qty,
                          price=Decimal(price), cum_qty=qty, commission=commission)


def _day(t0: int) -> list[ev.Event]:
    """300 bought in two partial fills, 200 sold at the take-profit, 100 stopped out."""
    return [
        ev.WatcherStarted(at=t0, watcher_id="ACME@4.50", symbol="ACME", level=Decimal("4.50"),
                          session_day="", disarm_at=t0 + 3600 * S),
        _intent(t0 + S),
        _fill(t0 + S, "BOT", 100, "4.51", commission=1.0, n=1),
        _fill(t0 + 2 * S, "BOT", 200, "4.52", commission=0.5, n=2),
        ev.OrderStatusChanged(at=t0 + 2 * S, order_ref=REF, role="entry", rung=0, order_id=1,
                              status="Filled", filled=300, remaining=0),
        _fill(t0 + 60 * S, "SLD", 200, "4.60", "take_profit", 1, n=3),
        ev.CommissionReported(at=t0 + 61 * S, order_ref=REF, exec_id=f"{REF}.{t0 + 60 * S}.3",
                              commission=1.0, realized_pnl=0.0),
        _fill(t0 + 90 * S, "SLD", 100, "4.40", "stop", commission=1.0, n=4),
    ]


def test_a_trade_folds_partial_fills_and_late_commissions() -> None:
    (t,) = fold_trades("2026-03-09", _day(1_773_000_000 * S))
    assert (t.shares, t.entry_price, t.exit_price) == (300, 4_516_666, 4_533_333)
    # 200 x 4.60 + 100 x 4.40 - (100 x 4.51 + 200 x 4.52) - 3.50 commissions = 1.50
    assert (t.pnl, t.commissions, t.open_qty) == (1_500_000, 3_500_000, 0)
    assert t.exit_reason == "tp1+stop"
    assert t.r == 1_500_000 / ((4_516_666 - 4_400_000) * 300)


def test_an_execution_journaled_twice_counts_once() -> None:
    events = _day(1_773_000_000 * S)
    (once,) = fold_trades("d", events)
    (twice,) = fold_trades("d", [*events[:4], events[2], *events[4:], events[-1]])
    assert twice == once


def test_shares_still_held_count_at_the_mark_or_at_cost() -> None:
    events = _day(1_773_000_000 * S)[:-1]  # the stop never fills
    (at_cost,) = fold_trades("d", events)
    (marked,) = fold_trades("d", events, {"ACME": 4_300_000})
    assert at_cost.exit_reason == marked.exit_reason == "tp1+open"
    assert at_cost.exit_at is None and at_cost.open_qty == 100
    cost = 100 * 4_510_000 + 200 * 4_520_000
    held_cost = cost - cost * 200 // 300  # the ledger's average cost of the 100 still held
    assert marked.pnl - at_cost.pnl == 100 * 4_300_000 - held_cost


def test_journals_of_several_days_give_the_totals_by_day(tmp_path: Path) -> None:
    enc = msgspec.json.Encoder()
    for n, day in enumerate(("2026-03-09", "2026-03-10", "2026-03-11")):
        d = tmp_path / day
        d.mkdir()
        events = _day(1_773_000_000 * S + n * 86_400 * S)
        if n == 1:  # a losing day: the take-profit never fills, the stop takes all
            events = [*events[:5], _fill(events[5].at, "SLD", 300, "4.40", "stop",
                                         commission=1.5, n=9)]
        (d / "events.jsonl").write_bytes(b"".join(enc.encode(e) + b"\n" for e in events)
                                         + b'{"torn')
    trades = journal_trades(tmp_path, None, None)
    assert [t.day for t in trades] == ["2026-03-09", "2026-03-10", "2026-03-11"]
    assert [t.pnl for t in trades] == [1_500_000, -38_000_000, 1_500_000]
    report = report_json(trades)
    assert sorted(report["by_day"]) == ["2026-03-09", "2026-03-10", "2026-03-11"]
    s = summarize(trades)
    assert (s.trades, s.wins, s.losses, s.net) == (3, 2, 1, -35_000_000)
    assert s.max_drawdown == 38_000_000 and s.profit_factor == 3 / 38
    later = journal_trades(tmp_path, dt.date(2026, 3, 10), None)
    assert [t.day for t in later] == ["2026-03-10", "2026-03-11"]


def test_a_range_without_a_journal_day_is_an_error(tmp_path: Path) -> None:
    for day in ("2026-03-09", "notaday"):
        (tmp_path / day).mkdir()
    assert journal_trades(tmp_path, None, None) == []
    with pytest.raises(ReportError, match="no journal day"):
        journal_trades(tmp_path, dt.date(2026, 3, 10), None)
    with pytest.raises(ReportError, match="no such journal directory"):
        journal_trades(tmp_path / "absent", None, None)


def test_max_drawdown_from_the_running_peak() -> None:
    assert max_drawdown([]) == 0
    assert max_drawdown([-2, 5, -1, -3, 4, -6]) == 6  # the curve -2 3 2 -1 3 -3: peak 3, low -3


def test_a_flatten_is_labelled_with_its_reason() -> None:
    t0 = 1_773_000_000 * S
    events = [*_day(t0)[:5],
              ev.FlattenSent(at=t0 + 70 * S, order_ref=REF, watcher_id="ACME@4.50",
                             symbol="ACME", qty=300, order_type="MKT", limit=None,
                             reason="time_exit"),
              _fill(t0 + 70 * S, "SLD", 300, "4.55", "flatten", commission=1.5, n=7)]
    (t,) = fold_trades("d", events)
    assert (t.exit_reason, t.open_qty, t.exit_price) == ("time_exit", 0, 4_550_000)
