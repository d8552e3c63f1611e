"""Reconciliation at start-up: today's entries as the broker knows them, by orderRef.

Before anything is armed the daemon asks the gateway for every open order
(``reqAllOpenOrders``: all clients, so an entry placed under another client
id is still found), today's completed orders (``reqCompletedOrders``) and
today's executions (``reqExecutions``), and groups them by the entry's ref
(``bo:YYYYMMDD:session:watcher_id``; exits carry ``:tpN`` / ``:sl``, the
slices of a sliced entry ``:sK``, see
:mod:`breakoutd.core.refs`). Each entry found emits ``OrderReconciled``;
the router then ``adopt``\\ s them so none is ever sent again and their exits
stay managed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from ib_async import IB, ExecutionFilter, Fill, Trade

from breakoutd.core.events import DONE_STATUSES, Event, OrderReconciled, OrderRole
from breakoutd.core.refs import ENTRY, RefParts, day_prefix, parse_ref, watcher_of
from breakoutd.errors import TemporaryError
from breakoutd.ibkr.convert import price_to_micros
from breakoutd.ibkr.order_book import entry_status
from breakoutd.ibkr.orders_map import whole_shares

T = TypeVar("T")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class ReconciledOrder:
    """One order of an entry as the broker reports it."""

    order_ref: str  # the order's own ref (``...:tp1``, ``...:sl``)
    role: OrderRole
    rung: int
    order_id: int  # 0 when the broker did not say (completed orders carry no id)
    client_id: int
    perm_id: int
    status: str  # IB's
    qty: int  # total quantity now (OCA reductions included)
    filled: int
    limit: int | None
    stop: int | None
    outside_rth: bool
    tif: str

    @property
    def live(self) -> bool:
        """True while the order can still trade."""
        return self.status not in DONE_STATUSES


@dataclass(frozen=True, slots=True)
class ReconciledFill:
    """One execution of an entry's order."""

    exec_id: str
    order_ref: str
    role: OrderRole
    rung: int
    order_id: int
    perm_id: int
    side: str  # BOT | SLD
    qty: int
    price: int
    commission: float | None
    time_ns: int = 0  # when it executed (the broker's time, whole seconds); 0: not said


@dataclass(frozen=True, slots=True)
class ReconciledEntry:
    """An entry of today found at the broker: its orders and fills."""

    order_ref: str
    watcher_id: str
    symbol: str
    orders: tuple[ReconciledOrder, ...]
    fills: tuple[ReconciledFill, ...]
    status: str  # ours: working, partially_filled, filled, cancelled, rejected, closed
    bought: int
    sold: int
    avg_price: int | None  # of the entry's fills, micro-dollars

    @property
    def filled(self) -> int:
        """Shares the entry bought."""
        return self.bought

    def order(self, role: OrderRole, rung: int = 0) -> ReconciledOrder | None:
        """The order with this role and rung, if the broker reported it."""
        return next((o for o in self.orders if (o.role, o.rung) == (role, rung)), None)


async def reconcile(ib: IB, day: dt.date, clock: Callable[[], int],
                    emit: Callable[[Event], None], *,
                    timeout: float = 10.0) -> dict[str, ReconciledEntry]:
    """Today's entries at the broker by ref (emits ``OrderReconciled`` for each)."""
    open_trades = await _ask(ib.reqAllOpenOrdersAsync(), timeout, "open orders")
    completed = await _ask(ib.reqCompletedOrdersAsync(False), timeout, "completed orders")
    fills = await _ask(ib.reqExecutionsAsync(ExecutionFilter()), timeout, "executions")
    commissions = {f.execution.execId: f.commissionReport for f in ib.fills()}
    found = collect_entries(day_prefix(f"{day:%Y%m%d}"), open_trades, completed, fills, commissions)
    for entry in found.values():
        emit(OrderReconciled(at=clock(), order_ref=entry.order_ref, watcher_id=entry.watcher_id,
                             status=entry.status, filled=entry.bought))
    return found


async def _ask(request: Awaitable[T], timeout: float, what: str) -> T:
    try:
        return await asyncio.wait_for(request, timeout)
    except (TimeoutError, ConnectionError) as exc:
        raise TemporaryError(f"reconcile: the gateway did not answer the {what} request "
                             f"({exc or 'timeout'}); retry once connected") from exc


