"""The simulated gateway's matching engine: orders in, IB-style events out.

Pure and synchronous: the virtual clock and the session of an instant are
injected; every public call returns the events it caused, in the order a real
gateway sends them. Pricing rules are in :mod:`breakoutd.sim.matching.book`, the
life of an order (holding, sessions, cancels, OCA) in
:mod:`breakoutd.sim.matching.lifecycle`.
"""

from __future__ import annotations

import copy

from breakoutd.core.bars import NS
from breakoutd.core.prices import to_float
from breakoutd.sim.matching.account import PortfolioItem
from breakoutd.sim.matching.book import (
    OrderRecord,
    Quote,
    quote_fill,
    row_prints,
    stop_triggered,
    take_from_quote,
    trades_through,
)
from breakoutd.sim.matching.lifecycle import REJECTED, Events, OrderLifecycle
from breakoutd.sim.matching.values import (
    FILLED,
    SUBMITTED,
    AccountChanged,
    CommissionEvent,
    ExecutionEvent,
    OpenOrderEvent,
    OrderErrorEvent,
    OrderStatusEvent,
    PositionChanged,
    SimOrder,
)


class MatchingEngine(OrderLifecycle):
    """Matches orders against quotes and trades for one simulated account."""

    # -- requests ----------------------------------------------------------

    def place(self, order: SimOrder) -> Events:
        """A placeOrder: a new order, or a modify of a live one with the same id."""
        events = self._advance()
        rec = self._orders.get((order.client_id, order.order_id))
        if rec is None:
            self._new(order, events)
        elif rec.done:
            self._error(order, 103, "Duplicate order id", events)
        else:
            self._modify(rec, order, events)
        self._settle(events)
        return events

    def cancel(self, client_id: int, order_id: int) -> Events:
        """A cancelOrder: Cancelled and error 202, or 10147/10148 when it cannot."""
        events = self._advance()
        rec = self._orders.get((client_id, order_id))
        if rec is None:
            msg = f"OrderId {order_id} that needs to be cancelled is not found."
            events.append(OrderErrorEvent(client_id, order_id, 10147, msg))
        elif rec.done:
            msg = (f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                   f"state: {rec.status}.")
            events.append(OrderErrorEvent(client_id, order_id, 10148, msg))
        else:
            self._cancel(rec, events, notify=True)
            key = self._oca_key(rec)
            if key is not None and key[0] == "oca":
                for other in self._oca[key]:
                    if not other.done:
                        self._cancel(other, events, notify=False)
        self._settle(events)
        return events

    def cancel_all(self) -> Events:
        """A reqGlobalCancel: every live order of every client is cancelled."""
        events = self._advance()
        for rec in sorted(self._live(), key=lambda r: r.seq):
            if not rec.done:
                self._cancel(rec, events, notify=True)
        self._settle(events)
        return events

    def reject_next(self, code: int = 201, message: str = "simulated rejection") -> None:
        """Fault hook: the next new order is rejected with this error."""
        text = message if code != 201 or message.startswith(REJECTED) else REJECTED + message
        self._reject = (code, text)

    # -- market data -------------------------------------------------------

    def on_quote(
        self, symbol: str, time_ns: int, bid: int | None, bid_size: int | None,
        ask: int | None, ask_size: int | None,
    ) -> Events:
        """A new best quote: replaces the displayed sizes and matches the symbol's orders."""
        events = self._advance()
        quote = self._quotes.setdefault(symbol, Quote())
        quote.version += 1
        quote.bid, quote.bid_left = bid, ((bid_size or 0) if bid is not None else 0)
        quote.ask, quote.ask_left = ask, ((ask_size or 0) if ask is not None else 0)
        if symbol not in self._traded and bid is not None and ask is not None:
            self._account.mark(symbol, (bid + ask) // 2)
        if self._book.get(symbol):
            self._dirty.add(symbol)
        self._settle(events)
        return events

    def on_trade(self, symbol: str, time_ns: int, price: int, size: int) -> Events:
        """A print: fills resting limits traded through, triggers stops."""
        events = self._advance()
        self._traded.add(symbol)
        self._account.mark(symbol, price)
        if self._book.get(symbol):
            self._fill_traded_through(symbol, price, size, events)
            self._trigger_stops(symbol, price, events)
            self._dirty.add(symbol)
        self._settle(events)
        return events

    def on_row(
        self, time_ns: int, symbol: str, open: int | None, high: int | None,
        low: int | None, close: int | None, volume: int | None, bid: int | None,
        bid_size: int | None, ask: int | None, ask_size: int | None,
    ) -> Events:
        """One tape row (fields in TapeRow order): its prints, then its quote."""
        events: Events = []
        if open is not None and high is not None and low is not None and close is not None:
            for price, size in row_prints(open, high, low, close, volume):
                events += self.on_trade(symbol, time_ns, price, size)
        if bid is not None or ask is not None:
            events += self.on_quote(symbol, time_ns + NS, bid, bid_size, ask, ask_size)
        return events

    def advance(self) -> Events:
        """Apply the clock: session changes activate or expire orders."""
        events = self._advance()
        self._settle(events)
        return events

    # -- queries -----------------------------------------------------------

    def open_orders(self, client_id: int | None = None) -> list[tuple[SimOrder, str]]:
        """Live acknowledged orders of a client (None: all clients), oldest first."""
        recs = sorted(self._live(), key=lambda r: r.seq)
        return [(r.order, r.status) for r in recs
                if not r.held and (client_id is None or r.order.client_id == client_id)]

    def completed_orders(self) -> list[tuple[SimOrder, str]]:
        """Filled, cancelled and inactive orders, in the order they completed."""
        return [(r.order, r.status) for r in self._completed]

    def order_status(self, client_id: int, order_id: int) -> OrderStatusEvent | None:
        """The orderStatus message that describes an order now, or None if unknown."""
        rec = self._orders.get((client_id, order_id))
        return None if rec is None or not rec.status else self._status_event(rec)

    def executions(self) -> list[tuple[ExecutionEvent, CommissionEvent]]:
        """Every execution of the account with its commission report, oldest first."""
        return list(self._executions)

    def positions(self) -> dict[str, tuple[int, int]]:
        """``{symbol: (qty, avg_cost_micros)}`` for every symbol held this session."""
        return self._account.positions()

    def portfolio(self) -> list[PortfolioItem]:
        """Positions with market price, value and P&L, for updatePortfolio."""
        return self._account.portfolio()

    def account_values(self) -> dict[str, str]:
        """Account values under IB's tag names (USD)."""
        return self._account.values()

    def next_valid_id(self, client_id: int) -> int:
        """One past the highest order id the client has used."""
        return self._max_id.get(client_id, 0) + 1

    def snapshot(self) -> dict[str, object]:
        """A deep copy of all state, for a gateway restart that keeps it."""
        state = {k: v for k, v in vars(self).items() if k not in ("_clock", "_sessions")}
        return copy.deepcopy(state)

    def restore(self, state: dict[str, object]) -> None:
        """Replace all state with a snapshot's (the clock and sessions stay)."""
        vars(self).update(copy.deepcopy(state))

    # -- matching ----------------------------------------------------------

    def _settle(self, events: Events) -> None:
        """Bring the dirty symbols' orders up to date and match the working ones."""
        while self._dirty:
            symbol = self._dirty.pop()
            changed = True
            while changed:
                changed = False
                for rec in list(self._book.get(symbol, ())):
                    if rec.held or rec.done:
                        continue
                    changed |= self._sync_status(rec, events)
                    if rec.status != SUBMITTED:
                        continue
                    changed |= self._match_quote(rec, events)
                    if rec.order.tif == "IOC" and not rec.done:
                        self._cancel(rec, events, notify=False)

    def _match_quote(self, rec: OrderRecord, events: Events, worst: int | None = None) -> bool:
        quote = self._quotes.get(rec.order.symbol)
        if quote is None or (worst is None and rec.trigger_version == quote.version):
            # A stop triggered by a print may not fill at the quote from before it.
            return False
        is_buy = rec.order.is_buy
        hit = quote_fill(is_buy, rec.limit(), quote, worst)
        if hit is None:
            return False
        price, left = hit
        shares = min(rec.remaining, left)
        take_from_quote(is_buy, quote, shares)
        self._fill(rec, shares, price, events)
        return True

    def _fill_traded_through(self, symbol: str, price: int, size: int, events: Events) -> None:
        left = size
        for rec in list(self._book[symbol]):
            if left <= 0:
                break
            limit = rec.limit()
            if rec.done or rec.status != SUBMITTED or limit is None:
                continue
            if trades_through(rec.order.is_buy, limit, price):
                shares = min(rec.remaining, left)
                left -= shares
                self._fill(rec, shares, limit, events)

    def _trigger_stops(self, symbol: str, price: int, events: Events) -> None:
        quote = self._quotes.get(symbol)
        for rec in list(self._book[symbol]):
            if rec.done or rec.held or not rec.is_stop or rec.triggered:
                continue
            if rec.waiting_parent or not self._session_allows(rec.order):
                continue
            stop = rec.order.aux_price or 0  # a positive stop is checked at placement
            if stop_triggered(rec.order.is_buy, stop, price):
                rec.triggered = True
                rec.trigger_version = quote.version if quote else 0
                self._sync_status(rec, events)
                self._match_quote(rec, events, worst=price)

    def _fill(self, rec: OrderRecord, shares: int, price: int, events: Events) -> None:
        order = rec.order
        value = shares * price
        fee = self._fees.for_fill(rec.filled, rec.value, shares, value)
        rec.filled += shares
        rec.value += value
        rec.commission += fee
        rec.last_fill_price = price
        signed = shares if order.is_buy else -shares
        realized = self._account.apply_fill(order.symbol, order.con_id, signed, price, fee)
        self._exec_seq += 1
        exec_id = f"{self._exec_base:08x}.{self._exec_seq:08x}.01.01"
        execution = ExecutionEvent(
            order.client_id, order.order_id, exec_id, self._clock(), order.symbol,
            "BOT" if order.is_buy else "SLD", shares, price, order.perm_id, rec.filled,
            rec.avg_price(), order.order_ref, order.account, order.con_id,
        )
        report = CommissionEvent(exec_id, to_float(fee), "USD",
                                 None if realized is None else to_float(realized))
        self._executions.append((execution, report))
        events.append(execution)
        if rec.remaining == 0:
            self._finish(rec, FILLED)
            events.append(OpenOrderEvent(order, FILLED))
        events.append(self._status_event(rec))
        events.append(report)
        qty, avg = self._account.position(order.symbol)
        events.append(PositionChanged(order.account, order.symbol, order.con_id, qty, avg))
        events.append(AccountChanged(self.account, self._account.values()))
        self._after_fill(rec, shares, events)

    def _after_fill(self, rec: OrderRecord, shares: int, events: Events) -> None:
        """OCA effects of a fill, and children set working when the parent is filled."""
        key = self._oca_key(rec)
        cancels_all = key is not None and key[0] == "oca" and rec.order.oca_type in (0, 1)
        for other in self._oca.get(key, []) if key is not None else []:
            if other is rec or other.done:
                continue
            if cancels_all:
                self._cancel(other, events, notify=False)
            else:
                self._resize(other, other.order.total_qty - shares, events)
        if rec.remaining == 0:
            for child_id in rec.children:
                child = self._orders[(rec.order.client_id, child_id)]
                if child.waiting_parent:
                    child.waiting_parent = False
                    self._dirty.add(child.order.symbol)
