"""The daemon's market data read straight off ib_async's socket, one symbol at a time.

ib_async decodes a whole socket read into ``Ticker`` objects (about 9 µs a
message) and hands them over only when the read is done, so with a hundred
symbols streaming, a trigger waited for every other symbol's ticks of the same
read. :class:`FeedWire` takes over the connection's ``hasData`` and frames the
bytes itself. Messages of the daemon's own streaming requests (tick price,
tick size, tick string, realtime bars, and their market-data-type and
tick-parameter notes) are parsed here into our values and collected per
symbol; a symbol's batch is handed to its :class:`FeedSink` as soon as the
next message belongs to someone else, and at the end of the read. Everything
else (orders, errors, contract details, snapshots) goes to ib_async unchanged,
in runs of whole messages: to ib_async that is the same stream cut into
smaller reads, which TCP may do anyway.

Tick semantics follow ib_async's (2.1.0, pinned): an empty price is no tick; a
bid or ask with size 0 empties that side; a size tick equal to the side's size
is no change; LAST and DELAYED_LAST prices are prints with the tick's size,
except with size 0, which reports a price and no trade (ib_async: "last SPX
price" updates). A realtime bar with volume 0 (IB sends one every 5 seconds
when nothing traded) is handed over as it is: the stream takes it as time
passing, never as a bar (:func:`breakoutd.core.bars.has_trades`).
Prints are placed in the second of the last-trade timestamp (tick 45) that
follows them in the batch, else, when none follows, None (the stream uses the
arrival time); prints at the very end of a read wait for the next read first,
since TCP may cut between a print and its timestamp. A realtime bar is handed over after the prints and quote of
its batch, so a close-rule bar never overtakes the seconds before it.

When many symbols arrive in one read (IB sends every subscription's 5-second
bar right after the boundary), a batch whose sink says it is not
:meth:`~FeedSink.urgent` (no price in it, or still open at its stream,
reaches any of its watchers' levels, and nobody waits for its quote) is
handed over at the end of the read instead, so a breakout does not wait for
the symbols ahead of it. A symbol's own data keep their order: a batch put
aside is handed over before its symbol's next message is taken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ib_async import IB
from loguru import logger

from breakoutd.core.bars import NS, Bar
from breakoutd.ibkr.convert import price_to_micros
from breakoutd.ibkr.wire.tap import SocketTap

FIVE_SECONDS = 5 * NS

# msgId -> index of the request id among the fields
_ROUTED: dict[bytes, int] = {
    b"1": 2,    # TICK_PRICE: id, version, reqId, tickType, price, size, attrMask
    b"2": 2,    # TICK_SIZE: id, version, reqId, tickType, size
    b"45": 2,   # TICK_GENERIC
    b"46": 2,   # TICK_STRING: id, version, reqId, tickType, value
    b"50": 2,   # REAL_TIME_BARS: id, version, reqId, time, o, h, l, c, volume, wap, count
    b"58": 2,   # MARKET_DATA_TYPE: id, version, reqId, type
    b"81": 1,   # TICK_REQ_PARAMS: id, reqId, minTick, bboExchange, permissions
}
_BID, _ASK = frozenset({b"1"}), frozenset({b"2"})
_BID_SIZE, _ASK_SIZE = frozenset({b"0"}), frozenset({b"3"})
_LAST = frozenset({b"4", b"68"})
_LAST_TIMESTAMP = b"45"


class FeedSink(Protocol):
    """Where one symbol's parsed market data goes."""

    def on_quote(self, bid: int | None, bid_size: int | None, ask: int | None,
                 ask_size: int | None) -> None: ...

    def on_prints(self, prints: list[tuple[int, int]], second: int | None) -> None: ...

    def on_bar5(self, bar: Bar) -> None: ...

    def urgent(self, top: int) -> bool:
        """True when a batch whose highest price is ``top`` (0: none) may lead to an
        order, or someone waits for the quote: it is handed over at once."""
        ...


