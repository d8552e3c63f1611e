"""The official IB API client (PyPI ibapi-stable) driven against the sim.

``EClient`` is a blocking client with its own reader thread; the sim runs on
the test's event loop. ``IbapiApp`` records every callback it gets, in
order, and wakes the loop, so a test awaits what the client has received
exactly as it would with ib_async.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.wrapper import EWrapper

from breakoutd.sim import SimGateway

CALLBACKS = (
    "nextValidId", "managedAccounts", "error", "currentTime", "contractDetails",
    "contractDetailsEnd", "tickPrice", "tickSize", "tickString", "realtimeBar",
    "historicalData", "historicalDataEnd", "historicalDataUpdate", "tickByTickAllLast",
    "tickByTickBidAsk", "headTimestamp", "openOrder", "openOrderEnd", "orderStatus",
    "execDetails", "execDetailsEnd", "commissionAndFeesReport", "position", "positionEnd",
    "completedOrder", "completedOrdersEnd",
)


class IbapiApp(EWrapper, EClient):
    """An EClient whose callbacks are recorded as (name, args) in arrival order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.loop = loop
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self._lock = threading.Lock()
        self._changed = asyncio.Event()
        self._thread: threading.Thread | None = None

    def record(self, name: str, args: tuple[Any, ...]) -> None:
        """Called on the reader thread: keep the callback, wake the loop."""
        with self._lock:
            self.events.append((name, args))
        self.loop.call_soon_threadsafe(self._changed.set)

    def got(self, name: str) -> list[tuple[Any, ...]]:
        """The arguments of every ``name`` callback so far."""
        with self._lock:
            return [args for n, args in self.events if n == name]

    def errors(self) -> list[tuple[int, int]]:
        """(reqId, code) of every error received."""
        return [(args[0], args[2]) for args in self.got("error")]

    async def until(self, predicate: Callable[[], bool], timeout: float = 5) -> None:
        """Wait until ``predicate()`` holds over what the client has received."""
        async def wait() -> None:
            while True:
                self._changed.clear()
                if predicate():
                    return
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    async def sync(self) -> None:
        """Round trip: everything the sim sent before has been received."""
        seen = len(self.got("currentTime"))
        self.reqCurrentTime()
        await self.until(lambda: len(self.got("currentTime")) > seen)

    async def start(self, gw: SimGateway, client_id: int = 1) -> None:
        """Connect (blocking, so off the loop), start the message thread, await nextValidId."""
        await asyncio.to_thread(self.connect, "127.0.0.1", gw.port, client_id)
        self._thread = threading.Thread(target=self.run, name="ibapi-run", daemon=True)
        self._thread.start()
        await self.until(lambda: bool(self.got("nextValidId")))

    async def stop(self) -> None:
        """Disconnect once everything sent has been handled, and let the thread end.

        ibapi's disconnect clears the server version under its message thread,
        which then fails on a message still queued: so nothing may be queued.
        """
        await self.sync()
        self.disconnect()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)


def _recorder(name: str) -> Callable[..., None]:
    def callback(self: IbapiApp, *args: Any) -> None:
        self.record(name, args)
    callback.__name__ = name
    return callback


for _name in CALLBACKS:
    setattr(IbapiApp, _name, _recorder(_name))


def stock(symbol: str) -> Contract:
    """A SMART/USD stock as a user of the official client writes it."""
    contract = Contract()
    contract.symbol, contract.secType, contract.exchange, contract.currency = (
        symbol, "STK", "SMART", "USD")
    return contract
