"""Position management live: the daemon over the simulated gateway, through real ib_async.

Breakeven and trail move the broker-held stop (its price at the sim, not only the
events); exit_at and max_hold sell what is open and leave no working exit.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from breakoutd.core import events as ev
from breakoutd.daemon.console import describe
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


def test_a_3_slice_entry_sends_three_orders_with_three_refs_and_exits_cover_the_fills(
    tmp_path: Path
) -> None:
    # BUY 34 LMT 10.03 at 09:31:00 (the bracket, its exits sized 34), then 33 at
    # 09:31:10 and 33 at 09:31:20 at the ask in force then (10.03, then 10.11 from
    # 09:31:15): each fill grows the exits.
    rows = ramp("09:29:50", 40, "9.95") + ramp("09:30:30", 45, "10.02") + ramp(
        "09:31:15", 35, "10.10")

    async def body() -> None:
        async with running_daemon(rows, managed("    slices: {count: 3, every: 10}\n"),
                                  tmp_path) as r:
            e = r.events
            await filled(r)
            first = [s for s in e.of(ev.OrderSent) if s.role in ("stop", "take_profit")]
            assert sorted((s.role, s.qty) for s in first) == [("stop", 34), ("take_profit", 34)]
            await r.step(30, until=lambda: sum(f.qty for f in e.of(ev.OrderFilled)
                                               if f.role == "entry") == 100
                         and len([m for m in e.of(ev.OrderModified) if m.reason == "slice"]) == 4)
            sent = [(s.number, s.qty, s.limit) for s in e.of(ev.SliceSent)]
            assert sent == [(1, 34, Decimal("10.03")), (2, 33, Decimal("10.03")),
                            (3, 33, Decimal("10.11"))]
            buys = [(s.rung, s.qty, s.transmit) for s in e.of(ev.OrderSent) if s.role == "entry"]
            assert buys == [(1, 34, False), (2, 33, True), (3, 33, True)]
            await settle(r, lambda: sim_stop(r.gw).total_qty == 100)
            refs = [o.order_ref for o, _ in r.gw.engine.open_orders(None)
                    + r.gw.engine.completed_orders() if o.order_ref.startswith(REF)]
            assert sorted(refs) == sorted([f"{REF}:s1", f"{REF}:s2", f"{REF}:s3", f"{REF}:tp1",
                                           f"{REF}:sl"])  # three slices, three refs, once each
            (tp,) = [o for o, _ in r.gw.engine.open_orders(None) if o.order_ref == f"{REF}:tp1"]
            assert (tp.total_qty, sim_stop(r.gw).total_qty) == (100, 100)  # what has filled
            assert sim_stop(r.gw).aux_price == px("9.80")  # one stop, where it was
            assert [m.qty for m in e.of(ev.OrderModified)] == [67, 67, 100, 100]
            assert r.gw.engine.positions()["DEMO"][0] == 100
            (pos,) = r.daemon.status.snapshot()["positions"]
            assert [(s["count"], s["sent"], s["sent_qty"], s["filled"], s["skipped"])
                    for s in pos["slices"]] == [(3, 3, 100, 100, None)]
            third = e.of(ev.SliceSent)[2]
            assert describe(third) == (
                f"DEMO@10.00: slice 3/3 sent #{third.order_id}: BUY 33 DEMO LMT 10.11")
            assert await r.finish() == 0
        journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
        assert [j["number"] for j in journal if j["event"] == "SliceSent"] == [1, 2, 3]

    run(body())


def test_a_slice_that_would_break_the_exits_is_not_sent_nor_later_ones(tmp_path: Path) -> None:
    # At 09:31:10 the ask is 10.80, at the take-profit: slices 2 and 3 are not sent.
    rows = entry_rows() + ramp("09:31:05", 3, "10.50") + ramp("09:31:08", 30, "10.79")

    async def body() -> None:
        async with running_daemon(rows, managed("    slices: {count: 3, every: 10}\n"),
                                  tmp_path) as r:
            e = r.events
            await filled(r)
            await r.step(25, until=lambda: bool(e.of(ev.SliceSkipped)))
            (skipped,) = e.of(ev.SliceSkipped)
            assert (skipped.number, skipped.count, skipped.reason) == (2, 3, "breaks_exits")
            await r.step(12)
            assert [s.number for s in e.of(ev.SliceSent)] == [1]
            assert [s.rung for s in e.of(ev.OrderSent) if s.role == "entry"] == [1]
            assert sim_stop(r.gw).total_qty == 34
            (pos,) = r.daemon.status.snapshot()["positions"]
            assert pos["slices"][0]["skipped"] == "breaks_exits"
            assert await r.finish() == 0

    run(body())