def wire_to_micros(text: bytes) -> int | None:
    """A wire price to micro-dollars (parsed, then ``price_to_micros``); None for IB's empty
    values (empty, nan, <= 0)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return price_to_micros(value)


def wire_to_size(text: bytes) -> int:
    """A wire size (a decimal) to whole shares; 0 when empty or negative."""
    try:
        value = float(text) if text else 0.0
    except ValueError:
        return 0
    return int(value) if value > 0 else 0


@dataclass(eq=False, slots=True)
class SymbolBatch:
    """One symbol's quote state and what arrived for it since its last hand-over."""

    sink: FeedSink
    bid: int | None = None
    bid_size: int | None = None
    ask: int | None = None
    ask_size: int | None = None
    quote_changed: bool = False
    unstamped: list[tuple[int, int]] = field(default_factory=list)  # prints awaiting tick 45
    stamped: list[tuple[int, list[tuple[int, int]]]] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    held: bool = False  # unstamped prints were kept at the end of the last read
    top: int = 0  # the highest price of a print or bar taken since the last hand-over

    def take(self, msg_id: bytes, f: list[bytes]) -> None:
        """Apply one routed message's fields."""
        if msg_id == b"1":
            self._price(f[3], f[4], f[5])
        elif msg_id == b"2":
            self._size(f[3], wire_to_size(f[4]))
        elif msg_id == b"46":
            if f[3] == _LAST_TIMESTAMP:
                self._stamp(f[4])
        elif msg_id == b"50":
            self._bar(f)

    def _price(self, tick: bytes, price_text: bytes, size_text: bytes) -> None:
        if not price_text:
            return
        size = wire_to_size(size_text)
        price = wire_to_micros(price_text)
        if tick in _LAST:
            if price is not None and size:
                self.unstamped.append((price, size))
                if price > self.top:
                    self.top = price
        elif tick in _BID:
            self.bid, self.bid_size = (price, size) if size else (None, None)
            self.quote_changed = True
        elif tick in _ASK:
            self.ask, self.ask_size = (price, size) if size else (None, None)
            self.quote_changed = True

    def _size(self, tick: bytes, size: int) -> None:
        if tick in _BID_SIZE and size != self.bid_size:
            self.bid_size = size or None
            if not size:
                self.bid = None
            self.quote_changed = True
        elif tick in _ASK_SIZE and size != self.ask_size:
            self.ask_size = size or None
            if not size:
                self.ask = None
            self.quote_changed = True

    def _stamp(self, text: bytes) -> None:
        try:
            seconds = int(text)
        except ValueError:
            return
        if not seconds or not self.unstamped:
            return
        second = seconds * NS
        if self.stamped and self.stamped[-1][0] == second:
            self.stamped[-1][1].extend(self.unstamped)
        else:
            self.stamped.append((second, self.unstamped))
        self.unstamped = []

    def _bar(self, f: list[bytes]) -> None:
        prices = [wire_to_micros(x) for x in f[4:8]]
        volume = wire_to_size(f[8])
        if volume and None in prices:
            return
        o, h, lo, c = (p or 0 for p in prices)
        self.bars.append(Bar(int(f[3]) * NS, FIVE_SECONDS, o, h, lo, c, volume))
        if volume and h > self.top:
            self.top = h

    def hand_over(self, end_of_read: bool = False) -> None:
        """Give the sink what arrived: the quote, then the prints, then the bars.

        At the end of a read, prints still waiting for their tick 45 are kept for
        the next read (TCP may have cut between a print and its timestamp); once
        kept, they go without a second at the next hand-over."""
        sink = self.sink
        self.top = 0
        if self.quote_changed:
            self.quote_changed = False
            sink.on_quote(self.bid, self.bid_size, self.ask, self.ask_size)
        if self.stamped:
            stamped, self.stamped = self.stamped, []
            for second, prints in stamped:
                sink.on_prints(prints, second)
        if self.unstamped and (self.held or not end_of_read):
            prints, self.unstamped = self.unstamped, []
            sink.on_prints(prints, None)
        self.held = bool(self.unstamped)
        if self.bars:
            bars, self.bars = self.bars, []
            for bar in bars:
                sink.on_bar5(bar)

    def urgent(self) -> bool:
        """Whether this batch is handed over at once or at the end of the read."""
        return self.sink.urgent(self.top)

    def forget(self) -> None:
        """Drop the quote and anything not handed over (the subscription starts again)."""
        self.bid = self.bid_size = self.ask = self.ask_size = None
        self.quote_changed = self.held = False
        self.top = 0
        self.unstamped, self.stamped, self.bars = [], [], []


