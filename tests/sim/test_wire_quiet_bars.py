"""Intervals without trades, as IB sends them: a 5-second realtime bar every
5 seconds with volume 0 at the last price, and volume-0 bars at the last price
in historical data; with ``quiet_bars=False`` they have no bar, as in the backtest."""

from __future__ import annotations

import pytest

from breakoutd.calendar import EXCHANGE_TZ
from breakoutd.core.bars import NS
from breakoutd.sim import Market, Row
from tests.sim.simkit import at, connect, row, run, sim, stock, sync


def quiet_tape() -> list[Row]:
    """ABC trades each second until 09:31:00 (last 10.05), is quiet (quotes only) for
    a minute and a half, then trades at 9.95 from 09:32:30."""
    t0 = at("09:29:00")
    out = []
    for i in range(4 * 60):
        t = t0 + i * NS
        price = "10.05" if at("09:30:30") <= t < at("09:31:00") else "9.95"
        trade = None if at("09:31:00") <= t < at("09:32:30") else (price, price, price, price,
                                                                     100)
        out.append(row(t, "ABC", trade, "9.94", "10.06"))
    return out


@pytest.mark.parametrize("quiet", [True, False])
def test_realtime_bars_every_five_seconds_volume_0_at_the_last_price(quiet: bool) -> None:
    async def body() -> None:
        async with sim(Market(quiet_tape()), start="09:30:50", quiet_bars=quiet) as gw:
            ib = await connect(gw)
            bars = ib.reqRealTimeBars(await stock(ib, "ABC"), 5, "TRADES", False)
            await sync(ib)
            await gw.advance(110)  # to 09:32:40
            await sync(ib)
            got = [(int(b.time.timestamp()) * NS, b.open_, b.high, b.low, b.close, b.volume,
                    b.count) for b in bars]
            quiet_part = [b for b in got if at("09:31:00") <= b[0] < at("09:32:30")]
            if quiet:
                assert [b[0] for b in got] == list(range(at("09:30:50"), at("09:32:40"), 5 * NS))
                assert quiet_part == [(t, 10.05, 10.05, 10.05, 10.05, 0.0, 0)
                                      for t in range(at("09:31:00"), at("09:32:30"), 5 * NS)]
            else:
                assert quiet_part == []
            assert [b[4:6] for b in got if b[0] >= at("09:32:30")] == [(9.95, 500.0)] * 2
            ib.disconnect()
    run(body())


@pytest.mark.parametrize("quiet", [True, False])
def test_history_has_volume_0_minutes_at_the_last_price(quiet: bool) -> None:
    async def body() -> None:
        async with sim(Market(quiet_tape()), start="09:33:00", quiet_bars=quiet) as gw:
            ib = await connect(gw)
            bars = await ib.reqHistoricalDataAsync(await stock(ib, "ABC"), "", "300 S",
                                                   "1 min", "TRADES", False, formatDate=2)
            got = [(f"{b.date.astimezone(EXCHANGE_TZ):%H:%M}", b.close, b.volume) for b in bars]
            # the request's 300 s start at 09:28:00, before the first trade: no bar there
            want = [("09:29", 9.95, 6000.0), ("09:30", 10.05, 6000.0)]
            want += [("09:31", 10.05, 0.0)] if quiet else []
            assert got == [*want, ("09:32", 9.95, 3000.0)]
            ib.disconnect()
    run(body())
