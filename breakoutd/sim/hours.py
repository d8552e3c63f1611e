"""Exchange hours as the replay needs them: where virtual time starts, the
session an instant falls in, and the next session edge.

The matching engine asks for the session on every quote and print (DAY
orders and outsideRth depend on it), the replay loop wakes at each edge so
DAY orders expire on time, and the log names each session as it opens.
"""

from __future__ import annotations

import datetime as dt

from breakoutd.calendar import EXCHANGE_TZ, day_sessions, exchange_date, exchange_ns
from breakoutd.core.bars import NS
from breakoutd.sim.market import Market

DEFAULT_OPEN = dt.time(9, 30)
SESSION_TEXT = {"premarket": "pre-market session open", "rth": "regular session open",
                "afterhours": "after-hours session open", None: "market closed"}


def session_name(instant_ns: int) -> str | None:
    """The session in force at an instant: premarket, rth, afterhours, or None."""
    try:
        sessions = day_sessions(exchange_date(instant_ns))
    except ValueError:
        return None
    found = sessions.session_at(instant_ns) if sessions else None
    return found.value if found else None


class SessionOf:
    """``session_name`` remembering the last second asked about.

    The engine asks on every quote and print, and most asks fall in the same second.
    """

    def __init__(self) -> None:
        self._second: int | None = None
        self._name: str | None = None

    def __call__(self, instant_ns: int) -> str | None:
        second = instant_ns // NS
        if second != self._second:
            self._second, self._name = second, session_name(instant_ns)
        return self._name


def start_instant(market: Market, start: dt.datetime | dt.time | None,
                  day: dt.date | None) -> int:
    """The virtual start: a datetime (naive = exchange time), or a time on ``day``."""
    if isinstance(start, dt.datetime):
        local = start if start.tzinfo else start.replace(tzinfo=EXCHANGE_TZ)
        return int(local.timestamp() * 1e6) * 1000
    the_day = day or market.day or dt.date.today()
    return exchange_ns(the_day, start or DEFAULT_OPEN)


def next_session_edge(now: int) -> int:
    """The next session start or end after ``now`` (for DAY order expiry)."""
    try:
        sessions = day_sessions(exchange_date(now))
    except ValueError:
        sessions = None
    if sessions is not None:
        for edge in (*sessions.premarket, *sessions.rth, *sessions.afterhours):
            if edge > now:
                return edge
    return now + 3600 * NS
