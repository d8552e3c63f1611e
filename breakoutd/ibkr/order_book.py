"""The order book: what the router knows of each entry and its orders, and how the
broker's answers change it. Pure: no ib_async, no socket, no clock of its own.

One :class:`EntryBook` per entry ref holds the :class:`RoutedEntry` the daemon
reads, the take-profit prices and cumulative sizes as sent, the stop the router
last decided, and one :class:`TrackedOrder` per (role, rung). The
:class:`OrderBook` applies what the broker says (a status, an execution, a
commission, an entry found by reconciliation) and returns the events to emit;
what must go back to the broker (a ladder's stop move) it returns as the
ladder's old and new states, for the router to send before it emits. So every
rule of how an answer changes an entry is tested here without a gateway, and
the router is left with wiring.

Prices are micro-dollars; ``at`` is the caller's clock (epoch ns).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from breakoutd.core.events import (
    DONE_STATUSES,
    CommissionReported,
    OrderFilled,
    OrderIdAssigned,
    OrderRole,
    OrderStatusChanged,
)
from breakoutd.core.ladder import (
    LadderState,
    breakeven_level,
    credit_rungs,
    exit_thresholds,
    ladder_for,
    rebuild_ladder,
)
from breakoutd.core.plans import OrderPlan
from breakoutd.core.prices import to_decimal
from breakoutd.core.refs import ENTRY, FLATTEN, STOP, TAKE_PROFIT, parse_ref
from breakoutd.errors import OrderRejected

if TYPE_CHECKING:  # the records only: reconcile reads them off ib_async
    from breakoutd.ibkr.reconcile import ReconciledEntry, ReconciledOrder


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
class TrackedOrder:
    """One order of an entry, as the gateway last reported it."""

    book: EntryBook
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
class EntryBook:
    """An entry, its orders by (role, rung), and the exits' terms as the router sent them."""

    entry: RoutedEntry
    prices: tuple[int, ...] = ()  # take-profit rung prices
    thresholds: tuple[int, ...] = ()  # cumulative rung sizes as sent
    stop: int | None = None
    orders: dict[tuple[str, int], TrackedOrder] = field(default_factory=dict)
    # The stop's (price, limit) as the router last decided it: what the broker must
    # show. A move lost with the connection is sent again after a resync.
    stop_wanted: tuple[int, int] | None = None
    stop_resent: int = -1  # the ib_async session of the last re-send (once per session)
    stop_modified_at: int | None = None  # the last raise_stop modify (once a second at most)

    def parent(self) -> TrackedOrder | None:
        """The entry order: the bare ref's, or a sliced entry's first slice."""
        return self.orders.get((ENTRY, 0)) or self.orders.get((ENTRY, 1))

    def entry_orders(self) -> list[TrackedOrder]:
        """The entry's BUY orders: the one, or each slice sent."""
        return [o for (role, _), o in self.orders.items() if role == ENTRY]

    @property
    def sliced(self) -> bool:
        """True for an entry sent in slices (its first order is ``...:s1``)."""
        return (ENTRY, 1) in self.orders

    def bought(self) -> int:
        """Shares the entry bought: its executions, or the broker's count if that is ahead."""
        reported = sum(o.last[1] for o in self.entry_orders() if o.last is not None)
        return max(self.entry.filled, reported)

    def stop_price(self) -> int | None:
        """Where the entry's stop is (the price the router last decided), if it has one."""
        if self.stop_wanted is not None:
            return self.stop_wanted[0]
        ladder = self.entry.ladder
        return ladder.stop if ladder is not None else self.stop


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution the gateway reported, in our units."""

    exec_id: str
    order_ref: str
    side: str
    qty: int
    price: int
    commission: float | None  # known already when the fill came with its report


@dataclass(frozen=True, slots=True)
class Applied:
    """What one execution changed: the order, its event, and a ladder move to send."""

    order: TrackedOrder
    event: OrderFilled
    ladder_move: tuple[LadderState, LadderState] | None = None  # (old, new)


class OrderBook:
    """Every entry the router follows, by ref and by (client id, order id)."""

    def __init__(self) -> None:
        self.books: dict[str, EntryBook] = {}
        self._orders: dict[tuple[int, int], TrackedOrder] = {}  # (client id, order id)
        self.execs: set[str] = set()
        self.commissions: set[str] = set()

    # --- lookups -----------------------------------------------------------------------

    def get(self, order_ref: str) -> EntryBook | None:
        return self.books.get(order_ref)

    def require(self, order_ref: str) -> EntryBook:
        """The entry with this ref; OrderRejected when there is none."""
        book = self.books.get(order_ref)
        if book is None:
            raise OrderRejected(f"{order_ref}: no such entry")
        return book

    def order(self, client_id: int, order_id: int) -> TrackedOrder | None:
        return self._orders.get((client_id, order_id))

    def by_ref(self, text: str) -> TrackedOrder | None:
        """The order an orderRef of ours names, if its entry is followed here."""
        parts = parse_ref(text)
        book = self.books.get(parts.base) if parts else None
        return book.orders.get((parts.role, parts.rung)) if book and parts else None

    # --- what was sent -------------------------------------------------------------------

    def register(self, plan: OrderPlan, level: int, sent: list[tuple[OrderRole, int, int]],
                 client_id: int) -> EntryBook:
        """A new entry: ``sent`` holds each order's (role, rung, order id), the parent first."""
        by_role = {(role, rung): order_id for role, rung, order_id in sent}
        entry = RoutedEntry(
            order_ref=plan.order_ref, watcher_id=plan.watcher_id, symbol=plan.symbol,
            parent_id=sent[0][2], stop_id=by_role.get((STOP, 0)), level=level,
            take_profit_ids=tuple(by_role[(TAKE_PROFIT, n)] for n in range(1, len(plan.rungs) + 1)))
        book = EntryBook(entry, prices=tuple(r.price for r in plan.rungs),
                         thresholds=exit_thresholds(plan), stop=plan.stop)
        self.books[plan.order_ref] = book
        for role, rung, order_id in sent:
            self.track(book, role, rung, order_id, client_id, plan.outside_rth, plan.tif)
        return book

    def track(self, book: EntryBook, role: OrderRole, rung: int, order_id: int, client_id: int,
              outside_rth: bool, tif: str) -> TrackedOrder:
        """Follow one more order of an entry (a slice, a sale, one found at the broker)."""
        o = TrackedOrder(book, role, rung, order_id, client_id, outside_rth, tif)
        book.orders[(role, rung)] = o
        self._orders[(client_id, order_id)] = o
        return o

    def forget(self, o: TrackedOrder) -> None:
        """Stop looking ``o`` up by its id (a done sale replaced by a new one)."""
        self._orders.pop((o.client_id, o.order_id), None)

    # --- what the broker says ------------------------------------------------------------

    def note_perm_id(self, o: TrackedOrder, perm_id: int, at: int) -> OrderIdAssigned | None:
        """The broker's permanent id, the first time it is seen."""
        if not perm_id or o.perm_id:
            return None
        o.perm_id = perm_id
        return OrderIdAssigned(at=at, order_ref=o.book.entry.order_ref, role=o.role,
                               order_id=o.order_id, perm_id=perm_id)

    def apply_status(self, o: TrackedOrder, status: str, filled: int, remaining: int,
                     at: int) -> OrderStatusChanged | None:
        """A status from the gateway; None when it repeats the last one."""
        key = (status, filled, remaining)
        if key == o.last:
            return None
        o.last, o.status = key, status
        detail, o.detail = o.detail, ""
        entry = o.book.entry
        return OrderStatusChanged(
            at=at, order_ref=entry.order_ref, role=o.role, rung=o.rung, order_id=o.order_id,
            status=status, filled=filled, remaining=remaining, detail=detail)

    @staticmethod
    def settle(o: TrackedOrder) -> None:
        """After a new status's event: wake who waits for the order's end, start the
        ladder once the entry is done, and update the entry's status."""
        if o.status in DONE_STATUSES:
            o.done.set()
            if o.role == ENTRY:
                ensure_ladder(o.book)
        refresh(o.book)

    def apply_exec(self, ex: Execution, at: int) -> Applied | None:
        """An execution, once per exec id; None for one seen before or not ours."""
        if ex.exec_id in self.execs:
            return None
        o = self.by_ref(ex.order_ref)
        if o is None:
            return None
        self.execs.add(ex.exec_id)
        o.filled += ex.qty
        entry = o.book.entry
        event = OrderFilled(
            at=at, order_ref=entry.order_ref, role=o.role, rung=o.rung, order_id=o.order_id,
            exec_id=ex.exec_id, symbol=entry.symbol, side=ex.side, qty=ex.qty,
            price=to_decimal(ex.price), cum_qty=o.filled, commission=ex.commission)
        move = None
        if o.role == ENTRY:
            entry.filled += ex.qty
            entry.cost += ex.qty * ex.price
            entry.avg_price = (2 * entry.cost + entry.filled) // (2 * entry.filled)
        else:
            entry.sold += ex.qty
            move = _exit_fill(o, ex.qty)
        if ex.commission is not None:
            self.commissions.add(ex.exec_id)
        return Applied(o, event, move)  # refresh(o.book) once its events are out

    def apply_commission(self, exec_id: str, order_ref: str, commission: float,
                         realized_pnl: float, at: int) -> CommissionReported | None:
        """A commission report for an execution applied here, once."""
        parts = parse_ref(order_ref)
        if exec_id not in self.execs or exec_id in self.commissions or parts is None:
            return None
        self.commissions.add(exec_id)
        return CommissionReported(at=at, order_ref=parts.base, exec_id=exec_id,
                                  commission=commission, realized_pnl=realized_pnl)

    # --- adoption after a restart ----------------------------------------------------------

    def adopt(self, rec: ReconciledEntry, level: int | None) -> tuple[LadderState, LadderState] | None:
        """Follow an entry found at the broker; the ladder's stop move to send, if a rung
        filled before the last process could move the stop."""
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
        book = EntryBook(entry, prices=tuple(o.limit or 0 for o in tps),
                         stop=stop.stop if stop else None,
                         # Untouched by OCA reductions until something is sold: the sizes as sent.
                         thresholds=tuple(o.qty for o in tps) if rec.sold == 0 else ())
        self.books[rec.order_ref] = book
        for r in rec.orders:
            self._adopt_order(book, r)
        for f in rec.fills:
            self.execs.add(f.exec_id)
            if f.commission is not None:
                self.commissions.add(f.exec_id)
        if len(tps) > 1 and stop is not None and stop.live and stop.stop and rec.bought:
            return _adopt_ladder(book, rec, tps, stop, level)
        return None

    def _adopt_order(self, book: EntryBook, r: ReconciledOrder) -> None:
        if not r.order_id:
            return  # a completed order without its id: nothing left to manage
        o = self.track(book, r.role, r.rung, r.order_id, r.client_id, r.outside_rth, r.tif)
        o.status, o.filled, o.perm_id = r.status, r.filled, r.perm_id
        o.last = (r.status, r.filled, r.qty - r.filled)
        if not r.live:
            o.done.set()


