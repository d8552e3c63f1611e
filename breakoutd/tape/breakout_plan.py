"""When and how the synthetic walk breaks each level.

Each level gets its own slice of a window of trigger instants (by default
09:35-15:50, so spread over the regular session), and a seeded-random instant
in it: a spike second early in a minute, where the fast rule's allowances are
widest, or a whole minute for a grind, whose close is the trigger.
"""

from __future__ import annotations

import numpy as np

from .price_path import Breakout

# A spike's range is two ticks: within the fast rule's spread cap for k <= 3
# at every regime (strategy.md); k = 0 (the first ten seconds) is preferred.
_SPIKE_SECONDS_BEST, _SPIKE_SECONDS_OK = 10, 40
_EVENT_LENGTH = {"fast": 1, "grind": 60}


def plan_breakouts(rng: np.random.Generator, levels: list[int], window: tuple[int, int],
                   first: int, style: str) -> list[Breakout]:
    """One breakout per level (ascending), triggering inside ``window``.

    Instants are second offsets from the epoch second ``first``; ``window``
    bounds the trigger instants (a spike's end, a grind minute's close).
    """
    plan: list[Breakout] = []
    width = (window[1] - window[0]) / max(len(levels), 1)
    free_from = 1  # the walk needs at least one second before each event
    for k, level in enumerate(levels):
        slot = (window[0] + int(width * k), window[0] + int(width * (k + 1)))
        kind = style if style != "mixed" else ("fast", "grind")[int(rng.integers(2))]
        start = _pick_start(rng, kind, slot, free_from, first)
        if start is None and kind == "grind":  # no whole minute fits: spike instead
            kind = "fast"
            start = _pick_start(rng, kind, slot, free_from, first)
        if start is None:
            raise ValueError(f"the breakout window is too short for {len(levels)} levels")
        plan.append(Breakout(level, kind, start))
        free_from = start + _EVENT_LENGTH[kind] + 1
    return plan


def _pick_start(rng: np.random.Generator, kind: str, slot: tuple[int, int], free_from: int,
                first: int) -> int | None:
    length = _EVENT_LENGTH[kind]
    starts = np.arange(max(slot[0] - length, free_from), slot[1] - length + 1)
    second = (first + starts) % 60
    if kind == "grind":
        groups = [starts[second == 0]]
    else:
        groups = [starts[second < _SPIKE_SECONDS_BEST], starts[second < _SPIKE_SECONDS_OK]]
    for group in groups:
        if len(group):
            choices = _middle(group, slot, length)
            return int(choices[int(rng.integers(len(choices)))])
    return None


def _middle(starts: np.ndarray, slot: tuple[int, int], length: int) -> np.ndarray:
    """The starts whose trigger falls in the middle 60% of the slot, if there are any."""
    margin = (slot[1] - slot[0]) * 0.2
    triggers = starts + length
    inner = starts[(triggers >= slot[0] + margin) & (triggers <= slot[1] - margin)]
    return inner if len(inner) else starts
