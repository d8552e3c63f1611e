"""IB's historical-data pacing rules, kept by waiting before a request.

IB answers a pacing violation with error 162 and may refuse history for a
while, so the daemon never sends: an identical request within 15 s of the
last one, more than 60 requests in any 10 minutes, or two requests closer
than ``spacing`` (requests are spread, not sent in bursts). The clock and
the sleep are injected, so tests set time instead of waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

IDENTICAL_GAP = 15.0
WINDOW = 600.0
MAX_IN_WINDOW = 60
SPACING = 1.0


class HistoryPacer:
    """Hands out turns for historical requests, one at a time, within the limits."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]],
                 *, identical_gap: float = IDENTICAL_GAP, window: float = WINDOW,
                 max_in_window: int = MAX_IN_WINDOW, spacing: float = SPACING) -> None:
        self._clock = clock
        self._sleep = sleep
        self._identical_gap = identical_gap
        self._window = window
        self._max = max_in_window
        self._spacing = spacing
        self._sent: deque[float] = deque()
        self._last_of: dict[Hashable, float] = {}
        self._lock = asyncio.Lock()

    def delay(self, key: Hashable) -> float:
        """Seconds to wait before ``key`` may be sent now (0 when it may)."""
        now = self._clock()
        while self._sent and self._sent[0] <= now - self._window:
            self._sent.popleft()
        waits = [0.0]
        if self._sent:
            waits.append(self._sent[-1] + self._spacing - now)
        if len(self._sent) >= self._max:
            waits.append(self._sent[len(self._sent) - self._max] + self._window - now)
        last = self._last_of.get(key)
        if last is not None:
            waits.append(last + self._identical_gap - now)
        return max(waits)

    async def turn(self, key: Hashable) -> None:
        """Wait until ``key`` may be sent, and count it as sent."""
        async with self._lock:
            while (wait := self.delay(key)) > 0:
                await self._sleep(wait)
            now = self._clock()
            self._sent.append(now)
            self._last_of[key] = now

    @property
    def sent_in_window(self) -> int:
        """Requests counted in the last window (for status and tests)."""
        now = self._clock()
        return sum(1 for t in self._sent if t > now - self._window)
