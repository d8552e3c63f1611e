"""ib_insync 0.9.86 (API 157..176) and ib_async (157..178) against the sim, as a
new user drives them: the version each negotiates, contract details, quotes
and bars against the tape, a bracket placed, filled, modified and cancelled,
orders found again from openOrder after a reconnect, executions with
commissions, positions; and the handshake of clients the sim cannot serve."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest

from breakoutd.core.bars import MINUTE, NS
from breakoutd.core.prices import to_float
from breakoutd.sim import Market
from breakoutd.sim.contracts import con_id_for
from breakoutd.sim.wire import API_PREFIX, frame
from tests.sim.simkit import RawClient, at, run, sim
from tests.sim.test_wire_market_data import as_tuple, expected_bars, known, rows
from tests.sim.test_wire_orders import bracket_market

# (package, the version it must negotiate with the sim)
CLIENTS = [("ib_insync", 176), ("ib_async", 178)]


async def connected(lib: ModuleType, gw: Any, client_id: int = 1,
                    max_version: int | None = None) -> Any:
    ib = lib.IB()
    if max_version is not None:
        ib.client.MaxClientVersion = max_version
    await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id, timeout=5)
    return ib


async def sync(ib: Any) -> None:
    await ib.reqCurrentTimeAsync()


async def until(ib: Any, predicate: Any, timeout: float = 5) -> None:
    import asyncio

    async def wait() -> None:
        while not predicate():
            await ib.updateEvent

    await asyncio.wait_for(wait(), timeout)


async def stock(lib: ModuleType, ib: Any, symbol: str) -> Any:
    [contract] = await ib.qualifyContractsAsync(lib.Stock(symbol, "SMART", "USD"))
    return contract


@pytest.mark.parametrize(("package", "version"), CLIENTS)
def test_quotes_and_bars_equal_the_tape(package: str, version: int) -> None:
    lib = importlib.import_module(package)
    tape = rows()
    async def body() -> None:
        async with sim(Market(tape), start="09:30:02") as gw:
            ib = await connected(lib, gw)
            assert ib.client.serverVersion() == version
            abc = await stock(lib, ib, "ABC")
            [details] = await ib.reqContractDetailsAsync(abc)
            assert (abc.conId, details.timeZoneId, details.minTick) == (
                con_id_for("ABC"), "US/Eastern", 0.01)
            ticker = ib.reqMktData(abc)
            bars = ib.reqRealTimeBars(abc, 5, "TRADES", False)
            await sync(ib)
            await gw.advance(118)
            await sync(ib)
            last = known(tape, "ABC", gw.now_ns())[-1]
            assert (ticker.bid, ticker.ask) == (to_float(last.bid), to_float(last.ask))
            got = [(int(b.time.timestamp()) * NS, b.open_, b.high, b.low, b.close, b.volume)
                   for b in bars]
            want = expected_bars(tape, "ABC", 5 * NS, at("09:30:00"), at("09:32:00"))
            assert got == [as_tuple(b) for b in want] and len(got) > 10
            history = await ib.reqHistoricalDataAsync(abc, "", "1800 S", "1 min", "TRADES",
                                                      False, formatDate=2)
            want = expected_bars(tape, "ABC", MINUTE, at("09:02:00"), at("09:32:00"))
            assert [(int(b.date.timestamp()) * NS, b.open, b.high, b.low, b.close, b.volume)
                    for b in history] == [as_tuple(b) for b in want]
            head = await ib.reqHeadTimeStampAsync(abc, "TRADES", False, 2)
            first = next(r.time for r in tape if r.symbol == "ABC" and r.close is not None)
            assert int(head.timestamp()) == first // NS
            ib.disconnect()
    run(body())


def _bracket(lib: ModuleType, ib: Any) -> list[Any]:
    parent, take, stop = ib.bracketOrder("BUY", 100, 10.00, 10.50, 9.50)
    for order, ref in ((parent, "p"), (take, "tp"), (stop, "sl")):
        order.orderRef = ref
    return [parent, take, stop]


@pytest.mark.parametrize(("package", "version"), CLIENTS)
def test_bracket_fill_modify_cancel_reconnect_executions_and_positions(
        package: str, version: int) -> None:
    lib = importlib.import_module(package)
    async def body() -> None:
        async with sim(bracket_market(), start="09:31:00") as gw:
            ib = await connected(lib, gw)
            abc, xyz = await stock(lib, ib, "ABC"), await stock(lib, ib, "XYZ")
            parent, take, stop = _bracket(lib, ib)
            trades = [ib.placeOrder(abc, o) for o in (parent, take, stop)]
            await until(ib, lambda: trades[0].orderStatus.status == "Filled")
            await sync(ib)
            assert [t.orderStatus.status for t in trades[1:]] == ["Submitted", "PreSubmitted"]
            assert [(p.contract.symbol, p.position) for p in ib.positions()] == [("ABC", 100.0)]
            stop.auxPrice = 9.60
            ib.placeOrder(abc, stop)
            rest = ib.placeOrder(xyz, lib.LimitOrder("BUY", 200, 19.50, orderRef="rest"))
            await until(ib, lambda: rest.orderStatus.status == "Submitted")
            ib.cancelOrder(rest.order)
            await until(ib, lambda: rest.orderStatus.status == "Cancelled")
            await sync(ib)
            assert [o.aux_price for o, _ in gw.engine.open_orders(1)
                    if o.order_id == stop.orderId] == [9_600_000]
            ib.disconnect()
            # A new session learns the orders from openOrder and the fill from execDetails.
            ib = await connected(lib, gw)
            assert ib.client.serverVersion() == version
            found = {t.order.orderRef: t for t in ib.openTrades()}
            assert set(found) == {"tp", "sl"}
            assert (found["tp"].order.lmtPrice, found["tp"].order.parentId) == (
                10.50, parent.orderId)
            assert (found["sl"].order.orderType, found["sl"].order.auxPrice) == ("STP", 9.60)
            [fill] = ib.fills()
            assert (fill.execution.side, fill.execution.shares, fill.execution.price) == (
                "BOT", 100.0, 10.00)
            assert fill.commissionReport.commission == 1.0
            await gw.advance(61)
            await until(ib, lambda: found["sl"].orderStatus.status == "Cancelled")
            assert found["tp"].orderStatus.status == "Filled"
            await until(ib, lambda: len(ib.fills()) == 2 and
                        ib.fills()[1].commissionReport.commission == 1.0)
            sold = ib.fills()[1].execution
            assert (sold.side, sold.shares, sold.orderRef) == ("SLD", 100.0, "tp")
            assert sold.price >= 10.50
            executions = await ib.reqExecutionsAsync()
            assert [f.execution.orderRef for f in executions] == ["p", "tp"]
            assert [p.position for p in await ib.reqPositionsAsync()] in ([], [0.0])
            completed = await ib.reqCompletedOrdersAsync(False)
            assert {(t.order.orderRef, t.orderStatus.status) for t in completed} >= {
                ("p", "Filled"), ("tp", "Filled"), ("sl", "Cancelled"), ("rest", "Cancelled")}
            ib.disconnect()
    run(body())


def test_ib_async_limited_to_an_older_version_is_served_that_version() -> None:
    lib = importlib.import_module("ib_async")
    async def body() -> None:
        async with sim(bracket_market(), start="09:31:00") as gw:
            ib = await connected(lib, gw, max_version=165)
            assert ib.client.serverVersion() == 165
            abc = await stock(lib, ib, "ABC")
            parent, take, stop = _bracket(lib, ib)
            trades = [ib.placeOrder(abc, o) for o in (parent, take, stop)]
            await until(ib, lambda: trades[0].orderStatus.status == "Filled")
            await until(ib, lambda: bool(ib.fills()) and ib.fills()[0].commissionReport.commission)
            ib.disconnect()
            ib = await connected(lib, gw, max_version=165)
            found = {t.order.orderRef: t.order for t in ib.openTrades()}
            assert (found["tp"].parentId, found["tp"].lmtPrice) == (parent.orderId, 10.50)
            assert (found["sl"].parentId, found["sl"].auxPrice) == (parent.orderId, 9.50)
            assert [f.execution.orderRef for f in ib.fills()] == ["p"]
            ib.disconnect()
    run(body())


@pytest.mark.parametrize(("offer", "answer"), [
    (b"v157..176", "176"), (b"v100..226", "178"), (b"v157..178", "178"),
    (b"v170..170", "170"), (b"v179..200 +PACEAPI", "178")])
def test_the_handshake_answers_the_lower_of_both_maxima(offer: bytes, answer: str) -> None:
    async def body() -> None:
        async with sim(bracket_market()) as gw:
            client = await RawClient.open(gw)
            client.writer.write(API_PREFIX + frame(offer))
            version, _time = await client.next()
            assert version == answer
            await client.close()
    run(body())


@pytest.mark.parametrize("offer", [b"v100..156", b"v150..150", b"v170..160"])
def test_a_client_the_sim_cannot_serve_is_turned_away(offer: bytes) -> None:
    async def body() -> None:
        async with sim(bracket_market()) as gw:
            client = await RawClient.open(gw)
            client.writer.write(API_PREFIX + frame(offer))
            with pytest.raises((EOFError, ConnectionError)):
                await client.next()
            await client.close()
    run(body())
