"""Phase two for position management and relative exits: the keys checked together.

R is ``fill - stop``, so every rule in R (``breakeven``, ``trail_after``,
``tp_r``) and the trail that moves the stop need a stop (``sl`` or
``sl_below``). ``exit_at`` must fall inside the watcher's sessions and after
it arms. Slices must each get a share and, since the exits cover what has
filled, go with a single take-profit rather than a ladder.
"""

from __future__ import annotations

from typing import Any

from breakoutd.config.fields import Located, Problems
from breakoutd.config.params_check import (
    SESSION_HOURS,
    Layered,
    build_params,
    clock_text,
    most_specific,
)
from breakoutd.core.params import Slices, StrategyParams
from breakoutd.core.plans import STOP_LIMIT_OFFSET
from breakoutd.core.prices import format_price, round_to_tick
from breakoutd.core.relative_exits import stop_below


def _written(merged: Layered, key: str) -> Located[Any] | None:
    value = merged.get(key)
    return value if value is not None and value.value not in (None, ()) else None


def checked_params(merged: Layered, problems: Problems) -> StrategyParams:
    """:func:`build_params` with the position-management checks that need only parameters."""
    params = build_params(merged, problems)
    check_management_params(merged, problems)
    return params


def check_management_params(merged: Layered, problems: Problems) -> None:
    """The checks that need only the strategy parameters."""
    trail, after = _written(merged, "trail"), _written(merged, "trail_after")
    if after is not None and trail is None and merged.ok("trail"):
        problems.add(after.at.problem("trail_after needs trail (the distance to trail by)"))
    _check_exit_at(merged, problems)


def _check_exit_at(merged: Layered, problems: Problems) -> None:
    exit_at = _written(merged, "exit_at")
    if exit_at is None or not merged.ok("sessions"):
        return
    sessions = merged.value("sessions", StrategyParams().sessions)
    start, end = SESSION_HOURS[sessions[0]][0], SESSION_HOURS[sessions[-1]][1]
    where = most_specific(exit_at, merged.get("sessions"))
    if not start <= exit_at.value < end:
        listed = ", ".join(s.value for s in sessions)
        problems.add(where.problem(
            f"exit_at {exit_at.text} is outside the sessions [{listed}] "
            f"({clock_text(start)}-{clock_text(end)}): nothing could be sold then"))
        return
    before = _written(merged, "not_before")
    if before is not None and exit_at.value <= before.value:
        problems.add(most_specific(exit_at, before).problem(
            f"exit_at {exit_at.text} is not after not_before {before.text}: "
            "every entry would be sold as it fills"))


def has_stop(merged: Layered) -> bool:
    """True when the breakout has an initial stop, given or relative."""
    return _written(merged, "sl") is not None or _written(merged, "sl_below") is not None


# Each check below starts from one of these keys; most breakouts of a large file
# write none of them, and have nothing to check here.
_MANAGEMENT_KEYS = frozenset({"sl_below", "tp_r", "breakeven", "trail", "slices"})


def check_management(merged: Layered, problems: Problems) -> None:
    """The checks that need the breakout's level, stop, take-profits and size."""
    if _MANAGEMENT_KEYS.isdisjoint(merged.values):
        return
    _check_relative_exits(merged, problems)
    if not has_stop(merged) and merged.ok("sl", "sl_below"):
        for key in ("breakeven", "trail", "tp_r"):
            value = _written(merged, key)
            if value is not None:
                why = "moves the stop" if key == "trail" else "is in R, the distance to the stop"
                problems.add(value.at.problem(f"{key} {why}, so it needs sl or sl_below"))
    _check_slices(merged, problems)


def _check_relative_exits(merged: Layered, problems: Problems) -> None:
    sl, below = _written(merged, "sl"), _written(merged, "sl_below")
    tp, tp_r = _written(merged, "tp"), _written(merged, "tp_r")
    if sl is not None and below is not None:
        problems.add(most_specific(below, sl).problem("give sl or sl_below, not both"))
    if tp is not None and tp_r is not None:
        problems.add(most_specific(tp_r, tp).problem("give tp or tp_r, not both"))
    level = merged.get("level")
    if below is None or sl is not None or level is None or not isinstance(level.value, int):
        return
    stop = stop_below(level.value, below.value)
    if stop <= 0 or round_to_tick(stop - STOP_LIMIT_OFFSET) <= 0:
        problems.add(below.at.problem(
            f"sl_below {below.text} puts the stop at {format_price(stop)} below level "
            f"{level.text}: its stop-limit (stop - 0.02) is not a price"))


def _check_slices(merged: Layered, problems: Problems) -> None:
    slices = _written(merged, "slices")
    if slices is None:
        return
    value: Slices = slices.value
    tp, tp_r = _written(merged, "tp"), _written(merged, "tp_r")
    rungs = len(tp.value) if tp is not None else len(tp_r.value) if tp_r is not None else 0
    if rungs > 1 and value.count > 1:
        ladder = most_specific(slices, tp, tp_r)
        problems.add(ladder.problem(
            f"slices (count {value.count}) with a take-profit ladder of {rungs} rungs: "
            "the exits cover what has filled, give one tp (or one tp_r)"))
    qty = _written(merged, "qty")
    if qty is None or merged.value("risk_usd") is not None:
        return  # a risk-sized entry is split when its size is known
    if qty.value < value.count:
        problems.add(most_specific(slices, qty).problem(
            f"qty {qty.text} split into {value.count} slices leaves a slice with no shares"))
