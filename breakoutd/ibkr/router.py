"""The order router: entries with broker-held exits, sent once, followed to the end.

What it sends (strategy.md, Exits; refs and sizes in :mod:`breakoutd.ibkr.orders_map`):
the parent BUY (LMT at the plan's limit, or MKT) with ``transmit=False``, then
one SELL LMT per take-profit rung and one SELL STP LMT (stop ``sl``, limit
``sl - 0.02``), the last one transmitting the group. Every order carries the
account, the plan's tif and ``outsideRth``. The exits share one OCA group of
type 2 ("reduce with block") and rung *n* is sized cumulatively, so rungs never
cancel each other, each fill shrinks the stop at the broker, and no sell can
exceed the position, also while the daemon is down. After a ladder rung fills
the router moves the stop (``core.ladder``: to the level after rung 1, to rung
1's price after rung 2) by modifying it, and emits ``StopMoved``; the modify
never raises the stop's size above what the broker last reported. The stop's
price the router decided is kept: a move that could not be sent (no connection)
or was lost with one (written, but the socket closed before the gateway read
it) is sent again, and logged, after the next resync when the broker's stop
still differs (once per ib_async session, so a refused modify does not loop).

Once only: ``send`` refuses (``DuplicateOrderError``, nothing sent) a ref it
sent, one ``adopt`` ed from reconciliation, or one ib_async knows from the
broker's orders and executions. Order ids follow ib_async's counter, bumped
(:func:`~breakoutd.ibkr.wire.requests.next_order_ids`) to stay above the
high-water mark kept by ``ids`` (the daemon's trading day). Nothing slow stands between a decision
and the socket: a send writes the parent, then its exits (``wire.orders``), then
does ib_async's and its own bookkeeping and emits one ``OrderSent`` per order.
In the next turn of the event loop the router begins making it durable (the
daemon's :class:`Durability`: the journal's sync and the save of the
high-water mark, on the daemon's disk thread), and before it writes another
order (send, modify or cancel call ``make_durable`` first) it waits until that
is done, so the events of one order are on disk before the next order leaves.
A new entry is refused when they could not be made durable; a cancel or a
modify, which reduce risk, go out anyway (the failure is logged).

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
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from ib_async import IB, CommissionReport, Contract, ExecutionFilter, Fill, Order, Trade
from loguru import logger

from breakoutd.core.events import (
    DONE_STATUSES,
    CommissionReported,
    Event,
    OrderFilled,
    OrderIdAssigned,
    OrderModified,
    OrderRole,
    OrderStatusChanged,
    StopMoved,
)
from breakoutd.core.ladder import LadderState
from breakoutd.core.plans import STOP_LIMIT_OFFSET, OrderPlan
from breakoutd.core.prices import round_to_tick, to_decimal, to_float
from breakoutd.core.slicing import slice_ref
from breakoutd.core.stop_rules import modify_due
from breakoutd.errors import OrderRejected
from breakoutd.ibkr.convert import price_to_micros
from breakoutd.ibkr.orders_map import (
    BROKER_STATUSES,
    ENTRY,
    FLATTEN,
    STOP,
    TAKE_PROFIT,
    PlannedOrder,
    breakeven_level,
    child_ref,
    credit_rungs,
    entry_status,
    entry_values,
    exit_thresholds,
    exit_values,
    ladder_for,
    order_sent_event,
    parse_ref,
    rebuild_ladder,
    whole_shares,
)
from breakoutd.ibkr.orderwire import OrderTemplates
from breakoutd.ibkr.readybracket import ReadyBracket, ready_bracket
from breakoutd.ibkr.reconcile import ReconciledEntry, ReconciledOrder
from breakoutd.ibkr.slicing import cancel_slices, is_sliced, on_sliced_fill, send_slice, size_exits
from breakoutd.ibkr.wire.orders import (
    known_fills,
    known_trades,
    order_client,
    register_order,
    restore_status,
    trade_of,
    write_message,
    write_order,
)
from breakoutd.ibkr.wire.requests import client_id, next_order_ids, server_version


class OrderIds(Protocol):
    """Where the day's order-id high-water mark is kept (the daemon's trading day)."""

    @property
    def order_id_high_water(self) -> int:
        """The highest order id used today."""

    def note_order_id(self, order_id: int) -> None:
        """Raise the high-water mark (durable with the next save)."""

    def save(self) -> None:
        """Make it durable now."""


class Durability(Protocol):
    """How the router's journal lines and state reach the disk."""

    def begin(self) -> None:
        """Start forcing what was journalled and recorded so far to disk."""

    def wait(self) -> None:
        """Block until everything begun is on disk; raise OSError when it is not."""


