"""The broker's clock: the daemon's time follows the gateway's, not the host's.

IB's ``reqCurrentTime`` answers in whole seconds. :func:`sync_clock` asks
repeatedly until the answer ticks over to the next second; that instant is
the start of a broker second, which fixes the offset to the host's clock to
within one request's round trip plus the polling step. Against IBKR the
offset is near zero (both sides keep NTP time); against the simulated gateway
it is the distance to its virtual day.

The simulated gateway's clock may also run faster than the host's (``breakoutd
sim --speed 10``). It says so in a notice at every connection and whenever its
rate changes (:data:`~breakoutd.sim.clock.CLOCK_NOTICE`: the virtual instant
and the rate); from then on the clock follows it, at that rate. Everything
measured on this clock (bar closes, quote ages, arming instants) is then in
virtual seconds, and :func:`clock_rate` lets the real-time waits (the
daemon's tick, a quote's warm-up) shrink with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ib_async import IB

from breakoutd.core.bars import NS
from breakoutd.ibkr.convert import datetime_to_ns
from breakoutd.sim.clock import CLOCK_NOTICE, read_clock_notice

POLL_SECONDS = 0.025  # under ib_async's 45 requests per second throttle


class BrokerClock:
    """Epoch ns on the broker's clock: the host's monotonic time plus an offset, or,
    once a simulated gateway announced its clock, that clock at its rate."""

    def __init__(self, offset_ns: int = 0, mono: Callable[[], int] = time.monotonic_ns) -> None:
        self._mono = mono
        self._base = time.time_ns() - mono()
        self.offset_ns = offset_ns
        self.rate = 1.0
        self._anchor: tuple[int, int] | None = None  # (broker ns, monotonic ns) when announced

    def __call__(self) -> int:
        if self._anchor is None:
            return self._base + self._mono() + self.offset_ns
        broker, mono = self._anchor
        return broker + int((self._mono() - mono) * self.rate)

    @property
    def announced(self) -> bool:
        """True once the gateway said where its clock is (then no sync is needed)."""
        return self._anchor is not None

    def follow(self, broker_ns: int, rate: float) -> None:
        """From now on read ``broker_ns`` advancing at ``rate`` (0: standing still)."""
        self._anchor = (broker_ns, self._mono())
        self.rate = rate

    def on_gateway_message(self, _req_id: int, code: int, message: str, _contract: object) -> None:
        """ib_async's ``errorEvent`` handler: follow the simulated gateway's clock notice."""
        if code == CLOCK_NOTICE and (found := read_clock_notice(message)) is not None:
            self.follow(*found)


def clock_rate(clock: object) -> float:
    """Broker seconds per host second of ``clock`` (1 unless it says otherwise)."""
    rate = getattr(clock, "rate", 1.0)
    return rate if isinstance(rate, int | float) and rate > 0 else 1.0


def host_seconds(clock: object, broker_seconds: float) -> float:
    """Host seconds a wait of ``broker_seconds`` takes on ``clock``; never longer than asked."""
    return broker_seconds / max(1.0, clock_rate(clock))


async def sync_clock(ib: IB, clock: BrokerClock, timeout: float = 3.0) -> int:
    """Align ``clock`` with the gateway's seconds; return the offset applied (ns).

    A clock the gateway has announced needs nothing: it is exact already."""
    if clock.announced:
        return 0
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
