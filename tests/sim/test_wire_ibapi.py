"""The official IB API client (ibapi-stable, its own reader thread) against the
sim: connect, contract details, market data and bars against the tape, a
bracket placed, filled, modified and cancelled, executions with commissions,
positions, and duplicate request ids answered as IB does."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from ibapi.execution import ExecutionFilter
from ibapi.order import Order
from ibapi.order_cancel import OrderCancel

from breakoutd.core.bars import MINUTE, NS
from breakoutd.core.prices import to_float
from breakoutd.sim import Market
from breakoutd.sim import outgoing as out
from breakoutd.sim.contracts import con_id_for
from breakoutd.sim.market import row_prints
from tests.sim.ibapikit import IbapiApp, stock
from tests.sim.simkit import at, run, sim, walk
from tests.sim.test_wire_market_data import as_tuple, expected_bars, known, rows
from tests.sim.test_wire_orders import bracket_market


async def started(gw: Any, client_id: int = 1) -> IbapiApp:
    app = IbapiApp(asyncio.get_running_loop())
    await app.start(gw, client_id)
    return app


def bar_tuple(bar: Any, start_s: int) -> tuple[int, float, float, float, float, float]:
    return (start_s * NS, bar.open, bar.high, bar.low, bar.close, float(bar.volume))


def test_connect_details_quotes_and_bars_equal_the_tape() -> None:
    tape = rows()
    async def body() -> None:
        async with sim(Market(tape), start="09:30:02") as gw:
            app = await started(gw)
            assert app.serverVersion() == 178  # ibapi offers 100..226
            assert app.got("managedAccounts") == [("DU0000001",)]
            app.reqContractDetails(1, stock("ABC"))
            await app.until(lambda: bool(app.got("contractDetailsEnd")))
            [(req_id, details)] = app.got("contractDetails")
            assert (req_id, details.contract.conId, details.timeZoneId, details.minTick) == (
                1, con_id_for("ABC"), "US/Eastern", 0.01)
            app.reqMktData(2, stock("ABC"), "", False, False, [])
            app.reqRealTimeBars(3, stock("ABC"), 5, "TRADES", False, [])
            await app.sync()
            await gw.advance(118)
            await app.sync()
            last = known(tape, "ABC", gw.now_ns())[-1]
            prices = {args[1]: args[2] for args in app.got("tickPrice") if args[0] == 2}
            assert (prices[1], prices[2]) == (to_float(last.bid), to_float(last.ask))
            traded = [r for r in known(tape, "ABC", gw.now_ns()) if r.close is not None]
            assert prices[4] == to_float(traded[-1].close)
            got = [(t * NS, o, h, lo, c, float(v)) for _, t, o, h, lo, c, v, _, _
                   in app.got("realtimeBar")]
            want = expected_bars(tape, "ABC", 5 * NS, at("09:30:00"), at("09:32:00"))
            assert got == [as_tuple(b) for b in want] and len(got) > 10
            app.reqHistoricalData(4, stock("ABC"), "", "1800 S", "1 min", "TRADES", 0, 2,
                                  False, [])
            await app.until(lambda: bool(app.got("historicalDataEnd")))
            history = [bar_tuple(bar, int(bar.date)) for _, bar in app.got("historicalData")]
            want = expected_bars(tape, "ABC", MINUTE, at("09:02:00"), at("09:32:00"))
            assert history == [as_tuple(b) for b in want] and len(history) == 30
            await app.stop()
    run(body())


def test_duplicate_request_ids_get_322_and_no_second_stream() -> None:
    tape = rows()
    async def body() -> None:
        async with sim(Market(tape), start="09:30:02") as gw:
            app = await started(gw)
            app.reqMktData(7, stock("ABC"), "", False, False, [])
            app.reqMktData(7, stock("XYZ"), "", False, False, [])
            app.reqRealTimeBars(8, stock("ABC"), 5, "TRADES", False, [])
            app.reqRealTimeBars(8, stock("ABC"), 5, "TRADES", False, [])
            app.reqTickByTickData(9, stock("ABC"), "AllLast", 0, False)
            app.reqTickByTickData(9, stock("ABC"), "AllLast", 0, False)
            app.reqHistoricalData(10, stock("ABC"), "", "600 S", "1 min", "TRADES", 0, 1,
                                  True, [])
            app.reqHistoricalData(10, stock("ABC"), "", "600 S", "1 min", "TRADES", 0, 1,
                                  True, [])
            await app.sync()
            assert [e for e in app.errors() if e[1] == 322] == [(7, 322), (8, 322), (9, 322),
                                                                 (10, 322)]
            assert len(list(gw.feeds.all_subs())) == 4
            await gw.advance(30)
            await app.sync()
            # one stream each: every print of ABC once, XYZ's quote never
            prints = [(r.time // NS, to_float(price)) for r in known(tape, "ABC", gw.now_ns())
                      if r.time >= at("09:30:02") for price, _ in row_prints(r)]
            lasts = [(a[2], a[3]) for a in app.got("tickByTickAllLast") if a[0] == 9]
            assert lasts == prints and len(prints) > 20
            bars = app.got("realtimeBar")
            assert len(bars) == len({b[1] for b in bars})  # no bar twice
            xyz_bid = to_float(known(tape, "XYZ", gw.now_ns())[-1].bid)
            assert xyz_bid not in {args[2] for args in app.got("tickPrice") if args[1] == 1}
            for cancel in (lambda: app.cancelMktData(7), lambda: app.cancelRealTimeBars(8),
                           lambda: app.cancelTickByTickData(9),
                           lambda: app.cancelHistoricalData(10)):
                cancel()
            await app.sync()
            assert list(gw.feeds.all_subs()) == []
            seen = len(app.events)
            await gw.advance(30)
            await app.sync()
            assert [n for n, _ in app.events[seen:]] == ["currentTime"]  # the streams ended
            await app.stop()
    run(body())


def _order(action: str, qty: int, order_type: str, price: float, ref: str,
           parent: int = 0, transmit: bool = True) -> Order:
    order = Order()
    order.action, order.totalQuantity, order.orderType = action, Decimal(qty), order_type
    if order_type == "LMT":
        order.lmtPrice = price
    else:
        order.auxPrice = price
    order.orderRef, order.parentId, order.transmit, order.tif = ref, parent, transmit, "DAY"
    return order


def _statuses(app: IbapiApp, order_id: int) -> list[str]:
    return [args[1] for args in app.got("orderStatus") if args[0] == order_id]


def test_bracket_fill_modify_cancel_executions_and_positions() -> None:
    async def body() -> None:
        async with sim(bracket_market(), start="09:31:00") as gw:
            app = await started(gw)
            [(first,)] = app.got("nextValidId")
            parent, take, stop = first, first + 1, first + 2
            app.placeOrder(parent, stock("ABC"), _order("BUY", 100, "LMT", 10.00, "p",
                                                        transmit=False))
            app.placeOrder(take, stock("ABC"), _order("SELL", 100, "LMT", 10.50, "tp",
                                                      parent, transmit=False))
            app.placeOrder(stop, stock("ABC"), _order("SELL", 100, "STP", 9.50, "sl", parent))
            await app.until(lambda: "Filled" in _statuses(app, parent))
            await app.sync()
            opened = {args[0]: args[2] for args in app.got("openOrder")}
            assert (opened[take].orderRef, opened[take].parentId, opened[take].lmtPrice) == (
                "tp", parent, 10.50)
            assert (opened[stop].orderType, opened[stop].auxPrice) == ("STP", 9.50)
            app.reqPositions()
            await app.until(lambda: bool(app.got("positionEnd")))
            assert [(c.symbol, q) for _, c, q, _ in app.got("position")] == [("ABC",
                                                                               Decimal(100))]
            # modify the stop, then cancel a resting order of another symbol
            app.placeOrder(stop, stock("ABC"), _order("SELL", 100, "STP", 9.60, "sl", parent))
            await app.until(lambda: any(a[0] == stop and a[2].auxPrice == 9.60
                                        for a in app.got("openOrder")))
            assert [o.aux_price for o, _ in gw.engine.open_orders(1) if o.order_id == stop] == [
                9_600_000]
            rest = stop + 1
            app.placeOrder(rest, stock("XYZ"), _order("BUY", 200, "LMT", 19.50, "rest"))
            await app.until(lambda: "Submitted" in _statuses(app, rest))
            app.cancelOrder(rest, OrderCancel())
            await app.until(lambda: "Cancelled" in _statuses(app, rest))
            # the market trades up: the target fills, the stop is cancelled by its OCA group
            await gw.advance(61)
            await app.until(lambda: "Cancelled" in _statuses(app, stop))
            assert _statuses(app, take)[-1] == "Filled"
            fills = [(ex.orderId, ex.side, ex.shares, ex.price) for _, _, ex
                     in app.got("execDetails")]
            assert fills[0] == (parent, "BOT", Decimal(100), 10.00)
            assert fills[1][:3] == (take, "SLD", Decimal(100)) and fills[1][3] >= 10.50
            await app.until(lambda: len(app.got("commissionAndFeesReport")) == 2)
            fees = [r.commissionAndFees for (r,) in app.got("commissionAndFeesReport")]
            assert fees == [1.0, 1.0]
            seen = len(app.got("execDetails"))
            app.reqExecutions(20, ExecutionFilter())
            await app.until(lambda: bool(app.got("execDetailsEnd")))
            again = [(ex.orderId, ex.side) for req, _, ex in app.got("execDetails")[seen:]]
            assert again == [(parent, "BOT"), (take, "SLD")]
            app.reqPositions()
            await app.until(lambda: len(app.got("positionEnd")) == 2)
            assert app.got("position")[-1][2] == Decimal(0)
            await app.stop()
    run(body())


def test_head_timestamp_honours_format_date_what_to_show_and_use_rth() -> None:
    tape = rows()  # ABC trades and quotes from 09:00:00, before the regular session
    async def body() -> None:
        async with sim(Market(tape), start="09:40:00") as gw:
            app = await started(gw)
            first_trade = next(r.time for r in tape if r.symbol == "ABC" and r.close is not None)
            first_rth = next(r.time for r in tape if r.symbol == "ABC" and r.close is not None
                             and r.time >= at("09:30:00"))
            first_quote = next(r.time for r in tape if r.symbol == "ABC" and r.bid is not None)
            asks = [(1, "TRADES", 0, 2), (2, "TRADES", 1, 2), (3, "BID", 0, 2),
                    (4, "TRADES", 0, 1), (5, "VOLUME_PROFILE", 0, 2)]
            for req_id, what, use_rth, format_date in asks:
                app.reqHeadTimeStamp(req_id, stock("ABC"), what, use_rth, format_date)
            await app.until(lambda: len(app.got("headTimestamp")) == 4 and
                            (5, 321) in app.errors())
            heads = dict(app.got("headTimestamp"))
            assert heads[1] == str(first_trade // NS) and heads[3] == str(first_quote // NS)
            assert heads[2] == str(first_rth // NS) and first_rth > first_trade
            assert heads[4] == out.ib_time(first_trade) and heads[4].startswith("20260309 09:00:")
            assert (5, 321) in app.errors()
            await app.stop()
    run(body())


def test_listing_exchange_in_tick_by_tick_and_2109_for_outside_rth_ignored() -> None:
    tape = walk(3, "SPY", price="600.00") + walk(4, "ABC")
    async def body() -> None:
        async with sim(Market(tape), start="09:40:00") as gw:
            app = await started(gw)
            app.reqTickByTickData(1, stock("SPY"), "AllLast", 0, False)
            app.reqTickByTickData(2, stock("ABC"), "AllLast", 0, False)
            await app.sync()
            await gw.advance(5)
            await app.sync()
            venues = {(a[0], a[6]) for a in app.got("tickByTickAllLast")}
            assert venues == {(1, "ARCA"), (2, "NYSE")}
            [(first,)] = app.got("nextValidId")
            stop = _order("SELL", 10, "STP", 500.00, "s")
            limit = _order("BUY", 10, "LMT", 500.00, "l")
            market = _order("BUY", 10, "MKT", 0.0, "m")
            for offset, order in enumerate((stop, limit, market)):
                order.outsideRth = True
                app.placeOrder(first + offset, stock("SPY"), order)
            await app.until(lambda: "Filled" in _statuses(app, first + 2))
            warned = [(req, text) for req, _t, code, text, *_ in app.got("error") if code == 2109]
            assert [req for req, _ in warned] == [first, first + 2]
            assert "Outside Regular Trading Hours' is ignored" in warned[0][1]
            rth = {o.order_id: o.outside_rth for o, _ in gw.engine.open_orders(1)}
            assert rth == {first: False, first + 1: True}  # the stop now waits for regular hours
            await app.stop()
    run(body())


def _history(app: IbapiApp, req_id: int, duration: str, bar_size: str = "5 secs") -> None:
    app.reqHistoricalData(req_id, stock("ABC"), "", duration, bar_size, "TRADES", 0, 2,
                          False, [])


def _paced(app: IbapiApp) -> list[int]:
    return [req for req, code in app.errors() if code == 162]


def test_history_pacing_identical_within_15_s_and_six_for_a_contract_within_2_s() -> None:
    async def body() -> None:
        async with sim(Market(rows()), start="09:40:00") as gw:
            app = await started(gw)
            _history(app, 1, "60 S")
            _history(app, 2, "60 S")  # identical, at once
            _history(app, 3, "60 S", "1 min")
            _history(app, 4, "60 S", "1 min")  # identical, but minute bars are not paced
            await app.sync()
            assert _paced(app) == [2]
            await gw.advance(15)
            _history(app, 5, "60 S")  # identical again, 15 s later
            for req_id in range(6, 11):  # with 5: six for ABC within 2 s
                _history(app, req_id, f"{req_id * 10 + 1} S")
            await app.sync()
            assert _paced(app) == [2, 10]
            await gw.advance(2)
            _history(app, 11, "110 S")
            await app.sync()
            assert _paced(app) == [2, 10]
            served = {args[0] for args in app.got("historicalDataEnd")}
            assert served == {1, 3, 4, 5, 6, 7, 8, 9, 11}
            await app.stop()
    run(body())


def test_history_pacing_at_most_60_requests_in_10_minutes() -> None:
    async def body() -> None:
        # 122 messages in well under a second of real time: lift the message rate limit
        async with sim(Market(rows()), start="09:40:00", rate_limit=1000) as gw:
            app = await started(gw)
            for req_id in range(1, 62):
                _history(app, req_id, f"{30 + req_id} S")
                await app.sync()
                await gw.advance(1)
            assert _paced(app) == [61]
            await gw.advance(600 - 61)  # the first request leaves the window
            _history(app, 62, "200 S")
            await app.sync()
            assert _paced(app) == [61]
            await app.stop()
    run(body())
