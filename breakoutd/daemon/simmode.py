"""The embedded default: a simulated gateway on a virtual trading day, in-process.

``breakoutd run --sim`` starts :class:`~breakoutd.sim.SimGateway` on a free
loopback port with a synthetic market for the watchlists' symbols, whose
prices break through the watchlists' own levels shortly after the regular
open. The virtual day is the next trading day whose open is still ahead (in
exchange time) and starts a little before 09:30, so a newcomer sees watchers
arm, trigger and trade within two minutes at any hour of any day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from breakoutd.calendar import EXCHANGE_TZ, day_sessions, next_trading_day
from breakoutd.config import load_watchlists
from breakoutd.sim import Market, SimGateway
from breakoutd.tape import synthetic_tape

VIRTUAL_START = dt.time(9, 29, 50)
BREAKOUTS_BETWEEN = (dt.time(9, 30, 5), dt.time(9, 31, 0))


def virtual_day(now: dt.datetime | None = None) -> dt.date:
    """Today if its regular open is still ahead, else the next trading day."""
    local = (now or dt.datetime.now(EXCHANGE_TZ)).astimezone(EXCHANGE_TZ)
    if day_sessions(local.date()) is not None and local.time() < VIRTUAL_START:
        return local.date()
    return next_trading_day(local.date())


class GatewayClock:
    """The embedded gateway's virtual clock as the daemon's: its instant and its rate."""

    def __init__(self, gateway: SimGateway) -> None:
        self._gateway = gateway

    def __call__(self) -> int:
        return self._gateway.now_ns()

    @property
    def rate(self) -> float:
        """Virtual seconds per real second (0 while paused)."""
        return self._gateway.clock.rate


async def start_embedded_sim(watchlists: Sequence[Path], seed: int = 7,
                             day: dt.date | None = None, speed: float = 1.0) -> SimGateway:
    """Start a simulated gateway whose market breaks the watchlists' levels."""
    config = load_watchlists(watchlists)
    levels: dict[str, list[int]] = {}
    for w in config.watchers:
        levels.setdefault(w.symbol, []).append(w.level)
    the_day = day or virtual_day()
    tape = synthetic_tape(seed, sorted(levels), the_day, levels=levels,
                          breakouts_between=BREAKOUTS_BETWEEN)
    gateway = SimGateway(Market.from_tape(tape), port=0, start=VIRTUAL_START, day=the_day,
                         speed=speed)
    await gateway.start()
    return gateway
