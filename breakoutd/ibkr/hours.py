"""IB's ``tradingHours`` / ``liquidHours`` text -> the sessions of each day.

``20131007:0400-20131007:2000;20131008:CLOSED`` in the contract's
``timeZoneId``. Trading hours span pre-market to after-hours; liquid hours
are the regular session; the extended sessions are what lies between.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from breakoutd.calendar import DaySessions
from breakoutd.core.bars import NS

# IB names some zones the old way; zoneinfo knows both spellings on most systems.
_ALIASES = {"US/Eastern": "America/New_York", "EST5EDT": "America/New_York",
            "US/Central": "America/Chicago"}


def _zone(tz_id: str) -> ZoneInfo:
    return ZoneInfo(_ALIASES.get(tz_id, tz_id))


def _ranges(text: str, zone: ZoneInfo) -> dict[dt.date, tuple[int, int] | None]:
    out: dict[dt.date, tuple[int, int] | None] = {}
    for part in filter(None, text.split(";")):
        if part.endswith(":CLOSED"):
            out[dt.datetime.strptime(part[:8], "%Y%m%d").date()] = None
            continue
        begin, end = part.split("-")
        b = dt.datetime.strptime(begin, "%Y%m%d:%H%M").replace(tzinfo=zone)
        e = dt.datetime.strptime(end, "%Y%m%d:%H%M").replace(tzinfo=zone)
        day = b.date()
        lo, hi = int(b.timestamp()) * NS, int(e.timestamp()) * NS
        prev = out.get(day)
        out[day] = (min(lo, prev[0]), max(hi, prev[1])) if prev else (lo, hi)
    return out


def parse_sessions(trading_hours: str, liquid_hours: str, tz_id: str) -> dict[dt.date, DaySessions | None]:
    """Each listed day's sessions; None for a day the contract does not trade."""
    zone = _zone(tz_id)
    trading = _ranges(trading_hours, zone)
    liquid = _ranges(liquid_hours, zone)
    out: dict[dt.date, DaySessions | None] = {}
    for day, span in trading.items():
        rth = liquid.get(day)
        if span is None or rth is None:
            out[day] = None
            continue
        out[day] = DaySessions(day, (span[0], rth[0]), rth, (rth[1], span[1]))
    return out
