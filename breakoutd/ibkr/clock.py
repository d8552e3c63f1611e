"""The broker's clock: the daemon's time follows the gateway's, not the host's.

IB's ``reqCurrentTime`` answers in whole seconds. :func:`sync_clock` asks
repeatedly until the answer ticks over to the next second; that instant is
the start of a broker second, which fixes the offset to the host's clock to
within one request's round trip plus the polling step. Against IBKR the
offset is near zero (both sides keep NTP time); against the simulated gateway
it is the distance to its virtual day.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ib_async import IB

from breakoutd.core.bars import NS
from breakoutd.ibkr.convert import datetime_to_ns

POLL_SECONDS = 0.025  # under ib_async's 45 requests per second throttle


class BrokerClock:
    """Epoch ns on the broker's clock: the host's monotonic time plus an offset."""

    def __init__(self, offset_ns: int = 0, mono: Callable[[], int] = time.monotonic_ns) -> None:
        self._mono = mono
        self._base = time.time_ns() - mono()
        self.offset_ns = offset_ns

    def __call__(self) -> int:
        return self._base + self._mono() + self.offset_ns


async def sync_clock(ib: IB, clock: BrokerClock, timeout: float = 3.0) -> int:
    """Align ``clock`` with the gateway's seconds; return the offset applied (ns)."""
    first = datetime_to_ns(await ib.reqCurrentTimeAsync())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        sent = clock()
        now = datetime_to_ns(await ib.reqCurrentTimeAsync())
        received = clock()
        if now != first:
            # The second ticked over between the previous request and this one;
            # take the middle of this round trip as the tick.
            clock.offset_ns += now - (sent + received) // 2
            return clock.offset_ns
    # No tick seen (a paused clock): take the coarse answer.
    clock.offset_ns += first - clock() + NS // 2
    return clock.offset_ns
