"""Market data through ib_async: ref-counted subscriptions feeding SymbolStreams.

Per symbol, one streaming ``reqMktData`` line (quotes and LAST prints) and one
5-second ``reqRealTimeBars`` (TRADES) subscription, shared by every watcher
of the symbol and cancelled when the last one leaves. Both are requested on
ib_async's client with our own request ids and read by
:mod:`breakoutd.ibkr.feedwire`, one symbol at a time, never through ib_async's
tickers (snapshots still are). See :mod:`breakoutd.ibkr.streams` for how they
become bars.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ib_async import IB, Contract, Stock

from breakoutd.calendar import DaySessions
from breakoutd.core.bars import Bar
from breakoutd.core.events import BarStreamHealth, DataResubscribed, Event
from breakoutd.core.plans import Quote
from breakoutd.errors import TemporaryError
from breakoutd.ibkr.broker_clock import host_seconds
from breakoutd.ibkr.convert import price_to_micros, size_to_int
from breakoutd.ibkr.feedwire import FeedWire, SymbolBatch
from breakoutd.ibkr.hours import parse_sessions
from breakoutd.ibkr.streams import CLOSE_GRACE, SECOND_GRACE, StreamListener, SymbolStream
from breakoutd.ibkr.wire.requests import (
    cancel_bars5,
    cancel_quotes,
    forget_cached_quote,
    new_request_id,
    stream_bars5,
    stream_quotes,
)


@dataclass(slots=True)
class Instrument:
    """A qualified contract and its sessions by day."""

    symbol: str
    contract: Contract
    sessions: dict[object, DaySessions | None]
    min_tick: float


class FeedTap(Protocol):
    """Sees every symbol's quotes and prints as they are read (the tape recorder)."""

    def on_quote(self, symbol: str, bid: int | None, bid_size: int | None, ask: int | None,
                 ask_size: int | None) -> None: ...

    def on_prints(self, symbol: str, prints: list[tuple[int, int]],
                  second: int | None) -> None: ...


class _StreamSink:
    """A feed's batch hand-over: the stream first, then whoever waits for a quote."""

    __slots__ = ("stream", "quote_waiters", "symbol", "tap")

    def __init__(self, stream: SymbolStream, tap: FeedTap | None = None) -> None:
        self.stream = stream
        self.quote_waiters: list[asyncio.Future[None]] = []
        self.symbol = stream.symbol
        self.tap = tap

    def on_quote(self, bid: int | None, bid_size: int | None, ask: int | None,
                 ask_size: int | None) -> None:
        self.stream.on_quote(bid, bid_size, ask, ask_size)
        if self.tap is not None:
            self.tap.on_quote(self.symbol, bid, bid_size, ask, ask_size)
        for waiter in self.quote_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def on_prints(self, prints: list[tuple[int, int]], second: int | None) -> None:
        self.stream.on_prints(prints, second)
        if self.tap is not None:
            self.tap.on_prints(self.symbol, prints, second)

    def on_bar5(self, bar: Bar) -> None:
        self.stream.on_bar5(bar)

    def urgent(self, top: int) -> bool:
        return bool(self.quote_waiters) or self.stream.might_act(top)


@dataclass(slots=True)
class _Feed:
    stream: SymbolStream
    sink: _StreamSink
    batch: SymbolBatch
    quotes_req: int | None = None  # request ids of the streaming line and the 5-s bars
    bars_req: int | None = None
    refs: int = 0

    @property
    def quote_waiters(self) -> list[asyncio.Future[None]]:
        """Whoever waits for the next quote (the sink wakes them)."""
        return self.sink.quote_waiters


