"""Market data over the wire equals the tape at the virtual instant, and the bars
equal what the backtest aggregates from the same tape."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from ib_async import IB

from breakoutd.core.bars import MINUTE, NS, Bar, BarAggregator
from breakoutd.core.prices import to_float
from breakoutd.sim import Market, Row
from breakoutd.sim.market import row_prints
from tests.sim.simkit import DATA, Errors, at, connect, run, sim, stock, sync, until, walk


def rows() -> list[Row]:
    return walk(11, "ABC", start="09:00:00", seconds=3600) + walk(12, "XYZ", price="8.00")


def known(rows_: list[Row], symbol: str, now: int) -> list[Row]:
    return [r for r in rows_ if r.symbol == symbol and r.time + NS <= now]


def expected_bars(rows_: list[Row], symbol: str, size: int, start: int, end: int) -> list[Bar]:
    """What the backtest builds: 1-second rows aggregated with the core's BarAggregator."""
    agg = BarAggregator(size)
    out = []
    for r in rows_:
        if r.symbol == symbol and r.close is not None and start <= r.time < end:
            assert r.open is not None and r.high is not None and r.low is not None
            closed = agg.add(Bar(r.time, NS, r.open, r.high, r.low, r.close, r.volume or 0))
            if closed:
                out.append(closed)
    tail = agg.close_until(1 << 62)  # the last bar, partial if ``end`` is inside it
    return out + ([tail] if tail else [])


def as_tuple(bar: Bar) -> tuple[int, float, float, float, float, float]:
    return (bar.start, to_float(bar.open), to_float(bar.high), to_float(bar.low),
            to_float(bar.close), float(bar.volume))


def test_streaming_quote_is_the_tape_at_the_virtual_instant() -> None:
    tape = rows()
    async def body() -> None:
        async with sim(Market(tape), start="09:30:00") as gw:
            ib = await connect(gw)
            ABC = await stock(ib, "ABC")
            ticker = ib.reqMktData(ABC)
            await sync(ib)
            for step in (0, 37, 1, 300):
                await gw.advance(step)
                await sync(ib)
                now = gw.now_ns()
                mine = known(tape, "ABC", now)
                last_quote = mine[-1]
                trades = [r for r in mine if r.close is not None]
                assert (ticker.bid, ticker.ask) == (to_float(last_quote.bid or 0),
                                                    to_float(last_quote.ask or 0))
                assert (ticker.bidSize, ticker.askSize) == (last_quote.bid_size,
                                                            last_quote.ask_size)
                assert ticker.last == to_float(trades[-1].close or 0)
                assert ticker.volume == sum(r.volume or 0 for r in trades)
                assert ticker.lastTimestamp.timestamp() == trades[-1].time / NS
            ib.cancelMktData(ABC)
            await sync(ib)
            assert not list(gw.feeds.all_subs())
            ib.disconnect()
    run(body())


def test_snapshot_quote() -> None:
    tape = rows()
    async def body() -> None:
        async with sim(Market(tape), start="09:45:30") as gw:
            ib = await connect(gw)
            [ticker] = await ib.reqTickersAsync(await stock(ib, "XYZ"))
            last = known(tape, "XYZ", gw.now_ns())[-1]
            assert (ticker.bid, ticker.ask) == (to_float(last.bid or 0), to_float(last.ask or 0))
            assert not list(gw.feeds.all_subs())
            ib.disconnect()
    run(body())


def test_realtime_bars_equal_the_backtest_aggregation() -> None:
    tape = rows()
    async def body() -> None:
        async with sim(Market(tape), start="09:30:02") as gw:
            ib = await connect(gw)
            ABC = await stock(ib, "ABC")
            bars = ib.reqRealTimeBars(ABC, 5, "TRADES", False)
            await sync(ib)
            await gw.advance(118)
            await sync(ib)
            got = [(int(b.time.timestamp()) * NS, b.open_, b.high, b.low, b.close, b.volume)
                   for b in bars]
            want = expected_bars(tape, "ABC", 5 * NS, at("09:30:00"), at("09:32:00"))
            assert got == [as_tuple(b) for b in want] and len(got) > 10
            ib.cancelRealTimeBars(bars)
            await gw.advance(30)
            await sync(ib)
            assert len(bars) == len(got)
            ib.disconnect()
    run(body())


