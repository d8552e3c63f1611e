"""The order router: entries with broker-held exits, sent once, followed to the end.

What it sends (strategy.md, Exits; refs in :mod:`breakoutd.core.refs`, sizes in
:mod:`breakoutd.core.ladder`): the parent BUY (LMT at the plan's limit, or MKT)
with ``transmit=False``, then one SELL LMT per take-profit rung and one SELL
STP LMT (stop ``sl``, limit ``sl - 0.02``), the last one transmitting the
group. Every order carries the account, the plan's tif and ``outsideRth``. The
exits share one OCA group of type 2 ("reduce with block") and rung *n* is sized
cumulatively, so rungs never cancel each other, each fill shrinks the stop at
the broker, and no sell can exceed the position, also while the daemon is down.

The router is wiring between three parts:
- :mod:`breakoutd.ibkr.sender`: order ids, the once-only guard
  (``DuplicateOrderError``), brackets written ahead, the write onto the socket,
  and the durability of each send (its events on disk before the next order
  leaves; a new entry is refused when they could not be made durable);
- :mod:`breakoutd.ibkr.order_book`: what is known of each entry, and how a
  status, an execution or a reconciled entry changes it (pure);
- :mod:`breakoutd.ibkr.changes`: cancels, sales, modifies and the stop's moves.
It attaches to ib_async's events, turns them into the book's terms, and emits
what the book returns, in order: a ladder's stop modify goes out before the
fill that caused it is journalled.

What the broker says: events come from the gateway's own messages only. ib_async
marks an order Cancelled on error 10148 (it may have filled), 10349 (it is
live) and any error outside its warning list; the router ignores such verdicts
(recognised by the error code ib_async logs with them), puts ib_async's status
back to the last one the gateway sent (so the order can still be modified), and
asks the gateway (open orders, executions, completed orders) for the truth.
Duplicate orderStatus messages give one ``OrderStatusChanged``; fills come
from execDetails, once per exec id, as ``OrderFilled``; the commission follows
as ``CommissionReported``. Errors ride along as the ``detail`` of the next status.

A sliced entry (``slices``) is sent as its first slice's bracket, then one BUY
per later slice; each slice fill grows the exits, an exit fill cancels the
slices still working (:mod:`breakoutd.ibkr.slicing`).

Callbacks: ``on_fill`` hooks get ``(entry, OrderFilled)`` for every fill, the
entry's own (role ``entry``) and its exits' (``take_profit``, ``stop``).

After a restart the ladder is rebuilt from the broker's orders and executions
(``adopt``), not from the state file; the watcher's level is not at the broker,
so the daemon passes ``levels`` (by watcher id), else the entry price stands in.
Orders placed under another client id are followed but cannot be modified.
After a reconnect the daemon calls ``resync`` so nothing the gateway did while
the socket was down is missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from ib_async import IB, CommissionReport, Contract, ExecutionFilter, Fill, Order, Trade
from loguru import logger

from breakoutd.core.events import DONE_STATUSES, Event, OrderFilled, StopMoved
from breakoutd.core.ladder import LadderState
from breakoutd.core.plans import OrderPlan
from breakoutd.core.refs import ENTRY, FLATTEN
from breakoutd.core.slicing import slice_ref
from breakoutd.errors import OrderRejected
from breakoutd.ibkr.changes import OrderChanges
from breakoutd.ibkr.convert import price_to_micros
from breakoutd.ibkr.order_book import (
    Applied,
    EntryBook,
    Execution,
    OrderBook,
    RoutedEntry,
    TrackedOrder,
    refresh,
)
from breakoutd.ibkr.orders_map import BROKER_STATUSES, order_sent_event, whole_shares
from breakoutd.ibkr.reconcile import ReconciledEntry
from breakoutd.ibkr.sender import DuplicateOrderError, Durability, OrderIds, OrderSender
from breakoutd.ibkr.slicing import cancel_slices, on_sliced_fill, send_slice, size_exits
from breakoutd.ibkr.wire.orders import register_order, restore_status
from breakoutd.ibkr.wire.requests import client_id

__all__ = ["Durability", "DuplicateOrderError", "OrderIds", "OrderRouter", "RoutedEntry"]


class OrderRouter:
    """Sends entries with their exits, follows them at the broker, manages ladder stops."""

    def __init__(self, ib: IB, *, account: str, emit: Callable[[Event], None],
                 clock: Callable[[], int], ids: OrderIds | None = None,
                 durability: Durability | None = None,
                 ack_timeout: float = 5.0) -> None:
        """``ids`` keeps the order-id high-water mark; ``durability`` (by default
        ``ids`` saved on the spot) makes each send's events and state durable."""
        self.ib, self.emit, self.clock = ib, emit, clock  # also for breakoutd.ibkr.slicing
        self._ack_timeout = ack_timeout
        self.book = OrderBook()
        self.sender = OrderSender(ib, account, ids, durability)
        self.changes = OrderChanges(ib, self.book, self.sender, emit=emit, clock=clock,
                                    resync=self.resync, ack_timeout=ack_timeout)
        self._resync: asyncio.Task[None] | None = None
        self._resync_lock = asyncio.Lock()
        self.on_fill: list[Callable[[RoutedEntry, OrderFilled], None]] = []
        self._handlers: list[tuple[Any, Callable[..., None]]] = [
            (ib.openOrderEvent, self._on_open_order), (ib.orderStatusEvent, self._on_status),
            (ib.execDetailsEvent, self._on_exec), (ib.commissionReportEvent, self._on_commission),
            (ib.errorEvent, self._on_error)]
        for event, handler in self._handlers:
            event += handler

    def close(self) -> None:
        """Stop following the broker (detach from ib_async, stop a pending resync)."""
        for event, handler in self._handlers:
            event -= handler
        if self._resync is not None:
            self._resync.cancel()

    # --- queries ---------------------------------------------------------------------

    def use_ids(self, ids: OrderIds) -> None:
        """Keep the order-id high-water mark in a new day's state from now on."""
        self.sender.use_ids(ids)

    def entry(self, order_ref: str) -> RoutedEntry | None:
        """The entry with this ref, if the router knows it."""
        book = self.book.get(order_ref)
        return book.entry if book else None

    def entries(self) -> list[RoutedEntry]:
        """Every entry the router follows, in the order they became known."""
        return [b.entry for b in self.book.books.values()]

    def stop_of(self, order_ref: str) -> int | None:
        """Where the entry's stop is (the price the router last decided), if it has one."""
        book = self.book.get(order_ref)
        return book.stop_price() if book is not None else None

    def sale_sent(self, order_ref: str) -> bool:
        """True once a sale of the position was sent (a flatten or a time exit), also one
        found at the broker after a restart: it is never sent twice."""
        book = self.book.get(order_ref)
        return book is not None and (FLATTEN, 0) in book.orders

    # --- send ------------------------------------------------------------------------

    async def send(self, plan: OrderPlan, contract: Contract, level: int) -> RoutedEntry:
        """Send an entry and its exits once; DuplicateOrderError if the ref was ever sent."""
        return self.send_now(plan, contract, level)

    def send_now(self, plan: OrderPlan, contract: Contract, level: int,
                 announce: Callable[[], None] | None = None, *,
                 sliced: bool = False) -> RoutedEntry:
        """:meth:`send` without a trip through the event loop (the decision's hot path).

        The parent goes onto the socket first, then its exits, then ib_async's and
        the router's bookkeeping. ``announce`` runs right after the orders are on
        the socket and before their ``OrderSent`` events: the caller's decision
        events go to the journal there. The journal sync and the state save run
        in the next turn of the event loop, or before any other order is sent,
        whichever comes first; a send whose predecessor could not be made
        durable is refused. ``sliced``: ``plan`` is the first slice of a sliced entry
        (its parent's ref ``...:s1``; :mod:`breakoutd.ibkr.slicing` sends the others)."""
        sender = self.sender
        try:
            sender.make_durable()
        except OSError as exc:
            raise OrderRejected(f"{plan.order_ref}: the journal and state of the last "
                                f"order are not on disk ({exc}); nothing sent") from exc
        ref = plan.order_ref
        sender.refuse_duplicate(ref)
        if not self.ib.isConnected():
            raise OrderRejected(f"{ref}: not connected to the gateway, nothing sent")
        ids = sender.next_ids(1 + len(plan.rungs) + (plan.stop is not None))
        sender.sent_refs.add(ref)
        try:
            planned = sender.write_bracket(plan, contract, ids,
                                           slice_ref(ref, 1) if sliced else None)
        except (ConnectionError, OSError) as exc:
            raise OrderRejected(f"{ref}: sending failed ({exc}); it will not be sent again") from exc
        for p in planned:
            register_order(self.ib, contract, p.order)
        book = self.book.register(plan, level, [(p.role, p.rung, p.order.orderId) for p in planned],
                                  client_id(self.ib))
        if announce is not None:
            announce()
        now = self.clock()
        for p in planned:
            self.emit(order_sent_event(now, ref, plan.symbol, p))
        sender.note_id(ids[-1])  # a restart never reuses these ids
        sender.durable_soon()
        return book.entry

    def prepare(self, contract: Contract, plan: OrderPlan) -> None:
        """Write ``plan``'s bracket ahead when its watcher is armed (:meth:`OrderSender.prepare`)."""
        self.sender.prepare(contract, plan)

    def unprepare(self, order_ref: str) -> None:
        """Forget what :meth:`prepare` wrote ahead for ``order_ref`` (its watcher is done)."""
        self.sender.unprepare(order_ref)

    def make_durable(self) -> None:
        """Have what the last send journalled and recorded on disk; OSError if it is not."""
        self.sender.make_durable()

    # --- cancel and modify (breakoutd.ibkr.changes) ----------------------------------------

    async def cancel_entry(self, order_ref: str) -> None:
        """Cancel an entry that has not filled (its exits go with it); wait for the broker."""
        await self.changes.cancel_entry(order_ref)

    async def flatten(self, order_ref: str, contract: Contract, *, limit: int | None) -> int:
        """Sell what an entry holds (:meth:`OrderChanges.flatten`); the shares offered."""
        return await self.changes.flatten(order_ref, contract, limit=limit)

    async def modify_exits(self, order_ref: str, tp: tuple[int, ...] | None,
                           sl: int | None) -> None:
        """Move the take-profit prices (one per rung) and/or the stop of an entry."""
        await self.changes.modify_exits(order_ref, tp, sl)

    def raise_stop(self, order_ref: str, stop: int, rule: str) -> StopMoved | None:
        """Raise the broker-held stop for a position-management rule (:meth:`OrderChanges.raise_stop`)."""
        return self.changes.raise_stop(order_ref, stop, rule)

    # --- slices (breakoutd.ibkr.slicing) ----------------------------------------------

    def send_slice(self, order_ref: str, number: int, qty: int, limit: int | None,
                   contract: Contract) -> int:
        """Send slice ``number`` (>= 2) of a sliced entry once; its order id."""
        return send_slice(self, order_ref, number, qty, limit, contract)

    def slices_sent(self, order_ref: str) -> set[int]:
        """The slices of a sliced entry sent (also those found at the broker after a restart)."""
        book = self.book.get(order_ref)
        if book is None or not book.sliced:
            return set()
        return {rung for role, rung in book.orders if role == ENTRY}

    def size_exits(self, order_ref: str) -> int:
        """Grow a sliced entry's exits to what is held (after a restart); orders modified."""
        book = self.book.get(order_ref)
        return size_exits(self, book) if book is not None and book.sliced else 0

    def cancel_slices(self, order_ref: str, why: str) -> int:
        """Cancel the working later slices of an entry (the kill switch, a shutdown)."""
        book = self.book.get(order_ref)
        return cancel_slices(self, book, why) if book is not None else 0

    # --- what the broker says ------------------------------------------------------------

    def _order_of(self, order: Order) -> TrackedOrder | None:
        return self.book.order(order.clientId, order.orderId)

    def _on_open_order(self, trade: Trade) -> None:
        o = self._order_of(trade.order)
        if o is not None:
            self._note_perm_id(o, trade.order.permId)

    def _on_status(self, trade: Trade) -> None:
        o = self._order_of(trade.order)
        if o is None:
            return
        st = trade.orderStatus
        self._note_perm_id(o, st.permId or trade.order.permId)
        if trade.log and trade.log[-1].errorCode:
            # ib_async's reading of an error, not a status from the gateway.
            restore_status(trade, o.status or "PendingSubmit")
            return
        if st.status in BROKER_STATUSES:
            self._apply_status(o, st.status, int(st.filled), int(st.remaining))

    def _note_perm_id(self, o: TrackedOrder, perm_id: int) -> None:
        event = self.book.note_perm_id(o, perm_id, self.clock())
        if event is not None:
            self.emit(event)

    def _apply_status(self, o: TrackedOrder, status: str, filled: int, remaining: int) -> None:
        event = self.book.apply_status(o, status, filled, remaining, self.clock())
        if event is not None:
            self.emit(event)
            self.book.settle(o)

    def _on_exec(self, trade: Trade | None, fill: Fill) -> None:
        ex, report = fill.execution, fill.commissionReport
        applied = self.book.apply_exec(Execution(
            exec_id=ex.execId, order_ref=ex.orderRef or "", side=ex.side, qty=int(ex.shares),
            price=price_to_micros(ex.price) or 0,
            commission=report.commission if report.execId else None), self.clock())
        if applied is not None:
            self._filled(applied)

    def _filled(self, applied: Applied) -> None:
        o, event = applied.order, applied.event
        moved = None
        if applied.ladder_move is not None:  # the stop's modify goes out before the journal
            moved = self.changes.move_stop(o.book, *applied.ladder_move)
        self.emit(event)
        if moved is not None:
            self.emit(moved)
        refresh(o.book)
        if o.book.sliced:
            on_sliced_fill(self, o)
        for hook in self.on_fill:
            hook(o.book.entry, event)

    def _on_commission(self, trade: Trade, fill: Fill, report: CommissionReport) -> None:
        self._on_exec(trade, fill)  # a fill first seen in a reqExecutions answer
        event = self.book.apply_commission(fill.execution.execId, fill.execution.orderRef or "",
                                           report.commission, report.realizedPNL, self.clock())
        if event is not None:
            self.emit(event)

    def _on_error(self, req_id: int, code: int, message: str, _contract: Any) -> None:
        o = self.book.order(client_id(self.ib), req_id)
        if o is None:
            return
        o.detail = f"{code} {message}"
        if o.status not in DONE_STATUSES:
            self._resync_soon()

    # --- the broker's truth ----------------------------------------------------------------

    def _resync_soon(self) -> None:
        if self._resync is None or self._resync.done():
            self._resync = asyncio.get_running_loop().create_task(self.resync())

    async def resync(self) -> None:
        """Ask the gateway for open orders, executions and completed orders, and apply them.

        Called after an error ib_async misreads and after a reconnect (fills made
        while the daemon was away arrive here, once each).
        """
        async with self._resync_lock:
            ib, timeout = self.ib, self._ack_timeout
            try:
                await asyncio.wait_for(ib.reqOpenOrdersAsync(), timeout)
                fills = await asyncio.wait_for(
                    ib.reqExecutionsAsync(ExecutionFilter(clientId=client_id(ib))), timeout)
                completed = await asyncio.wait_for(ib.reqCompletedOrdersAsync(True), timeout)
            except (TimeoutError, ConnectionError) as exc:
                logger.warning("order resync failed: {}", exc or "timeout")
                return
            for fill in fills:
                self._on_exec(None, fill)
            for trade in completed:
                o = self.book.by_ref(trade.order.orderRef or "")
                if o is None or trade.orderStatus.status not in DONE_STATUSES:
                    continue
                total = int(trade.order.totalQuantity)
                filled = min(whole_shares(trade.order.filledQuantity), total)
                self._apply_status(o, trade.orderStatus.status, filled, total - filled)
            self.changes.resend_stops()

    # --- adoption after a restart ------------------------------------------------------------

    def adopt(self, found: Mapping[str, ReconciledEntry],
              levels: Mapping[str, int] | None = None) -> None:
        """Take over reconciled entries: never send them again, follow and manage their exits."""
        for ref, rec in found.items():
            self.sender.sent_refs.add(ref)
            if ref not in self.book.books:
                move = self.book.adopt(rec, (levels or {}).get(rec.watcher_id))
                if move is not None:
                    self._adopted_stop(self.book.books[ref], *move)

    def _adopted_stop(self, book: EntryBook, old: LadderState, new: LadderState) -> None:
        """Move a stop a rung's fill should have moved before the last process ended."""
        moved = self.changes.move_stop(book, old, new)
        if moved is not None:
            self.emit(moved)
