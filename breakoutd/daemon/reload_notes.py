"""What a reload means for watchers that already fired today, in the operator's words.

A watcher fires once a day (strategy.md): removing, changing or re-adding one
that entered or was rejected today never buys again, and never sells what it
bought. ``ConfigReloaded.notes`` says so, one line per such watcher, so the
console does not leave the operator guessing from ``+1 -1 ~1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from breakoutd.config import ReloadPlan
from breakoutd.core.params import WatcherSpec
from breakoutd.daemon.state import FiredEntry

NOTHING_AGAIN = "nothing is bought again for it today"


def _position(wid: str, fired: FiredEntry, unfilled: bool, removed: bool) -> str:
    if fired.outcome != "entered":
        return f"it fired today ({fired.outcome}) and holds nothing"
    if unfilled:
        return ("its entry had bought nothing and is cancelled" if removed
                else "its entry is still working at the broker")
    return (f"it entered today: its position and exits stay at the broker "
            f"(`breakoutctl flatten {wid}` sells what is left)")


def _exits_changed(old: WatcherSpec, new: WatcherSpec) -> bool:
    return (old.tp, old.sl) != (new.tp, new.sl)


def reload_notes(plan: ReloadPlan, fired: Mapping[str, FiredEntry],
                 unfilled: Callable[[str], bool]) -> list[tuple[str, str]]:
    """``(watcher id, line)`` for each watcher of ``plan`` that fired today; ``unfilled``
    tells an entry still working with nothing bought (by its orderRef), before the plan applies."""
    notes = []
    for spec in plan.removed:
        f = fired.get(spec.id)
        if f is not None:
            where = _position(spec.id, f, unfilled(f.order_ref), removed=True)
            notes.append((spec.id, f"{spec.id} removed: {where}"))
    for old, new in plan.changed:
        f = fired.get(new.id)
        if f is None:
            continue
        if f.outcome == "entered" and _exits_changed(old, new):
            change = "its working exits take the new tp/sl"
        else:
            change = "the change applies from the next trading day"
        where = _position(new.id, f, unfilled(f.order_ref), removed=False)
        notes.append((new.id, f"{new.id} changed: {where}; {change}; {NOTHING_AGAIN}"))
    for spec in plan.added:
        f = fired.get(spec.id)
        if f is not None:
            where = _position(spec.id, f, unfilled(f.order_ref), removed=False)
            notes.append((spec.id, f"{spec.id} added back: {where}; {NOTHING_AGAIN}"))
    return notes
