"""Connecting with the unmodified ib_async client: startup, contracts, time, errors."""

from __future__ import annotations

import datetime as dt
import time

from ib_async import IB, Stock

from breakoutd.sim import Market
from tests.sim.simkit import Errors, RawClient, at, connect, run, sim, sync, until, walk


def market() -> Market:
    return Market(walk(1, "ABC") + walk(2, "XYZ", price="12.00"))


def test_connect_async_gets_every_startup_answer() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = IB()
            errors = Errors(ib)
            await connect(gw, 7, ib)
            assert ib.isConnected() and ib.managedAccounts() == ["DU0000001"]
            assert ib.positions() == [] and ib.openTrades() == [] and ib.fills() == []
            values = {v.tag: v.value for v in ib.accountValues()}
            assert values["NetLiquidation"] == "1000000.00"
            assert values["TotalCashValue"] == "1000000.00"
            assert {2104, 2106, 2158} <= set(errors.codes())
            assert ib.client.getReqId() >= 1
            ib.disconnect()
    run(body())


def test_qualify_contract_and_read_holiday_and_early_close_hours() -> None:
    wednesday = dt.date(2026, 11, 25)  # Thanksgiving is the 26th, the 27th closes at 13:00
    async def body() -> None:
        async with sim(Market(walk(1, "SPY", day=wednesday, price="600.00")),
                       day=wednesday) as gw:
            ib = await connect(gw)
            [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
            assert spy.conId == 756733 and spy.primaryExchange == "ARCA"
            [details] = await ib.reqContractDetailsAsync(spy)
            assert details.timeZoneId == "US/Eastern" and details.minTick == 0.01
            trading = details.tradingHours.split(";")
            liquid = details.liquidHours.split(";")
            assert trading[0] == "20261125:0400-20261125:2000"
            assert "20261126:CLOSED" in trading and "20261126:CLOSED" in liquid
            assert "20261127:0400-20261127:1700" in trading
            assert "20261127:0930-20261127:1300" in liquid
            sessions = details.liquidSessions()
            assert sessions[0].start.hour == 9 and sessions[0].start.minute == 30
            ib.disconnect()
    run(body())


def test_unknown_symbol_is_error_200() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = IB()
            errors = Errors(ib)
            await connect(gw, 1, ib)
            assert await ib.qualifyContractsAsync(Stock("NOPE", "SMART", "USD")) == [None]
            assert 200 in errors.codes()
            ticker = ib.reqMktData(Stock("NOPE", "SMART", "USD", conId=4242))
            await until(ib, lambda: errors.codes().count(200) == 2)
            assert ticker.bid != ticker.bid or ticker.bid <= 0  # nan: nothing was streamed
            ib.disconnect()
    run(body())


def test_current_time_follows_the_virtual_clock() -> None:
    async def body() -> None:
        async with sim(market(), start="09:30:00") as gw:
            ib = await connect(gw)
            first = await ib.reqCurrentTimeAsync()
            assert first.timestamp() == at("09:30:00") / 1e9
            await gw.advance(90)
            later = await ib.reqCurrentTimeAsync()
            assert later.timestamp() == at("09:31:30") / 1e9
            ib.disconnect()
    run(body())


def test_client_id_in_use_is_refused_with_326() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            first = await connect(gw, 5)
            raw = await RawClient.open(gw)
            version, conn_time = await raw.handshake(5)
            assert version == "178" and conn_time.endswith("US/Eastern")
            error = await raw.next_of(4)
            assert error[2:4] == ["-1", "326"]
            try:
                while True:
                    await raw.next()
            except EOFError:
                pass
            await raw.close()
            await sync(first)  # the holder of the id is undisturbed
            assert first.isConnected()
            first.disconnect()
    run(body())


def test_several_clients_each_with_their_own_ids() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            one, two = await connect(gw, 1), await connect(gw, 2)
            assert sorted(gw.clients) == [1, 2]
            one.disconnect()
            await sync(two)
            assert sorted(gw.clients) == [2]
            two.disconnect()
    run(body())


def test_unsupported_requests_get_a_clear_error_and_the_session_goes_on() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = IB()
            errors = Errors(ib)
            await connect(gw, 1, ib)
            [abc] = await ib.qualifyContractsAsync(Stock("ABC", "SMART", "USD"))
            ticker = ib.reqMktDepth(abc)
            await until(ib, lambda: 322 in errors.codes())
            req_id, code, message = errors.items[-1]
            assert ib.wrapper.reqId2Ticker.get(req_id) is ticker
            assert "does not support reqMktDepth" in message
            raw = await RawClient.open(gw)
            await raw.handshake(9)
            raw.send([999, 1, 2, 3])
            reply = await raw.next_of(4)
            while reply[3] != "322":
                reply = await raw.next_of(4)
            assert "message id 999" in reply[4]
            raw.send([49, 1])
            assert (await raw.next_of(49))[2] == str(at("09:30:00") // 10**9)
            await raw.close()
            await sync(ib)
            ib.disconnect()
    run(body())


def test_message_rate_over_the_limit_gets_error_100() -> None:
    async def body() -> None:
        async with sim(market(), rate_limit=10) as gw:
            ib = IB()
            errors = Errors(ib)
            await connect(gw, 1, ib)
            other = await connect(gw, 2)
            later = time.monotonic_ns() + 60 * 10**9
            gw.monotonic_ns = lambda: later  # every message below arrives in the same instant
            ib.client.MaxRequests = 0  # no client-side throttling
            times: list[object] = []
            ib.wrapper.currentTime = lambda t: times.append(t)  # type: ignore[method-assign]
            for _ in range(30):
                ib.client.reqCurrentTime()
            await until(ib, lambda: errors.codes().count(100) + len(times) == 30)
            assert len(times) == 10 and errors.codes().count(100) == 20
            await sync(other)  # another client is not limited by this one
            ib.disconnect()
            other.disconnect()
    run(body())