class MarketData:
    """Subscriptions, quotes and bar streams for the watched symbols."""

    # A bar that ends at t has been delivered once on_clock has run at t + SETTLE_NS,
    # whether its data came late or not at all (the streams close it by the clock then).
    SETTLE_NS = max(SECOND_GRACE, CLOSE_GRACE)

    def __init__(self, ib: IB, *, clock: Callable[[], int], emit: Callable[[Event], None],
                 tap: FeedTap | None = None) -> None:
        self._ib = ib
        self.tap = tap
        self._clock = clock
        self._emit = emit
        self._feeds: dict[str, _Feed] = {}
        self._instruments: dict[str, Instrument] = {}
        self._wire = FeedWire(ib)
        ib.disconnectedEvent += self._on_disconnected

    # --- contracts -------------------------------------------------------------------

    async def instrument(self, symbol: str) -> Instrument:
        """Qualify a US stock and read its trading hours (cached)."""
        known = self._instruments.get(symbol)
        if known is not None:
            return known
        details = await self._ib.reqContractDetailsAsync(Stock(symbol, "SMART", "USD"))
        if not details:
            raise TemporaryError(f"the gateway does not know the symbol {symbol} "
                                 "(no US stock of that name on SMART in USD)")
        d = details[0]
        sessions = parse_sessions(d.tradingHours, d.liquidHours, d.timeZoneId)
        inst = Instrument(symbol, d.contract, sessions, d.minTick)  # type: ignore[arg-type]
        self._instruments[symbol] = inst
        return inst

    def forget_instruments(self) -> None:
        """Read contract details (and their trading hours) again on next use."""
        self._instruments = {s: i for s, i in self._instruments.items() if s in self._feeds}

    # --- subscriptions ---------------------------------------------------------------

    def subscribe(self, inst: Instrument, listener: StreamListener, close_size: int,
                  level: int | None = None) -> SymbolStream:
        """Start (or share) the symbol's data and deliver its bars to ``listener``; with
        ``level`` (a watcher's), data far under it may wait for the end of a read."""
        feed = self._feeds.get(inst.symbol)
        if feed is None:
            stream = SymbolStream(inst.symbol, self._clock, self._health)
            sink = _StreamSink(stream, self.tap)
            feed = _Feed(stream, sink, SymbolBatch(sink))
            self._feeds[inst.symbol] = feed
            self._request(inst.symbol, feed)
        feed.stream.add_listener(listener, close_size, level)
        feed.refs += 1
        return feed.stream

    def unsubscribe(self, symbol: str, listener: StreamListener) -> None:
        """Stop delivering to ``listener``; cancel the data when nobody is left."""
        feed = self._feeds.get(symbol)
        if feed is None:
            return
        feed.stream.remove_listener(listener)
        feed.refs -= 1
        if feed.refs <= 0:
            self._cancel(feed)
            del self._feeds[symbol]

    def _request(self, symbol: str, feed: _Feed) -> None:
        contract = self._instruments[symbol].contract
        feed.batch.forget()
        feed.quotes_req = new_request_id(self._ib)
        self._wire.route(feed.quotes_req, feed.batch)
        stream_quotes(self._ib, feed.quotes_req, contract)
        feed.bars_req = new_request_id(self._ib)
        self._wire.route(feed.bars_req, feed.batch)
        stream_bars5(self._ib, feed.bars_req, contract)

    def _cancel(self, feed: _Feed) -> None:
        connected = self._ib.isConnected()
        if feed.quotes_req is not None:
            self._wire.unroute(feed.quotes_req)
            if connected:
                cancel_quotes(self._ib, feed.quotes_req)
        if feed.bars_req is not None:
            self._wire.unroute(feed.bars_req)
            if connected:
                cancel_bars5(self._ib, feed.bars_req)
        feed.quotes_req = feed.bars_req = None

    def _on_disconnected(self) -> None:
        # The connection's requests died with it; their ids may be reused by the next one.
        for feed in self._feeds.values():
            for req in (feed.quotes_req, feed.bars_req):
                if req is not None:
                    self._wire.unroute(req)
            feed.quotes_req = feed.bars_req = None

    async def resubscribe(self, reason: str) -> None:
        """Request everything again (after 1101, a reconnect, or a farm blip)."""
        for symbol, feed in self._feeds.items():
            self._cancel(feed)
            feed.stream.reset()
            self._request(symbol, feed)
        self._emit(DataResubscribed(at=self._clock(), reason=reason, symbols=len(self._feeds)))

    @property
    def symbols(self) -> list[str]:
        """Symbols with live subscriptions."""
        return sorted(self._feeds)

    def stream(self, symbol: str) -> SymbolStream | None:
        """The symbol's stream, if subscribed."""
        feed = self._feeds.get(symbol)
        return feed.stream if feed else None

    # --- quotes ----------------------------------------------------------------------

    async def fresh_quote(self, symbol: str, max_age: int, warmup: float) -> tuple[Quote | None, int | None]:
        """A quote no older than ``max_age`` ns: wait ``warmup`` s, then one snapshot.

        Returns the quote and its age in ns; when none is fresh with a valid ask,
        None and the age the quote in force had when this was asked.
        """
        feed = self._feeds.get(symbol)
        if feed is None:
            return None, None
        first_age = self._age(feed.stream.quote)
        if _fresh(feed.stream.quote, self._clock(), max_age):
            return feed.stream.quote, first_age
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        feed.quote_waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, host_seconds(self._clock, warmup))
        except TimeoutError:
            pass
        finally:
            if waiter in feed.quote_waiters:
                feed.quote_waiters.remove(waiter)
        if _fresh(feed.stream.quote, self._clock(), max_age):
            return feed.stream.quote, self._age(feed.stream.quote)
        snap = await self._snapshot(symbol)
        if snap is not None and snap.valid_ask() is not None:
            return snap, 0
        return None, first_age

    async def _snapshot(self, symbol: str) -> Quote | None:
        contract = self._instruments[symbol].contract
        forget_cached_quote(self._ib, contract)  # an earlier snapshot's is not this one's
        try:
            tickers = await asyncio.wait_for(self._ib.reqTickersAsync(contract), 2.0)
        except TimeoutError:
            return None
        if not tickers:
            return None
        t = tickers[0]
        return Quote(self._clock(), price_to_micros(t.bid), size_to_int(t.bidSize),
                     price_to_micros(t.ask), size_to_int(t.askSize))

    def _age(self, quote: Quote | None) -> int | None:
        return None if quote is None else self._clock() - quote.time

    def on_clock(self) -> None:
        """Close bars the clock has passed (called periodically by the daemon).

        Only the streams with something due are asked: with hundreds of symbols
        a tick that asked every one held market data back for milliseconds."""
        self._wire.release_held()
        now = self._clock()
        # A bar closed here may end its symbol's last watcher, which drops the feed.
        for feed in [f for f in self._feeds.values() if f.stream.due <= now]:
            feed.stream.on_clock()

    def _health(self, symbol: str, kind: str, seconds: float, detail: str) -> None:
        self._emit(BarStreamHealth(at=self._clock(), symbol=symbol, kind=kind,
                                   seconds=seconds, detail=detail))


def _fresh(quote: Quote | None, now: int, max_age: int) -> bool:
    return quote is not None and quote.valid_ask() is not None and now - quote.time <= max_age
