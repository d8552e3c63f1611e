"""Running the daemon against a manual-clock simulated gateway in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from breakoutd.core import events as ev
from breakoutd.core.bars import NS
from breakoutd.daemon.app import Daemon
from breakoutd.daemon.simmode import GatewayClock
from breakoutd.ibkr.broker_clock import BrokerClock
from breakoutd.ibkr.settings import BrokerSettings
from breakoutd.sim import Market, Row, SimGateway
from tests.sim.simkit import DAY, at, px, row

E = TypeVar("E", bound=ev.Event)

__all__ = ["DAY", "Events", "at", "px", "row", "running_daemon", "trade_row"]


def trade_row(hms: str, symbol: str, o: str, h: str, lo: str, c: str, bid: str | None,
              ask: str | None, volume: int = 1000) -> Row:
    """A row with a trade and a quote."""
    return row(at(hms), symbol, (o, h, lo, c, volume), bid, ask)


class Events:
    """Every event the daemon emits, with waits on conditions."""

    def __init__(self) -> None:
        self.items: list[ev.Event] = []
        self._changed = asyncio.Event()

    def __call__(self, event: ev.Event) -> None:
        self.items.append(event)
        self._changed.set()

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.items if isinstance(e, kind)]

    def names(self) -> list[str]:
        return [type(e).__name__ for e in self.items]

    async def wait(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        async def loop() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(loop(), timeout)


class Run:
    """A daemon task and its gateway."""

    def __init__(self, gw: SimGateway, daemon: Daemon, events: Events, stop: asyncio.Event,
                 task: asyncio.Task[int]) -> None:
        self.gw, self.daemon, self.events, self.stop, self.task = gw, daemon, events, stop, task

    async def step(self, seconds: float, until: Callable[[], bool] | None = None,
                   pause: float = 0.003) -> None:
        """Move the virtual clock in 0.1 s steps, letting the daemon work between them.

        A ``pause`` longer than the daemon's loop tick (0.05 s) lets the loop see every
        step of the clock: slow, for the few seconds where that matters."""
        for _ in range(round(seconds * 10)):
            await self.gw.advance(0.1)
            await asyncio.sleep(pause)  # loopback I/O to the daemon and back
            if until is not None and until():
                return

    async def finish(self) -> int:
        self.stop.set()
        return await asyncio.wait_for(self.task, 15)


@contextlib.asynccontextmanager
async def running_daemon(rows: list[Row], watchlist: str, var: Path, start: str = "09:29:50",
                         day: dt.date = DAY, manual_clock: bool = True,
                         clock: str = "gateway", data_latency: float = 0.0,
                         gateway: SimGateway | None = None,
                         **sim_kwargs: Any) -> AsyncIterator[Run]:
    """Gateway + daemon on a watchlist text, armed and running.

    With ``manual_clock`` the test moves the virtual clock (:meth:`Run.step`);
    without, the gateway's clock runs at 1x (or ``speed``). ``clock``: the daemon
    reads the gateway's instant (``gateway``), the gateway's clock with its rate as
    ``run --sim`` does (``view``), or its own broker clock told by the gateway's
    clock notice, as beside ``breakoutd sim`` (``broker``). ``data_latency``: the
    daemon's clock (``gateway``) runs that many seconds ahead of the gateway's, so what
    the gateway sends at an instant reaches the daemon after it, as over a real network.
    ``gateway``: a gateway already started (``rows`` and the sim's settings unused), which
    outlives the daemon, for a restart against the same broker.
    """
    wl = var / "watchlists"
    wl.mkdir(parents=True, exist_ok=True)
    (wl / "test.yaml").write_text(watchlist)
    gw = gateway or SimGateway(Market(rows), port=0, start=dt.time.fromisoformat(start), day=day,
                               manual_clock=manual_clock, **sim_kwargs)
    if gateway is None:
        await gw.start()
    events = Events()
    stop = asyncio.Event()
    lead = round(data_latency * NS)
    clocks: dict[str, Callable[[], int]] = {
        "gateway": (lambda: gw.now_ns() + lead) if lead else gw.now_ns,
        "view": GatewayClock(gw), "broker": BrokerClock()}
    daemon = Daemon(watchlists=[wl], var=var, settings=BrokerSettings(port=gw.port),
                    clock=clocks[clock], log_event=events)
    task = asyncio.get_running_loop().create_task(daemon.run(stop))
    run = Run(gw, daemon, events, stop, task)
    try:
        await events.wait(lambda: any(isinstance(e, ev.DaemonState) and e.state in
                                      ("running", "stopped", "halted") for e in events.items)
                          or task.done())
        yield run
    finally:
        if not task.done():
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
        if gateway is None:
            await gw.stop()
