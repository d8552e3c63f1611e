"""Phase two for strategy parameters: layer them and check them together.

A watcher's parameters are layered: built-in defaults, then the preset, then
the file's ``defaults``, then the breakout itself; a later layer replaces a
key wholesale (a ``fast`` mapping is not merged with the preset's). When two
keys conflict, the problem is reported where the more specific one is
written, so a bad preset is reported once, at the preset.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from breakoutd.config.errors import Origin
from breakoutd.config.fields import Located, Problems
from breakoutd.config.schema import STRATEGY_KEYS, Section
from breakoutd.core.params import EntryKind, Session, StrategyParams

# Normal-day session hours, seconds after 00:00 exchange time.
SESSION_HOURS = {
    Session.PREMARKET: (4 * 3600, 9 * 3600 + 1800),
    Session.RTH: (9 * 3600 + 1800, 16 * 3600),
    Session.AFTERHOURS: (16 * 3600, 20 * 3600),
}
_FIELD = {"bar": "bar_seconds"}
_DEFAULT_SESSIONS = StrategyParams().sessions


class Layered:
    """Values of several layers merged, most specific last; bad keys stay bad."""

    def __init__(self, layers: Iterable[Section | None]) -> None:
        self.values: dict[str, Located[Any]] = {}
        self.bad: set[str] = set()
        for layer in layers:
            if layer is not None:
                self._apply(layer)

    def extended(self, layer: Section) -> Layered:
        """These layers with ``layer`` on top, leaving these unchanged."""
        merged = Layered(())
        merged.values, merged.bad = dict(self.values), set(self.bad)
        merged._apply(layer)
        return merged

    def _apply(self, layer: Section) -> None:
        for key, value in layer.values.items():
            self.values[key] = value
            self.bad.discard(key)
        for key in layer.bad:
            self.values.pop(key, None)
            self.bad.add(key)

    def get(self, key: str) -> Located[Any] | None:
        """The value written for ``key`` (None when unwritten or bad)."""
        return self.values.get(key)

    def value(self, key: str, default: Any = None) -> Any:
        """The typed value of ``key``, or ``default`` when it was not written."""
        located = self.values.get(key)
        return default if located is None else located.value

    def ok(self, *keys: str) -> bool:
        """True when none of ``keys`` had a bad value."""
        return not self.bad.intersection(keys)


def most_specific(*values: Located[Any] | None) -> Origin:
    """The origin of the most specific written value (the first one on ties)."""
    best: Located[Any] | None = None
    for value in values:
        if value is not None and (best is None or value.at.rank > best.at.rank):
            best = value
    if best is None:
        raise ValueError("most_specific needs at least one written value")
    return best.at


def clock_text(seconds: int) -> str:
    """``HH:MM`` (``HH:MM:SS`` when the seconds are not 0) of seconds after 00:00."""
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}" + (f":{rest % 60:02d}" if rest % 60 else "")


def _span(start: int, end: int) -> str:
    return f"{clock_text(start)}-{clock_text(end)}"


def _check_rth(merged: Layered, problems: Problems) -> None:
    rth, sessions = merged.get("rth"), merged.get("sessions")
    if rth is None or not rth.value or not merged.ok("sessions"):
        return
    names = sessions.value if sessions else StrategyParams().sessions
    if tuple(names) != (Session.RTH,):
        listed = ", ".join(s.value for s in names)
        problems.add(most_specific(rth, sessions).problem(
            f"rth: true keeps orders to regular hours, so sessions must be [rth], not [{listed}]"))


def _check_market_entry(merged: Layered, problems: Problems) -> None:
    entry, sessions = merged.get("entry"), merged.get("sessions")
    if entry is None or entry.value is not EntryKind.MARKET or not merged.ok("sessions"):
        return
    names = sessions.value if sessions else StrategyParams().sessions
    if tuple(names) != (Session.RTH,):
        # IB holds a market order outside regular hours until the open, at whatever price then.
        listed = ", ".join(s.value for s in names)
        problems.add(most_specific(entry, sessions).problem(
            f"entry: market is held by the broker outside regular hours until the open, "
            f"so sessions must be [rth], not [{listed}]"))


def _check_window(merged: Layered, problems: Problems) -> None:
    before, after = merged.get("not_before"), merged.get("not_after")
    if before is not None and after is not None and before.value is not None \
            and after.value is not None and before.value >= after.value:
        problems.add(most_specific(before, after).problem(
            f"not_before {before.text} must be earlier than not_after {after.text}"))
        return
    if not merged.ok("sessions"):
        return
    sessions = merged.value("sessions", _DEFAULT_SESSIONS)
    start, end = SESSION_HOURS[sessions[0]][0], SESSION_HOURS[sessions[-1]][1]
    if before is not None and before.value is not None and before.value >= end:
        problems.add(most_specific(before, merged.get("sessions")).problem(
            f"not_before {before.text} is after the sessions end ({_span(start, end)}): "
            "it would never arm"))
    if after is not None and after.value is not None and after.value <= start:
        problems.add(most_specific(after, merged.get("sessions")).problem(
            f"not_after {after.text} is before the sessions start ({_span(start, end)}): "
            "it would never arm"))


def build_params(merged: Layered, problems: Problems) -> StrategyParams:
    """The StrategyParams of the merged layers; conflicts go to ``problems``."""
    _check_rth(merged, problems)
    _check_market_entry(merged, problems)
    _check_window(merged, problems)
    fields = {
        _FIELD.get(key, key): value.value
        for key, value in merged.values.items()
        if key in STRATEGY_KEYS and not (key == "tp_r" and value.value is None)
    }
    return StrategyParams(**fields)