class FeedWire:
    """Frames ib_async's socket data; routes the daemon's market data to symbol batches."""

    def __init__(self, ib: IB) -> None:
        # Keyed by the request id as the wire writes it: no int() per message.
        self._routes: dict[bytes, SymbolBatch] = {}
        self._retired: set[bytes] = set()  # cancelled on this connection: stragglers dropped
        self._held: set[SymbolBatch] = set()  # batches keeping prints for the next read
        self._tap = SocketTap(ib, self.on_data)
        self._ib_reads: Callable[[bytes], None] = self._tap.pass_on

    def close(self) -> None:
        """Give the socket back to ib_async."""
        self._tap.close()

    def route(self, req_id: int, batch: SymbolBatch) -> None:
        """Messages of ``req_id`` go to ``batch`` from now on."""
        self._routes[str(req_id).encode()] = batch

    def unroute(self, req_id: int) -> None:
        """``req_id`` was cancelled: what still arrives for it is dropped."""
        key = str(req_id).encode()
        if self._routes.pop(key, None) is not None:
            self._retired.add(key)

    def on_data(self, data: bytes) -> None:
        """One socket read (ib_async's ``Connection.hasData``)."""
        tap = self._tap
        if not tap.api_ready():  # the handshake of a (new) connection: ib_async's alone
            self._retired.clear()
            self._ib_reads(data)
            return
        buf = tap.take_pending(data)
        pos, passed, own = self._frame(buf)
        tap.keep_pending(buf[pos:], pos - passed, own)

    def _frame(self, buf: bytes) -> tuple[int, int, int]:
        """Handle every whole message in ``buf``.

        Returns where the partial tail starts, how many bytes went to ib_async and
        how many messages were read here."""
        routes, retired, routed = self._routes, self._retired, _ROUTED
        n, pos, run_start, passed, own = len(buf), 0, 0, 0, 0
        current: SymbolBatch | None = None
        later: dict[SymbolBatch, None] = {}  # not urgent: handed over at the end of the read
        while n - pos > 4:
            end = pos + 4 + int.from_bytes(buf[pos:pos + 4], "big")
            if end > n:
                break
            fields = buf[pos + 4:end].split(b"\0")
            at = routed.get(fields[0])
            req = fields[at] if at is not None and len(fields) > at + 1 else None
            batch = routes.get(req) if req is not None else None
            if batch is None and req not in retired:
                pos = end  # ib_async's: passed on with its neighbours
                continue
            if run_start < pos:  # ib_async's messages before this one, in order
                passed += pos - run_start
                self._pass_on(buf[run_start:pos])
            own += 1
            pos = run_start = end
            if batch is None:
                continue
            if batch is not current:
                _switch(current, batch, later)
                current = batch
            try:
                batch.take(fields[0], fields)
            except (IndexError, ValueError):
                logger.error("malformed market data message dropped: {!r}", fields[:12])
        if run_start < pos:
            passed += pos - run_start
            self._pass_on(buf[run_start:pos])
        if current is not None:
            _hand_over(current, end_of_read=True)
            if current.held:
                self._held.add(current)
        for batch in later:  # as each would have been handed over, mid-read
            _hand_over(batch)
        return pos, passed, own

    def release_held(self) -> None:
        """Hand over prints kept for a tick 45 that did not come (call now and then)."""
        held, self._held = self._held, set()
        for batch in held:
            if batch.held:
                _hand_over(batch)

    def _pass_on(self, messages: bytes) -> None:
        self._ib_reads(messages)


def _switch(current: SymbolBatch | None, batch: SymbolBatch,
            later: dict[SymbolBatch, None]) -> None:
    """The read moves on from ``current``'s symbol to ``batch``'s: hand ``current`` over
    now if it is urgent (else put it in ``later``), and ``batch``'s data put aside first."""
    if current is not None:
        if current.urgent():
            _hand_over(current)
        else:
            later[current] = None
    if batch in later:  # its symbol's data keep their order
        del later[batch]
        _hand_over(batch)


def _hand_over(batch: SymbolBatch, end_of_read: bool = False) -> None:
    try:
        batch.hand_over(end_of_read)
    except Exception as exc:  # one symbol's failure must not stop the others' data
        symbol = getattr(batch.sink, "symbol", "?")
        logger.opt(exception=exc).error("handling {}'s market data failed: {}", symbol, exc)
