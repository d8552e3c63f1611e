"""Bar-to-order latency as the sim measures it, and the account views of a fill."""

from __future__ import annotations

from ib_async import LimitOrder

from breakoutd.sim import Market
from breakoutd.sim.stats import LatencyStats, percentile
from tests.sim.simkit import connect, run, sim, stock, sync, until, walk


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert percentile([7], 50) == 7
    assert LatencyStats().percentiles() == {"count": 0}


def test_orders_after_a_bar_are_timed_from_when_the_bar_was_written() -> None:
    async def body() -> None:
        async with sim(Market(walk(41, "ABC", start="09:00:00", seconds=3600))) as gw:
            ib = await connect(gw)
            abc = await stock(ib, "ABC")
            bars = ib.reqRealTimeBars(abc, 5, "TRADES", False)
            blind = ib.placeOrder(abc, LimitOrder("BUY", 100, 40.00))  # before any data
            await until(ib, lambda: blind.orderStatus.status == "Submitted")
            orders = []

            def on_bar(bar_list: object, has_new: bool) -> None:
                if len(orders) < 3:
                    orders.append(ib.placeOrder(abc, LimitOrder("BUY", 100, 40.00)))

            bars.updateEvent += on_bar
            await gw.advance(20)
            await until(ib, lambda: len(orders) == 3)
            await sync(ib)
            first, *after_bars = gw.stats.records
            assert first.bar_latency_ns is None and first.md_latency_ns is None
            assert len(after_bars) == 3
            assert all(r.bar_latency_ns is not None and r.bar_latency_ns >= 0
                       for r in after_bars)
            pct = gw.stats.percentiles("bar")
            assert pct["count"] == 3 and 0 <= pct["p50"] <= pct["p90"] <= pct["max"]
            report = gw.stats.report()
            assert "orders received: 4" in report and "bar-to-order latency over 3" in report
            ib.disconnect()
    run(body())


def test_account_views_follow_a_fill() -> None:
    async def body() -> None:
        async with sim(Market(walk(42, "ABC", start="09:00:00", seconds=3600))) as gw:
            ib = await connect(gw)
            abc = await stock(ib, "ABC")
            trade = ib.placeOrder(abc, LimitOrder("BUY", 100, 60.00))
            await until(ib, lambda: trade.orderStatus.status == "Filled")
            await until(ib, lambda: len(ib.portfolio()) == 1)
            [item] = ib.portfolio()
            assert item.position == 100 and item.averageCost > 0 and item.marketPrice > 0
            summary = {v.tag: v.value for v in await ib.accountSummaryAsync()}
            assert float(summary["TotalCashValue"]) < 1_000_000
            [position] = ib.positions()
            assert position.avgCost == item.averageCost
            ib.disconnect()
    run(body())
