"""Stop moves the router could not send, or lost with the connection, go out after a resync."""

from __future__ import annotations

from tests.ibkr.test_router import daemon_side, make_plan, rising_market, sim_orders
from tests.sim.simkit import connect, px, run, sim, sync


def test_a_stop_move_decided_while_disconnected_reaches_the_broker_after_the_resync() -> None:
    async def body() -> None:
        async with sim(rising_market(), start="09:31:00") as gw, daemon_side(gw) as side:
            plan = make_plan("abc-d")
            entry = await side.router.send(plan, side.contract, px("10.00"))
            await side.until(lambda: entry.status == "filled")
            side.ib.disconnect()  # ib_async forgets its trades: nothing to modify now
            await side.router.modify_exits(plan.order_ref, None, px("9.70"))
            assert sim_orders(gw, plan.order_ref)["sl"][0].aux_price == px("9.80")
            await connect(gw, 1, ib=side.ib)
            await side.router.resync()
            await sync(side.ib)
            sl = sim_orders(gw, plan.order_ref)["sl"][0]
            assert (sl.aux_price, sl.lmt_price, sl.total_qty) == (px("9.70"), px("9.68"), 100)
            await side.router.resync()  # the broker has it now: nothing is sent again
            await sync(side.ib)
            [trade] = [t for t in side.ib.trades() if t.order.orderId == entry.stop_id]
            assert [x.message for x in trade.log].count("Modify") == 1
    run(body())