def entry_status(parent_status: str, bought: int, sold: int) -> str:
    """Our status of an entry (working, partially_filled, filled, cancelled, rejected,
    closed) from the IB status of its parent order and the shares bought and sold."""
    done = parent_status in DONE_STATUSES
    if bought > 0 and sold >= bought and done:
        return "closed"
    if parent_status == "Inactive" and bought == 0:
        return "rejected"
    if done:
        return "filled" if bought > 0 else "cancelled"
    return "partially_filled" if bought > 0 else "working"


def refresh(book: EntryBook) -> None:
    """The entry's status from its orders' (a slice still working keeps it working)."""
    parent = next((o for o in book.entry_orders() if o.status not in DONE_STATUSES),
                  book.parent())
    entry = book.entry
    entry.status = entry_status(parent.status if parent else "", book.bought(), entry.sold)


def ensure_ladder(book: EntryBook) -> LadderState | None:
    """The entry's ladder, started once it has bought shares and has rungs and a stop."""
    entry = book.entry
    bought = book.bought()
    if entry.ladder is None and len(book.prices) > 1 and book.stop is not None \
            and bought > 0 and book.thresholds:
        level = entry.level if entry.level is not None else \
            breakeven_level(entry.avg_price, book.stop)
        entry.ladder = ladder_for(level, book.prices, book.thresholds, bought, book.stop)
    return entry.ladder


