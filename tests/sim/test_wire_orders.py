"""Orders through the wire with the unmodified ib_async client: brackets,
modify, cancel, several clients, and a gateway restart."""

from __future__ import annotations

from typing import Any

from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder, Stock, StopOrder

from breakoutd.core.bars import NS
from breakoutd.sim import Market, Row
from breakoutd.sim.contracts import con_id_for
from tests.sim.simkit import (
    Errors,
    RawClient,
    at,
    connect,
    ib_request,
    row,
    run,
    sim,
    stock,
    sync,
    until,
)


def steady(symbol: str, start: str, seconds: int, bid: str, ask: str, last: str,
           volume: int = 1000) -> list[Row]:
    """A quiet market: the same quote and a print at ``last`` every second."""
    t0 = at(start)
    return [row(t0 + i * NS, symbol, (last, last, last, last, volume), bid, ask, 1000, 1000)
            for i in range(seconds)]


def bracket_market() -> Market:
    """ABC sits at 9.99/10.00 until 09:32, then trades up at 10.55."""
    return Market(steady("ABC", "09:00:00", 32 * 60, "9.99", "10.00", "10.00")
                  + steady("ABC", "09:32:00", 60, "10.54", "10.55", "10.55")
                  + steady("XYZ", "09:00:00", 40 * 60, "20.00", "20.02", "20.01"))


def statuses(trade: Any) -> list[str]:
    """The distinct states a trade went through, in order."""
    seen: list[str] = []
    for entry in trade.log:
        if not seen or seen[-1] != entry.status:
            seen.append(entry.status)
    return seen


def test_bracket_parent_fills_one_child_fills_the_other_is_cancelled() -> None:
    async def body() -> None:
        async with sim(bracket_market(), start="09:31:00") as gw:
            ib = await connect(gw)
            abc = await stock(ib, "ABC")
            parent, take, stop = ib.bracketOrder("BUY", 100, 10.00, 10.50, 9.50)
            trades = [ib.placeOrder(abc, o) for o in (parent, take, stop)]
            await until(ib, lambda: trades[0].orderStatus.status == "Filled")
            await sync(ib)
            # the target works; the stop waits for its trigger, as IB shows simulated stops
            assert [t.orderStatus.status for t in trades[1:]] == ["Submitted", "PreSubmitted"]
            assert [p.position for p in ib.positions()] == [100.0]
            await gw.advance(61)
            await until(ib, lambda: trades[2].orderStatus.status == "Cancelled")
            assert statuses(trades[0])[-1] == "Filled"
            assert statuses(trades[1])[-2:] == ["Submitted", "Filled"]
            assert statuses(trades[2])[-1] == "Cancelled"
            await sync(ib)
            assert ib.positions() == []
            fills = ib.fills()
            assert [(f.execution.side, f.execution.shares) for f in fills] == [
                ("BOT", 100.0), ("SLD", 100.0)]
            assert fills[0].execution.price == 10.00 and fills[1].execution.price >= 10.50
            assert [f.commissionReport.commission for f in fills] == [1.0, 1.0]
            gain = round((fills[1].execution.price - 10.00) * 100 - 2.0, 2)
            assert fills[1].commissionReport.realizedPNL == gain
            values = {v.tag: v.value for v in ib.accountValues() if not v.modelCode}
            assert float(values["RealizedPnL"]) == gain
            assert float(values["NetLiquidation"]) == 1_000_000 + gain
            ib.disconnect()
    run(body())


def test_bracket_children_wait_for_the_transmitting_child() -> None:
    async def body() -> None:
        async with sim(bracket_market(), start="09:31:00") as gw:
            ib = await connect(gw)
            abc = await stock(ib, "ABC")
            parent, take, stop = ib.bracketOrder("BUY", 100, 9.90, 10.50, 9.50)
            held = [ib.placeOrder(abc, o) for o in (parent, take)]
            await sync(ib)
            assert [t.orderStatus.status for t in held] == ["PendingSubmit"] * 2
            assert gw.engine.open_orders(None) == []
            last = ib.placeOrder(abc, stop)
            await until(ib, lambda: last.orderStatus.status == "PreSubmitted")
            assert held[0].orderStatus.status == "Submitted"  # working, below the market
            assert held[1].orderStatus.status == "PreSubmitted"  # waits for its parent
            ib.disconnect()
    run(body())


def test_modify_then_cancel_a_resting_order() -> None:
    async def body() -> None:
        async with sim(bracket_market(), start="09:31:00") as gw:
            ib = IB()
            errors = Errors(ib)
            await connect(gw, 1, ib)
            xyz = await stock(ib, "XYZ")
            order = LimitOrder("BUY", 200, 19.50, orderRef="w-xyz", tif="DAY")
            trade = ib.placeOrder(xyz, order)
            await until(ib, lambda: trade.orderStatus.status == "Submitted")
            order.lmtPrice = 19.75
            order.totalQuantity = 300
            ib.placeOrder(xyz, order)
            await until(ib, lambda: trade.orderStatus.remaining == 300)
            [(open_order, status)] = gw.engine.open_orders(1)
            assert (open_order.lmt_price, open_order.total_qty, status) == (19_750_000, 300,
                                                                             "Submitted")
            assert trade.order.lmtPrice == 19.75 and trade.orderStatus.remaining == 300
            ib.cancelOrder(order)
            await until(ib, lambda: trade.orderStatus.status == "Cancelled")
            ib.cancelOrder(order)
            await until(ib, lambda: 10148 in errors.codes())
            ib.client.cancelOrder(9999, "")  # never placed
            await until(ib, lambda: 10147 in errors.codes())
            assert gw.engine.open_orders(None) == []
            ib.disconnect()
    run(body())


