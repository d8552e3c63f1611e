"""Market-data subscriptions and their fan-out as the tape is replayed.

Streaming quotes send what changed on each row (bid, ask and their sizes),
then each of the row's prints as a LAST tick with its size, the cumulative
volume and the last trade time. Realtime bars are
5-second bars sent once closed; keepUpToDate bars are re-sent each time a
replayed trade changes them (IB's historicalDataUpdate). Tick-by-tick sends
the row's prints (market.py) or its quote. An interval without trades gets,
as from IB, a bar of volume 0 at the last price (``quiet_bars``, on by
default; off, such intervals have no bar, as in the backtest). A paused feed (1100, 2103) or a stalled
symbol (fault) sends nothing while the matching engine keeps trading.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from breakoutd.calendar import DaySessions, day_sessions, exchange_date
from breakoutd.core.bars import NS
from breakoutd.sim import outgoing as out
from breakoutd.sim.contracts import primary_exchange_for
from breakoutd.sim.market import (
    AggBar,
    Market,
    QuoteChange,
    Row,
    SymbolState,
    aggregate,
    quiet_bar,
    row_prints,
)

REALTIME_BAR_NS = 5 * NS


class Subscriber(Protocol):
    """The side of a client session that feeds write to."""

    def send_md(self, symbol: str, fields: list[object], bar: bool = False) -> None:
        """Queue a market-data message about ``symbol`` (``bar``: a bar message)."""


@dataclass(eq=False, slots=True)
class Sub:
    """One market-data request of one client."""

    session: Subscriber
    req_id: int
    symbol: str
    kind: str  # "quotes" | "rtbars" | "bars" | "ticks"
    use_rth: bool = False
    size_ns: int = 0
    format_date: int = 1
    tick_type: str = ""
    next_bucket: int = 0
    touched: set[int] = field(default_factory=set)


def quote_snapshot(req_id: int, state: SymbolState) -> list[list[object]]:
    """The ticks describing a symbol's current quote, last trade and volume."""
    msgs: list[list[object]] = [out.market_data_type(req_id)]
    if state.bid is not None:
        msgs.append(out.tick_price(req_id, out.BID, state.bid, state.bid_size))
    if state.ask is not None:
        msgs.append(out.tick_price(req_id, out.ASK, state.ask, state.ask_size))
    if state.last is not None:
        msgs.append(out.tick_price(req_id, out.LAST, state.last, state.last_size))
        msgs.append(out.tick_size(req_id, out.VOLUME, state.volume))
        msgs.append(out.tick_string(req_id, out.LAST_TIMESTAMP, str(state.last_time // NS)))
    return msgs


def in_rth(instant_ns: int) -> bool:
    """True when an instant falls in its day's regular session."""
    sessions = _sessions(exchange_date(instant_ns))
    return sessions is not None and sessions.rth[0] <= instant_ns < sessions.rth[1]


@functools.lru_cache(maxsize=64)
def _sessions(day: dt.date) -> DaySessions | None:
    try:
        return day_sessions(day)
    except ValueError:  # outside the calendar's range: treat as closed
        return None


def in_trading_hours(instant_ns: int, rth_only: bool = False) -> bool:
    """True when an instant falls in its day's trading hours (04:00-20:00 on a full day)."""
    sessions = _sessions(exchange_date(instant_ns))
    if sessions is None:
        return False
    if rth_only:
        return sessions.rth[0] <= instant_ns < sessions.rth[1]
    return sessions.premarket[0] <= instant_ns < sessions.afterhours[1]


def with_quiet_bars(market: Market, symbol: str, bars: list[AggBar], start_ns: int,
                    end_ns: int, size_ns: int, rth_only: bool = False) -> list[AggBar]:
    """``bars`` plus, for every interval of trading hours starting in ``[start, end)``
    without a trade, IB's bar of volume 0 at the last price (none before the first trade)."""
    by_start = {agg.bar.start: agg for agg in bars}
    out: list[AggBar] = []
    price: int | None = None
    for bucket in range(start_ns - start_ns % size_ns, end_ns, size_ns):
        agg = by_start.get(bucket)
        if agg is not None:
            out.append(agg)
            price = agg.bar.close
            continue
        if price is None:
            price = market.last_price_before(symbol, bucket)
        if price is not None and in_trading_hours(bucket, rth_only):
            out.append(quiet_bar(bucket, size_ns, price))
    return out


class FeedHub:
    """All market-data subscriptions of all clients, fed by the replay."""

    def __init__(self, market: Market, quiet_bars: bool = True) -> None:
        self.market = market
        self.quiet_bars = quiet_bars
        self._by_symbol: dict[str, dict[str, list[Sub]]] = defaultdict(lambda: defaultdict(list))
        self._by_req: dict[tuple[int, int], Sub] = {}
        # Realtime-bar subscriptions by when their next bar closes, and keepUpToDate
        # ones a trade touched: a replay step looks at these only, not at every sub.
        self._rt_due: list[tuple[int, int, Sub]] = []
        self._rt_seq = itertools.count()
        self._touched: dict[Sub, None] = {}  # in the order they were touched
        self.paused = False
        self.stalled: set[str] = set()

    def subs(self, symbol: str, kind: str) -> list[Sub]:
        """The subscriptions of one kind on a symbol."""
        return self._by_symbol[symbol][kind]

    def all_subs(self) -> Iterator[Sub]:
        """Every live subscription."""
        return iter(list(self._by_req.values()))

    def lines_in_use(self) -> int:
        """Market-data lines held: streaming quotes and tick-by-tick (account-wide)."""
        return sum(1 for s in self._by_req.values() if s.kind in ("quotes", "ticks"))

    def find(self, session: Subscriber, req_id: int) -> Sub | None:
        """The subscription a client holds under ``req_id``."""
        return self._by_req.get((id(session), req_id))

    def holds(self, session: Subscriber, req_id: int) -> bool:
        """True when a client already streams something under ``req_id`` (IB: 322)."""
        return (id(session), req_id) in self._by_req

    def add(self, sub: Sub) -> None:
        """Register a subscription; its request id must be free (see ``holds``)."""
        if self.holds(sub.session, sub.req_id):
            # A second stream under one id would never be cancelled: refuse it loudly.
            raise ValueError(f"request id {sub.req_id} already streams "
                             f"{self.find(sub.session, sub.req_id)}")
        self._by_req[(id(sub.session), sub.req_id)] = sub
        self._by_symbol[sub.symbol][sub.kind].append(sub)
        if sub.kind == "rtbars":
            self._schedule(sub)

    def _live(self, sub: Sub) -> bool:
        return self._by_req.get((id(sub.session), sub.req_id)) is sub

    def _schedule(self, sub: Sub) -> None:
        # Symbol i's data is its offset late (Market spread): so are its bars.
        due = sub.next_bucket + REALTIME_BAR_NS + self.market.offsets.get(sub.symbol, 0)
        heapq.heappush(self._rt_due, (due, next(self._rt_seq), sub))

    def cancel(self, session: Subscriber, req_id: int, kind: str) -> bool:
        """Remove a client's subscription of ``kind``; False when there is none."""
        sub = self._by_req.get((id(session), req_id))
        if sub is None or sub.kind != kind:
            return False
        self._remove(sub)
        return True

    def _remove(self, sub: Sub) -> None:
        del self._by_req[(id(sub.session), sub.req_id)]
        self._by_symbol[sub.symbol][sub.kind].remove(sub)

    def drop_session(self, session: Subscriber) -> int:
        """Remove every subscription of a client; return how many."""
        mine = [s for s in self._by_req.values() if s.session is session]
        for sub in mine:
            self._remove(sub)
        return len(mine)

    def drop_all(self) -> int:
        """Remove every subscription (IB 1101: data lost, clients resubscribe)."""
        subs = list(self._by_req.values())
        for sub in subs:
            self._remove(sub)
        return len(subs)

    def _silent(self, symbol: str) -> bool:
        return self.paused or symbol in self.stalled

    def on_row(self, row: Row, change: QuoteChange) -> None:
        """Send a replayed row to the symbol's subscribers."""
        kinds = self._by_symbol.get(row.symbol)
        if not kinds or self._silent(row.symbol):
            if kinds and row.close is not None:
                self._touch(kinds.get("bars", ()), row.time)
            return
        state = self.market.states[row.symbol]
        for sub in kinds.get("quotes", ()):
            self._send_quote_ticks(sub, row, state, change)
        if row.close is not None:
            self._touch(kinds.get("bars", ()), row.time)
        for sub in kinds.get("ticks", ()):
            self._send_tick_by_tick(sub, row, state, change)

    def _touch(self, subs: list[Sub] | tuple[()], time_ns: int) -> None:
        for sub in subs:
            sub.touched.add(time_ns - time_ns % sub.size_ns)
            self._touched[sub] = None

    @staticmethod
    def _send_quote_ticks(sub: Sub, row: Row, state: SymbolState, change: QuoteChange) -> None:
        send, req = sub.session.send_md, sub.req_id
        sym = row.symbol
        if change.bid and state.bid is not None:
            send(sym, out.tick_price(req, out.BID, state.bid, state.bid_size))
        elif change.bid_size:
            send(sym, out.tick_size(req, out.BID_SIZE, state.bid_size))
        if change.ask and state.ask is not None:
            send(sym, out.tick_price(req, out.ASK, state.ask, state.ask_size))
        elif change.ask_size:
            send(sym, out.tick_size(req, out.ASK_SIZE, state.ask_size))
        if row.close is not None and state.last is not None:
            # Every print of the second as a LAST tick (IBKR streams trades this
            # way, sampled when busy), so a client's 1-second bars equal the tape's.
            for price, size in row_prints(row):
                send(sym, out.tick_price(req, out.LAST, price, size))
            send(sym, out.tick_size(req, out.VOLUME, state.volume))
            send(sym, out.tick_string(req, out.LAST_TIMESTAMP, str(row.time // NS)))

    @staticmethod
    def _send_tick_by_tick(sub: Sub, row: Row, state: SymbolState, change: QuoteChange) -> None:
        time_s = row.time // NS
        if sub.tick_type in ("Last", "AllLast"):
            kind = 1 if sub.tick_type == "Last" else 2
            for price, size in row_prints(row):
                sub.session.send_md(row.symbol, out.tick_by_tick_last(
                    sub.req_id, kind, time_s, price, size, primary_exchange_for(row.symbol)))
        elif change.any and sub.tick_type == "BidAsk":
            sub.session.send_md(row.symbol, out.tick_by_tick_bid_ask(
                sub.req_id, time_s, state.bid, state.ask, state.bid_size, state.ask_size))
        elif change.any and state.bid and state.ask and sub.tick_type == "MidPoint":
            sub.session.send_md(row.symbol, out.tick_by_tick_midpoint(
                sub.req_id, time_s, (state.bid + state.ask) // 2))

    def flush(self, now_ns: int) -> None:
        """After a replay step: close realtime bars and send keepUpToDate updates."""
        due = self._rt_due
        while due and due[0][0] <= now_ns:
            sub = heapq.heappop(due)[2]
            if self._live(sub):  # else cancelled since: dropped here
                self._flush_realtime(sub, now_ns)
                self._schedule(sub)
        if self._touched:
            touched, self._touched = self._touched, {}
            for sub in touched:
                if sub.touched and self._live(sub):
                    self._flush_updates(sub)

    def _flush_realtime(self, sub: Sub, now_ns: int) -> None:
        local = now_ns - self.market.offsets.get(sub.symbol, 0)  # the symbol's data is this late
        closed_until = local - local % REALTIME_BAR_NS
        if closed_until <= sub.next_bucket:
            return
        first = sub.next_bucket
        bars = aggregate(self.market.bars_between(sub.symbol, first, closed_until),
                         REALTIME_BAR_NS)
        sub.next_bucket = closed_until
        if self._silent(sub.symbol):
            return
        if self.quiet_bars:
            bars = with_quiet_bars(self.market, sub.symbol, bars, first, closed_until,
                                   REALTIME_BAR_NS)
        for agg in bars:
            if not sub.use_rth or in_rth(agg.bar.start):
                sub.session.send_md(sub.symbol, out.realtime_bar(sub.req_id, agg), bar=True)

    def _flush_updates(self, sub: Sub) -> None:
        buckets = sorted(sub.touched)
        sub.touched.clear()
        if self._silent(sub.symbol):
            return
        for bucket in buckets:
            for agg in self.bucket_bars(sub.symbol, bucket, sub.size_ns, sub.use_rth):
                sub.session.send_md(sub.symbol, out.historical_update(
                    sub.req_id, agg, sub.format_date), bar=True)

    def bucket_bars(self, symbol: str, bucket: int, size_ns: int, use_rth: bool) -> list[AggBar]:
        """The (possibly partial) bar of one bucket, as far as the tape is known."""
        bars = self.market.bars_between(symbol, bucket, bucket + size_ns)
        if use_rth:
            bars = [b for b in bars if in_rth(b.start)]
        return aggregate(bars, size_ns)

    def next_wake(self, now_ns: int) -> int | None:
        """The next instant a realtime bar closes, when anyone wants them."""
        due = self._rt_due
        while due and not self._live(due[0][2]):
            heapq.heappop(due)
        return due[0][0] if due else None