def _exit_fill(o: TrackedOrder, qty: int) -> tuple[LadderState, LadderState] | None:
    """An exit sold ``qty``: the ladder's (old, new) when its stop may have to move."""
    state = ensure_ladder(o.book)
    if state is None:
        return None
    if o.role == FLATTEN:  # the position is being sold off: no ladder to manage
        return None
    if o.role == STOP:  # the stop is selling: only its size is left to track
        o.book.entry.ladder = state._replace(stop_qty=max(state.stop_qty - qty, 0))
        return None
    new, _ = credit_rungs(state, qty)
    return state, new


def _adopt_ladder(book: EntryBook, rec: ReconciledEntry, tps: list[ReconciledOrder],
                  stop: ReconciledOrder, level: int | None) -> tuple[LadderState, LadderState] | None:
    assert stop.stop is not None
    lvl = level if level is not None else breakeven_level(rec.avg_price, stop.stop)
    rungs = [(o.limit or 0, o.qty - o.filled if o.live else None) for o in tps]
    rung_sold = sum(f.qty for f in rec.fills if f.role == TAKE_PROFIT)
    state = rebuild_ladder(lvl, rungs, rec.bought, rung_sold, rec.sold, stop.stop)
    book.entry.ladder = state
    if state.stop != stop.stop:  # a rung filled before the last process could move the stop
        return state._replace(stop=stop.stop), state
    return None
