"""Each position-management rule on a recorded tape, checked against the raw rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from breakoutd.backtest import run_backtest
from breakoutd.backtest.engine import WatcherResult
from breakoutd.calendar import exchange_ns
from breakoutd.config import load_watchlist_text
from breakoutd.core.prices import round_to_tick, to_micros
from breakoutd.tape import Tape, read_tape

TAPE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tapes" / "BAC_20131008.csv.gz"
DAY = dt.date(2013, 10, 8)
NS = 1_000_000_000

pytestmark = pytest.mark.realdata

BASE = "    symbol: BAC\n    level: 13.88\n    qty: 300\n    sessions: [rth]\n"
VARIANTS = {
    "plain": "    sl: 13.84\n",
    "breakeven": "    sl: 13.80\n    breakeven: 0.25\n",
    "trail": "    sl: 13.84\n    trail: 0.02\n",
    "trail_after": "    sl: 13.80\n    trail: 0.02\n    trail_after: 0.25\n",
    "exit_at": "    sl: 13.80\n    exit_at: \"11:00\"\n",
    "max_hold": "    sl: 13.80\n    max_hold: 20m\n",
    "slices": "    sl: 13.80\n    tp: 13.95\n    slices: {count: 3, every: 30}\n",
    "relative": "    sl_below: 0.04\n    tp_r: 2\n",
}


def _tape() -> Tape:
    if not TAPE.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    return read_tape(TAPE)


def _results() -> dict[str, WatcherResult]:
    yaml = "breakouts:\n" + "".join(f"  - id: {k}\n{BASE}{v}" for k, v in VARIANTS.items())
    wl = load_watchlist_text(yaml, "real.yaml")
    return {r.spec.id: r for r in run_backtest(_tape(), wl.watchers).results}


def _seconds(tape: Tape, after: int) -> list[tuple[int, int, int, int]]:
    """(start, open, high, low) of the rows with a trade from ``after`` on, from the raw tape."""
    st = tape.symbols["BAC"]
    return [(int(st.time[i]), int(st.open[i]), int(st.high[i]), int(st.low[i]))
            for i in range(len(st)) if st.has_trade[i] and int(st.time[i]) >= after]


def _bid_at(tape: Tape, instant: int) -> int:
    st = tape.symbols["BAC"]
    rows = [i for i in range(len(st)) if int(st.time[i]) + NS <= instant and st.has_bid[i]]
    return int(st.bid[rows[-1]])


def test_every_variant_enters_at_the_same_trigger() -> None:
    results = _results()
    triggers = {r.trigger_at for r in results.values()}
    assert len(triggers) == 1 and all(r.outcome == "entered" for r in results.values())


def test_breakeven_moves_at_the_first_quarter_r_print() -> None:
    r = _results()["breakeven"]
    assert r.fills is not None and r.trigger_at is not None
    fill, stop = r.fills.entry_price, to_micros("13.80")
    target = fill + (fill - stop) // 4
    first = next(s for s in _seconds(_tape(), r.trigger_at) if s[2] >= target)
    assert [(m.at, m.price, m.rule) for m in r.fills.stop_moves] == [
        (first[0] + NS, round_to_tick(fill), "breakeven")]
    later = [s for s in _seconds(_tape(), first[0] + NS) if s[3] <= fill]
    if later:
        assert r.fills.exits[0].kind == "stop" and r.fills.exits[0].at == later[0][0]


def test_trail_moves_to_the_highest_print_less_the_distance_and_never_down() -> None:
    for name in ("trail", "trail_after"):
        r = _results()[name]
        assert r.fills is not None and r.trigger_at is not None
        moves = r.fills.stop_moves
        assert moves and all(m.rule == "trail" for m in moves)
        assert [m.price for m in moves] == sorted({m.price for m in moves})
        seconds = _seconds(_tape(), r.trigger_at)
        for m in moves:
            highest = max(s[2] for s in seconds if s[0] < m.at)
            assert m.price == round_to_tick(highest - to_micros("0.02"))


def test_time_exits_sell_at_the_bid_in_force_when_they_are_due() -> None:
    results = _results()
    tape = _tape()
    for name, due in (("exit_at", exchange_ns(DAY, dt.time(11))),
                      ("max_hold", (results["max_hold"].trigger_at or 0) + 20 * 60 * NS)):
        f = results[name].fills
        assert f is not None
        last = f.exits[-1]
        if last.kind == "time_exit":
            assert (last.at, last.price, f.open_qty) == (due, _bid_at(tape, due), 0)
        else:  # stopped out before it was due
            assert last.at < due


def test_slices_add_up_and_the_exits_cover_what_filled() -> None:
    f = _results()["slices"].fills
    assert f is not None
    assert sum(s.qty for s in f.slices) == f.qty <= 300
    assert len({s.order_ref for s in f.slices}) == len(f.slices)
    assert sum(e.qty for e in f.exits) + f.open_qty == f.qty
    cost = sum(s.price * s.qty for s in f.slices)
    assert f.pnl == sum(e.price * e.qty for e in f.exits) + f.mark * f.open_qty - cost


def test_relative_exits_price_the_stop_and_the_target_on_the_tick() -> None:
    r = _results()["relative"]
    assert r.plan is not None
    entry = r.plan.reference_price
    assert r.plan.stop == to_micros("13.84")
    assert [g.price for g in r.plan.rungs] == [entry + 2 * (entry - to_micros("13.84"))]
