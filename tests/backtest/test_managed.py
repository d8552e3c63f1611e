"""The managed fill model on hand-made tapes: stop moves, time exits and slices."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from breakoutd.backtest import run_backtest
from breakoutd.backtest.fills import FillResult
from breakoutd.backtest.report import table
from breakoutd.config import load_watchlist_text
from breakoutd.tape import TapeRow, tape_from_rows
from tests.backtest.test_engine import SYM, row
from tests.factories import at, px

# The close-rule trigger at 09:41:00 buys at 5.02 (the ask in force); sl 4.90 makes R 0.12.
TRIGGER = [row("09:40:10", "5.00", "5.02")]


def managed(extra: str, qty: int = 10) -> str:
    return (f"breakouts:\n  - id: w\n    symbol: {SYM}\n    level: 5.00\n    qty: {qty}\n"
            f"    sl: 4.90\n    sessions: [rth]\n{extra}")


def fills(yaml: str, rows: list[TapeRow]) -> FillResult:
    wl = load_watchlist_text(yaml, "t.yaml")
    result = run_backtest(tape_from_rows(rows), wl.watchers)
    (only,) = result.results
    assert only.outcome == "entered" and only.fills is not None
    return only.fills


def test_breakeven_moves_the_stop_to_the_fill_after_a_1r_print() -> None:
    rows = TRIGGER + [row("09:41:05", "5.10"), row("09:41:10", "5.14"),
                      row("09:41:20", "5.01", "5.02")]
    f = fills(managed("    breakeven: 1\n"), rows)
    assert [(m.at, m.price, m.rule) for m in f.stop_moves] == [
        (at("09:41:11"), px("5.02"), "breakeven")]
    assert [(e.kind, e.at, e.price, e.qty) for e in f.exits] == [
        ("stop", at("09:41:20"), px("5.01"), 10)]
    assert f.pnl == (px("5.01") - px("5.02")) * 10


def test_a_trail_follows_a_rising_market_and_holds_when_it_falls() -> None:
    rows = TRIGGER + [row("09:41:05", "5.10"), row("09:41:06", "5.20"),
                      row("09:41:07", "5.15"), row("09:41:08", "5.11", "5.12")]
    f = fills(managed("    trail: 0.10\n"), rows)
    assert [(m.price, m.rule) for m in f.stop_moves] == [
        (px("5.00"), "trail"), (px("5.10"), "trail")]
    assert [(e.kind, e.price) for e in f.exits] == []  # 5.11 stays above the held 5.10
    lower = fills(managed("    trail: 0.10\n"), rows + [row("09:41:09", "5.09", "5.10")])
    assert [(e.kind, e.at, e.price) for e in lower.exits] == [("stop", at("09:41:09"), px("5.09"))]


def test_exit_at_sells_what_is_open_at_the_bid_in_force() -> None:
    rows = TRIGGER + [row("09:41:05", "5.10", "5.11"), row("09:45:00", "5.30", "5.31")]
    f = fills(managed('    exit_at: "09:43"\n'), rows)
    # The bid in force at 09:43 is the 09:41:05 row's (ask 5.11 - 0.01).
    assert [(e.kind, e.at, e.price, e.qty) for e in f.exits] == [
        ("time_exit", at("09:43:00"), px("5.10"), 10)]
    assert f.open_qty == 0 and f.closed_at == at("09:43:00")


def test_max_hold_sells_at_the_fill_plus_the_duration() -> None:
    rows = TRIGGER + [row("09:41:05", "5.10", "5.11"), row("09:42:40", "5.20", "5.21")]
    f = fills(managed("    max_hold: 90s\n"), rows)
    assert [(e.kind, e.at, e.price) for e in f.exits] == [("time_exit", at("09:42:30"),
                                                           px("5.10"))]


def test_three_slices_fill_at_their_own_quotes_and_the_exits_cover_them() -> None:
    rows = TRIGGER + [row("09:41:05", "5.04", "5.05"), row("09:41:25", "5.06", "5.07"),
                      row("09:41:50", "5.60", "5.61")]
    f = fills(managed("    tp: 5.50\n    slices: {count: 3, every: 20}\n"), rows)
    assert [(s.number, s.order_ref.rsplit(":", 1)[-1], s.at, s.price, s.qty) for s in f.slices] == [
        (1, "s1", at("09:41:00"), px("5.02"), 4), (2, "s2", at("09:41:20"), px("5.05"), 3),
        (3, "s3", at("09:41:40"), px("5.07"), 3)]
    assert [(e.kind, e.price, e.qty) for e in f.exits] == [("tp1", px("5.50"), 10)]
    assert f.qty == 10 and f.pnl == px("5.50") * 10 - (px("5.02") * 4 + px("5.05") * 3
                                                       + px("5.07") * 3)


def test_a_slice_that_would_break_the_exits_is_not_sent_nor_later_ones() -> None:
    rows = TRIGGER + [row("09:41:05", "5.49", "5.50"), row("09:41:30", "5.20", "5.21")]
    f = fills(managed("    tp: 5.50\n    slices: {count: 3, every: 20}\n"), rows)
    # At 09:41:20 the ask 5.50 is at the take-profit: slices 2 and 3 are not sent.
    assert [s.number for s in f.slices] == [1]
    assert f.qty == 4 and f.open_qty == 4


def test_the_table_shows_the_stop_and_its_rule() -> None:
    rows = TRIGGER + [row("09:41:05", "5.10"), row("09:41:10", "5.14")]
    wl = load_watchlist_text(managed("    breakeven: 1\n"), "t.yaml")
    out = table(run_backtest(tape_from_rows(rows), wl.watchers))
    assert "open 10@5.14 (stop 5.02 breakeven)" in out


_moves = st.lists(st.integers(min_value=-8, max_value=8), min_size=5, max_size=58)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(steps=_moves, rule=st.sampled_from([
    "    breakeven: 0.5\n", "    trail: 0.03\n", "    trail: 0.05\n    trail_after: 1\n",
    "    tp: 5.40\n    slices: {count: 3, every: 2}\n", "    max_hold: 20s\n"]))
def test_a_managed_position_never_lowers_its_stop_nor_sells_more_than_it_bought(
    steps: list[int], rule: str
) -> None:
    rows, price = list(TRIGGER), px("5.02")
    for n, step in enumerate(steps):
        price = max(price + step * 10_000, px("4.00"))
        text = str(Decimal(price) / 1_000_000)
        ask = str(Decimal(price + 10_000) / 1_000_000)
        rows.append(row(f"09:41:{n + 1:02d}", text, ask))
    f = fills(managed(rule), rows)
    prices = [m.price for m in f.stop_moves]
    assert prices == sorted(set(prices)) and all(p > px("4.90") for p in prices)
    assert sum(s.qty for s in f.slices) == f.qty <= 10
    assert sum(e.qty for e in f.exits) + f.open_qty == f.qty
