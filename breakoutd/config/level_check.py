"""Phase two for a named level (``level: premarket_high`` ...): what can be checked ahead.

The level is known only on the day, so exit prices cannot be checked against
it; what can be checked is that its keys fit it and that the watcher's window
lasts past the instant the level is known (else it would never arm).
"""

from __future__ import annotations

from typing import Any

from breakoutd.config.fields import Located, Problems
from breakoutd.config.params_check import SESSION_HOURS, Layered, most_specific
from breakoutd.config.schema import Section
from breakoutd.core.params import LevelName, Session, StrategyParams

_RTH = Session.RTH


def check_named_exits(level: Located[Any], sl: Located[Any] | None,
                       rungs: tuple[Located[int], ...], problems: Problems) -> None:
    """Exit prices cannot be checked against a level that is known only on the day."""
    why = f"level {level.text} is known only on the day, so a price cannot be checked against it"
    if sl is not None and sl.value is not None:
        problems.add(sl.at.problem(f"{sl.text}: {why}; give the stop as sl_below (a distance "
                                   "below the level)"))
    if rungs:
        problems.add(rungs[0].at.problem(f"{rungs[0].text}: {why}; give take-profits as tp_r "
                                         "(multiples of the risk)"))


def _known_at(name: LevelName, opening_range: int) -> int | None:
    """Seconds after 00:00 when a named level is known on a normal day (None: at the start)."""
    if name is LevelName.PREMARKET_HIGH:
        return SESSION_HOURS[_RTH][0]
    if name is LevelName.OPENING_RANGE_HIGH:
        return SESSION_HOURS[_RTH][0] + opening_range * 60
    return None


def check_named_level(merged: Layered, section: Section, problems: Problems) -> None:
    """A named level's keys fit the level, and its window lasts past the instant it is known."""
    level = merged.get("level")
    named = level.value if level is not None and isinstance(level.value, LevelName) else None
    for key in ("level_offset", "opening_range"):
        own = section.values.get(key)
        if own is None or not merged.ok("level") or level is None:
            continue
        if named is None:
            problems.add(own.at.problem(f"{key} needs a named level, not the price {level.text}"))
        elif key == "opening_range" and named is not LevelName.OPENING_RANGE_HIGH:
            problems.add(own.at.problem(f"opening_range is for level: opening_range_high, "
                                        f"not {named.value}"))
    if named is None or not merged.ok("sessions", "not_after", "opening_range"):
        return
    known = _known_at(named, merged.value("opening_range", StrategyParams().opening_range))
    if known is None:
        return
    sessions, after = merged.get("sessions"), merged.get("not_after")
    names = sessions.value if sessions is not None else StrategyParams().sessions
    end = SESSION_HOURS[names[-1]][1]
    if after is not None and after.value is not None:
        end = min(end, after.value)
    if end <= known:
        assert level is not None
        problems.add(most_specific(level, sessions, after).problem(
            f"level {named.value} is known at {known // 3600:02d}:{known // 60 % 60:02d}, "
            "when the watcher's window has ended: it would never arm"))
