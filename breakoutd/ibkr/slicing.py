"""Sliced entries at the broker: the later slices, and exits sized to what has filled.

strategy.md, Position management, ``slices``. The first slice is sent as an
entry is (``OrderRouter.send_now(..., sliced=True)``): a parent BUY for the
first slice's shares, orderRef ``{ref}:s1``, with the exits as its children
in one OCA group, sized to that slice. With slices the exits are one
take-profit (or none) and one stop: the configuration refuses a ladder. Slice
*k* (k >= 2) is one BUY of its own, ``{ref}:s{k}`` (role entry, rung *k*),
transmitted at once with the parent's tif and outsideRth, and no children.

One stop for the whole position, grown with each fill, rather than a bracket
per slice: a stop per slice would be N orders to move on every breakeven or
trail (each at most once a second), N prices that drift apart when a move of
one is refused or lost with the connection, and N OCA groups, of which none
knows the others' fills, so a take-profit and the stops of other slices could
sell the same shares. One stop and one take-profit in one group keep the
reduce-with-block rule of :mod:`breakoutd.core.ladder`: whatever fills,
no sell exceeds what is held.

Exits sized to what has filled: after every execution of a slice the
take-profit and the stop are modified to ``their own fills + what is held``
(``OrderModified`` with reason ``slice``), never down. The size is absolute,
not a step, so applying it twice (a fill seen again by a resync, a restart
that re-reads the broker) changes nothing; after a restart it is applied once
to catch the fills made while the daemon was down. The exits work only once
the first slice has filled completely (IB holds children until their parent
fills): the daemon sends a later slice only when every earlier one has filled
(:mod:`breakoutd.daemon.slices`).

When an exit fills (the stop, or the take-profit, even in part) the slices
still working are cancelled: the trade is over or being taken, it is not
added to. A flatten (the operator's, the kill switch's, a time exit) cancels
them with the exits, as every working order of the entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ib_async import Contract, Order
from loguru import logger

from breakoutd.core.events import DONE_STATUSES, OrderModified
from breakoutd.core.prices import to_float
from breakoutd.core.refs import ENTRY, STOP, TAKE_PROFIT
from breakoutd.core.slicing import slice_ref
from breakoutd.errors import OrderRejected
from breakoutd.ibkr.convert import price_to_decimal
from breakoutd.ibkr.orders_map import PlannedOrder, order_sent_event
from breakoutd.ibkr.wire.requests import client_id

if TYPE_CHECKING:
    from breakoutd.ibkr.order_book import EntryBook, TrackedOrder
    from breakoutd.ibkr.router import OrderRouter


def slice_order(order_ref: str, number: int, qty: int, limit: int | None, *, order_id: int,
                tif: str, outside_rth: bool, account: str) -> Order:
    """Slice ``number``'s BUY: LMT at ``limit`` (None: MKT), transmitted on its own."""
    return Order(orderId=order_id, action="BUY", totalQuantity=qty,
                 orderType="MKT" if limit is None else "LMT",
                 lmtPrice=to_float(limit) if limit is not None else 0.0,
                 tif=tif, outsideRth=outside_rth, account=account,
                 orderRef=slice_ref(order_ref, number), transmit=True)


