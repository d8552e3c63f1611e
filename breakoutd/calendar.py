"""US equity session hours for a date, from a maintained exchange calendar.

The broker's contract details are the first source of trading hours live;
this module serves the backtest, the simulated gateway, and the daemon while
it is disconnected. NYSE holidays and early closes come from
``exchange_calendars`` (XNYS). Extended hours follow the regular session: pre-
market from 04:00 to the open, after-hours from the close for four hours
(16:00-20:00 on a normal day, 13:00-17:00 after an early close).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from breakoutd.core.bars import NS
from breakoutd.core.params import Session, WatcherSpec
from breakoutd.core.window import arming_window

EXCHANGE_TZ = ZoneInfo("America/New_York")
IB_TIME_ZONE_ID = "US/Eastern"
PREMARKET_OPEN = dt.time(4, 0)
AFTERHOURS_LENGTH = dt.timedelta(hours=4)


class DaySessions(NamedTuple):
    """The three sessions of one trading day, as ``(start_ns, end_ns)`` pairs."""

    day: dt.date
    premarket: tuple[int, int]
    rth: tuple[int, int]
    afterhours: tuple[int, int]

    def window(self, session: Session) -> tuple[int, int]:
        """The ``(start_ns, end_ns)`` of one session."""
        return getattr(self, session.value)  # type: ignore[no-any-return]

    def session_at(self, instant_ns: int) -> Session | None:
        """The session in force at an instant (start inclusive, end exclusive)."""
        for session in Session:
            start, end = self.window(session)
            if start <= instant_ns < end:
                return session
        return None


def exchange_ns(day: dt.date, at: dt.time) -> int:
    """Epoch ns of a wall-clock time of day on ``day`` in exchange time."""
    local = dt.datetime.combine(day, at, tzinfo=EXCHANGE_TZ)
    return int(local.timestamp()) * NS + local.microsecond * 1000


def exchange_text(instant_ns: int) -> str:
    """An instant in exchange time, saying so: ``2026-03-09 09:30:01.250 -04:00 ET``."""
    moment = dt.datetime.fromtimestamp(instant_ns // NS, EXCHANGE_TZ)
    offset = moment.strftime("%z")
    return (f"{moment:%Y-%m-%d %H:%M:%S}.{instant_ns % NS // 1_000_000:03d} "
            f"{offset[:3]}:{offset[3:]} ET")


def exchange_date(instant_ns: int) -> dt.date:
    """The exchange (America/New_York) date of an instant."""
    return dt.datetime.fromtimestamp(instant_ns // NS, EXCHANGE_TZ).date()


@lru_cache(maxsize=1)
def _xnys():  # type: ignore[no-untyped-def]
    # Imported lazily: loading the calendar costs about a second, and most
    # commands (check, status) never need it.
    import warnings

    import exchange_calendars

    with warnings.catch_warnings():
        # exchange_calendars reads tz-aware Series.values, which pandas 3.1
        # deprecates; the values it gets are still right (UTC).
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return exchange_calendars.get_calendar("XNYS", start="2000-01-01")


_given: dict[dt.date, DaySessions | None] = {}


def given_sessions(days: Iterable[tuple[dt.date, DaySessions | None]]) -> None:
    """Days whose sessions another process took from the calendar (a parallel backtest's
    parent gives each unit its own): this process then need not load it."""
    _given.update(days)


@lru_cache(maxsize=4096)
def day_sessions(day: dt.date) -> DaySessions | None:
    """The sessions of ``day``, or None when the exchange is closed all day."""
    if day in _given:
        return _given[day]
    cal = _xnys()
    if day < cal.first_session.date() or day > cal.last_session.date():
        raise ValueError(f"{day} is outside the exchange calendar's range")
    label = day.isoformat()
    if not cal.is_session(label):
        return None
    open_ns = int(cal.session_open(label).value)
    close_ns = int(cal.session_close(label).value)
    pre_ns = exchange_ns(day, PREMARKET_OPEN)
    after_end = close_ns + int(AFTERHOURS_LENGTH.total_seconds()) * NS
    return DaySessions(day, (pre_ns, open_ns), (open_ns, close_ns), (close_ns, after_end))


def next_trading_day(after: dt.date) -> dt.date:
    """The first trading day strictly after ``after``."""
    day = after + dt.timedelta(days=1)
    while day_sessions(day) is None:
        day += dt.timedelta(days=1)
    return day


def _hhmm(instant_ns: int) -> str:
    return dt.datetime.fromtimestamp(instant_ns // NS, EXCHANGE_TZ).strftime("%Y%m%d:%H%M")


def _hours_text(days: Iterable[dt.date], liquid: bool) -> str:
    parts = []
    for day in days:
        s = day_sessions(day)
        if s is None:
            parts.append(f"{day:%Y%m%d}:CLOSED")
        elif liquid:
            parts.append(f"{_hhmm(s.rth[0])}-{_hhmm(s.rth[1])}")
        else:
            parts.append(f"{_hhmm(s.premarket[0])}-{_hhmm(s.afterhours[1])}")
    return ";".join(parts)


def trading_hours_text(days: Iterable[dt.date]) -> str:
    """IB's ``tradingHours`` for the given days (extended hours included)."""
    return _hours_text(days, liquid=False)


def liquid_hours_text(days: Iterable[dt.date]) -> str:
    """IB's ``liquidHours`` for the given days (the regular session)."""
    return _hours_text(days, liquid=True)


def _wall_ns(day: dt.date, seconds: int | None) -> int | None:
    if seconds is None:
        return None
    return exchange_ns(day, dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60))


def watcher_window(spec: WatcherSpec, sessions: DaySessions) -> tuple[int, int] | None:
    """``(A, Z)`` of a watcher on the sessions' day, within not_before/not_after."""
    p = spec.params
    return arming_window([sessions.window(s) for s in p.sessions],
                         _wall_ns(sessions.day, p.not_before), _wall_ns(sessions.day, p.not_after))
