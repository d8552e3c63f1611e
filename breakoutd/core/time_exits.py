"""When a position is sold on time (strategy.md, Position management: exit_at, max_hold).

At ``exit_at`` (exchange time of the day) or at the fill plus ``max_hold``,
whichever comes first, the position's exits are cancelled and what is open
is sold as a flatten is (breakoutd.daemon.controls prices it): MKT in regular
hours, else SELL LMT at the bid in force minus 0.05 on the tick. Times are
epoch ns; the caller gives the epoch ns of the exchange day's 00:00, so the
core needs no calendar.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from breakoutd.core.params import StrategyParams

NS_PER_SECOND = 1_000_000_000


class TimeRule(StrEnum):
    """Which time rule is due."""

    EXIT_AT = "exit_at"
    MAX_HOLD = "max_hold"


class TimeExit(NamedTuple):
    """The instant a position is sold and the rule that set it."""

    at: int
    rule: TimeRule


def time_exit(params: StrategyParams, fill_at: int, midnight: int) -> TimeExit | None:
    """The earliest time exit of a position filled at ``fill_at``, or None without one.

    A fill after ``exit_at`` is due at once (at the fill): the rule says the
    position is not to be held past that instant.
    """
    due: list[TimeExit] = []
    if params.exit_at is not None:
        due.append(TimeExit(max(midnight + params.exit_at * NS_PER_SECOND, fill_at),
                            TimeRule.EXIT_AT))
    if params.max_hold is not None:
        due.append(TimeExit(fill_at + params.max_hold * NS_PER_SECOND, TimeRule.MAX_HOLD))
    return min(due, key=lambda e: e.at) if due else None