def send_slice(router: OrderRouter, order_ref: str, number: int, qty: int,
               limit: int | None, contract: Contract) -> int:
    """Send slice ``number`` (>= 2) of a sliced entry once; its order id.

    Refused (``OrderRejected``, nothing sent) when the entry is not a sliced one
    the router follows, when this slice's ref was ever sent (here, before a
    restart, or found at the broker), without a connection, or when the last
    order's journal and state are not on disk."""
    try:
        router.make_durable()
    except OSError as exc:
        raise OrderRejected(f"{order_ref}: the journal and state of the last order are not "
                            f"on disk ({exc}); slice {number} not sent") from exc
    book = router.book.require(order_ref)
    first = book.orders.get((ENTRY, 1))
    if first is None or number < 2:
        raise OrderRejected(f"{order_ref}: not a sliced entry, or no slice {number}")
    ref = slice_ref(order_ref, number)
    if (ENTRY, number) in book.orders:
        raise OrderRejected(f"{ref}: already sent; not sending it again")
    router.sender.refuse_duplicate(ref)
    if not router.ib.isConnected():
        raise OrderRejected(f"{ref}: not connected to the gateway, nothing sent")
    order_id = router.sender.next_ids(1)[0]
    router.sender.sent_refs.add(ref)
    order = slice_order(order_ref, number, qty, limit, order_id=order_id, tif=first.tif,
                        outside_rth=first.outside_rth, account=router.sender.account)
    router.book.track(book, ENTRY, number, order_id, client_id(router.ib), first.outside_rth,
                      first.tif)
    try:
        router.ib.placeOrder(contract, order)
    except (ConnectionError, OSError) as exc:
        raise OrderRejected(f"{ref}: sending failed ({exc}); it will not be sent again") from exc
    router.sender.note_id(order_id)
    entry = book.entry
    router.emit(order_sent_event(router.clock(), order_ref, entry.symbol,
                                 PlannedOrder(ENTRY, number, order)))
    router.sender.durable_soon()
    return order_id


def first_take_profit(router: OrderRouter, order_ref: str) -> int | None:
    """The price of the entry's (first) take-profit as last sent, if it has one."""
    book = router.book.get(order_ref)
    return book.prices[0] if book is not None and book.prices else None


def exits_done(router: OrderRouter, order_ref: str) -> bool:
    """True when the entry was sent with exits and none of them is working any more."""
    book = router.book.get(order_ref)
    exits = [o for (role, _), o in book.orders.items() if role in (TAKE_PROFIT, STOP)] \
        if book is not None else []
    return bool(exits) and all(o.status in DONE_STATUSES for o in exits)


def size_exits(router: OrderRouter, book: EntryBook) -> int:
    """Grow the take-profit and the stop to cover what is held; the orders modified."""
    held = book.bought() - book.entry.sold
    if held <= 0:
        return 0
    modified = 0
    for (role, _), o in list(book.orders.items()):
        if role not in (TAKE_PROFIT, STOP) or o.status in DONE_STATUSES:
            continue
        trade = router.changes.trade(o)
        if trade is None:
            logger.warning("{}: the {} {} is not known to this connection; it is sized to "
                           "the {} shares held after the next resync", book.entry.order_ref,
                           role, o.order_id, held)
            continue
        want = o.filled + held
        if int(trade.order.totalQuantity) >= want:
            continue
        lmt = aux = None
        if role == STOP and book.stop_wanted is not None:  # the price decided, not a lost one
            aux, lmt = book.stop_wanted
        if router.changes.modify(o, qty=want, lmt=lmt, aux=aux) is None:
            continue
        modified += 1
        order = trade.order
        router.emit(OrderModified(
            at=router.clock(), order_ref=book.entry.order_ref, role=o.role, rung=o.rung,
            order_id=o.order_id, qty=want, limit=price_to_decimal(order.lmtPrice),
            stop=price_to_decimal(order.auxPrice) if role == STOP else None, reason="slice"))
    return modified


def cancel_slices(router: OrderRouter, book: EntryBook, why: str) -> int:
    """Cancel the later slices still working (not the first: the exits' parent)."""
    cancelled = 0
    for (role, rung), o in book.orders.items():
        if role != ENTRY or rung < 2 or o.status in DONE_STATUSES:
            continue
        if router.changes.cancel(o):  # False: unknown to this connection, or another client's
            logger.info("{}: cancelling slice {} ({})", book.entry.order_ref, rung, why)
            cancelled += 1
    return cancelled


def on_sliced_fill(router: OrderRouter, o: TrackedOrder) -> None:
    """A fill of a sliced entry's order: a slice's grows the exits, an exit's ends the slices."""
    if o.role == ENTRY:
        size_exits(router, o.book)
    elif o.role in (TAKE_PROFIT, STOP):
        cancel_slices(router, o.book, f"the {o.role} filled")
