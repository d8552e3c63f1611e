"""One symbol's live market data as our own values: quote, 1-second and close-rule bars.

Why these sources (the choice the live path documents):

- Quotes and 1-second bars come from one streaming ``reqMktData`` line per
  symbol: bid/ask/sizes, and LAST trade ticks with their sizes. One line per
  symbol keeps a hundred watched symbols inside IBKR's default 100 lines,
  where tick-by-tick data allows only a handful of subscriptions. Prints are
  placed in the second named by the gateway's last-trade timestamp (tick 45)
  when it came with them, else by their arrival on the broker clock. A
  1-second bar is closed when a print of a later second arrives, when prints
  of a second arrive after the clock has already passed its end (the whole
  second has been reported), or when the clock passes its end plus a grace.
  Streaming ticks are sampled by IBKR in busy markets, so a second's high or
  low can be missed; the close rule, which decides most entries, does not
  depend on them.
- Close-rule bars come from 5-second realtime TRADES bars (exchange-stamped,
  complete), aggregated to the preset's bar size. A bar is closed when the
  5-second bar that ends with it arrives, when a later one arrives, or when
  the clock passes its end plus a grace (a quiet tail has no 5-second bar).
  IB sends a 5-second bar every 5 seconds, with volume 0 when nothing
  traded: such a bar is never part of a bar (strategy.md: a minute without
  trades has no bar), but it says the seconds up to its end are complete,
  so it closes the bar it ends, as a traded one would.

Both are closed in strategy.md's order: before a close-rule bar ending at E
is delivered, every 1-second bar ending at or before E is delivered first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from breakoutd.core.bars import NS, Bar, BarAggregator, has_trades
from breakoutd.core.plans import Quote

SECOND_GRACE = NS // 2
CLOSE_GRACE = 2 * NS
LAG_LIMIT = 2 * NS  # a 5-second bar arriving later than this after its end is lag
GAP_LIMIT = 60 * NS  # no data at all for this long is a gap
_NO_LEVEL = 2**62  # no listener: no price makes anyone act


class StreamListener(Protocol):
    """What a watcher runner receives from its symbol's stream."""

    def on_fast_bar(self, bar: Bar) -> None: ...

    def on_close_bar(self, bar: Bar) -> None: ...


