"""The watcher state machine (strategy.md, Watcher / Close rule / Fast rule).

A :class:`WatcherMachine` is one watcher armed for one window ``(A, Z]``. The
driver (live adapter or backtest) feeds it closed bars and the passing of
time, at each instant in the order strategy.md prescribes: the 1-second bar
(:meth:`on_fast_bar`), then the close-rule bar (:meth:`on_close_bar`, which
also counts ``max_bars``), then the disarm (:meth:`on_time`). The machine
returns at most one final decision and ignores everything after it
(single-fire).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from fractions import Fraction
from typing import NamedTuple

from breakoutd.core.bars import NS, Bar
from breakoutd.core.params import Rule, WatcherSpec
from breakoutd.core.rules import (
    FastThresholds,
    close_rule_fires,
    fast_rule_fires,
    fast_thresholds,
)
from breakoutd.core.variants import (
    NO_VOLUME,
    NearMiss,
    RetestState,
    VolumeWindow,
    volume_confirms,
)


class WatcherState(StrEnum):
    """Where a watcher is in its day."""

    ARMED = "armed"
    TRIGGERED = "triggered"
    EXPIRED = "expired"


class Trigger(NamedTuple):
    """A rule fired: ``kind`` is ``close``, ``fast``, ``momentum`` or ``retest``; ``at`` the bar's close."""

    kind: str
    at: int
    bar: Bar


class Expiry(NamedTuple):
    """The watcher ended without a trigger."""

    reason: str  # "max_bars" | "session_end" | "no_level"
    at: int
    bars_evaluated: int


Decision = Trigger | Expiry


class WatcherMachine:
    """One watcher, armed at ``armed_at`` and disarmed at ``disarm_at`` (ns)."""

    __slots__ = (
        "spec", "armed_at", "disarm_at", "level", "state", "bars_evaluated",
        "decision", "near_miss", "_fast", "_fast_floor", "_max_bars", "_bar_size",
        "_rule", "_volumes", "_mult", "_retest",
    )

    def __init__(self, spec: WatcherSpec, armed_at: int, disarm_at: int) -> None:
        if disarm_at < armed_at:
            raise ValueError("a watcher cannot be disarmed before it is armed")
        self.spec = spec
        self.armed_at = armed_at
        self.disarm_at = disarm_at
        self.level = spec.level
        self.state = WatcherState.ARMED
        self.bars_evaluated = 0
        self.decision: Decision | None = None
        self.near_miss: NearMiss | None = None  # of the last evaluated close-rule bar
        p = spec.params
        self._rule = p.rule
        self._volumes = VolumeWindow(p.volume_lookback) if p.rule is Rule.MOMENTUM else None
        self._mult = Fraction(p.volume_mult)
        self._retest = RetestState(p.retest_within) if p.rule is Rule.RETEST else None
        fast = p.fast if p.rule is not Rule.RETEST else None  # retest: the fast rule is off
        self._fast: FastThresholds | None = (
            fast_thresholds(fast, spec.level) if fast is not None else None
        )
        self._fast_floor = spec.level + min(self._fast.distance) if self._fast else 0
        self._max_bars = spec.params.max_bars
        self._bar_size = spec.params.bar_seconds * NS

    @property
    def thresholds(self) -> FastThresholds | None:
        """The fast rule's per-k limits for this level, or None when it is off."""
        return self._fast

    @property
    def close_bar_size(self) -> int:
        """Size of the close-rule bars, in nanoseconds."""
        return self._bar_size

    def fast_bar_in_window(self, bar: Bar) -> bool:
        """A 1-second bar ``[s, s+1)`` is evaluated when ``A <= s`` and ``s+1 <= Z``."""
        return self.armed_at <= bar.start and bar.end <= self.disarm_at

    def close_bar_in_window(self, bar: Bar) -> bool:
        """A close-rule bar is evaluated when it closes in ``(A, Z]``."""
        return self.armed_at < bar.end <= self.disarm_at

    def on_fast_bar(self, bar: Bar) -> Trigger | None:
        """Evaluate a closed 1-second bar under the fast rule."""
        th = self._fast
        if th is None or self.state is not WatcherState.ARMED:
            return None
        start, size, _, high = bar[0], bar[1], bar[2], bar[3]
        if start < self.armed_at or start + size > self.disarm_at:
            return None
        # Most bars are far below level + the smallest distance: a cheap necessary
        # condition first, then the rule itself.
        if high < self._fast_floor or not fast_rule_fires(bar, self.level, th):
            return None
        trigger = Trigger("fast", bar.end, bar)
        self._finish(trigger, WatcherState.TRIGGERED)
        return trigger

    def seed_volumes(self, volumes: Iterable[int]) -> None:
        """Momentum: the volumes of the day's close-rule bars before the next one fed."""
        if self._volumes is not None:
            self._volumes.seed(volumes)

    def on_close_bar(self, bar: Bar) -> Decision | None:
        """Evaluate a closed close-rule bar, then count it toward ``max_bars``.

        With ``rule: momentum`` feed every close-rule bar of the day from 04:00:
        the ones that close at or before A are not evaluated but make the mean.
        """
        if self.state is not WatcherState.ARMED:
            return None
        if not self.close_bar_in_window(bar):
            if self._volumes is not None and bar.end <= self.armed_at:
                self._volumes.add(bar.volume)
            return None
        decision: Decision
        if self._rule is Rule.CLOSE:
            fired = close_rule_fires(bar, self.level)
        else:
            fired = self._variant_fires(bar)
        if fired:
            decision = Trigger(self._rule.value, bar.end, bar)
            self._finish(decision, WatcherState.TRIGGERED)
            return decision
        self.bars_evaluated += 1
        if self._max_bars is not None and self.bars_evaluated >= self._max_bars:
            decision = Expiry("max_bars", bar.end, self.bars_evaluated)
            self._finish(decision, WatcherState.EXPIRED)
            return decision
        return None

    def _variant_fires(self, bar: Bar) -> bool:
        self.near_miss = None
        if self._retest is not None:
            fired, self.near_miss = self._retest.step(bar, self.level)
            return fired
        window = self._volumes
        assert window is not None
        above = bar.close >= self.level
        fired = above and volume_confirms(bar.volume, window, self._mult)
        if above and not fired:
            self.near_miss = NearMiss(NO_VOLUME, bar, window.mean())
        window.add(bar.volume)  # after the check: the mean is over the bars before this one
        return fired

    def on_time(self, now: int) -> Expiry | None:
        """Disarm once the clock reaches the end of the window."""
        if self.state is not WatcherState.ARMED or now < self.disarm_at:
            return None
        expiry = Expiry("session_end", self.disarm_at, self.bars_evaluated)
        self._finish(expiry, WatcherState.EXPIRED)
        return expiry

    def _finish(self, decision: Decision, state: WatcherState) -> None:
        self.state = state
        self.decision = decision
