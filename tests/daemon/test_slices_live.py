"""The slices not sent, and those cancelled: an exit fills, the operator flattens, trading
halts, the first slice fills only in part. The daemon over the sim, through real ib_async."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from breakoutd.core import events as ev
from breakoutd.sim import Market, Row, SimGateway
from tests.daemon.daemonkit import DAY, Run, at, running_daemon
from tests.daemon.test_daemon_resync import REF, settle
from tests.daemon.test_daemon_sim import ramp
from tests.daemon.test_management_live import filled, managed, run

SLICED = managed("    slices: {count: 3, every: 10}\n")


def resting_slice_rows(after: list[Row]) -> list[Row]:
    """Slice 1 (34 at 10.03) fills at 09:31:00; slice 2 (LMT 10.11 at 09:31:10) meets one
    share offered at 10.11 and the market is above it from 09:31:10: it rests."""
    thin = ramp("09:31:09", 1, "10.10")
    thin[0] = thin[0]._replace(ask_size=1)
    return (ramp("09:29:50", 40, "9.95") + ramp("09:30:30", 39, "10.02") + thin
            + ramp("09:31:10", 6, "10.30") + after)


def _slice_order(r: Run, number: int) -> list[str]:
    """The statuses the sim has for slice ``number``."""
    orders = r.gw.engine.open_orders(None) + r.gw.engine.completed_orders()
    return [status for o, status in orders if o.order_ref == f"{REF}:s{number}"]


def _nothing_working(r: Run) -> bool:
    return not [o for o, _ in r.gw.engine.open_orders(None) if o.order_ref.startswith(REF)]


async def _slice_2_resting(r: Run) -> None:
    await filled(r)
    await r.step(9, until=lambda: r.gw.now_ns() >= at("09:31:09.5"))
    # Slowly over 09:31:10, so the daemon prices slice 2 at that instant's quote.
    await r.step(3, pause=0.06, until=lambda: len(r.events.of(ev.SliceSent)) == 2)
    await settle(r, lambda: _slice_order(r, 2) == ["Submitted"])


def test_a_take_profit_fill_cancels_the_working_slice_and_no_later_one_is_sent(
    tmp_path: Path
) -> None:
    rows = resting_slice_rows(ramp("09:31:16", 20, "10.85"))  # through the tp (10.80)

    async def body() -> None:
        async with running_daemon(rows, SLICED, tmp_path) as r:
            e = r.events
            await _slice_2_resting(r)
            await r.step(15, until=lambda: bool(e.of(ev.SliceSkipped)))
            (skipped,) = e.of(ev.SliceSkipped)
            assert (skipped.number, skipped.reason) == (3, "closed")
            await settle(r, lambda: _nothing_working(r))
            assert _slice_order(r, 2) == ["Cancelled"]
            assert [s.number for s in e.of(ev.SliceSent)] == [1, 2]
            bought = sum(f.qty for f in e.of(ev.OrderFilled) if f.role == "entry")
            sold = sum(f.qty for f in e.of(ev.OrderFilled) if f.role == "take_profit")
            assert bought == sold and r.gw.engine.positions().get("DEMO", (0,))[0] == 0
            assert await r.finish() == 0

    run(body())


def test_a_flatten_cancels_the_working_slice_and_no_later_one_is_sent(tmp_path: Path) -> None:
    rows = resting_slice_rows(ramp("09:31:16", 20, "10.30"))

    async def body() -> None:
        async with running_daemon(rows, SLICED, tmp_path) as r:
            e = r.events
            await _slice_2_resting(r)
            result = await r.daemon.controls.flatten("DEMO", False, 0)
            assert result.ok, result.message
            await r.step(12, until=lambda: bool(e.of(ev.SliceSkipped)))
            (skipped,) = e.of(ev.SliceSkipped)
            assert (skipped.number, skipped.reason) == (3, "sold")
            await settle(r, lambda: _nothing_working(r))
            assert _slice_order(r, 2) == ["Cancelled"]
            assert r.gw.engine.positions().get("DEMO", (0,))[0] == 0
            assert await r.finish() == 0

    run(body())


def test_a_halt_cancels_the_working_slice_and_sends_no_more(tmp_path: Path) -> None:
    rows = resting_slice_rows(ramp("09:31:16", 20, "10.30"))

    async def body() -> None:
        async with running_daemon(rows, SLICED, tmp_path) as r:
            e = r.events
            await _slice_2_resting(r)
            result = await r.daemon.controls.halt(False, 0)
            assert result.ok, result.message
            await r.step(5, until=lambda: bool(e.of(ev.SliceSkipped)))
            (skipped,) = e.of(ev.SliceSkipped)
            assert (skipped.number, skipped.reason) == (3, "halted")
            await settle(r, lambda: _slice_order(r, 2) == ["Cancelled"])
            await r.step(12)
            assert [s.number for s in e.of(ev.SliceSent)] == [1, 2]
            # The position keeps its exits, sized to what was bought.
            assert r.gw.engine.positions()["DEMO"][0] == 34 + sum(
                f.qty for f in e.of(ev.OrderFilled) if f.role == "entry" and f.rung == 2)
            assert await r.finish() == 0

    run(body())


def test_a_first_slice_filled_in_part_sends_no_later_slice(tmp_path: Path) -> None:
    # One share offered at 10.03 at 09:31:00: the first slice (34 LMT 10.03) buys 1 and
    # rests while the market trades above it.
    rows = ramp("09:29:50", 40, "9.95") + ramp("09:30:30", 30, "10.02")
    rows[-1] = rows[-1]._replace(ask_size=1)
    rows += ramp("09:31:00", 40, "10.10")

    async def body() -> None:
        async with running_daemon(rows, SLICED, tmp_path) as r:
            e = r.events
            await r.step(100, until=lambda: bool(e.of(ev.SliceSkipped)))
            (skipped,) = e.of(ev.SliceSkipped)
            assert (skipped.number, skipped.reason) == (2, "unfilled")
            assert [s.number for s in e.of(ev.SliceSent)] == [1]
            assert [(f.rung, f.qty) for f in e.of(ev.OrderFilled) if f.role == "entry"] == [
                (1, 1)]
            assert _slice_order(r, 1) == ["Submitted"]  # it keeps working, as an entry does
            assert await r.finish() == 0

    run(body())


def test_a_risk_sized_entry_smaller_than_the_count_sends_only_the_slices_with_shares(
    tmp_path: Path
) -> None:
    # risk_usd 0.50 at R 0.23 buys 2 shares: slice 1 gets both, the others none.
    watchlist = managed("    risk_usd: 0.50\n    slices: {count: 3, every: 10}\n")
    rows = ramp("09:29:50", 40, "9.95") + ramp("09:30:30", 40, "10.02") + ramp(
        "09:31:10", 30, "10.10")

    async def body() -> None:
        async with running_daemon(rows, watchlist, tmp_path) as r:
            e = r.events
            await filled(r)
            await r.step(25)
            assert [(s.number, s.count, s.qty) for s in e.of(ev.SliceSent)] == [(1, 1, 2)]
            assert [s.qty for s in e.of(ev.OrderSent)] == [2, 2, 2]  # the bracket of 2 shares
            assert not e.of(ev.SliceSkipped)
            assert await r.finish() == 0

    run(body())


def test_a_slice_that_came_due_while_the_daemon_was_down_is_not_bought_late(
    tmp_path: Path
) -> None:
    rows = ramp("09:29:50", 40, "9.95") + ramp("09:30:30", 40, "10.02") + ramp(
        "09:31:10", 60, "10.10")

    async def body() -> None:
        gw = SimGateway(Market(rows), port=0, start=dt.time(9, 29, 50), day=DAY,
                        manual_clock=True)
        await gw.start()
        try:
            async with running_daemon(rows, SLICED, tmp_path, gateway=gw) as r:
                await filled(r)
                assert await r.finish() == 0  # stopped before slice 2 (09:31:10)
            await gw.advance(25)  # nobody watches 09:31:01 to 09:31:26
            async with running_daemon(rows, SLICED, tmp_path, gateway=gw) as r:
                e = r.events
                await r.step(5, until=lambda: bool(e.of(ev.SliceSkipped)))
                (skipped,) = e.of(ev.SliceSkipped)
                assert (skipped.number, skipped.reason) == (2, "late")
                await r.step(12)  # slice 3 (09:31:30) is not sent either
                assert not e.of(ev.SliceSent) and not e.of(ev.OrderSent)
                assert await r.finish() == 0
            refs = [o.order_ref for o, _ in gw.engine.open_orders(None)
                    + gw.engine.completed_orders() if o.order_ref.startswith(REF)]
            assert sorted(refs) == sorted([f"{REF}:s1", f"{REF}:tp1", f"{REF}:sl"])
        finally:
            await gw.stop()

    run(body())
