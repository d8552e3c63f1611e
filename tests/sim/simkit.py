"""Helpers for the wire-level sim tests: small markets, a manual-clock gateway,
and the real ib_async client over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

from ib_async import IB, Stock

from breakoutd.calendar import exchange_ns
from breakoutd.core.bars import NS
from breakoutd.core.prices import to_micros
from breakoutd.sim import Market, Row, SimGateway
from breakoutd.sim.wire import API_PREFIX, FrameBuffer, encode, frame

DAY = dt.date(2026, 3, 9)  # a Monday
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def at(hms: str, day: dt.date = DAY) -> int:
    """Epoch ns of ``HH:MM:SS`` exchange time."""
    return exchange_ns(day, dt.time.fromisoformat(hms))


def px(text: str) -> int:
    """Micro-dollars of a price written as text."""
    return to_micros(text)


def row(t: int, symbol: str, ohlcv: tuple[str, str, str, str, int] | None,
        bid: str | None, ask: str | None, bid_size: int = 500, ask_size: int = 500) -> Row:
    """One tape row from text prices."""
    o, h, lo, c, v = ohlcv if ohlcv else (None, None, None, None, None)
    return Row(t, symbol, px(o) if o else None, px(h) if h else None,
               px(lo) if lo else None, px(c) if c else None, v,
               px(bid) if bid else None, bid_size if bid else None,
               px(ask) if ask else None, ask_size if ask else None)


def walk(seed: int, symbol: str, start: str = "09:00:00", seconds: int = 3600,
         price: str = "50.00", day: dt.date = DAY) -> list[Row]:
    """A seeded random walk: a quote every second, a trade in most seconds."""
    rnd = random.Random(seed)
    t0 = at(start, day)
    mid = px(price)
    rows = []
    for i in range(seconds):
        mid += rnd.choice((-10_000, 0, 0, 10_000))
        if rnd.random() < 0.7:
            hi = mid + rnd.choice((0, 10_000))
            lo = mid - rnd.choice((0, 10_000))
            o = rnd.choice((lo, mid, hi))
            trade = (o, hi, lo, mid, rnd.randint(1, 20) * 100)
        else:
            trade = None
        rows.append(Row(t0 + i * NS, symbol, *(trade or (None,) * 5),
                        mid - 10_000, rnd.randint(1, 9) * 100, mid + 10_000,
                        rnd.randint(1, 9) * 100))
    return rows


def run(coro: Coroutine[Any, Any, None], timeout: float = 60) -> None:
    """Run an async test body with an overall safety timeout."""
    asyncio.run(asyncio.wait_for(coro, timeout))


@contextlib.asynccontextmanager
async def sim(market: Market, start: str = "09:30:00", day: dt.date = DAY,
              **kwargs: Any) -> AsyncIterator[SimGateway]:
    """A started manual-clock gateway on a free loopback port, stopped afterwards."""
    gw = SimGateway(market, port=0, start=dt.time.fromisoformat(start), day=day,
                    manual_clock=True, **kwargs)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def connect(gw: SimGateway, client_id: int = 1, ib: IB | None = None,
                  timeout: float = 5) -> IB:
    """An ib_async IB connected to the gateway; every startup request must be answered."""
    ib = ib or IB()
    await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id, timeout=timeout,
                          raiseSyncErrors=True)
    return ib


async def sync(ib: IB) -> None:
    """Round trip to the sim: everything it sent before has been handled by ``ib``."""
    await ib.reqCurrentTimeAsync()


async def until(ib: IB, predicate: Callable[[], bool], timeout: float = 5) -> None:
    """Wait for ib_async to process messages until ``predicate()`` holds."""
    async def wait() -> None:
        while not predicate():
            await ib.updateEvent

    await asyncio.wait_for(wait(), timeout)


class Errors:
    """Collects (reqId, code, message) from an IB's errorEvent."""

    def __init__(self, ib: IB) -> None:
        self.items: list[tuple[int, int, str]] = []
        ib.errorEvent += self._on

    def _on(self, req_id: int, code: int, message: str, _contract: Any) -> None:
        self.items.append((req_id, code, message))

    def codes(self) -> list[int]:
        """The error codes received, in order."""
        return [code for _, code, _ in self.items]


class RawClient:
    """A bare TWS API client on a socket, for what ib_async cannot be made to do."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.frames = FrameBuffer()
        self.pending: list[list[str]] = []

    @classmethod
    async def open(cls, gw: SimGateway) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        return cls(reader, writer)

    async def handshake(self, client_id: int) -> list[str]:
        """Send the API prefix, versions and startApi; return the server's version reply."""
        self.writer.write(API_PREFIX + frame(b"v157..178"))
        reply = await self.next()
        self.send([71, 2, client_id, ""])
        return reply

    def send(self, fields: list[object]) -> None:
        self.writer.write(encode(fields))

    async def next(self) -> list[str]:
        """The next message from the sim (EOFError when it closed the connection)."""
        while not self.pending:
            data = await self.reader.read(65536)
            if not data:
                raise EOFError("the sim closed the connection")
            self.pending += self.frames.feed(data)
        return self.pending.pop(0)

    async def next_of(self, msg_id: int) -> list[str]:
        """Skip messages until one with ``msg_id``."""
        while True:
            msg = await self.next()
            if msg[0] == str(msg_id):
                return msg

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def stock(ib: IB, symbol: str) -> Any:
    """A qualified SMART/USD stock contract."""
    [contract] = await ib.qualifyContractsAsync(Stock(symbol, "SMART", "USD"))
    assert contract is not None, f"{symbol} did not qualify"
    return contract


def ib_request(method: str, *args: Any) -> list[object]:
    """The fields ib_async's own Client sends for ``Client.<method>(*args)`` at v178."""
    from ib_async.client import Client
    from ib_async.wrapper import Wrapper

    sent: list[str] = []
    client = Client(Wrapper(None))  # type: ignore[arg-type]
    client.connState = Client.CONNECTED
    client._serverVersion = 178
    client.sendMsg = sent.append  # type: ignore[method-assign]
    getattr(client, method)(*args)
    [msg] = sent
    return list(msg.split("\0")[:-1])
