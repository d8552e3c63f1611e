"""The daemon over the sim manages positions as the backtest does on the same recorded rows."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from breakoutd.backtest import run_backtest
from breakoutd.config import load_watchlist_text
from breakoutd.core import events as ev
from breakoutd.core.prices import to_decimal
from breakoutd.sim import Row
from breakoutd.tape import iter_rows, read_tape
from tests.daemon.daemonkit import running_daemon

TAPE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tapes" / "SPY_20131007.csv.gz"
DAY = dt.date(2013, 10, 7)

pytestmark = pytest.mark.realdata

# SPY runs up through 168.12 at 10:24:01 (a fast trigger, bought at 168.31), tops
# out near 168.35 and falls back: each rule ends its position inside a minute.
RULES = {
    "breakeven": "    sl: 168.11\n    breakeven: 0.1\n",
    "trail": "    sl: 168.05\n    trail: 0.05\n",
    "exit_at": "    sl: 168.05\n    exit_at: \"10:24:40\"\n",
    "max_hold": "    sl: 168.05\n    max_hold: 30s\n",
    "tp_r": "    sl: 168.11\n    tp_r: 0.1\n",
    # Three slices (4, 3, 3 shares at 10:24:01, :05, :09), each at its own ask, under
    # a trailing stop; or sold on time.
    "slices_trail": "    sl: 168.05\n    trail: 0.05\n    slices: {count: 3, every: 4}\n",
    "slices_max_hold": "    sl: 168.05\n    max_hold: 30s\n    slices: {count: 3, every: 5}\n",
}
WATCHLIST = "breakouts:\n" + "".join(
    f"  - id: {name}\n    symbol: SPY\n    level: 168.12\n    qty: 10\n    sessions: [rth]\n"
    f"    not_before: \"10:24:00\"\n    not_after: \"10:24:20\"\n{extra}"
    for name, extra in RULES.items())
KIND = {"take_profit": "tp1", "stop": "stop", "flatten": "time_exit"}


def daemon_trades(events: list[ev.Event]) -> dict[str, tuple[object, ...]]:
    """Per watcher: the exits (kind, price, qty), the P&L, the last stop and its rule, and
    the entry's fills (slice, price, qty; an unsliced entry is slice 1)."""
    watcher = {e.order_ref: e.watcher_id for e in events if isinstance(e, ev.OrderIntent)}
    exits: dict[str, dict[tuple[str, Decimal], int]] = defaultdict(dict)
    pnl: dict[str, Decimal] = defaultdict(Decimal)
    stops: dict[str, tuple[Decimal, str] | None] = {w: None for w in watcher.values()}
    buys: dict[str, list[tuple[int, Decimal, int]]] = defaultdict(list)
    for e in events:
        if isinstance(e, ev.OrderFilled) and e.order_ref in watcher:
            wid = watcher[e.order_ref]
            sign = -1 if e.role == "entry" else 1
            pnl[wid] += sign * e.price * e.qty
            if e.role == "entry":
                buys[wid].append((max(e.rung, 1), e.price, e.qty))
            else:
                key = (KIND[e.role], e.price)
                exits[wid][key] = exits[wid].get(key, 0) + e.qty
        elif isinstance(e, ev.StopMoved) and e.order_ref in watcher and e.rule != "ladder":
            stops[watcher[e.order_ref]] = (e.stop, e.rule)
    return {w: (sorted((k, p, q) for (k, p), q in exits[w].items()), pnl[w], stops[w],
                sorted(buys[w])) for w in watcher.values()}


def test_the_daemon_exits_and_pnl_equal_the_backtests(tmp_path: Path) -> None:
    if not TAPE.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    tape = read_tape(TAPE)
    wl = load_watchlist_text(WATCHLIST, "w.yaml")
    want = {}
    for r in run_backtest(tape, wl.watchers).results:
        assert r.outcome == "entered" and r.fills is not None and r.fills.open_qty == 0
        f = r.fills
        last = f.stop_moves[-1] if f.stop_moves else None
        want[r.spec.id] = (sorted((e.kind, to_decimal(e.price), e.qty) for e in f.exits),
                           to_decimal(f.pnl),
                           None if last is None else (to_decimal(last.price), str(last.rule)),
                           sorted((s.number, to_decimal(s.price), s.qty) for s in f.slices)
                           or [(1, to_decimal(f.entry_price), f.qty)])
    assert {w[2][1] for w in want.values() if w[2]} == {"breakeven", "trail"}  # a real test
    assert [len(want[k][3]) for k in ("slices_trail", "slices_max_hold")] == [3, 3]
    rows = [Row(*r) for r in iter_rows(tape)]

    async def body() -> dict[str, tuple[object, ...]]:
        async with running_daemon(rows, WATCHLIST, tmp_path, start="10:23:55", day=DAY,
                                  manual_clock=False) as r:
            def closed() -> bool:
                got = daemon_trades(r.events.items)
                return len(got) == len(RULES) and all(
                    sum(q for *_, q in g[0]) == 10 for g in got.values())
            await r.events.wait(closed, timeout=80)
            assert await r.finish() == 0
            return daemon_trades(r.events.items)

    got = asyncio.run(asyncio.wait_for(body(), 120))
    assert {k: got[k] for k in sorted(got)} == {k: want[k] for k in sorted(want)}
