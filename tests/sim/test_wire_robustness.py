"""Garbage, truncated requests, random bytes and vanishing clients never crash the
sim nor disturb a well-behaved client connected at the same time."""

from __future__ import annotations

import asyncio
import random
import socket

from ib_async import ExecutionFilter, LimitOrder, MarketOrder, Stock, StopLimitOrder, StopOrder

from breakoutd.sim import Market
from breakoutd.sim.contracts import con_id_for
from breakoutd.sim.requests import HANDLERS
from breakoutd.sim.wire import API_PREFIX, MAX_FRAME, encode, frame
from tests.sim.simkit import RawClient, connect, ib_request, run, sim, stock, sync, walk

FUZZ_SEED = 20260309
FUZZ_ITERATIONS = 300


def market() -> Market:
    return Market(walk(31, "ABC", start="09:00:00", seconds=3600))


def random_field(rnd: random.Random) -> str:
    return rnd.choice([
        "", "0", "-1", "1", str(rnd.randint(-10**12, 10**12)), "ABC", "NOPE", "STK", "SMART",
        "USD", "1.5", "nan", "inf", "1e308", "x" * rnd.randint(0, 300), "\u00e9\u00e8",
        "BUY", "LMT", "MKT", "STP LMT", "20260309 09:30:00", "1 min", "1800 S", "TRADES",
    ])


def valid_requests() -> list[list[object]]:
    """The requests ib_async itself sends for a range of calls, as field lists."""
    abc = Stock("ABC", "SMART", "USD", conId=con_id_for("ABC"))
    calls: list[tuple[str, tuple[object, ...]]] = [
        ("reqMktData", (1, abc, "", False, False, [])),
        ("reqMktData", (2, abc, "", True, False, [])),
        ("reqContractDetails", (3, abc)),
        ("reqHistoricalData", (4, abc, "", "1800 S", "1 min", "TRADES", 0, 1, True, [])),
        ("reqRealTimeBars", (5, abc, 5, "TRADES", False, [])),
        ("reqTickByTickData", (6, abc, "AllLast", 0, False)),
        ("cancelOrder", (7, "")),
        ("reqExecutions", (8, ExecutionFilter(symbol="ABC", side="BUY",
                                              time="20260309 09:00:00"))),
        ("reqAccountUpdates", (True, "DU0000001")),
        ("reqAccountUpdatesMulti", (9, "DU0000001", "", False)),
        ("reqAccountSummary", (10, "All", "NetLiquidation,BuyingPower")),
        ("reqPositions", ()), ("reqCompletedOrders", (False,)), ("reqAllOpenOrders", ()),
        ("cancelMktData", (1,)), ("cancelHistoricalData", (4,)), ("cancelRealTimeBars", (5,)),
        ("cancelTickByTickData", (6,)),
    ]
    for order in (LimitOrder("BUY", 100, 50.0, orderRef="x"), MarketOrder("SELL", 10),
                  StopOrder("SELL", 10, 49.0, outsideRth=True),
                  StopLimitOrder("BUY", 5, 51.0, 50.5, ocaGroup="g", ocaType=2, parentId=7)):
        calls.append(("placeOrder", (7, abc, order)))
    return [ib_request(method, *args) for method, args in calls]


def random_message(rnd: random.Random, corpus: list[list[object]]) -> list[object]:
    """A valid request with a few fields replaced, dropped or cut, or pure noise."""
    if rnd.random() < 0.15:
        msg_id = rnd.choice([*HANDLERS, 0, 999, rnd.randint(-5, 200)])
        return [msg_id, *(random_field(rnd) for _ in range(rnd.randint(0, 130)))]
    fields: list[object] = list(rnd.choice(corpus))
    for _ in range(rnd.randint(1, 3)):
        if len(fields) < 2:
            break
        i = rnd.randrange(1, len(fields))
        action = rnd.random()
        if action < 0.6:
            fields[i] = random_field(rnd)
        elif action < 0.8:
            del fields[i]
        else:
            fields = fields[:i]
    return fields


