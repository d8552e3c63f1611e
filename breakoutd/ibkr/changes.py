"""Changes to orders already sent: cancel, flatten, modify, and the stop's moves.

After a ladder rung fills the stop moves (:mod:`breakoutd.core.ladder`: to the
level after rung 1, to rung 1's price after rung 2) by a modify, and a
position-management rule may raise it (:meth:`OrderChanges.raise_stop`); the
modify never raises the stop's size above what the broker last reported (its
OCA may have cut it already). The stop's price decided here is kept
(``EntryBook.stop_wanted``): a move that could not be sent (no connection) or
was lost with one (written, but the socket closed before the gateway read it)
is sent again, and logged, after the next resync when the broker's stop still
differs, once per ib_async session so a refused modify does not loop.

A cancel or a modify reduces risk: it waits for the last send to be durable
(:meth:`~breakoutd.ibkr.sender.OrderSender.durable_or_logged`) but goes out
even when that failed. Orders placed under another client id are followed but
cannot be modified or cancelled from here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ib_async import IB, Contract, Order, Trade
from loguru import logger

from breakoutd.core.events import DONE_STATUSES, Event, OrderModified, StopMoved
from breakoutd.core.ladder import LadderState
from breakoutd.core.plans import STOP_LIMIT_OFFSET
from breakoutd.core.prices import round_to_tick, to_decimal, to_decimal_or_none, to_float
from breakoutd.core.refs import FLATTEN, STOP, TAKE_PROFIT, child_ref
from breakoutd.core.stop_rules import modify_due
from breakoutd.errors import OrderRejected
from breakoutd.ibkr.convert import price_to_micros
from breakoutd.ibkr.order_book import EntryBook, OrderBook, TrackedOrder
from breakoutd.ibkr.orders_map import PlannedOrder, order_sent_event
from breakoutd.ibkr.sender import OrderSender
from breakoutd.ibkr.wire.orders import known_trades, restore_status, trade_of
from breakoutd.ibkr.wire.requests import client_id


class OrderChanges:
    """Cancels, sales and modifies of the entries in ``book``, written through ``ib``."""

    def __init__(self, ib: IB, book: OrderBook, sender: OrderSender, *,
                 emit: Callable[[Event], None], clock: Callable[[], int],
                 resync: Callable[[], Awaitable[None]], ack_timeout: float) -> None:
        self._ib = ib
        self._book = book
        self._sender = sender
        self._emit = emit
        self._clock = clock
        self._resync = resync
        self._ack_timeout = ack_timeout
        # ib_async's sessions, told apart by its dict of trades (new after every reconnect).
        self._session_trades: dict[Any, Any] | None = None
        self._session_count = 0

    def trade(self, o: TrackedOrder) -> Trade | None:
        """ib_async's Trade of ``o``, looked up each time: it replaces them on a reconnect."""
        return trade_of(self._ib, o.client_id, o.order_id)

    def mine(self, o: TrackedOrder) -> bool:
        """True when ``o`` was placed by this client (only then can it be changed)."""
        return o.client_id == client_id(self._ib)

    def cancel(self, o: TrackedOrder) -> bool:
        """Cancel ``o`` at the broker when this client can; False when it cannot."""
        trade = self.trade(o)
        if trade is None or not self.mine(o):
            return False
        self._sender.durable_or_logged()
        self._ib.cancelOrder(trade.order)
        return True

    async def wait_done(self, o: TrackedOrder) -> None:
        """Wait for the broker to end ``o``; ask it for the truth when it does not say."""
        try:
            await asyncio.wait_for(o.done.wait(), self._ack_timeout)
        except TimeoutError:
            await self._resync()

    # --- the operator's and the kill switch's -----------------------------------------------

    async def cancel_entry(self, order_ref: str) -> None:
        """Cancel an entry that has not filled (its exits go with it); wait for the broker."""
        book = self._book.require(order_ref)
        parent = book.parent()
        if parent is None or parent.status in DONE_STATUSES:
            return
        trade = self.trade(parent)
        if trade is None:
            raise OrderRejected(f"{order_ref}: the entry order is not known to this connection")
        self._sender.durable_or_logged()
        self._ib.cancelOrder(trade.order)
        await self.wait_done(parent)

    async def flatten(self, order_ref: str, contract: Contract, *, limit: int | None) -> int:
        """Sell what an entry holds: cancel its entry and exits, then one SELL for the rest.

        The exits are cancelled first and their cancels awaited, so the sale
        can never sell shares an exit sold meanwhile. ``limit`` None sends MKT
        (regular hours), else a SELL LMT at ``limit`` with outsideRth. Returns
        the shares offered (0: nothing was held)."""
        book = self._book.require(order_ref)
        sale = book.orders.get((FLATTEN, 0))
        if sale is not None and sale.status not in DONE_STATUSES:
            # Its shares are not sold yet (entry.sold counts fills): selling them again
            # would go short once both fill.
            raise OrderRejected(f"{order_ref}: a sale is already working; nothing more sent")
        live = [o for o in book.orders.values() if o.role != FLATTEN and o.status not in DONE_STATUSES]
        for o in live:
            self.cancel(o)
        for o in live:
            await self.wait_done(o)
        if any(o.status not in DONE_STATUSES for o in live):
            raise OrderRejected(f"{order_ref}: its orders could not all be cancelled; "
                                "nothing sold, to never sell what an exit may still sell")
        qty = book.bought() - book.entry.sold
        if qty <= 0:
            return 0
        self._send_sale(book, contract, qty, limit)
        return qty

    def _send_sale(self, book: EntryBook, contract: Contract, qty: int, limit: int | None) -> None:
        entry = book.entry
        if not self._ib.isConnected():
            raise OrderRejected(f"{entry.order_ref}: not connected to the gateway, nothing sold")
        self._sender.durable_or_logged()
        order_id = self._sender.next_ids(1)[0]
        old = book.orders.get((FLATTEN, 0))
        if old is not None:  # a sale sent before and done: its fills are in entry.sold
            self._book.forget(old)
        order = Order(orderId=order_id, action="SELL", totalQuantity=qty,
                      orderType="MKT" if limit is None else "LMT",
                      lmtPrice=to_float(limit) if limit is not None else 0.0,
                      tif="DAY", outsideRth=limit is not None, account=self._sender.account,
                      orderRef=child_ref(entry.order_ref, FLATTEN), transmit=True)
        self._book.track(book, FLATTEN, 0, order_id, client_id(self._ib), limit is not None, "DAY")
        self._ib.placeOrder(contract, order)
        self._sender.note_id(order_id)
        self._emit(order_sent_event(self._clock(), entry.order_ref, entry.symbol,
                                    PlannedOrder(FLATTEN, 0, order)))
        self._sender.durable_soon()

    async def modify_exits(self, order_ref: str, tp: tuple[int, ...] | None,
                           sl: int | None) -> None:
        """Move the take-profit prices (one per rung) and/or the stop of an entry."""
        book = self._book.require(order_ref)
        if tp is not None:
            rungs = sorted((o for o in book.orders.values() if o.role == TAKE_PROFIT),
                           key=lambda o: o.rung)
            if len(tp) != len(rungs):
                raise OrderRejected(f"{order_ref}: {len(tp)} take-profit prices for "
                                    f"{len(rungs)} rungs")
            for o, price in zip(rungs, tp, strict=True):
                self._modify_logged(o, lmt=price)
            book.prices = tuple(tp)
            if book.entry.ladder is not None:
                book.entry.ladder = book.entry.ladder._replace(prices=tp[:len(book.entry.ladder.prices)])
        if sl is not None:
            stop = book.orders.get((STOP, 0))
            if stop is None:
                raise OrderRejected(f"{order_ref}: the entry has no stop to move")
            book.stop_wanted = (sl, round_to_tick(sl - STOP_LIMIT_OFFSET))
            self._modify_logged(stop, lmt=book.stop_wanted[1], aux=sl)
            book.stop = sl
            if book.entry.ladder is not None:
                book.entry.ladder = book.entry.ladder._replace(stop=sl)

    def _modify_logged(self, o: TrackedOrder, lmt: int | None = None, aux: int | None = None) -> None:
        order = self.modify(o, lmt=lmt, aux=aux)
        if order is not None:
            self._emit(OrderModified(
                at=self._clock(), order_ref=o.book.entry.order_ref, role=o.role,
                rung=o.rung, order_id=o.order_id, qty=int(order.totalQuantity),
                limit=to_decimal_or_none(lmt), stop=to_decimal_or_none(aux), reason="operator"))

    def modify(self, o: TrackedOrder, qty: int | None = None, lmt: int | None = None,
               aux: int | None = None) -> Order | None:
        """Send ``o`` again with a new size and/or prices; None when it was not sent."""
        trade = self.trade(o)
        if o.status in DONE_STATUSES:
            return None
        if trade is None:
            logger.warning("{}: order {} is not known to this connection (yet); it is modified "
                           "after the next resync", o.book.entry.order_ref, o.order_id)
            return None
        if not self.mine(o):
            logger.warning("{}: order {} belongs to client {}; it cannot be modified from here",
                           o.book.entry.order_ref, o.order_id, o.client_id)
            return None
        if trade.isDone():  # ib_async's verdict on an error; the gateway says it is live
            restore_status(trade, o.status or "PendingSubmit")
        order = trade.order
        if qty is not None:
            order.totalQuantity = qty
        if lmt is not None:
            order.lmtPrice = to_float(lmt)
        if aux is not None:
            order.auxPrice = to_float(aux)
        # A modify replaces the whole order: restate what must not change.
        order.transmit, order.outsideRth, order.tif = True, o.outside_rth, o.tif
        order.account = order.account or self._sender.account
        self._sender.durable_or_logged()
        try:
            self._ib.placeOrder(trade.contract, order)
        except ConnectionError as exc:  # the socket closed under us: not a reason to lose the fill
            logger.warning("{}: modifying order {} failed ({}); it is sent again after the next "
                           "resync", o.book.entry.order_ref, o.order_id, exc)
            return None
        return order

    # --- the stop's moves ---------------------------------------------------------------------

    def move_stop(self, book: EntryBook, old: LadderState, new: LadderState) -> StopMoved | None:
        """Modify the stop to the ladder's price and size; the event is the caller's to emit."""
        book.entry.ladder = new
        stop = book.orders.get((STOP, 0))
        if stop is None or (new.stop, new.stop_qty) == (old.stop, old.stop_qty):
            return None
        if new.stop_qty > 0:
            book.stop_wanted = (new.stop, new.stop_limit)
            trade = self.trade(stop)
            size = stop.filled + new.stop_qty
            current = int(trade.order.totalQuantity) if trade is not None else size
            if new.stop != old.stop or current > size:
                # Never above the size the broker last reported: its OCA may have cut it already.
                # Not sent now (no connection): resend_stops sends it after the next resync.
                self.modify(stop, qty=min(size, current), lmt=new.stop_limit, aux=new.stop)
        return StopMoved(at=self._clock(), order_ref=book.entry.order_ref, order_id=stop.order_id,
                         stop=to_decimal(new.stop), stop_limit=to_decimal(new.stop_limit),
                         qty=new.stop_qty)

    def raise_stop(self, order_ref: str, stop: int, rule: str) -> StopMoved | None:
        """Modify the broker-held stop up to ``stop`` for a position-management ``rule``.

        Only upward by whole ticks and at most once a second per order
        (:func:`breakoutd.core.stop_rules.modify_due`); None when nothing was
        sent (the caller asks again on the next print). A move lost with the
        connection is sent again after the next resync, as a ladder's."""
        book = self._book.get(order_ref)
        o = book.orders.get((STOP, 0)) if book is not None else None
        held = book.stop_price() if book is not None else None
        if book is None or o is None or o.status in DONE_STATUSES or held is None:
            return None
        now = self._clock()
        if not modify_due(held, stop, book.stop_modified_at, now):
            return None
        limit = round_to_tick(stop - STOP_LIMIT_OFFSET)
        book.stop_wanted, book.stop, book.stop_modified_at = (stop, limit), stop, now
        ladder = book.entry.ladder
        if ladder is not None:  # the ladder's own moves never take it below this one
            book.entry.ladder = ladder._replace(stop=max(ladder.stop, stop))
        self.modify(o, lmt=limit, aux=stop)
        qty = ladder.stop_qty if ladder is not None else book.bought() - book.entry.sold
        moved = StopMoved(at=now, order_ref=order_ref, order_id=o.order_id,
                          stop=to_decimal(stop), stop_limit=to_decimal(limit), qty=qty,
                          rule=rule)
        self._emit(moved)
        return moved

    def _session(self) -> int:
        """A number for ib_async's current session (its trades dict is new after a reconnect)."""
        trades = known_trades(self._ib)
        if trades is not self._session_trades:
            self._session_trades, self._session_count = trades, self._session_count + 1
        return self._session_count

    def resend_stops(self) -> None:
        """Send again each stop move the broker does not show (lost with a connection).

        Right after a resync the broker's terms are in ib_async's trades (openOrder
        writes them there). Once per session and move at most, so a modify the
        gateway refuses is not sent in a loop of errors and resyncs."""
        session = self._session()
        for book in self._book.books.values():
            if book.stop_wanted is None or book.stop_resent == session:
                continue
            qty = self._stop_to_resend(book)
            if qty is not None:
                book.stop_resent = session
                stop, limit = book.stop_wanted
                logger.warning("{}: the broker's stop is not at {} for {} shares; sending the "
                               "move again", book.entry.order_ref, to_decimal(stop), qty)
                self.modify(book.orders[(STOP, 0)], qty=qty, lmt=limit, aux=stop)

    def _stop_to_resend(self, book: EntryBook) -> int | None:
        """The size to send the wanted stop with, or None when the broker has it (or it is done)."""
        stop = book.orders.get((STOP, 0))
        ladder = book.entry.ladder
        if stop is None or stop.status in DONE_STATUSES or book.stop_wanted is None \
                or (ladder is not None and ladder.stop_qty == 0):
            return None
        trade = self.trade(stop)
        if trade is None:
            logger.warning("{}: the stop {} is not among the broker's open orders; its move "
                           "cannot be checked", book.entry.order_ref, stop.order_id)
            return None
        current = int(trade.order.totalQuantity)
        size = stop.filled + ladder.stop_qty if ladder is not None else current
        if price_to_micros(trade.order.auxPrice) == book.stop_wanted[0] and current <= size:
            return None
        return min(size, current)

