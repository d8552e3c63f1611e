"""A watcher's arming window (strategy.md, Bars: Arming window)."""

from __future__ import annotations

from collections.abc import Sequence


def arming_window(
    sessions: Sequence[tuple[int, int]],
    not_before: int | None = None,
    not_after: int | None = None,
) -> tuple[int, int] | None:
    """``(A, Z)`` from the first named session's start to the last one's end.

    The window is intersected with ``[not_before, not_after]`` (instants, ns).
    Returns None when nothing is left: the watcher is not armed that day.
    """
    if not sessions:
        return None
    start = min(s for s, _ in sessions)
    end = max(e for _, e in sessions)
    if not_before is not None:
        start = max(start, not_before)
    if not_after is not None:
        end = min(end, not_after)
    if end <= start:
        return None
    return start, end


def arm_at(window: tuple[int, int], now: int) -> tuple[int, int] | None:
    """The window for a watcher added at ``now``: armed at once if it is open."""
    start, end = window
    if now >= end:
        return None
    return max(start, now), end