def test_fuzzed_requests_do_not_disturb_other_clients() -> None:
    rnd = random.Random(FUZZ_SEED)
    corpus = valid_requests()

    async def body() -> None:
        async with sim(market(), rate_limit=10_000) as gw:
            good = await connect(gw, 1)
            ticker = good.reqMktData(await stock(good, "ABC"))
            client_id = 100
            for _batch in range(FUZZ_ITERATIONS // 30):
                raw = await RawClient.open(gw)
                client_id += 1
                await raw.handshake(client_id)
                for _ in range(30):
                    raw.send(random_message(rnd, corpus))
                raw.send([49, 1])  # still answering this client
                try:
                    await raw.next_of(49)
                except EOFError:
                    pass  # the sim may drop a client whose garbage it cannot frame
                await raw.close()
                await gw.advance(1)
                await sync(good)  # the well-behaved client is still served
            assert good.isConnected() and ticker.bid > 0
            assert len(gw.sessions) == 1
            good.disconnect()
    run(body())


def test_random_bytes_and_bad_frames_close_only_that_connection() -> None:
    rnd = random.Random(FUZZ_SEED + 1)

    async def body() -> None:
        async with sim(market()) as gw:
            good = await connect(gw, 1)
            payloads = [bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 2000)))
                        for _ in range(40)]
            payloads += [
                API_PREFIX + frame(b"v1..2"),  # versions the sim cannot speak
                API_PREFIX + frame(b"garbage"),
                API_PREFIX + (MAX_FRAME + 1).to_bytes(4, "big"),
                API_PREFIX + frame(b"v157..178") + (MAX_FRAME + 5).to_bytes(4, "big") + b"xx",
                API_PREFIX + frame(b"v157..178") + encode([5, 1]),  # a request before startApi
                API_PREFIX + frame(b"v157..178") + encode([71, 2, 9, ""]) + b"\0\0\0\x09half",
            ]
            for data in payloads:
                reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
                writer.write(data)
                await writer.drain()
                writer.close()  # vanish, maybe mid-message
                await sync(good)
            await gw.advance(2)
            await sync(good)
            assert good.isConnected()
            again = await connect(gw, 2)
            again.disconnect()
            good.disconnect()
    run(body())


def test_truncated_known_requests_get_error_320_and_the_session_goes_on() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            raw = await RawClient.open(gw)
            await raw.handshake(3)
            raw.send([3, 42, 0, "ABC"])  # placeOrder cut short
            reply = await raw.next_of(4)
            while reply[3] != "320":
                reply = await raw.next_of(4)
            assert reply[2] == "42" and "missing field" in reply[4]
            raw.send([9, 8, 7, 0, "ABC", "STK"])  # reqContractDetails cut short
            reply = await raw.next_of(4)
            assert reply[2:4] == ["7", "320"]
            raw.send([49, 1])
            assert (await raw.next_of(49))[0] == "49"
            await raw.close()
    run(body())


def test_client_vanishing_with_subscriptions_and_orders_in_flight() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            good = await connect(gw, 1)
            leaving = await connect(gw, 2)
            abc = await stock(leaving, "ABC")
            leaving.reqMktData(abc)
            leaving.reqRealTimeBars(abc, 5, "TRADES", False)
            await sync(leaving)
            leaving.client.conn.transport.abort()  # gone without a goodbye
            await gw.advance(30)
            await sync(good)
            assert sorted(gw.clients) == [1] and list(gw.feeds.all_subs()) == []
            good.disconnect()
    run(body())


def test_a_client_that_stops_reading_is_dropped_and_others_go_on() -> None:
    async def body() -> None:
        tape = [r for seed, sym in enumerate(("ABC", "DEF", "GHI"))
                for r in walk(50 + seed, sym, start="09:00:00", seconds=7200)]
        async with sim(Market(tape), max_buffered=64 << 10) as gw:
            good = await connect(gw, 1)
            stalled = await RawClient.open(gw)
            await stalled.handshake(2)
            for req_id, symbol in enumerate(("ABC", "DEF", "GHI"), start=1):
                contract = Stock(symbol, "SMART", "USD", conId=con_id_for(symbol))
                stalled.send(ib_request("reqMktData", req_id, contract, "", False, False, []))
                stalled.send(ib_request("reqTickByTickData", 10 + req_id, contract, "AllLast",
                                        0, False))
            await stalled.next_of(9)  # nextValidId: the session is up; now stop reading
            await sync(good)
            session = gw.clients[2]
            assert session.transport is not None
            # Small kernel buffers, so that the sim's own queue is what fills up.
            server_socket = session.transport.get_extra_info("socket")
            server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            stalled.writer.transport.pause_reading()  # type: ignore[attr-defined]
            for _ in range(60):
                await gw.advance(60)
                await sync(good)
                if 2 not in gw.clients:
                    break
            assert sorted(gw.clients) == [1] and good.isConnected()
            await stalled.close()
            good.disconnect()
    run(body())
