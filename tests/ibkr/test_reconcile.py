"""A restart of the daemon side: reconciliation finds today's entries by orderRef
with their fills, the router never sends them again, and ladder stops keep moving."""

from __future__ import annotations

from decimal import Decimal

import pytest

from breakoutd.core import events as ev
from breakoutd.ibkr.reconcile import reconcile
from breakoutd.ibkr.router import DuplicateOrderError, OrderRouter
from tests.ibkr.test_router import (
    Events,
    daemon_side,
    make_plan,
    rising_market,
    sim_orders,
)
from tests.sim.simkit import DAY, at, connect, px, run, sim, stock, sync, until


def test_restart_reconciles_by_ref_refuses_the_ref_and_keeps_moving_the_ladder_stop() -> None:
    async def body() -> None:
        async with sim(rising_market(), start="09:31:00") as gw:
            plan = make_plan("abc-r", tp=("10.20", "10.40", "10.60"), qty=300)
            other = make_plan("abc-x", ask="9.90")  # a resting entry of the same day
            async with daemon_side(gw) as first:
                entry = await first.router.send(plan, first.contract, px("10.00"))
                await first.router.send(other, first.contract, px("10.00"))
                await first.until(lambda: entry.status == "filled")
                await sync(first.ib)
            # The daemon is down while rung 1 fills: nobody moves the stop, the OCA shrinks it.
            await gw.advance_to(at("09:32:01"))
            assert sim_orders(gw, plan.order_ref)["sl"][0].total_qty == 200
            placed = len(gw.engine.open_orders(None)) + len(gw.engine.completed_orders())

            ib = await connect(gw, 1)
            events = Events()
            found = await reconcile(ib, DAY, gw.now_ns, events)
            assert sorted(found) == [plan.order_ref, other.order_ref]
            rec = found[plan.order_ref]
            assert (rec.watcher_id, rec.symbol, rec.status, rec.bought, rec.sold) == (
                "abc-r", "ABC", "filled", 300, 100)
            assert rec.avg_price == px("10.00")
            assert sorted((f.role, f.rung, f.side, f.qty) for f in rec.fills) == [
                ("entry", 0, "BOT", 300), ("take_profit", 1, "SLD", 100)]
            assert [(o.role, o.rung, o.status) for o in rec.orders] == [
                ("entry", 0, "Filled"), ("stop", 0, "PreSubmitted"),
                ("take_profit", 1, "Filled"), ("take_profit", 2, "Submitted"),
                ("take_profit", 3, "Submitted")]
            assert found[other.order_ref].status == "working"
            assert [(e.order_ref, e.status, e.filled) for e in events.of(ev.OrderReconciled)] == [
                (plan.order_ref, "filled", 300), (other.order_ref, "working", 0)]

            contract = await stock(ib, "ABC")
            # Even without adopt, the broker's orders make the router refuse the ref.
            bare = OrderRouter(ib, account=gw.account, emit=events, clock=gw.now_ns)
            with pytest.raises(DuplicateOrderError):
                await bare.send(plan, contract, px("10.00"))
            bare.close()

            router = OrderRouter(ib, account=gw.account, emit=events, clock=gw.now_ns)
            router.adopt(found, levels={"abc-r": px("10.00")})
            # rung 1 filled while away: the stop goes to the level now
            await until(ib, lambda: len(events.of(ev.StopMoved)) == 1)
            await sync(ib)
            sl = sim_orders(gw, plan.order_ref)["sl"][0]
            assert (sl.aux_price, sl.lmt_price, sl.total_qty) == (px("10.00"), px("9.98"), 200)
            for again in (plan, other):
                with pytest.raises(DuplicateOrderError):
                    await router.send(again, contract, px("10.00"))
            assert len(gw.engine.open_orders(None)) + len(gw.engine.completed_orders()) == placed

            await gw.advance_to(at("09:33:01"))
            await until(ib, lambda: len(events.of(ev.StopMoved)) == 2)
            await sync(ib)
            assert [(m.stop, m.qty) for m in events.of(ev.StopMoved)] == [
                (Decimal("10.00"), 200), (Decimal("10.20"), 100)]
            assert sim_orders(gw, plan.order_ref)["sl"][0].aux_price == px("10.20")
            adopted = router.entry(plan.order_ref)
            assert adopted is not None and (adopted.filled, adopted.sold) == (300, 200)

            await router.cancel_entry(other.order_ref)
            assert router.entry(other.order_ref).status == "cancelled"  # type: ignore[union-attr]
            router.close()
            ib.disconnect()
    run(body())


def test_reconcile_ignores_other_days_and_foreign_refs() -> None:
    async def body() -> None:
        async with sim(rising_market(), start="09:31:00") as gw:
            async with daemon_side(gw) as side:
                mine = make_plan("abc-t", ask="9.90")
                await side.router.send(mine, side.contract, px("10.00"))
                yesterday = make_plan("abc-y", ask="9.90")._replace(
                    order_ref="bo:20260306:rth:abc-y", oca_group="oca:bo:20260306:rth:abc-y")
                await side.router.send(yesterday, side.contract, px("10.00"))
                await side.until(lambda: len(side.events.of(ev.OrderIdAssigned)) == 6)
                events = Events()
                found = await reconcile(side.ib, DAY, gw.now_ns, events)
                assert list(found) == [mine.order_ref]
                assert [o.role for o in found[mine.order_ref].orders] == [
                    "entry", "stop", "take_profit"]
                assert len(events.of(ev.OrderReconciled)) == 1
    run(body())
