"""Position management live: the daemon over the simulated gateway, through real ib_async.

Breakeven and trail move the broker-held stop (its price at the sim, not only the
events); exit_at and max_hold sell what is open and leave no working exit.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from breakoutd.core import events as ev
from breakoutd.daemon.journal import read_journal
from breakoutd.sim import Row
from tests.daemon.daemonkit import DAY, Run, at, px, running_daemon
from tests.daemon.test_daemon_resync import REF, settle, sim_stop
from tests.daemon.test_daemon_sim import ramp


def managed(extra: str) -> str:
    return ("breakouts:\n  - symbol: DEMO\n    level: 10.00\n    qty: 100\n    tp: 10.80\n"
            f"    sl: 9.80\n{extra}")


def entry_rows() -> list[Row]:
    """The 09:30 minute closes at 10.02: BUY 100 LMT 10.03 at 09:31:00 fills at once (R 0.23)."""
    return ramp("09:29:50", 40, "9.95") + ramp("09:30:30", 40, "10.02")


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 90))  # type: ignore[arg-type]


async def filled(r: Run) -> None:
    e = r.events
    await r.step(100, until=lambda: any(f.role == "entry" for f in e.of(ev.OrderFilled))
                 and any(s.role == "stop" for s in e.of(ev.OrderSent)))
    await settle(r, lambda: any(o.order_ref == f"{REF}:sl"
                                for o, _ in r.gw.engine.open_orders(None)))


def test_breakeven_moves_the_brokers_stop_to_the_fill_after_a_1r_print(tmp_path: Path) -> None:
    # 10.20 is below 1R (10.26); 10.26 reaches it at 09:31:20.
    rows = entry_rows() + ramp("09:31:10", 10, "10.20") + ramp("09:31:20", 30, "10.26")

    async def body() -> None:
        async with running_daemon(rows, managed("    breakeven: 1\n"), tmp_path) as r:
            e = r.events
            await filled(r)
            await r.step(8)
            assert not e.of(ev.StopMoved)  # no print reached 1R yet
            await r.step(20, until=lambda: bool(e.of(ev.StopMoved)))
            (moved,) = e.of(ev.StopMoved)
            assert (moved.rule, moved.stop, moved.stop_limit, moved.qty) == (
                "breakeven", Decimal("10.03"), Decimal("10.01"), 100)
            await settle(r, lambda: sim_stop(r.gw).aux_price == px("10.03"))
            await r.step(5)
            assert len(e.of(ev.StopMoved)) == 1  # it never moves again: breakeven is done
            assert await r.finish() == 0
        journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
        assert [j["rule"] for j in journal if j["event"] == "StopMoved"] == ["breakeven"]

    run(body())


def test_a_trail_follows_a_rising_market_and_holds_when_it_falls(tmp_path: Path) -> None:
    rows = (entry_rows() + ramp("09:31:10", 3, "10.10") + ramp("09:31:13", 3, "10.20")
            + ramp("09:31:16", 3, "10.30") + ramp("09:31:19", 20, "10.22"))

    async def body() -> None:
        async with running_daemon(rows, managed("    trail: 0.10\n"), tmp_path) as r:
            e = r.events
            await filled(r)
            await r.step(30, until=lambda: any(m.stop == Decimal("10.20")
                                                for m in e.of(ev.StopMoved)))
            await settle(r, lambda: sim_stop(r.gw).aux_price == px("10.20"))
            await r.step(10)  # the market falls back to 10.22: the stop holds at 10.20
            stops = [m.stop for m in e.of(ev.StopMoved)]
            assert stops == sorted(set(stops)) and stops[-1] == Decimal("10.20")
            assert {m.rule for m in e.of(ev.StopMoved)} == {"trail"}
            assert Decimal("10.10") in stops  # 10.20 less 0.10, on the way up
            assert sim_stop(r.gw).aux_price == px("10.20")
            assert not any(f.role == "stop" for f in e.of(ev.OrderFilled))
            assert await r.finish() == 0

    run(body())


def _no_working_exit(r: Run) -> bool:
    return not [o for o, _ in r.gw.engine.open_orders(None) if o.order_ref.startswith(REF)]


def test_exit_at_sells_the_position_and_leaves_no_working_exit(tmp_path: Path) -> None:
    rows = entry_rows() + ramp("09:31:10", 60, "10.10")

    async def body() -> None:
        async with running_daemon(rows, managed('    exit_at: "09:31:30"\n'), tmp_path) as r:
            e = r.events
            await filled(r)
            await r.step(45, until=lambda: any(f.role == "flatten" for f in e.of(ev.OrderFilled)))
            (due,) = e.of(ev.TimeExit)
            assert (due.rule, due.due_at) == ("exit_at", at("09:31:30"))
            assert due.at >= at("09:31:30")
            (sale,) = e.of(ev.FlattenSent)
            assert (sale.reason, sale.order_type, sale.qty) == ("time_exit", "MKT", 100)
            (sold,) = [f for f in e.of(ev.OrderFilled) if f.role == "flatten"]
            assert (sold.qty, sold.price) == (100, Decimal("10.09"))  # at the bid
            await settle(r, lambda: _no_working_exit(r))
            await r.step(5)
            assert len(e.of(ev.FlattenSent)) == 1 and len(e.of(ev.TimeExit)) == 1
            assert await r.finish() == 0

    run(body())


def test_max_hold_sells_at_the_fill_plus_the_duration(tmp_path: Path) -> None:
    rows = entry_rows() + ramp("09:31:10", 60, "10.10")

    async def body() -> None:
        async with running_daemon(rows, managed("    max_hold: 20s\n"), tmp_path) as r:
            e = r.events
            await filled(r)
            fill_at = next(f.at for f in e.of(ev.OrderFilled) if f.role == "entry")
            await r.step(45, until=lambda: any(f.role == "flatten" for f in e.of(ev.OrderFilled)))
            (due,) = e.of(ev.TimeExit)
            assert (due.rule, due.due_at) == ("max_hold", fill_at + 20 * 10**9)
            assert [s.reason for s in e.of(ev.FlattenSent)] == ["time_exit"]
            await settle(r, lambda: _no_working_exit(r))
            assert await r.finish() == 0

    run(body())


def test_a_sliced_entry_is_not_armed_rather_than_sent_whole(tmp_path: Path) -> None:
    watchlist = managed("    slices: {count: 3, every: 10}\n") + (
        "  - symbol: OTHER\n    level: 20.00\n    qty: 10\n")

    async def body() -> None:
        rows = sorted(entry_rows() + ramp("09:29:50", 80, "19.00", "OTHER"),
                      key=lambda x: (x.time, x.symbol))
        async with running_daemon(rows, watchlist, tmp_path) as r:
            e = r.events
            (partial,) = [c for c in e.of(ev.ConfigReloaded) if c.result == "partial"]
            assert len(partial.failed) == 1 and "DEMO@10.00" in partial.failed[0]
            assert "does not send sliced entries" in partial.failed[0]
            assert {w.watcher_id for w in e.of(ev.WatcherStarted)} == {"OTHER@20.00"}
            await r.step(75)
            assert not e.of(ev.OrderSent)
            assert await r.finish() == 0

    run(body())
