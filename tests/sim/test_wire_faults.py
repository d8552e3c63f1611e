"""Each fault the sim injects, as the unmodified ib_async client receives it."""

from __future__ import annotations

from typing import Any

import pytest
from ib_async import IB, LimitOrder

from breakoutd.sim import Market, parse_fault
from breakoutd.sim.faults import FaultSpecError
from tests.sim.simkit import DAY, Errors, at, connect, run, sim, stock, sync, until, walk


def market() -> Market:
    return Market(walk(21, "ABC", start="09:00:00", seconds=7200)
                  + walk(22, "XYZ", start="09:00:00", seconds=7200, price="20.00"))


def test_drop_connections_then_reconnect() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = await connect(gw)
            gone = ib.disconnectedEvent
            gw.drop_connections()
            await gone
            assert not ib.isConnected()
            await connect(gw, 1, ib)
            assert ib.isConnected()
            ib.disconnect()
    run(body())


def test_refuse_connections_for_a_while() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            gw.refuse_connections(0.2)
            with pytest.raises(ConnectionRefusedError):
                await IB().connectAsync("127.0.0.1", gw.port, clientId=1, timeout=2)
            await gw.until_listening()
            ib = await connect(gw)
            ib.disconnect()
    run(body())


def test_restart_clean_forgets_the_account_restart_kept_does_not() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = await connect(gw)
            abc = await stock(ib, "ABC")
            trade = ib.placeOrder(abc, LimitOrder("BUY", 100, 60.00))
            await until(ib, lambda: trade.orderStatus.status == "Filled")
            gone = ib.disconnectedEvent
            gw.restart(keep_state=True)
            await gone
            await gw.until_listening()
            await connect(gw, 1, ib)
            assert [p.position for p in ib.positions()] == [100.0]
            gone = ib.disconnectedEvent
            gw.restart(keep_state=False)
            await gone
            await gw.until_listening()
            fresh = await connect(gw, 1)
            assert fresh.positions() == [] and fresh.fills() == []
            fresh.disconnect()
    run(body())


def _quote(ticker: Any) -> tuple[float, float]:
    return (ticker.bid, ticker.ask)


def test_connectivity_notices_stop_and_resume_market_data() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = IB()
            errors = Errors(ib)
            await connect(gw, 1, ib)
            ticker = ib.reqMktData(await stock(ib, "ABC"))
            await gw.advance(5)
            await sync(ib)
            gw.send_notice(1100)
            await until(ib, lambda: 1100 in errors.codes())
            frozen = _quote(ticker)
            await gw.advance(120)
            await sync(ib)
            assert _quote(ticker) == frozen
            gw.send_notice(1102)
            await gw.advance(60)
            await until(ib, lambda: 1102 in errors.codes())
            await sync(ib)
            state = gw.market.states["ABC"]
            assert _quote(ticker) == (state.bid / 1e6, state.ask / 1e6)
            gw.send_notice(1101)
            await until(ib, lambda: 1101 in errors.codes())
            assert list(gw.feeds.all_subs()) == []  # data lost: the client resubscribes
            gw.send_notice(2103)
            gw.send_notice(2104)
            await until(ib, lambda: 2104 in errors.codes())
            assert errors.codes()[-2:] == [2103, 2104]
            ib.disconnect()
    run(body())


def test_reject_next_order() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = IB()
            errors = Errors(ib)
            await connect(gw, 1, ib)
            abc = await stock(ib, "ABC")
            gw.reject_next_order()
            rejected = ib.placeOrder(abc, LimitOrder("BUY", 100, 40.00))
            await until(ib, lambda: rejected.orderStatus.status in ("Cancelled", "Inactive"))
            assert 201 in errors.codes()
            accepted = ib.placeOrder(abc, LimitOrder("BUY", 100, 40.00))
            await until(ib, lambda: accepted.orderStatus.status == "Submitted")
            ib.disconnect()
    run(body())


def test_delayed_acks_arrive_after_later_replies() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = await connect(gw)
            abc = await stock(ib, "ABC")
            gw.delay_acks(60_000)
            trade = ib.placeOrder(abc, LimitOrder("BUY", 100, 40.00))
            await sync(ib)  # answered at once, while the ack is held back
            assert trade.orderStatus.status == "PendingSubmit"
            gw.delay_acks(0)  # ending the fault sends what was held, in order
            await until(ib, lambda: trade.orderStatus.status == "Submitted")
            gw.delay_acks(20)
            later = ib.placeOrder(abc, LimitOrder("BUY", 100, 41.00))
            await until(ib, lambda: later.orderStatus.status == "Submitted")  # by the timer
            ib.disconnect()
    run(body())


def test_duplicate_order_status_messages() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = await connect(gw)
            abc = await stock(ib, "ABC")
            seen: list[str] = []
            original = ib.wrapper.orderStatus

            def count(order_id: int, status: str, *args: Any) -> None:
                seen.append(status)
                original(order_id, status, *args)

            ib.wrapper.orderStatus = count  # type: ignore[method-assign]
            ib.client.decoder.handlers[3] = ib.client.decoder.wrap(
                "orderStatus", [int, str, float, float, float, int, int, float, int, str, float],
                skip=1)
            gw.duplicate_order_status(True)
            trade = ib.placeOrder(abc, LimitOrder("BUY", 100, 40.00))
            await until(ib, lambda: trade.orderStatus.status == "Submitted")
            await sync(ib)
            assert seen == ["Submitted", "Submitted"]
            assert len(trade.fills) == 0
            ib.disconnect()
    run(body())


def test_stalled_symbol_gets_no_data_while_others_do() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = await connect(gw)
            abc, xyz = ib.reqMktData(await stock(ib, "ABC")), ib.reqMktData(await stock(ib, "XYZ"))
            await sync(ib)
            gw.stop_market_data("ABC")
            frozen, moving = _quote(abc), _quote(xyz)
            await gw.advance(300)
            await sync(ib)
            assert _quote(abc) == frozen and _quote(xyz) != moving
            gw.resume_market_data("ABC")
            await gw.advance(300)
            await sync(ib)
            assert _quote(abc) != frozen
            ib.disconnect()
    run(body())


def test_scheduled_faults_fire_on_the_virtual_clock() -> None:
    async def body() -> None:
        faults = [parse_fault("notice=2103@09:31", DAY), parse_fault("notice=2104@09:31:30", DAY)]
        async with sim(market(), faults=faults) as gw:
            ib = IB()
            errors = Errors(ib)
            await connect(gw, 1, ib)
            await gw.advance(59)
            await sync(ib)
            assert 2103 not in errors.codes()
            await gw.advance(31)
            await until(ib, lambda: 2104 in errors.codes())
            assert errors.codes()[-2:] == [2103, 2104]
            assert gw.faults.fired == ["notice=2103@09:31", "notice=2104@09:31:30"]
            ib.disconnect()
    run(body())


def test_fault_specs_parse_or_say_what_is_wrong() -> None:
    assert parse_fault("drop@09:40:00", DAY).at_ns == at("09:40:00")
    assert parse_fault("stall=SPY", DAY).arg == "SPY"
    assert parse_fault("delay=250@10:00", DAY).kind == "delay"
    for bad, why in (("explode", "unknown kind"), ("notice=1234", "not one of"),
                     ("refuse", "needs a number"), ("drop@25:00", "HH:MM"),
                     ("stall", "needs a SYMBOL")):
        with pytest.raises(FaultSpecError, match=why):
            parse_fault(bad, DAY)
