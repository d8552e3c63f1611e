"""The sim's market scanner answers ib_async's reqScannerSubscription as IB does."""

from __future__ import annotations

import datetime as dt

from ib_async import IB, ScannerSubscription

from breakoutd.sim import Market
from breakoutd.sim.scanner import CODES
from tests.sim.simkit import Errors, at, connect, row, run, sim, until

FRIDAY = dt.date(2026, 3, 6)


def market() -> Market:
    def trade(hms: str, sym: str, price: str, volume: int, day: dt.date | None = None):  # type: ignore[no-untyped-def]
        t = at(hms, day) if day else at(hms)
        return row(t, sym, (price, price, price, price, volume), None, None)
    return Market([
        trade("15:59:00", "AAA", "10.00", 100, FRIDAY),  # AAA's reference: the prior close
        trade("09:00:00", "AAA", "10.50", 100), trade("09:00:00", "BBB", "20.00", 50_000),
        trade("09:00:00", "CCC", "5.00", 1_000),
        trade("09:20:00", "AAA", "11.00", 100), trade("09:20:00", "BBB", "20.40", 50_000),
        trade("09:28:00", "CCC", "5.05", 20_000),  # a burst in the last 5 minutes
        trade("09:45:00", "DDD", "50.00", 1_000_000),  # not printed yet at 09:30
    ])


async def scan(ib: IB, code: str, **filters: object) -> list[str]:
    sub = ScannerSubscription(instrument="STK", locationCode="STK.US.MAJOR", scanCode=code,
                              **filters)
    data = await ib.reqScannerDataAsync(sub)
    return [d.contractDetails.contract.symbol for d in data]


def test_the_three_codes_rank_the_data_so_far_and_honour_the_filters() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = await connect(gw)
            # AAA +10% on its prior close; BBB +2% and CCC +1% on their first prints.
            assert await scan(ib, "TOP_PERC_GAIN") == ["AAA", "BBB", "CCC"]
            assert await scan(ib, "MOST_ACTIVE") == ["BBB", "CCC", "AAA"]
            assert (await scan(ib, "HOT_BY_VOLUME"))[0] == "CCC"
            assert await scan(ib, "TOP_PERC_GAIN", abovePrice=6.0) == ["AAA", "BBB"]
            assert await scan(ib, "TOP_PERC_GAIN", belowPrice=15.0) == ["AAA", "CCC"]
            assert await scan(ib, "MOST_ACTIVE", aboveVolume=5_000) == ["BBB", "CCC"]
            assert await scan(ib, "MOST_ACTIVE", numberOfRows=1) == ["BBB"]
            xml = await ib.reqScannerParametersAsync()
            assert all(f"<scanCode>{c}</scanCode>" in xml for c in CODES)
            ib.disconnect()
    run(body())


def test_an_unknown_scan_code_gets_ibs_error_and_no_data() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = IB()
            errors = Errors(ib)
            await connect(gw, 1, ib)
            data = ib.reqScannerSubscription(ScannerSubscription(scanCode="NOPE"))
            await until(ib, lambda: 162 in errors.codes())
            req_id, _, message = errors.items[-1]
            assert req_id == data.reqId and "NOPE" in message and list(data) == []
            ib.cancelScannerSubscription(data)
            assert await scan(ib, "MOST_ACTIVE")  # the session goes on
            ib.disconnect()
    run(body())