async def _keep_up_to_date(gw: Any, ib: IB, contract: Any, minutes: int) -> list[Any]:
    bars = await ib.reqHistoricalDataAsync(contract, "", "1800 S", "1 min", "TRADES",
                                           False, keepUpToDate=True)
    await gw.advance(minutes * 60)
    await sync(ib)
    return list(bars)


def test_keep_up_to_date_minute_bars_equal_the_backtest_aggregation() -> None:
    tape = rows()
    async def body() -> None:
        async with sim(Market(tape), start="09:35:00") as gw:
            ib = await connect(gw)
            ABC = await stock(ib, "ABC")
            got = await _keep_up_to_date(gw, ib, ABC, 10)
            want = expected_bars(tape, "ABC", MINUTE, at("09:05:00"), at("09:45:00"))
            assert [(int(b.date.timestamp()) * NS, b.open, b.high, b.low, b.close, b.volume)
                    for b in got] == [as_tuple(b) for b in want]
            assert len(got) == 40
            ib.disconnect()
    run(body())


def test_keep_up_to_date_bar_in_progress_is_updated_then_closed() -> None:
    tape = rows()
    async def body() -> None:
        async with sim(Market(tape), start="09:35:20") as gw:
            ib = await connect(gw)
            ABC = await stock(ib, "ABC")
            bars = await ib.reqHistoricalDataAsync(ABC, "", "120 S", "1 min", "TRADES", False,
                                                   keepUpToDate=True)
            partial = bars[-1]
            assert partial.date.timestamp() == at("09:35:00") / NS
            want_partial = expected_bars(tape, "ABC", MINUTE, at("09:35:00"), at("09:35:20"))
            assert partial.volume == want_partial[0].volume
            updates: list[tuple[Any, bool]] = []
            bars.updateEvent += lambda b, new: updates.append((b[-1], new))
            await gw.advance(30)
            await sync(ib)
            assert updates and not any(new for _, new in updates)
            await gw.advance(15)
            await sync(ib)
            assert any(new for _, new in updates)
            assert bars[-1].date.timestamp() == at("09:36:00") / NS
            full = expected_bars(tape, "ABC", MINUTE, at("09:35:00"), at("09:36:00"))[0]
            assert (bars[-2].high, bars[-2].volume) == (to_float(full.high), full.volume)
            ib.cancelHistoricalData(bars)
            await sync(ib)
            assert not list(gw.feeds.all_subs())
            ib.disconnect()
    run(body())


def test_historical_bars_only_up_to_now_and_errors_for_what_the_sim_lacks() -> None:
    tape = rows()
    async def body() -> None:
        async with sim(Market(tape), start="09:40:00") as gw:
            ib = IB()
            errors = Errors(ib)
            await connect(gw, 1, ib)
            ABC = await stock(ib, "ABC")
            end = dt.datetime(2026, 3, 9, 20, 0, tzinfo=dt.UTC)  # 16:00 ET: after "now"
            bars = await ib.reqHistoricalDataAsync(ABC, end, "1 D", "5 mins", "TRADES", False,
                                                   formatDate=2)
            assert bars[0].date.timestamp() == at("09:00:00") / NS
            assert bars[-1].date.timestamp() == at("09:35:00") / NS
            rth = await ib.reqHistoricalDataAsync(ABC, "", "1 D", "5 mins", "TRADES", True)
            assert rth[0].date.timestamp() == at("09:30:00") / NS
            assert len(await ib.reqHistoricalDataAsync(ABC, "", "1 D", "1 min", "MIDPOINT",
                                                       False)) == 0
            assert len(await ib.reqHistoricalDataAsync(ABC, "", "1 D", "7 mins", "TRADES",
                                                       False)) == 0
            assert errors.codes().count(162) == 2
            daily = await ib.reqHistoricalDataAsync(ABC, "", "2 D", "1 day", "TRADES", False)
            assert len(daily) == 1 and daily[0].date == dt.date(2026, 3, 9)
            seconds = gw.market.bars_between("ABC", 0, gw.now_ns())
            assert daily[0].barCount == len(seconds)
            assert daily[0].volume == sum(b.volume for b in seconds)
            ib.disconnect()
    run(body())


