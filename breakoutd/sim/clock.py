"""The sim's virtual clock: an exchange instant that runs at a chosen speed.

Running, virtual time is ``start + (monotonic - t0) * speed``. Manual (for
tests), it moves only when told to, so a test sets time instead of waiting.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

# The sim tells its clients where its virtual clock is and how fast it runs, as a
# notice (IB's 2100-2199 range; IB itself leaves 2199 unused): reqCurrentTime
# answers in whole seconds only, too coarse for a clock ten times faster.
CLOCK_NOTICE = 2199
_NOTICE = re.compile(r"simulated gateway virtual clock: (\d+) ns, running at ([0-9.]+)x")


def clock_notice(now_ns: int, rate: float) -> str:
    """The notice's text: the virtual instant when sent and the rate (0 when paused)."""
    return f"simulated gateway virtual clock: {now_ns} ns, running at {rate:g}x"


def read_clock_notice(message: str) -> tuple[int, float] | None:
    """(virtual instant ns, rate) from a clock notice's text, or None."""
    match = _NOTICE.fullmatch(message)
    return None if match is None else (int(match.group(1)), float(match.group(2)))


class VirtualClock:
    """Virtual epoch nanoseconds, running at ``speed`` or stepped by hand."""

    def __init__(self, start_ns: int, speed: float = 1.0, manual: bool = False,
                 monotonic_ns: Callable[[], int] = time.monotonic_ns) -> None:
        if speed <= 0 and not manual:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self.manual = manual
        self._monotonic_ns = monotonic_ns
        self._base_virtual = start_ns
        self._base_real = monotonic_ns()

    @property
    def rate(self) -> float:
        """Virtual seconds per real second: the speed, 0 while manual."""
        return 0.0 if self.manual else self.speed

    def now_ns(self) -> int:
        """The current virtual instant."""
        if self.manual:
            return self._base_virtual
        elapsed = self._monotonic_ns() - self._base_real
        return self._base_virtual + int(elapsed * self.speed)

    def set(self, instant_ns: int) -> None:
        """Jump to ``instant_ns`` (never backwards)."""
        now = self.now_ns()
        if instant_ns < now:
            raise ValueError("the virtual clock cannot go backwards")
        self._base_virtual = instant_ns
        self._base_real = self._monotonic_ns()

    def run(self, speed: float) -> None:
        """Start running at ``speed`` from the current virtual instant."""
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self._base_virtual = self.now_ns()
        self._base_real = self._monotonic_ns()
        self.speed = speed
        self.manual = False

    def pause(self) -> None:
        """Stop at the current virtual instant (manual from now on)."""
        self._base_virtual = self.now_ns()
        self.manual = True

    def real_seconds_until(self, instant_ns: int) -> float:
        """Real seconds until the clock reaches ``instant_ns`` (inf when manual)."""
        if self.manual:
            return float("inf")
        return max(0.0, (instant_ns - self.now_ns()) / self.speed / 1e9)
