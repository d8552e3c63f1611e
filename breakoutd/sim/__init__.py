"""A simulated IB Gateway: the TWS API socket protocol on loopback, a replayed
market on a virtual clock, order matching, and injectable faults.

The unmodified ib_async client connects to it. Programmatic use::

    market = Market.synthetic(seed=7, symbols=["ABC"], day=date(2026, 3, 9))
    gateway = SimGateway(market, port=0, start=time(9, 35), speed=1.0)
    await gateway.start()          # gateway.port is the bound port
    ...
    await gateway.stop()
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable

from breakoutd.collector import SurvivorFreezer
from breakoutd.sim.faults import FAULT_HELP, FaultSpec, FaultSpecError, parse_fault
from breakoutd.sim.gateway import SimGateway
from breakoutd.sim.market import Market, Row
from breakoutd.sim.stats import LatencyStats, OrderLatency

__all__ = [
    "FAULT_HELP",
    "FaultSpec",
    "FaultSpecError",
    "LatencyStats",
    "Market",
    "OrderLatency",
    "Row",
    "SimGateway",
    "parse_fault",
    "serve_sim",
]


async def serve_sim(market: Market, *, host: str = "127.0.0.1", port: int = 4002,
                    account: str = "DU0000001", speed: float = 1.0,
                    start: dt.datetime | dt.time | None = None, day: dt.date | None = None,
                    faults: Iterable[FaultSpec] = (), md_lines: int = 100,
                    stop: asyncio.Event | None = None,
                    on_created: Callable[[SimGateway], None] | None = None,
                    on_ready: Callable[[SimGateway], None] | None = None) -> SimGateway:
    """Run a gateway until ``stop`` is set (or the task is cancelled); return it.

    ``on_created`` sees the gateway before it listens, ``on_ready`` once it does.
    The tape and whatever survives a collection stay out of the collector's
    walks while it runs (:mod:`breakoutd.collector`).
    """
    gateway = SimGateway(market, host=host, port=port, account=account, speed=speed,
                         start=start, day=day, faults=faults, md_lines=md_lines)
    if on_created is not None:
        on_created(gateway)
    await gateway.start()
    freezer = SurvivorFreezer()
    freezer.start()
    try:
        if on_ready is not None:
            on_ready(gateway)
        await (stop or asyncio.Event()).wait()
    finally:
        freezer.stop()
        await gateway.stop()
    return gateway