def collect_entries(prefix: str, open_trades: Iterable[Trade], completed: Iterable[Trade],
                    fills: Iterable[Fill], commissions: dict[str, Any]
                    ) -> dict[str, ReconciledEntry]:
    """Group orders and executions whose refs start with ``prefix`` into entries."""
    orders: dict[str, dict[object, ReconciledOrder]] = {}
    symbols: dict[str, str] = {}
    # Completed last: a terminal state wins over an open one read a moment earlier.
    for trade in [*open_trades, *completed]:
        parts = _ours(trade.order.orderRef, prefix)
        if parts is None:
            continue
        rec = _order(trade, parts)
        symbols.setdefault(parts.base, trade.contract.symbol)
        orders.setdefault(parts.base, {})[rec.perm_id or rec.order_ref] = rec
    execs: dict[str, dict[str, ReconciledFill]] = {}
    for fill in fills:
        parts = _ours(fill.execution.orderRef, prefix)
        if parts is None:
            continue
        symbols.setdefault(parts.base, fill.contract.symbol)
        execs.setdefault(parts.base, {})[fill.execution.execId] = _fill(fill, parts, commissions)
    found = {}
    for base in sorted(set(orders) | set(execs)):
        found[base] = _entry(base, symbols[base], orders.get(base, {}), execs.get(base, {}))
    return found


def _ours(ref: str, prefix: str) -> RefParts | None:
    parts = parse_ref(ref or "")
    return parts if parts is not None and parts.base.startswith(prefix) else None


def _order(trade: Trade, parts: RefParts) -> ReconciledOrder:
    o, st = trade.order, trade.orderStatus
    filled = max(int(st.filled or 0), whole_shares(o.filledQuantity))
    return ReconciledOrder(
        order_ref=o.orderRef, role=parts.role, rung=parts.rung, order_id=o.orderId,
        client_id=o.clientId, perm_id=o.permId or st.permId, status=st.status,
        qty=int(o.totalQuantity), filled=filled, limit=price_to_micros(o.lmtPrice),
        stop=price_to_micros(o.auxPrice), outside_rth=o.outsideRth, tif=o.tif,
    )


def _fill(fill: Fill, parts: RefParts, commissions: dict[str, Any]) -> ReconciledFill:
    ex = fill.execution
    report = commissions.get(ex.execId) or fill.commissionReport
    return ReconciledFill(
        exec_id=ex.execId, order_ref=ex.orderRef, role=parts.role, rung=parts.rung,
        order_id=ex.orderId, perm_id=ex.permId, side=ex.side, qty=int(ex.shares),
        price=price_to_micros(ex.price) or 0,
        commission=report.commission if report is not None and report.execId else None,
        time_ns=_epoch_ns(ex.time),
    )


def _epoch_ns(when: object) -> int:
    """An execution's time as epoch ns (0 for none: ib_async's default is the epoch)."""
    if not isinstance(when, dt.datetime) or when.tzinfo is None:
        return 0
    return (when - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def _entry(base: str, symbol: str, orders: dict[object, ReconciledOrder],
           fills: dict[str, ReconciledFill]) -> ReconciledEntry:
    ids = {f.perm_id: f.order_id for f in fills.values()}
    listed = tuple(sorted(
        (o if o.order_id else _with_id(o, ids.get(o.perm_id, 0)) for o in orders.values()),
        key=lambda o: (o.role != ENTRY, o.role, o.rung)))
    bought = sum(f.qty for f in fills.values() if f.role == ENTRY)
    cost = sum(f.qty * f.price for f in fills.values() if f.role == ENTRY)
    sold = sum(f.qty for f in fills.values() if f.role != ENTRY)
    buys = [o for o in listed if o.role == ENTRY]  # the entry, or each slice sent
    # executions older than the report still count
    bought = max(bought, sum(o.filled for o in buys))
    parent = next((o for o in buys if o.live), buys[0] if buys else None)
    status = entry_status(parent.status if parent else "Filled", bought, sold)
    avg = (2 * cost + bought) // (2 * bought) if bought and cost else None
    return ReconciledEntry(order_ref=base, watcher_id=watcher_of(base), symbol=symbol,
                           orders=listed, fills=tuple(fills.values()), status=status,
                           bought=bought, sold=sold, avg_price=avg)


def _with_id(order: ReconciledOrder, order_id: int) -> ReconciledOrder:
    return replace(order, order_id=order_id)