def test_market_and_stop_orders_and_global_cancel() -> None:
    async def body() -> None:
        async with sim(bracket_market(), start="09:31:00") as gw:
            ib = await connect(gw)
            abc = await stock(ib, "ABC")
            buy = ib.placeOrder(abc, MarketOrder("BUY", 300))
            stop = ib.placeOrder(abc, StopOrder("BUY", 100, 10.40))
            rest = ib.placeOrder(abc, LimitOrder("SELL", 100, 11.00))
            await until(ib, lambda: buy.orderStatus.status == "Filled")
            assert buy.orderStatus.avgFillPrice == 10.00
            await until(ib, lambda: stop.orderStatus.status == "PreSubmitted")
            await gw.advance(61)
            await until(ib, lambda: stop.orderStatus.status == "Filled")
            ib.reqGlobalCancel()
            await until(ib, lambda: rest.orderStatus.status == "Cancelled")
            await sync(ib)
            assert [p.position for p in ib.positions()] == [400.0]
            ib.disconnect()
    run(body())


def test_several_clients_all_open_orders_and_all_executions() -> None:
    async def body() -> None:
        async with sim(bracket_market(), start="09:31:00") as gw:
            one, two = await connect(gw, 1), await connect(gw, 2)
            abc, xyz = await stock(one, "ABC"), await stock(two, "XYZ")
            filled = one.placeOrder(abc, LimitOrder("BUY", 100, 10.00, orderRef="one-abc"))
            resting = two.placeOrder(xyz, LimitOrder("BUY", 100, 19.00, orderRef="two-xyz"))
            await until(one, lambda: filled.orderStatus.status == "Filled")
            await until(two, lambda: resting.orderStatus.status == "Submitted")
            assert filled.order.orderId == resting.order.orderId  # each client its own ids
            three = await connect(gw, 3)
            assert three.openTrades() == []
            trades = await three.reqAllOpenOrdersAsync()
            assert [t.order.orderRef for t in trades] == ["two-xyz"]
            fills = await three.reqExecutionsAsync(ExecutionFilter())
            assert [(f.execution.clientId, f.execution.orderRef) for f in fills] == [
                (1, "one-abc")]
            # ib_async keeps commission reports on the fills it already knew
            assert [f.commissionReport.commission for f in three.fills()] == [1.0]
            mine = await two.reqExecutionsAsync(ExecutionFilter(clientId=2))
            assert mine == []
            for ib in (one, two, three):
                ib.disconnect()
    run(body())


def test_reconnect_after_restart_finds_orders_by_ref_and_executions() -> None:
    async def body() -> None:
        async with sim(bracket_market(), start="09:31:00") as gw:
            ib = await connect(gw, 4)
            abc = await stock(ib, "ABC")
            done = ib.placeOrder(abc, LimitOrder("BUY", 100, 10.00, orderRef="entry-1"))
            ib.placeOrder(abc, LimitOrder("SELL", 100, 12.00, orderRef="exit-1"))
            await until(ib, lambda: done.orderStatus.status == "Filled")
            await sync(ib)
            gone = ib.disconnectedEvent
            gw.restart(keep_state=True)
            await gone
            await gw.until_listening()
            again = await connect(gw, 4)
            by_ref = {t.order.orderRef: t for t in again.openTrades()}
            assert list(by_ref) == ["exit-1"]
            assert by_ref["exit-1"].orderStatus.status == "Submitted"
            assert [f.execution.orderRef for f in again.fills()] == ["entry-1"]
            assert again.fills()[0].commissionReport.commission == 1.0
            assert [p.position for p in again.positions()] == [100.0]
            completed = await again.reqCompletedOrdersAsync(False)
            assert [(t.order.orderRef, t.orderStatus.status) for t in completed] == [
                ("entry-1", "Filled")]
            next_order = LimitOrder("SELL", 100, 12.50)
            trade = again.placeOrder(abc, next_order)
            await until(again, lambda: trade.orderStatus.status == "Submitted")
            assert next_order.orderId > by_ref["exit-1"].order.orderId
            again.disconnect()
    run(body())


def test_wire_order_of_acks_fills_and_duplicate_order_id() -> None:
    async def body() -> None:
        async with sim(bracket_market(), start="09:31:00") as gw:
            raw = await RawClient.open(gw)
            await raw.handshake(6)
            abc = Stock("ABC", "SMART", "USD", conId=con_id_for("ABC"))
            place = ib_request("placeOrder", 1, abc, LimitOrder("BUY", 100, 10.00))
            raw.send(place)
            ids: list[str] = []
            while "59" not in ids:
                ids.append((await raw.next())[0])
            ids = [i for i in ids if i in ("3", "5", "11", "59")]
            assert ids.index("5") < ids.index("3")  # openOrder before orderStatus
            assert ids.index("11") < ids.index("59")  # execDetails, then its commission
            assert ids[-1] == "59"
            raw.send(place)  # the same order id again, now that it is done
            error = await raw.next_of(4)
            assert error[2:4] == ["1", "103"]
            await raw.close()
    run(body())
