"""Market data through ib_async: ref-counted subscriptions feeding SymbolStreams.

Per symbol, one streaming ``reqMktData`` line (quotes and LAST prints) and one
5-second ``reqRealTimeBars`` (TRADES) subscription, shared by every watcher
of the symbol and cancelled when the last one leaves. See
:mod:`breakoutd.ibkr.streams` for how they become bars.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ib_async import IB, Contract, RealTimeBarList, Stock, Ticker

from breakoutd.calendar import DaySessions
from breakoutd.core.bars import NS, Bar
from breakoutd.core.events import BarStreamHealth, DataResubscribed, Event
from breakoutd.core.plans import Quote
from breakoutd.errors import TemporaryError
from breakoutd.ibkr.convert import datetime_to_ns, float_to_micros, size_to_int
from breakoutd.ibkr.hours import parse_sessions
from breakoutd.ibkr.streams import StreamListener, SymbolStream

LAST_TICKS = frozenset({4, 68})  # LAST, DELAYED_LAST
FIVE_SECONDS = 5 * NS


@dataclass(slots=True)
class Instrument:
    """A qualified contract and its sessions by day."""

    symbol: str
    contract: Contract
    sessions: dict[object, DaySessions | None]
    min_tick: float


@dataclass(slots=True)
class _Feed:
    stream: SymbolStream
    ticker: Ticker | None = None
    bars: RealTimeBarList | None = None
    refs: int = 0
    snapshots: int = 0  # snapshot requests in flight
    quote_waiters: list[asyncio.Future[None]] = field(default_factory=list)


class MarketData:
    """Subscriptions, quotes and bar streams for the watched symbols."""

    def __init__(self, ib: IB, *, clock: Callable[[], int], emit: Callable[[Event], None]) -> None:
        self._ib = ib
        self._clock = clock
        self._emit = emit
        self._feeds: dict[str, _Feed] = {}
        self._instruments: dict[str, Instrument] = {}
        self._by_ticker: dict[int, str] = {}
        ib.pendingTickersEvent += self._on_pending

    # --- contracts -------------------------------------------------------------------

    async def instrument(self, symbol: str) -> Instrument:
        """Qualify a US stock and read its trading hours (cached)."""
        known = self._instruments.get(symbol)
        if known is not None:
            return known
        details = await self._ib.reqContractDetailsAsync(Stock(symbol, "SMART", "USD"))
        if not details:
            raise TemporaryError(f"the gateway knows no US stock {symbol}")
        d = details[0]
        sessions = parse_sessions(d.tradingHours, d.liquidHours, d.timeZoneId)
        inst = Instrument(symbol, d.contract, sessions, d.minTick)  # type: ignore[arg-type]
        self._instruments[symbol] = inst
        return inst

    def forget_instruments(self) -> None:
        """Read contract details (and their trading hours) again on next use."""
        self._instruments = {s: i for s, i in self._instruments.items() if s in self._feeds}

    # --- subscriptions ---------------------------------------------------------------

    def subscribe(self, inst: Instrument, listener: StreamListener, close_size: int) -> SymbolStream:
        """Start (or share) the symbol's data and deliver its bars to ``listener``."""
        feed = self._feeds.get(inst.symbol)
        if feed is None:
            feed = _Feed(SymbolStream(inst.symbol, self._clock, self._health))
            self._feeds[inst.symbol] = feed
            self._request(inst.symbol, feed)
        feed.stream.add_listener(listener, close_size)
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
        feed.ticker = self._ib.reqMktData(contract, "", False, False)
        self._by_ticker[id(feed.ticker)] = symbol
        feed.bars = self._ib.reqRealTimeBars(contract, 5, "TRADES", False)
        feed.bars.updateEvent += self._bar_handler(feed)

    def _cancel(self, feed: _Feed) -> None:
        if feed.ticker is not None:
            self._by_ticker.pop(id(feed.ticker), None)
            self._ib.cancelMktData(feed.ticker.contract)  # type: ignore[arg-type]
        if feed.bars is not None:
            self._ib.cancelRealTimeBars(feed.bars)
        feed.ticker = feed.bars = None

    async def resubscribe(self, reason: str) -> None:
        """Request everything again (after 1101, a reconnect, or a farm blip)."""
        for symbol, feed in self._feeds.items():
            if self._ib.isConnected():
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
            await asyncio.wait_for(waiter, warmup)
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
        feed = self._feeds[symbol]
        # ib_async delivers the snapshot to the streaming ticker of the same contract;
        # while it is in flight, a re-reported last trade must not count as a new print.
        feed.snapshots += 1
        try:
            tickers = await asyncio.wait_for(self._ib.reqTickersAsync(contract), 2.0)
        except TimeoutError:
            return None
        finally:
            feed.snapshots -= 1
        if not tickers:
            return None
        t = tickers[0]
        return Quote(self._clock(), float_to_micros(t.bid), size_to_int(t.bidSize),
                     float_to_micros(t.ask), size_to_int(t.askSize))

    def _age(self, quote: Quote | None) -> int | None:
        return None if quote is None else self._clock() - quote.time

    # --- events from ib_async ----------------------------------------------------------

    def _on_pending(self, tickers: set[Ticker]) -> None:
        for ticker in tickers:
            symbol = self._by_ticker.get(id(ticker))
            if symbol is None:
                continue
            feed = self._feeds[symbol]
            quote_changed = False
            prints: list[tuple[int, int]] = []
            for tick in ticker.ticks:
                if tick.tickType in LAST_TICKS:
                    price = float_to_micros(tick.price)
                    if price is not None:
                        prints.append((price, int(tick.size) if not math.isnan(tick.size) else 0))
                elif tick.tickType in (0, 1, 2, 3):
                    quote_changed = True
            if quote_changed:
                feed.stream.on_quote(float_to_micros(ticker.bid), size_to_int(ticker.bidSize),
                                     float_to_micros(ticker.ask), size_to_int(ticker.askSize))
                for waiter in feed.quote_waiters:
                    if not waiter.done():
                        waiter.set_result(None)
            if prints:
                stamp = ticker.lastTimestamp
                second = datetime_to_ns(stamp) if stamp is not None else None
                if feed.snapshots and second is not None and second <= feed.stream.newest_second:
                    continue  # the snapshot repeating the last trade
                feed.stream.on_prints(prints, second)

    def _bar_handler(self, feed: _Feed) -> Callable[[RealTimeBarList, bool], None]:
        def on_bar(bars: RealTimeBarList, has_new: bool) -> None:
            if not has_new or not bars:
                return
            b = bars[-1]
            del bars[:-1]  # ib_async keeps every bar of the day otherwise (~0.24 MiB/symbol/hour)
            prices = [float_to_micros(x) for x in (b.open_, b.high, b.low, b.close)]
            if None in prices or b.volume <= 0:
                return
            o, h, lo, c = (p or 0 for p in prices)
            bar = Bar(datetime_to_ns(b.time), FIVE_SECONDS, o, h, lo, c, int(b.volume))
            # ib_async hands a bar over while it is still decoding the socket read, and the
            # quotes and prints of the same read only at its end: the bar waits for them.
            asyncio.get_running_loop().call_soon(feed.stream.on_bar5, bar)
        return on_bar

    def on_clock(self) -> None:
        """Close bars the clock has passed (called periodically by the daemon)."""
        for feed in self._feeds.values():
            feed.stream.on_clock()

    def _health(self, symbol: str, kind: str, seconds: float, detail: str) -> None:
        self._emit(BarStreamHealth(at=self._clock(), symbol=symbol, kind=kind,
                                   seconds=seconds, detail=detail))


def _fresh(quote: Quote | None, now: int, max_age: int) -> bool:
    return quote is not None and quote.valid_ask() is not None and now - quote.time <= max_age
