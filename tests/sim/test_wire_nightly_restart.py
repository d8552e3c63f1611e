"""The nightly restart as IB documents it: order ids continue where each client
left them, GTC orders survive it (DAY ones expired at the close), and
executions are delivered for the current day only."""

from __future__ import annotations

import datetime as dt

from ib_async import IB, LimitOrder

from breakoutd.core.bars import NS
from breakoutd.sim import Market
from tests.sim.simkit import DAY, at, connect, run, sim, stock, sync, until, walk

NEXT_DAY = DAY + dt.timedelta(days=1)


def test_ids_gtc_orders_and_the_days_executions_across_the_nightly_restart() -> None:
    tape = walk(5, "ABC", start="09:30:00", seconds=1800, price="10.00") + walk(
        6, "ABC", start="09:30:00", seconds=600, price="10.00", day=NEXT_DAY)
    async def body() -> None:
        async with sim(Market(tape), start="09:35:00") as gw:
            ib = await connect(gw, 4)
            abc = await stock(ib, "ABC")
            ask = ib.reqMktData(abc)
            await until(ib, lambda: ask.ask == ask.ask)  # a number, not nan
            bought = ib.placeOrder(abc, LimitOrder("BUY", 100, ask.ask + 0.05, orderRef="buy"))
            gtc = ib.placeOrder(abc, LimitOrder("SELL", 100, 50.00, tif="GTC", orderRef="gtc"))
            day = ib.placeOrder(abc, LimitOrder("BUY", 100, 1.00, tif="DAY", orderRef="day"))
            await until(ib, lambda: bought.orderStatus.status == "Filled"
                        and gtc.orderStatus.status == "Submitted"
                        and day.orderStatus.status == "Submitted")
            await until(ib, lambda: len(ib.fills()) == 1)
            used = max(t.order.orderId for t in (bought, gtc, day))
            ib.disconnect()
            await gw.advance_to(at("23:45:00"))
            gw.restart()
            await gw.until_listening()
            await gw.advance_to(at("09:32:00", NEXT_DAY))
            ib = IB()
            await connect(gw, 4, ib)
            assert ib.client.getReqId() > used  # the client's id sequence goes on
            assert [t.order.orderRef for t in ib.openTrades()] == ["gtc"]
            assert ib.fills() == []  # yesterday's executions are not delivered
            assert [(p.contract.symbol, p.position) for p in ib.positions()] == [("ABC", 100.0)]
            await sync(ib)
            assert gw.now_ns() // NS == at("09:32:00", NEXT_DAY) // NS
            ib.disconnect()
    run(body(), timeout=90)