class SymbolStream:
    """Builds one symbol's bars and keeps its latest quote."""

    def __init__(self, symbol: str, clock: Callable[[], int],
                 on_health: Callable[[str, str, float, str], None] | None = None) -> None:
        self.symbol = symbol
        self._clock = clock
        self._on_health = on_health or (lambda *_: None)
        self.quote: Quote | None = None
        self.last_price: int | None = None  # the latest print
        self.last_data_at = clock()
        self._in_gap = False
        self._seconds = BarAggregator(NS)
        self._second_open: int | None = None  # start of the second being built
        self.newest_second = 0  # start of the latest second that had prints
        self._closed_through = 0  # every 1-second bar ending at or before this was delivered
        self._fresh = True  # a new subscription first repeats the last trade: not a print
        self._start_fresh()
        self._close: dict[int, BarAggregator] = {}
        self._listeners: dict[int, list[StreamListener]] = {}
        self._levels: dict[int, int] = {}  # id(listener) -> the level it acts at
        self._min_level = _NO_LEVEL
        # The earliest instant on_clock has something to do (a bar to close by time, a
        # gap to notice): the daemon's tick skips the stream until then.
        self.due = clock()

    # --- listeners -------------------------------------------------------------------

    def add_listener(self, listener: StreamListener, close_size: int,
                     level: int | None = None) -> None:
        """Deliver bars to ``listener``; its close-rule bars have ``close_size`` ns.

        ``level``: the price at or above which it may act (a watcher's level);
        None when any price may matter. See :meth:`might_act`."""
        self._listeners.setdefault(close_size, []).append(listener)
        self._close.setdefault(close_size, BarAggregator(close_size))
        self._levels[id(listener)] = 0 if level is None else level
        self._min_level = min(self._levels.values())
        self.due = min(self.due, self._clock())

    def remove_listener(self, listener: StreamListener) -> None:
        """Stop delivering to ``listener``."""
        for size, group in list(self._listeners.items()):
            if listener in group:
                group.remove(listener)
            if not group:
                del self._listeners[size]
                self._close.pop(size, None)
        self._levels.pop(id(listener), None)
        self._min_level = min(self._levels.values(), default=_NO_LEVEL)

    def might_act(self, top: int) -> bool:
        """Could data whose highest price is ``top`` make a listener act now?

        Every trigger needs a bar whose high reaches the watcher's level, and the
        bars this data can close are made of it and of the bars still open
        here. When neither reaches the lowest level, what the data does (counts
        bars, moves the last price) can wait for the end of the read."""
        level = self._min_level
        if top >= level:
            return True
        high = self._seconds.open_high
        if high is not None and high >= level:
            return True
        for agg in self._close.values():
            high = agg.open_high
            if high is not None and high >= level:
                return True
        return False

    @property
    def in_gap(self) -> bool:
        """True while no data at all has come for longer than the gap limit."""
        return self._in_gap

    @property
    def idle(self) -> bool:
        """True when nobody listens any more."""
        return not self._listeners

    # --- inputs ------------------------------------------------------------------------

    def on_quote(self, bid: int | None, bid_size: int | None, ask: int | None,
                 ask_size: int | None) -> None:
        """The quote changed; it is in force from now."""
        now = self._clock()
        self.quote = Quote(now, bid, bid_size, ask, ask_size)
        self._data_arrived(now)

    def on_prints(self, prints: list[tuple[int, int]], second: int | None) -> None:
        """Trade prints (price, size) of one batch; ``second`` from the gateway if known."""
        if not prints:
            return
        now = self._clock()
        self._data_arrived(now)
        start = second if second is not None else now - now % NS
        if start < self._closed_through:
            if not self._fresh:
                self._on_health(self.symbol, "late_print", (now - start) / NS,
                                f"{len(prints)} print(s) for a second already closed")
            return
        if self._second_open is not None and start < self._second_open:
            # Stamped earlier than prints already placed by their arrival: keep the
            # bars in time order, report what cannot be placed.
            self._on_health(self.symbol, "late_print", (now - start) / NS,
                            f"{len(prints)} print(s) for a second before one already begun")
            return
        self._fresh = False
        if self._second_open is not None and start > self._second_open:
            self._deliver_second(self._seconds.close_until(start))
        prices = [price for price, _ in prints]  # the batch folded into one bar
        self._seconds.add(Bar(start, NS, prices[0], max(prices), min(prices), prices[-1],
                              sum(size for _, size in prints)))
        self.last_price = prints[-1][0]
        self._second_open = start
        if start + NS + SECOND_GRACE < self.due:
            self.due = start + NS + SECOND_GRACE
        self.newest_second = max(self.newest_second, start)
        if start + NS <= now:  # the gateway reported a second that has already ended
            self._deliver_second(self._seconds.close_until(start + NS))

    def on_bar5(self, bar: Bar) -> None:
        """A closed 5-second TRADES bar (realtime bars); volume 0: nothing traded."""
        now = self._clock()
        self._data_arrived(now)
        if now - bar.end > LAG_LIMIT:
            self._on_health(self.symbol, "lag", (now - bar.end) / NS,
                            "5-second bar arrived late against the broker clock")
        traded = has_trades(bar)
        # A listener may leave while a bar is delivered (its watcher entered): a copy.
        for size, agg in list(self._close.items()):
            if self._close.get(size) is not agg:
                continue  # its last listener left during this bar
            if not traded:  # no bar, but what ended by its end is complete
                self._emit_close(size, agg.close_until(bar.end))
                continue
            self._emit_close(size, agg.add(bar))
            if bar.end % size == 0:  # the last 5 seconds of the bucket: it is complete
                self._emit_close(size, agg.close_until(bar.end))
            end = agg.open_end
            if end is not None and end + CLOSE_GRACE < self.due:
                self.due = end + CLOSE_GRACE

    def _data_arrived(self, now: int) -> None:
        if self._in_gap:
            self._in_gap = False
            self._on_health(self.symbol, "gap", (now - self.last_data_at) / NS,
                            "data is flowing again")
        self.last_data_at = now

    def on_clock(self) -> None:
        """Close bars whose end (plus grace) the clock has passed; notice a silent symbol."""
        now = self._clock()
        if not self._in_gap and now - self.last_data_at > GAP_LIMIT:
            self._in_gap = True
            self._on_health(self.symbol, "gap", (now - self.last_data_at) / NS,
                            "no quotes, prints or bars")
        if self._second_open is not None and self._second_open + NS + SECOND_GRACE <= now:
            self._deliver_second(self._seconds.close_until(now))
        for size, agg in list(self._close.items()):
            if self._close.get(size) is agg:
                self._emit_close(size, agg.close_until(now - CLOSE_GRACE))
        self.due = self._next_due()

    def _next_due(self) -> int:
        """The earliest instant on_clock can have something to do, from the state now."""
        due = self.last_data_at + GAP_LIMIT + 1 if not self._in_gap else 2**63
        if self._second_open is not None:
            due = min(due, self._second_open + NS + SECOND_GRACE)
        for agg in self._close.values():
            end = agg.open_end
            if end is not None:
                due = min(due, end + CLOSE_GRACE)
        return due

    def reset(self) -> None:
        """Forget partial bars (after a data loss: they may be incomplete)."""
        self._seconds = BarAggregator(NS)
        self._second_open = None
        self._close = {size: BarAggregator(size) for size in self._close}
        self._start_fresh()
        self.due = self._clock()

    def _start_fresh(self) -> None:
        # Seconds before the subscription can never be complete bars.
        now = self._clock()
        self._closed_through = max(self._closed_through, now - now % NS)
        self._fresh = True

    # --- delivery ----------------------------------------------------------------------

    def _deliver_second(self, bar: Bar | None) -> None:
        if bar is None:
            return
        self._closed_through = max(self._closed_through, bar.end)
        if self._second_open == bar.start:
            self._second_open = None
        for group in list(self._listeners.values()):
            for listener in list(group):
                listener.on_fast_bar(bar)

    def _emit_close(self, size: int, bar: Bar | None) -> None:
        if bar is None:
            return
        if self._second_open is not None and self._second_open + NS <= bar.end:
            self._deliver_second(self._seconds.close_until(bar.end))
        for listener in list(self._listeners.get(size, ())):
            listener.on_close_bar(bar)