def test_tick_by_tick_prints_and_quotes() -> None:
    tape = rows()
    async def body() -> None:
        async with sim(Market(tape), start="09:31:00") as gw:
            ib = await connect(gw)
            ABC = await stock(ib, "ABC")
            last_ticks: list[Any] = []
            quote_ticks: list[Any] = []
            t_last = ib.reqTickByTickData(ABC, "AllLast")
            t_last.updateEvent += lambda t: last_ticks.extend(t.tickByTicks)
            xyz = await stock(ib, "XYZ")
            t_quote = ib.reqTickByTickData(xyz, "BidAsk")
            t_quote.updateEvent += lambda t: quote_ticks.extend(t.tickByTicks)
            await sync(ib)
            await gw.advance(20)
            await sync(ib)
            window = [r for r in tape if at("09:31:00") < r.time + NS <= at("09:31:20")]
            want = [p for r in window if r.symbol == "ABC" for p in row_prints(r)]
            assert [(t.price, t.size) for t in last_ticks] == [
                (to_float(p), float(s)) for p, s in want]
            assert len(quote_ticks) >= 2
            last_xyz = [r for r in window if r.symbol == "XYZ"][-1]
            assert (quote_ticks[-1].bidPrice, quote_ticks[-1].askPrice) == (
                to_float(last_xyz.bid or 0), to_float(last_xyz.ask or 0))
            ib.cancelTickByTickData(ABC, "AllLast")
            ib.cancelTickByTickData(xyz, "BidAsk")
            await sync(ib)
            assert not list(gw.feeds.all_subs())
            ib.disconnect()
    run(body())


def test_market_data_line_limit_is_error_101() -> None:
    async def body() -> None:
        tape = rows() + walk(13, "QRS")
        async with sim(Market(tape), md_lines=2) as gw:
            ib = IB()
            errors = Errors(ib)
            await connect(gw, 1, ib)
            ABC = await stock(ib, "ABC")
            contracts = [ABC, await stock(ib, "XYZ"), await stock(ib, "QRS")]
            for contract in contracts:
                ib.reqMktData(contract)
            await sync(ib)
            assert errors.codes().count(101) == 1
            assert len(list(gw.feeds.all_subs())) == 2
            ib.cancelMktData(ABC)
            ib.reqMktData(contracts[2])
            await sync(ib)
            assert errors.codes().count(101) == 1
            ib.disconnect()
    run(body())


@pytest.mark.realdata
def test_real_tape_quotes_and_bars() -> None:
    path = DATA / "tapes" / "SPY_20131007.csv.gz"
    if not path.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    market = Market.from_files([path])
    day = dt.date(2013, 10, 7)
    async def body() -> None:
        async with sim(market, start="09:35:00", day=day) as gw:
            ib = await connect(gw)
            spy = await stock(ib, "SPY")
            ticker = ib.reqMktData(spy)
            bars = await ib.reqHistoricalDataAsync(spy, "", "600 S", "1 min", "TRADES", False,
                                                   keepUpToDate=True)
            rt = ib.reqRealTimeBars(spy, 5, "TRADES", False)
            await sync(ib)
            await gw.advance(300)
            await sync(ib)
            state = market.states["SPY"]
            assert ticker.bid == to_float(state.bid or 0) and ticker.ask == to_float(state.ask or 0)
            start = at("09:25:00", day)
            want = [as_tuple(b) for b in market_bars(market, "SPY", MINUTE, start, gw.now_ns())]
            assert [(int(b.date.timestamp()) * NS, b.open, b.high, b.low, b.close, b.volume)
                    for b in bars] == want
            want_rt = market_bars(market, "SPY", 5 * NS, at("09:35:00", day), gw.now_ns())
            assert [(int(b.time.timestamp()) * NS, b.open_, b.high, b.low, b.close, b.volume)
                    for b in rt] == [as_tuple(b) for b in want_rt]
            ib.disconnect()
    run(body())


def market_bars(market: Market, symbol: str, size: int, start: int, end: int) -> list[Bar]:
    agg = BarAggregator(size)
    out = [b for b in (agg.add(s) for s in market.bars_between(symbol, start, end)) if b]
    tail = agg.close_until(end)
    return out + ([tail] if tail else [])


def test_until_helper_times_out_cleanly() -> None:
    async def body() -> None:
        async with sim(Market(rows())) as gw:
            ib = await connect(gw)
            with pytest.raises(TimeoutError):
                await until(ib, lambda: False, timeout=0.05)
            ib.disconnect()
    run(body())
