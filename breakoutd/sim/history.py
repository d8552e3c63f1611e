"""Historical bar requests: parsing IB's duration, bar size and end time, and
building the bars from the tape as known at the virtual instant."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from breakoutd.calendar import EXCHANGE_TZ, exchange_date
from breakoutd.core.bars import NS, Bar
from breakoutd.sim.feeds import in_rth, with_quiet_bars
from breakoutd.sim.market import AggBar, Market, aggregate

DAY_NS = 86_400 * NS
_UNITS = {"sec": NS, "secs": NS, "min": 60 * NS, "mins": 60 * NS, "hour": 3600 * NS,
          "hours": 3600 * NS, "day": DAY_NS, "days": DAY_NS}
_DURATION_UNITS = {"S": NS, "D": DAY_NS, "W": 7 * DAY_NS, "M": 31 * DAY_NS, "Y": 366 * DAY_NS}


class HistoryError(ValueError):
    """A historical request the sim cannot answer (sent as error 162)."""


def parse_bar_size(text: str) -> int:
    """``"1 min"``, ``"5 secs"``, ``"1 day"`` ... as nanoseconds."""
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in _UNITS:
        raise HistoryError(f"bar size {text!r} is not valid")
    size = int(parts[0]) * _UNITS[parts[1]]
    if size == DAY_NS or (size and 3600 * NS % size == 0):
        return size
    raise HistoryError(f"bar size {text!r} is not supported by the sim "
                       "(sizes that divide an hour, or 1 day)")


def parse_duration(text: str) -> int:
    """``"1800 S"``, ``"2 D"`` ... as nanoseconds (a month is 31 days)."""
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in _DURATION_UNITS:
        raise HistoryError(f"duration {text!r} is not valid")
    return int(parts[0]) * _DURATION_UNITS[parts[1]]


def parse_end(text: str, now_ns: int) -> int:
    """An endDateTime (empty: now) as epoch ns, never later than now."""
    text = text.strip()
    if not text:
        return now_ns
    try:
        if "-" in text[:9]:  # yyyymmdd-hh:mm:ss is UTC
            local = dt.datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=dt.UTC)
        else:
            date_part, time_part, *zone = text.split(" ")
            tz = ZoneInfo(zone[0]) if zone else EXCHANGE_TZ
            local = dt.datetime.strptime(date_part + time_part, "%Y%m%d%H:%M:%S")
            local = local.replace(tzinfo=tz)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise HistoryError(f"end date/time {text!r} is not valid") from exc
    return min(int(local.timestamp()) * NS, now_ns)


def history_bars(market: Market, symbol: str, start_ns: int, end_ns: int, size_ns: int,
                 use_rth: bool, quiet_bars: bool = False) -> list[AggBar]:
    """Trade bars of ``size_ns`` starting in ``[start, end)``, the last maybe partial;
    with ``quiet_bars``, intraday intervals without trades as IB's volume-0 bars."""
    first = start_ns - start_ns % size_ns if size_ns < DAY_NS else start_ns
    bars = market.bars_between(symbol, first, end_ns)
    if use_rth:
        bars = [b for b in bars if in_rth(b.start)]
    if size_ns >= DAY_NS:
        return _daily(bars)
    aggs = aggregate(bars, size_ns)
    if quiet_bars:
        end = min(end_ns, market.known_ns - market.offsets.get(symbol, 0) - NS + 1)
        aggs = with_quiet_bars(market, symbol, aggs, first, end, size_ns, use_rth)
    return aggs


def _daily(bars: list[Bar]) -> list[AggBar]:
    by_day: dict[dt.date, list[Bar]] = {}
    for bar in bars:
        by_day.setdefault(exchange_date(bar.start), []).append(bar)
    out = []
    for day, day_bars in by_day.items():
        start = int(dt.datetime.combine(day, dt.time(), EXCHANGE_TZ).timestamp()) * NS
        # One-bucket aggregation: re-label the seconds into a single day bucket.
        merged = aggregate([b._replace(start=start) for b in day_bars], 3600 * NS)
        agg = merged[0]
        out.append(AggBar(agg.bar._replace(size=DAY_NS), agg.wap, agg.bar_count))
    return out
