"""The broker's historical trade bars, as core bars (for levels from the market).

One request: 1-minute TRADES bars over ``[start, end)``, regular hours or not
(``use_rth=False`` is what a pre-market range needs), dates as epoch seconds.
"""

from __future__ import annotations

import datetime as dt
import math

from ib_async import IB, Contract

from breakoutd.core.bars import MINUTE, NS, Bar
from breakoutd.ibkr.convert import datetime_to_ns, price_to_micros, size_to_int

HISTORY_TIMEOUT = 20.0  # seconds: a pacing violation is answered late or not at all


def ib_end_time(instant_ns: int) -> str:
    """IB's ``endDateTime`` in UTC: ``yyyymmdd-hh:mm:ss``."""
    return dt.datetime.fromtimestamp(instant_ns // NS, dt.UTC).strftime("%Y%m%d-%H:%M:%S")


async def minute_trade_bars(ib: IB, contract: Contract, start_ns: int, end_ns: int,
                            use_rth: bool = False) -> list[Bar]:
    """1-minute trade bars starting in ``[start, end)``; minutes without trades are absent."""
    seconds = max(60, math.ceil((end_ns - start_ns) / NS))
    raw = await ib.reqHistoricalDataAsync(
        contract, ib_end_time(end_ns), f"{seconds} S", "1 min", "TRADES", use_rth,
        formatDate=2, timeout=HISTORY_TIMEOUT)
    bars: list[Bar] = []
    for b in raw or ():
        when = b.date if isinstance(b.date, dt.datetime) else \
            dt.datetime.combine(b.date, dt.time(), dt.UTC)
        start = datetime_to_ns(when.replace(tzinfo=when.tzinfo or dt.UTC))
        prices = [price_to_micros(p) for p in (b.open, b.high, b.low, b.close)]
        if not start_ns <= start < end_ns or None in prices:
            continue
        o, h, lo, c = (p for p in prices if p is not None)
        bars.append(Bar(start, MINUTE, o, h, lo, c, size_to_int(b.volume) or 0))
    return bars