class _SaveNow:
    """Without the daemon's disk thread: the state is saved when begun."""

    def __init__(self, router: OrderRouter) -> None:
        self._router = router

    def begin(self) -> None:
        ids = self._router._ids
        if ids is not None:
            ids.save()

    def wait(self) -> None:
        return None


class DuplicateOrderError(OrderRejected):
    """An entry with this orderRef was already sent (here, before a restart, or by another client)."""


@dataclass(slots=True)
class RoutedEntry:
    """One entry and its exits as the router follows them; prices in micro-dollars."""

    order_ref: str
    watcher_id: str
    symbol: str
    parent_id: int
    take_profit_ids: tuple[int, ...]
    stop_id: int | None
    level: int | None = None
    status: str = "working"  # working, partially_filled, filled, cancelled, rejected, closed
    filled: int = 0  # shares bought by the entry
    avg_price: int | None = None
    sold: int = 0  # shares sold by the exits
    ladder: LadderState | None = None
    cost: int = field(default=0, repr=False)

    @property
    def unfilled(self) -> bool:
        """Still working at the broker with nothing bought: cancelling it risks nothing."""
        return self.filled == 0 and self.status == "working"


@dataclass(slots=True, eq=False)
class _Order:
    book: _Book
    role: OrderRole
    rung: int
    order_id: int
    client_id: int
    outside_rth: bool
    tif: str
    status: str = ""  # the last status the gateway sent
    filled: int = 0
    perm_id: int = 0
    last: tuple[str, int, int] | None = None  # (status, filled, remaining) last emitted
    detail: str = ""  # an error waiting to ride on the next status
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True, eq=False)
class _Book:
    entry: RoutedEntry
    prices: tuple[int, ...] = ()  # take-profit rung prices
    thresholds: tuple[int, ...] = ()  # cumulative rung sizes as sent
    stop: int | None = None
    orders: dict[tuple[str, int], _Order] = field(default_factory=dict)
    # The stop's (price, limit) as the router last decided it: what the broker must
    # show. A move lost with the connection is sent again after a resync.
    stop_wanted: tuple[int, int] | None = None
    stop_resent: int = -1  # the ib_async session of the last re-send (once per session)
    stop_modified_at: int | None = None  # the last raise_stop modify (once a second at most)

    def parent(self) -> _Order | None:
        """The entry order: the bare ref's, or a sliced entry's first slice."""
        return self.orders.get((ENTRY, 0)) or self.orders.get((ENTRY, 1))

    def entry_orders(self) -> list[_Order]:
        """The entry's BUY orders: the one, or each slice sent."""
        return [o for (role, _), o in self.orders.items() if role == ENTRY]


