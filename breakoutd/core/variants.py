"""The rule variants ``momentum`` and ``retest`` (strategy.md, Rule variants).

Both replace the close rule on the close-rule bars. Their near misses (a
close at or above the level without the volume; a break waiting for its
retest; a break cancelled by a close below the level) are not decisions but
are reported as a :class:`NearMiss` so that an operator sees why a watcher
that "broke" did not buy.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from fractions import Fraction
from typing import NamedTuple

from breakoutd.core.bars import Bar

NO_VOLUME = "no_volume"  # momentum: close >= L, volume below volume_mult x the mean
AWAITING_RETEST = "awaiting_retest"  # retest: the break, or a bar after it above L + within
BREAK_CANCELLED = "break_cancelled"  # retest: a close below L after the break


class NearMiss(NamedTuple):
    """A close-rule bar that came near a trigger; ``mean`` is the momentum mean volume."""

    kind: str
    bar: Bar
    mean: Fraction | None = None


class VolumeWindow:
    """The volumes of the last ``lookback`` close-rule bars of the day, and their sum.

    Bars without trades do not exist, so they are absent here, not zeros.
    """

    __slots__ = ("_volumes", "_sum")

    def __init__(self, lookback: int) -> None:
        self._volumes: deque[int] = deque(maxlen=lookback)
        self._sum = 0

    def add(self, volume: int) -> None:
        """Record a closed bar's volume (the oldest one drops out)."""
        vols = self._volumes
        if len(vols) == vols.maxlen:
            self._sum -= vols[0]
        vols.append(volume)
        self._sum += volume

    def seed(self, volumes: Iterable[int]) -> None:
        """Replace the history with the day's bars so far (oldest first)."""
        keep = list(volumes)[-(self._volumes.maxlen or 0):]
        self._volumes.clear()
        self._volumes.extend(keep)
        self._sum = sum(keep)

    @property
    def count(self) -> int:
        """How many bars the mean is over (at most the lookback)."""
        return len(self._volumes)

    @property
    def total(self) -> int:
        """The sum of their volumes."""
        return self._sum

    def mean(self) -> Fraction | None:
        """The exact mean volume, or None with no bar yet."""
        return Fraction(self._sum, len(self._volumes)) if self._volumes else None


def volume_confirms(volume: int, window: VolumeWindow, mult: Fraction) -> bool:
    """``volume >= mult * mean`` exactly; never with no earlier bar to compare."""
    count = window.count
    if count == 0:
        return False
    # volume >= (p/q) * (sum/count)  <=>  volume * count * q >= p * sum, in integers.
    return volume * count * mult.denominator >= mult.numerator * window.total


class RetestState:
    """The retest rule's two phases: waiting for a break, then for the retest."""

    __slots__ = ("broken", "within")

    def __init__(self, within: int) -> None:
        self.broken = False
        self.within = within

    def step(self, bar: Bar, level: int) -> tuple[bool, NearMiss | None]:
        """(True, None) on the retest; else (False, the near miss of a break, if any)."""
        if bar.close < level:
            if self.broken:
                self.broken = False
                return False, NearMiss(BREAK_CANCELLED, bar)
            return False, None
        if self.broken and bar.low <= level + self.within:
            return True, None
        self.broken = True  # the break bar itself never triggers
        return False, NearMiss(AWAITING_RETEST, bar)
