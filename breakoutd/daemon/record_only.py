"""``breakoutd record``: the tape recorder without the trading.

Connects like the daemon (the same supervisor: backoff, reconnects, the
paper-account guard), subscribes each symbol's quotes and prints and writes
them as tapes under ``<var>/tapes`` (:mod:`breakoutd.daemon.recording`) until
SIGTERM or SIGINT. A symbol the gateway does not know is reported and the
others are recorded. Progress is logged each minute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from ib_async import IB
from loguru import logger

from breakoutd.core import events as ev
from breakoutd.core.bars import Bar
from breakoutd.errors import TemporaryError
from breakoutd.ibkr.broker_clock import BrokerClock, sync_clock
from breakoutd.ibkr.connecting import unless_stopped
from breakoutd.ibkr.connection import ConnectionSupervisor
from breakoutd.ibkr.market_data import MarketData
from breakoutd.ibkr.settings import BrokerSettings

from .recording import Recording, tapes_dir

TICK_SECONDS = 0.1
PROGRESS_SECONDS = 60.0


class _Nobody:
    """A listener that wants the data, not the bars."""

    def on_fast_bar(self, bar: Bar) -> None:
        pass

    def on_close_bar(self, bar: Bar) -> None:
        pass


async def record_symbols(symbols: Sequence[str], var: Path, settings: BrokerSettings,
                         stop: asyncio.Event, *, clock: Callable[[], int],
                         log_event: Callable[[ev.Event], None],
                         progress_every: float = PROGRESS_SECONDS) -> int:
    """Record until ``stop``; 0 on a clean stop, 2 when no symbol could be subscribed."""
    ib = IB()
    supervisor = ConnectionSupervisor(ib, settings, emit=log_event, clock=clock)
    recording = Recording(tapes_dir(var), clock, log_event)
    market = MarketData(ib, clock=clock, emit=log_event, tap=recording)
    supervisor.on_data_lost.append(market.resubscribe)

    async def resubscribe(is_reconnect: bool) -> None:
        if is_reconnect:
            await market.resubscribe("reconnect")

    supervisor.on_connected.append(resubscribe)
    if not await unless_stopped(supervisor.start(), stop):
        await supervisor.stop()
        return 0
    try:
        if isinstance(clock, BrokerClock):
            await sync_clock(ib, clock)
        listening = 0
        for symbol in symbols:
            try:
                inst = await market.instrument(symbol)
            except TemporaryError as exc:
                logger.error("{}: not recorded: {}", symbol, exc)
                continue
            market.subscribe(inst, _Nobody(), 60_000_000_000)
            listening += 1
        if not listening:
            logger.error("nothing to record: the gateway knows none of {}", ", ".join(symbols))
            return 2
        logger.info("recording {} symbol(s) to {}", listening, tapes_dir(var))
        loop = asyncio.get_running_loop()
        next_report = loop.time() + progress_every
        while not stop.is_set():
            market.on_clock()
            recording.tick()
            if loop.time() >= next_report and recording.recorder is not None:
                next_report += progress_every
                logger.info("recorded {} row(s), {} late print(s) dropped",
                            recording.recorder.rows, recording.late)
            try:
                await asyncio.wait_for(stop.wait(), TICK_SECONDS)
            except TimeoutError:
                pass
        return 0
    finally:
        recording.close()
        await supervisor.stop()