class OrderRouter:
    """Sends entries with their exits, follows them at the broker, manages ladder stops."""

    def __init__(self, ib: IB, *, account: str, emit: Callable[[Event], None],
                 clock: Callable[[], int], ids: OrderIds | None = None,
                 durability: Durability | None = None,
                 ack_timeout: float = 5.0) -> None:
        """``ids`` keeps the order-id high-water mark; ``durability`` (by default
        ``ids`` saved on the spot) makes each send's events and state durable."""
        self._ib = ib
        self._account = account
        self._emit = emit
        self._clock = clock
        self._ids = ids
        self._durability: Durability = durability or _SaveNow(self)
        self._ack_timeout = ack_timeout
        self._books: dict[str, _Book] = {}
        self._orders: dict[tuple[int, int], _Order] = {}  # (client id, order id)
        self._sent_refs: set[str] = set()
        self._known_refs: set[str] = set()  # see _broker_refs
        self._scanned: dict[str, tuple[Any, int]] = {}
        self._durable_pending = False
        self._templates = OrderTemplates(order_client(ib))
        self._ready: dict[str, ReadyBracket] = {}  # order ref -> its bracket written ahead
        self._to_learn: list[tuple[Contract, dict[str, Any]]] = []
        self._execs: set[str] = set()
        self._commissions: set[str] = set()
        self._resync: asyncio.Task[None] | None = None
        self._resync_lock = asyncio.Lock()
        # ib_async's sessions, told apart by its dict of trades (new after every reconnect).
        self._session_trades: dict[Any, Any] | None = None
        self._session_count = 0
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
        ids.note_order_id(self._ids.order_id_high_water if self._ids else 0)
        self._ids = ids

    def entry(self, order_ref: str) -> RoutedEntry | None:
        """The entry with this ref, if the router knows it."""
        book = self._books.get(order_ref)
        return book.entry if book else None

    def entries(self) -> list[RoutedEntry]:
        """Every entry the router follows, in the order they became known."""
        return [b.entry for b in self._books.values()]

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
        try:
            self.make_durable()
        except OSError as exc:
            raise OrderRejected(f"{plan.order_ref}: the journal and state of the last "
                                f"order are not on disk ({exc}); nothing sent") from exc
        ref = plan.order_ref
        self._refuse_duplicate(ref)
        if not self._ib.isConnected():
            raise OrderRejected(f"{ref}: not connected to the gateway, nothing sent")
        ids = self._next_ids(1 + len(plan.rungs) + (plan.stop is not None))
        self._sent_refs.add(ref)
        ready = self._ready.pop(ref, None)
        parent_ref = slice_ref(ref, 1) if sliced else None
        try:
            if ready is not None and not sliced and ready.fits(plan, contract, self._account,
                                                server_version(self._ib)):
                orders = self._write_ready(ready, plan, ids)
                entry = entry_values(plan, self._account, ids[0])
                exits = exit_values(plan, self._account, ids, ids[0])
            else:
                entry = entry_values(plan, self._account, ids[0], parent_ref)
                orders = [self._write(contract, entry)]
                exits = exit_values(plan, self._account, ids, ids[0])
                orders += [self._write(contract, values) for _, _, values in exits]
        except (ConnectionError, OSError) as exc:
            raise OrderRejected(f"{ref}: sending failed ({exc}); it will not be sent again") from exc
        shapes = [(ENTRY, 1 if sliced else 0, entry), *exits]
        planned = [PlannedOrder(role, rung, order or Order(**values))
                   for (role, rung, values), order in zip(shapes, orders, strict=True)]
        for p in planned:
            register_order(self._ib, contract, p.order)
        self._register(plan, level, planned)
        if announce is not None:
            announce()
        now = self._clock()
        for p in planned:
            self._emit(order_sent_event(now, ref, plan.symbol, p))
        if self._ids is not None:
            self._ids.note_order_id(ids[-1])  # a restart never reuses these ids
        self._durable_soon()
        return self._books[ref].entry

    def _write_ready(self, ready: ReadyBracket, plan: OrderPlan,
                     ids: list[int]) -> list[Order | None]:
        """Write a bracket written ahead (its ids and limit put in): the parent first."""
        write_message(self._ib, ready.parent(plan, ids[0]))
        for message in ready.exits(ids):
            write_message(self._ib, message)
        return [None] * ready.size

    def _write(self, contract: Contract, values: dict[str, Any]) -> Order | None:
        """Write one new order: from a learnt template, else through ib_async (returned)."""
        message = self._templates.message(contract, values)
        if message is not None:
            write_message(self._ib, message)
            return None
        order = Order(**values)
        write_order(self._ib, contract, order)
        self._to_learn.append((contract, values))
        return order

    def prepare(self, contract: Contract, plan: OrderPlan) -> None:
        """Learn the message shapes of a plan like ``plan`` before it is needed, and write
        ``plan``'s bracket ahead (:mod:`breakoutd.ibkr.readybracket`).

        Call it when a watcher is armed: its entry then leaves without ib_async's
        serialiser, and a plan with the same constants (its limit aside) only
        fills in ids and price. Harmless when not connected (the shapes are
        learnt after the first send instead)."""
        if not self._ib.isConnected():
            return
        ids = list(range(1, 3 + len(plan.rungs)))  # the parent, the rungs and a stop
        self._templates.learn(contract, entry_values(plan, self._account, ids[0]))
        for _, _, values in exit_values(plan, self._account, ids, ids[0]):
            self._templates.learn(contract, values)
        if plan.order_ref not in self._sent_refs:
            ready = ready_bracket(self._templates, contract, plan, self._account,
                                  server_version(self._ib))
            if ready is not None:  # a trigger with these constants only fills in its price
                self._ready[plan.order_ref] = ready

    def unprepare(self, order_ref: str) -> None:
        """Forget what :meth:`prepare` wrote ahead for ``order_ref`` (its watcher is done)."""
        self._ready.pop(order_ref, None)

    def _durable_soon(self) -> None:
        if not self._durable_pending:
            self._durable_pending = True
            asyncio.get_running_loop().call_soon(self._begin_durable)

    def make_durable(self) -> None:
        """Have what the last send journalled and recorded on disk; OSError if it is not."""
        self._begin_durable()
        self._durability.wait()

    def _durable_or_logged(self) -> None:
        """:meth:`make_durable` before a cancel or modify, which go out in any case."""
        try:
            self.make_durable()
        except OSError as exc:
            logger.error("the journal and state are not on disk ({}); the order goes out "
                         "anyway", exc)

    def _begin_durable(self) -> None:
        """Begin the journal sync and the state save of a send, if one awaits them."""
        if not self._durable_pending:
            return
        self._durable_pending = False
        self._durability.begin()
        to_learn, self._to_learn = self._to_learn, []
        for contract, values in to_learn:  # the next order of these shapes leaves faster
            if self._ib.isConnected():
                self._templates.learn(contract, values)
        self._broker_refs()  # read the new orders now, not on the next send

    def _refuse_duplicate(self, ref: str) -> None:
        if ref in self._sent_refs:
            raise DuplicateOrderError(f"{ref}: already sent today; not sending it again")
        if ref in self._broker_refs():
            raise DuplicateOrderError(f"{ref}: the broker already has orders with this ref")

    def _broker_refs(self) -> set[str]:
        """The refs (and each ``:``-prefix of them) of every order and fill ib_async knows.

        ib_async's dicts only grow within a connection and are new after one, so
        only what was added since the last look is read."""
        sources: tuple[tuple[str, dict[Any, Any], Callable[[Any], str]], ...] = (
            ("trades", known_trades(self._ib), _trade_ref),
            ("fills", known_fills(self._ib), _fill_ref))
        for name, known, ref_of in sources:
            seen_dict, seen = self._scanned.get(name, (None, 0))
            if known is seen_dict and len(known) == seen:
                continue  # nothing new (the common case, on the hot path)
            if known is not seen_dict or len(known) < seen:
                seen = 0
            for item in itertools.islice(known.values(), seen, None):
                parts = ref_of(item).split(":")
                self._known_refs.update(":".join(parts[:k]) for k in range(1, len(parts) + 1))
            self._scanned[name] = (known, len(known))
        return self._known_refs

    def _next_ids(self, count: int) -> list[int]:
        return next_order_ids(self._ib, count,
                              self._ids.order_id_high_water if self._ids is not None else 0)

    def _register(self, plan: OrderPlan, level: int, planned: list[Any]) -> None:
        by_role = {(p.role, p.rung): p.order.orderId for p in planned}
        entry = RoutedEntry(
            order_ref=plan.order_ref, watcher_id=plan.watcher_id, symbol=plan.symbol,
            parent_id=planned[0].order.orderId, stop_id=by_role.get((STOP, 0)), level=level,
            take_profit_ids=tuple(by_role[(TAKE_PROFIT, n)] for n in range(1, len(plan.rungs) + 1)))
        book = _Book(entry, prices=tuple(r.price for r in plan.rungs),
                     thresholds=exit_thresholds(plan), stop=plan.stop)
        self._books[plan.order_ref] = book
        client = client_id(self._ib)
        for p in planned:
            self._track(book, p.role, p.rung, p.order.orderId, client, plan.outside_rth, plan.tif)

    def _track(self, book: _Book, role: OrderRole, rung: int, order_id: int, client_id: int,
               outside_rth: bool, tif: str) -> _Order:
        o = _Order(book, role, rung, order_id, client_id, outside_rth, tif)
        book.orders[(role, rung)] = o
        self._orders[(client_id, order_id)] = o
        return o

    # --- cancel and modify ---------------------------------------------------------------

    async def cancel_entry(self, order_ref: str) -> None:
        """Cancel an entry that has not filled (its exits go with it); wait for the broker."""
        book = self._book(order_ref)
        parent = book.parent()
        if parent is None or parent.status in DONE_STATUSES:
            return
        trade = self._trade(parent)
        if trade is None:
            raise OrderRejected(f"{order_ref}: the entry order is not known to this connection")
        self._durable_or_logged()
        self._ib.cancelOrder(trade.order)
        try:
            await asyncio.wait_for(parent.done.wait(), self._ack_timeout)
        except TimeoutError:
            await self.resync()

    async def flatten(self, order_ref: str, contract: Contract, *,
                      limit: int | None) -> int:
        """Sell what an entry holds: cancel its entry and exits, then one SELL for the rest.

        The exits are cancelled first and their cancels awaited, so the sale
        can never sell shares an exit sold meanwhile. ``limit`` None sends MKT
        (regular hours), else a SELL LMT at ``limit`` with outsideRth. Returns
        the shares offered (0: nothing was held)."""
        book = self._book(order_ref)
        sale = book.orders.get((FLATTEN, 0))
        if sale is not None and sale.status not in DONE_STATUSES:
            # Its shares are not sold yet (entry.sold counts fills): selling them again
            # would go short once both fill.
            raise OrderRejected(f"{order_ref}: a sale is already working; nothing more sent")
        live = [o for o in book.orders.values() if o.role != FLATTEN and o.status not in DONE_STATUSES]
        for o in live:
            trade = self._trade(o)
            if trade is not None and o.client_id == client_id(self._ib):
                self._durable_or_logged()
                self._ib.cancelOrder(trade.order)
        for o in live:
            try:
                await asyncio.wait_for(o.done.wait(), self._ack_timeout)
            except TimeoutError:
                await self.resync()
        if any(o.status not in DONE_STATUSES for o in live):
            raise OrderRejected(f"{order_ref}: its orders could not all be cancelled; "
                                "nothing sold, to never sell what an exit may still sell")
        qty = _bought(book) - book.entry.sold
        if qty <= 0:
            return 0
        self._send_flatten(book, contract, qty, limit)
        return qty

    def _send_flatten(self, book: _Book, contract: Contract, qty: int, limit: int | None) -> None:
        entry = book.entry
        if not self._ib.isConnected():
            raise OrderRejected(f"{entry.order_ref}: not connected to the gateway, nothing sold")
        self._durable_or_logged()
        order_id = self._next_ids(1)[0]
        old = book.orders.get((FLATTEN, 0))
        if old is not None:  # a sale sent before and done: its fills are in entry.sold
            self._orders.pop((old.client_id, old.order_id), None)
        order = Order(orderId=order_id, action="SELL", totalQuantity=qty,
                      orderType="MKT" if limit is None else "LMT",
                      lmtPrice=to_float(limit) if limit is not None else 0.0,
                      tif="DAY", outsideRth=limit is not None, account=self._account,
                      orderRef=child_ref(entry.order_ref, FLATTEN), transmit=True)
        self._track(book, FLATTEN, 0, order_id, client_id(self._ib), limit is not None, "DAY")
        self._ib.placeOrder(contract, order)
        if self._ids is not None:
            self._ids.note_order_id(order_id)
        self._emit(order_sent_event(self._clock(), entry.order_ref, entry.symbol,
                                    PlannedOrder(FLATTEN, 0, order)))
        self._durable_soon()

    async def modify_exits(self, order_ref: str, tp: tuple[int, ...] | None,
                           sl: int | None) -> None:
        """Move the take-profit prices (one per rung) and/or the stop of an entry."""
        book = self._book(order_ref)
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

    def _modify_logged(self, o: _Order, lmt: int | None = None, aux: int | None = None) -> None:
        order = self._modify(o, lmt=lmt, aux=aux)
        if order is not None:
            self._emit(OrderModified(
                at=self._clock(), order_ref=o.book.entry.order_ref, role=o.role,
                rung=o.rung, order_id=o.order_id, qty=int(order.totalQuantity),
                limit=_dec(lmt), stop=_dec(aux), reason="operator"))

    def _modify(self, o: _Order, qty: int | None = None, lmt: int | None = None,
                aux: int | None = None) -> Order | None:
        trade = self._trade(o)
        if o.status in DONE_STATUSES:
            return None
        if trade is None:
            logger.warning("{}: order {} is not known to this connection (yet); it is modified "
                           "after the next resync", o.book.entry.order_ref, o.order_id)
            return None
        if o.client_id != client_id(self._ib):
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
        order.account = order.account or self._account
        self._durable_or_logged()
        try:
            self._ib.placeOrder(trade.contract, order)
        except ConnectionError as exc:  # the socket closed under us: not a reason to lose the fill
            logger.warning("{}: modifying order {} failed ({}); it is sent again after the next "
                           "resync", o.book.entry.order_ref, o.order_id, exc)
            return None
        return order

    def _book(self, order_ref: str) -> _Book:
        book = self._books.get(order_ref)
        if book is None:
            raise OrderRejected(f"{order_ref}: no such entry")
        return book

    def _trade(self, o: _Order) -> Trade | None:
        # Looked up each time: ib_async replaces its Trade objects on every reconnect.
        return trade_of(self._ib, o.client_id, o.order_id)

    # --- what the broker says ------------------------------------------------------------

    def _order_of(self, order: Order) -> _Order | None:
        return self._orders.get((order.clientId, order.orderId))

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

    def _note_perm_id(self, o: _Order, perm_id: int) -> None:
        if perm_id and not o.perm_id:
            o.perm_id = perm_id
            self._emit(OrderIdAssigned(at=self._clock(), order_ref=o.book.entry.order_ref,
                                       role=o.role, order_id=o.order_id,
                                       perm_id=perm_id))

    def _apply_status(self, o: _Order, status: str, filled: int, remaining: int) -> None:
        key = (status, filled, remaining)
        if key == o.last:
            return
        o.last, o.status = key, status
        detail, o.detail = o.detail, ""
        entry = o.book.entry
        self._emit(OrderStatusChanged(
            at=self._clock(), order_ref=entry.order_ref, role=o.role,
            rung=o.rung, order_id=o.order_id, status=status, filled=filled,
            remaining=remaining, detail=detail))
        if status in DONE_STATUSES:
            o.done.set()
            if o.role == ENTRY:
                self._ensure_ladder(o.book)
        self._refresh(o.book)

    def _on_exec(self, trade: Trade | None, fill: Fill) -> None:
        ex = fill.execution
        if ex.execId in self._execs:
            return
        parts = parse_ref(ex.orderRef or "")
        book = self._books.get(parts.base) if parts else None
        o = book.orders.get((parts.role, parts.rung)) if book and parts else None
        if o is None:
            return
        self._execs.add(ex.execId)
        qty, price = int(ex.shares), price_to_micros(ex.price) or 0
        o.filled += qty
        entry = o.book.entry
        report = fill.commissionReport
        event = OrderFilled(
            at=self._clock(), order_ref=entry.order_ref, role=o.role,
            rung=o.rung, order_id=o.order_id, exec_id=ex.execId, symbol=entry.symbol,
            side=ex.side, qty=qty, price=to_decimal(price), cum_qty=o.filled,
            commission=report.commission if report.execId else None)
        moved = None
        if o.role == ENTRY:
            entry.filled += qty
            entry.cost += qty * price
            entry.avg_price = (2 * entry.cost + entry.filled) // (2 * entry.filled)
        else:
            entry.sold += qty
            moved = self._on_exit_fill(o, qty)  # the stop's modify goes out before the journal
        self._emit(event)
        if moved is not None:
            self._emit(moved)
        if report.execId:
            self._commissions.add(ex.execId)
        self._refresh(o.book)
        if is_sliced(o.book):
            on_sliced_fill(self, o)
        for hook in self.on_fill:
            hook(entry, event)

    def _on_commission(self, trade: Trade, fill: Fill, report: CommissionReport) -> None:
        self._on_exec(trade, fill)  # a fill first seen in a reqExecutions answer
        exec_id = fill.execution.execId
        parts = parse_ref(fill.execution.orderRef or "")
        if exec_id not in self._execs or exec_id in self._commissions or parts is None:
            return
        self._commissions.add(exec_id)
        self._emit(CommissionReported(at=self._clock(), order_ref=parts.base, exec_id=exec_id,
                                      commission=report.commission,
                                      realized_pnl=report.realizedPNL))

    def _on_error(self, req_id: int, code: int, message: str, _contract: Any) -> None:
        o = self._orders.get((client_id(self._ib), req_id))
        if o is None:
            return
        o.detail = f"{code} {message}"
        if o.status not in DONE_STATUSES:
            self._resync_soon()

    def _refresh(self, book: _Book) -> None:
        # A slice still working keeps a sliced entry working.
        parent = next((o for o in book.entry_orders() if o.status not in DONE_STATUSES),
                      book.parent())
        entry = book.entry
        entry.status = entry_status(parent.status if parent else "", _bought(book), entry.sold)

    # --- slices (breakoutd.ibkr.slicing) ----------------------------------------------

    def send_slice(self, order_ref: str, number: int, qty: int, limit: int | None,
                   contract: Contract) -> int:
        """Send slice ``number`` (>= 2) of a sliced entry once; its order id."""
        return send_slice(self, order_ref, number, qty, limit, contract)

    def slices_sent(self, order_ref: str) -> set[int]:
        """The slices of a sliced entry sent (also those found at the broker after a restart)."""
        book = self._books.get(order_ref)
        if book is None or not is_sliced(book):
            return set()
        return {rung for role, rung in book.orders if role == ENTRY}

    def size_exits(self, order_ref: str) -> int:
        """Grow a sliced entry's exits to what is held (after a restart); orders modified."""
        book = self._books.get(order_ref)
        return size_exits(self, book) if book is not None and is_sliced(book) else 0

    def cancel_slices(self, order_ref: str, why: str) -> int:
        """Cancel the working later slices of an entry (the kill switch, a shutdown)."""
        book = self._books.get(order_ref)
        return cancel_slices(self, book, why) if book is not None else 0

    # --- ladders ---------------------------------------------------------------------

    def _ensure_ladder(self, book: _Book) -> LadderState | None:
        entry = book.entry
        bought = _bought(book)
        if entry.ladder is None and len(book.prices) > 1 and book.stop is not None \
                and bought > 0 and book.thresholds:
            level = entry.level if entry.level is not None else \
                breakeven_level(entry.avg_price, book.stop)
            entry.ladder = ladder_for(level, book.prices, book.thresholds, bought, book.stop)
        return entry.ladder

    def _on_exit_fill(self, o: _Order, qty: int) -> StopMoved | None:
        state = self._ensure_ladder(o.book)
        if state is None:
            return None
        if o.role == FLATTEN:  # the position is being sold off: no ladder to manage
            return None
        if o.role == STOP:  # the stop is selling: only its size is left to track
            o.book.entry.ladder = state._replace(stop_qty=max(state.stop_qty - qty, 0))
            return None
        new, _ = credit_rungs(state, qty)
        return self._move_stop(o.book, state, new)

    def _move_stop(self, book: _Book, old: LadderState, new: LadderState) -> StopMoved | None:
        """Modify the stop to the ladder's price and size; the event is the caller's to emit."""
        book.entry.ladder = new
        stop = book.orders.get((STOP, 0))
        if stop is None or (new.stop, new.stop_qty) == (old.stop, old.stop_qty):
            return None
        if new.stop_qty > 0:
            book.stop_wanted = (new.stop, new.stop_limit)
            trade = self._trade(stop)
            size = stop.filled + new.stop_qty
            current = int(trade.order.totalQuantity) if trade is not None else size
            if new.stop != old.stop or current > size:
                # Never above the size the broker last reported: its OCA may have cut it already.
                # Not sent now (no connection): _resend_stops sends it after the next resync.
                self._modify(stop, qty=min(size, current), lmt=new.stop_limit, aux=new.stop)
        return StopMoved(at=self._clock(), order_ref=book.entry.order_ref, order_id=stop.order_id,
                         stop=to_decimal(new.stop), stop_limit=to_decimal(new.stop_limit),
                         qty=new.stop_qty)

    def stop_of(self, order_ref: str) -> int | None:
        """Where the entry's stop is (the price the router last decided), if it has one."""
        book = self._books.get(order_ref)
        if book is None:
            return None
        if book.stop_wanted is not None:
            return book.stop_wanted[0]
        ladder = book.entry.ladder
        return ladder.stop if ladder is not None else book.stop

    def sale_sent(self, order_ref: str) -> bool:
        """True once a sale of the position was sent (a flatten or a time exit), also one
        found at the broker after a restart: it is never sent twice."""
        book = self._books.get(order_ref)
        return book is not None and (FLATTEN, 0) in book.orders

    def raise_stop(self, order_ref: str, stop: int, rule: str) -> StopMoved | None:
        """Modify the broker-held stop up to ``stop`` for a position-management ``rule``.

        Only upward by whole ticks and at most once a second per order
        (:func:`breakoutd.core.stop_rules.modify_due`); None when nothing was
        sent (the caller asks again on the next print). A move lost with the
        connection is sent again after the next resync, as a ladder's."""
        book = self._books.get(order_ref)
        o = book.orders.get((STOP, 0)) if book is not None else None
        held = self.stop_of(order_ref)
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
        self._modify(o, lmt=limit, aux=stop)
        qty = ladder.stop_qty if ladder is not None else _bought(book) - book.entry.sold
        moved = StopMoved(at=now, order_ref=order_ref, order_id=o.order_id,
                          stop=to_decimal(stop), stop_limit=to_decimal(limit), qty=qty,
                          rule=rule)
        self._emit(moved)
        return moved

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
            ib, timeout = self._ib, self._ack_timeout
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
            self._apply_completed(completed)
            self._resend_stops()

    def _session(self) -> int:
        """A number for ib_async's current session (its trades dict is new after a reconnect)."""
        trades = known_trades(self._ib)
        if trades is not self._session_trades:
            self._session_trades, self._session_count = trades, self._session_count + 1
        return self._session_count

    def _resend_stops(self) -> None:
        """Send again each stop move the broker does not show (lost with a connection).

        Right after a resync the broker's terms are in ib_async's trades (openOrder
        writes them there). Once per session and move at most, so a modify the
        gateway refuses is not sent in a loop of errors and resyncs."""
        session = self._session()
        for book in self._books.values():
            if book.stop_wanted is None or book.stop_resent == session:
                continue
            qty = self._stop_to_resend(book)
            if qty is not None:
                book.stop_resent = session
                stop, limit = book.stop_wanted
                logger.warning("{}: the broker's stop is not at {} for {} shares; sending the "
                               "move again", book.entry.order_ref, to_decimal(stop), qty)
                self._modify(book.orders[(STOP, 0)], qty=qty, lmt=limit, aux=stop)

    def _stop_to_resend(self, book: _Book) -> int | None:
        """The size to send the wanted stop with, or None when the broker has it (or it is done)."""
        stop = book.orders.get((STOP, 0))
        ladder = book.entry.ladder
        if stop is None or stop.status in DONE_STATUSES or book.stop_wanted is None \
                or (ladder is not None and ladder.stop_qty == 0):
            return None
        trade = self._trade(stop)
        if trade is None:
            logger.warning("{}: the stop {} is not among the broker's open orders; its move "
                           "cannot be checked", book.entry.order_ref, stop.order_id)
            return None
        current = int(trade.order.totalQuantity)
        size = stop.filled + ladder.stop_qty if ladder is not None else current
        if price_to_micros(trade.order.auxPrice) == book.stop_wanted[0] and current <= size:
            return None
        return min(size, current)

    def _apply_completed(self, trades: Iterable[Trade]) -> None:
        for trade in trades:
            parts = parse_ref(trade.order.orderRef or "")
            book = self._books.get(parts.base) if parts else None
            o = book.orders.get((parts.role, parts.rung)) if book and parts else None
            if o is None or trade.orderStatus.status not in DONE_STATUSES:
                continue
            total = int(trade.order.totalQuantity)
            filled = min(whole_shares(trade.order.filledQuantity), total)
            self._apply_status(o, trade.orderStatus.status, filled, total - filled)

    # --- adoption after a restart ------------------------------------------------------------

    def adopt(self, found: Mapping[str, ReconciledEntry],
              levels: Mapping[str, int] | None = None) -> None:
        """Take over reconciled entries: never send them again, follow and manage their exits."""
        for ref, rec in found.items():
            self._sent_refs.add(ref)
            if ref not in self._books:
                level = (levels or {}).get(rec.watcher_id)
                self._adopt(rec, level)

    def _adopt(self, rec: ReconciledEntry, level: int | None) -> None:
        parent = rec.order(ENTRY) or rec.order(ENTRY, 1)
        tps = sorted((o for o in rec.orders if o.role == TAKE_PROFIT), key=lambda o: o.rung)
        stop = rec.order(STOP)
        entry = RoutedEntry(
            order_ref=rec.order_ref, watcher_id=rec.watcher_id, symbol=rec.symbol,
            parent_id=parent.order_id if parent else 0,
            take_profit_ids=tuple(o.order_id for o in tps),
            stop_id=stop.order_id if stop else None, level=level, status=rec.status,
            filled=rec.bought, avg_price=rec.avg_price, sold=rec.sold,
            cost=sum(f.qty * f.price for f in rec.fills if f.role == ENTRY))
        book = _Book(entry, prices=tuple(o.limit or 0 for o in tps),
                     stop=stop.stop if stop else None,
                     # Untouched by OCA reductions until something is sold: the sizes as sent.
                     thresholds=tuple(o.qty for o in tps) if rec.sold == 0 else ())
        self._books[rec.order_ref] = book
        for r in rec.orders:
            self._adopt_order(book, r)
        for f in rec.fills:
            self._execs.add(f.exec_id)
            if f.commission is not None:
                self._commissions.add(f.exec_id)
        if len(tps) > 1 and stop is not None and stop.live and stop.stop and rec.bought:
            self._adopt_ladder(book, rec, tps, stop, level)

    def _adopt_order(self, book: _Book, r: ReconciledOrder) -> None:
        if not r.order_id:
            return  # a completed order without its id: nothing left to manage
        o = self._track(book, r.role, r.rung, r.order_id, r.client_id, r.outside_rth, r.tif)
        o.status, o.filled, o.perm_id = r.status, r.filled, r.perm_id
        o.last = (r.status, r.filled, r.qty - r.filled)
        if not r.live:
            o.done.set()

    def _adopt_ladder(self, book: _Book, rec: ReconciledEntry, tps: list[ReconciledOrder],
                      stop: ReconciledOrder, level: int | None) -> None:
        assert stop.stop is not None
        lvl = level if level is not None else breakeven_level(rec.avg_price, stop.stop)
        rungs = [(o.limit or 0, o.qty - o.filled if o.live else None) for o in tps]
        rung_sold = sum(f.qty for f in rec.fills if f.role == TAKE_PROFIT)
        state = rebuild_ladder(lvl, rungs, rec.bought, rung_sold, rec.sold, stop.stop)
        book.entry.ladder = state
        if state.stop != stop.stop:  # a rung filled before the last process could move the stop
            moved = self._move_stop(book, state._replace(stop=stop.stop), state)
            if moved is not None:
                self._emit(moved)


def _trade_ref(trade: Trade) -> str:
    return str(trade.order.orderRef)


def _fill_ref(fill: Fill) -> str:
    return str(fill.execution.orderRef)


def _bought(book: _Book) -> int:
    """Shares the entry bought: its executions, or the broker's count if that is ahead."""
    reported = sum(o.last[1] for o in book.entry_orders() if o.last is not None)
    return max(book.entry.filled, reported)


def _dec(micros: int | None) -> Decimal | None:
    return None if micros is None else to_decimal(micros)
