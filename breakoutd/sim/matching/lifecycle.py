"""Order life at the simulated gateway: acknowledgement, holding, sessions, cancels.

The state and bookkeeping half of the matching engine (the matching half and
the public interface are in :mod:`breakoutd.sim.matching.engine`). As at IBKR:

- ``transmit=False`` orders are held silently until an order of their group
  (the parent and its children) arrives with ``transmit=True``; then the whole
  group is acknowledged, oldest first: openOrder, then orderStatus.
- PreSubmitted while waiting: a child for its parent to fill completely, a stop
  for its trigger, any order for a session it may work in (regular hours, or
  extended hours with ``outside_rth``). Submitted while working.
- A fill sends execDetails, (openOrder and) orderStatus, commissionReport.
- Bracket children are one-cancels-all even without an ocaGroup: a fill of one
  child reduces each sibling by the filled shares, cancelling it at zero.
  Explicit groups: ocaType 1 (and 0) cancels the others on any fill; 2 and 3
  reduce them like a bracket. A client cancel of an explicit-group order
  cancels the group; a cancelled parent cancels its children, or, when it had
  partly filled, sets them working for the filled quantity.
- DAY orders end when their session does: at the close without
  ``outside_rth``, at the end of after-hours with it. GTC never expires. IOC is
  cancelled after its first chance to match.
- Rejected orders get error 201 (110 for an off-tick price) then Inactive; a
  MKT order outside regular hours is rejected, as tws-protocol.md says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from breakoutd.core.bars import NS
from breakoutd.core.prices import tick_size, to_micros
from breakoutd.sim.matching.account import Account, CommissionSchedule
from breakoutd.sim.matching.book import OrderRecord, Quote
from breakoutd.sim.matching.values import (
    CANCELLED,
    FILLED,
    INACTIVE,
    ORDER_TYPES,
    PRE_SUBMITTED,
    SUBMITTED,
    TIFS,
    CommissionEvent,
    EngineEvent,
    ExecutionEvent,
    OpenOrderEvent,
    OrderErrorEvent,
    OrderStatusEvent,
    SimOrder,
)

Events = list[EngineEvent]
OcaKey = tuple[str, int, str]
_EXTENDED = ("premarket", "afterhours")
REJECTED = "Order rejected - reason:"


def _always_rth(_now_ns: int) -> str | None:
    return "rth"


class OrderLifecycle:
    """The engine's state and the life of its orders, without the matching."""

    def __init__(
        self,
        *,
        clock: Callable[[], int],
        sessions: Callable[[int], str | None] = _always_rth,
        account: str = "DU0000001",
        cash: float | int = 1_000_000,
        commissions: CommissionSchedule | None = None,
    ) -> None:
        self._clock = clock
        self._sessions = sessions
        self.account = account
        self._fees = commissions or CommissionSchedule()
        self._account = Account(account, to_micros(cash))
        self._orders: dict[tuple[int, int], OrderRecord] = {}
        self._book: dict[str, list[OrderRecord]] = {}  # live orders by symbol, in seq order
        self._oca: dict[OcaKey, list[OrderRecord]] = {}
        self._completed: list[OrderRecord] = []
        self._executions: list[tuple[ExecutionEvent, CommissionEvent]] = []
        self._quotes: dict[str, Quote] = {}
        self._traded: set[str] = set()
        self._max_id: dict[int, int] = {}
        self._dirty: set[str] = set()
        self._seq = 0
        self._perm_id = 1_000_000_000
        now = clock()
        self._exec_base = (now // NS) & 0xFFFFFFFF
        self._exec_seq = 0
        self._session = sessions(now)
        self._rth_closes = 0
        self._day_ends = 0
        self._reject: tuple[int, str] | None = None

    # -- order lifecycle ---------------------------------------------------

    def _new(self, order: SimOrder, events: Events) -> None:
        client = order.client_id
        self._max_id[client] = max(self._max_id.get(client, 0), order.order_id)
        self._perm_id += 1
        self._seq += 1
        order = replace(order, perm_id=self._perm_id, account=order.account or self.account)
        rec = OrderRecord(order, self._seq, held=not order.transmit,
                          rth_closes=self._rth_closes, day_ends=self._day_ends)
        parent = self._orders.get((client, order.parent_id)) if order.parent_id else None
        problem = self._reject or self._check_new(order, parent)
        self._reject = None
        self._orders[rec.key] = rec
        if problem is not None:
            self._refuse(rec, *problem, events)
            return
        if parent is not None:
            parent.children.append(order.order_id)
            rec.waiting_parent = parent.status != FILLED
        self._book.setdefault(order.symbol, []).append(rec)
        key = self._oca_key(rec)
        if key is not None:
            self._oca.setdefault(key, []).append(rec)
        if order.transmit:
            self._release(rec, events)

    def _check_new(self, order: SimOrder, parent: OrderRecord | None) -> tuple[int, str] | None:
        problem = _check_terms(order)
        if problem is not None:
            return problem
        if order.parent_id and (parent is None or parent.status in (CANCELLED, INACTIVE)):
            return 201, f"{REJECTED}parent order {order.parent_id} is not live"
        if order.order_type == "MKT" and not order.parent_id and self._session != "rth":
            return 201, f"{REJECTED}market orders are not accepted outside regular trading hours"
        return None

    def _modify(self, rec: OrderRecord, new: SimOrder, events: Events) -> None:
        problem = _check_terms(new)
        if problem is None and new.total_qty <= rec.filled:
            problem = 201, (f"{REJECTED}quantity {new.total_qty} is not above "
                            f"the {rec.filled} shares already filled")
        if problem is not None:
            self._error(new, *problem, events)
            return
        old = rec.order
        rec.order = replace(
            new, perm_id=old.perm_id, symbol=old.symbol, con_id=old.con_id or new.con_id,
            action=old.action, parent_id=old.parent_id, oca_group=old.oca_group,
            oca_type=old.oca_type, account=old.account,
        )
        if rec.held:
            if new.transmit:
                self._release(rec, events)
            return
        events.append(OpenOrderEvent(rec.order, rec.status))
        events.append(self._status_event(rec))
        self._dirty.add(old.symbol)

    def _release(self, rec: OrderRecord, events: Events) -> None:
        """Acknowledge a transmitted order with the held rest of its group."""
        client = rec.order.client_id
        parent_id = rec.order.parent_id
        root = self._orders.get((client, parent_id), rec) if parent_id else rec
        group = [root] + [self._orders[(client, cid)] for cid in root.children]
        for member in sorted(group, key=lambda r: r.seq):
            if (member.held or member is rec) and not member.done:
                member.held = False
                self._sync_status(member, events)
                self._dirty.add(member.order.symbol)

    def _refuse(self, rec: OrderRecord, code: int, message: str, events: Events) -> None:
        self._error(rec.order, code, message, events)
        rec.status = INACTIVE
        self._completed.append(rec)
        events.append(OpenOrderEvent(rec.order, INACTIVE))
        events.append(self._status_event(rec))

    def _error(self, order: SimOrder, code: int, message: str, events: Events) -> None:
        events.append(OrderErrorEvent(order.client_id, order.order_id, code, message))

    def _cancel(self, rec: OrderRecord, events: Events, notify: bool) -> None:
        """End a live order as Cancelled; ``notify`` adds error 202 (a client cancel)."""
        self._finish(rec, CANCELLED)
        events.append(self._status_event(rec))
        if notify:
            self._error(rec.order, 202, "Order Canceled - reason:", events)
        for child_id in rec.children:
            child = self._orders[(rec.order.client_id, child_id)]
            if child.done:
                continue
            if rec.filled == 0:
                self._cancel(child, events, notify)
            elif child.waiting_parent:
                # Protect the shares the parent did buy.
                child.waiting_parent = False
                self._resize(child, min(child.order.total_qty, rec.filled), events)
                self._dirty.add(child.order.symbol)

    def _finish(self, rec: OrderRecord, status: str) -> None:
        rec.status = status
        self._completed.append(rec)
        book = self._book.get(rec.order.symbol, [])
        if rec in book:
            book.remove(rec)

    def _resize(self, rec: OrderRecord, total: int, events: Events) -> None:
        """Set an order's total quantity (OCA reduce); Cancelled when nothing is left."""
        if total <= rec.filled:
            self._cancel(rec, events, notify=False)
            return
        if total != rec.order.total_qty:
            rec.order = replace(rec.order, total_qty=total)
            if not rec.held and rec.status:
                events.append(OpenOrderEvent(rec.order, rec.status))
                events.append(self._status_event(rec))

    # -- sessions ----------------------------------------------------------

    def _advance(self) -> Events:
        events: Events = []
        session = self._sessions(self._clock())
        if session == self._session:
            return events
        previous, self._session = self._session, session
        if previous == "rth":
            self._rth_closes += 1
        if session is None and previous is not None:
            self._day_ends += 1
        for rec in sorted(self._live(), key=lambda r: r.seq):
            if not rec.done and self._expired(rec):
                self._cancel(rec, events, notify=False)
        self._dirty.update(s for s, book in self._book.items() if book)
        return events

    def _expired(self, rec: OrderRecord) -> bool:
        if rec.order.tif != "DAY":
            return False
        if self._day_ends > rec.day_ends:
            return True
        return not rec.order.outside_rth and self._rth_closes > rec.rth_closes

    def _session_allows(self, order: SimOrder) -> bool:
        return self._session == "rth" or (order.outside_rth and self._session in _EXTENDED)

    def _desired(self, rec: OrderRecord) -> str:
        if rec.waiting_parent or (rec.is_stop and not rec.triggered):
            return PRE_SUBMITTED
        return SUBMITTED if self._session_allows(rec.order) else PRE_SUBMITTED

    def _sync_status(self, rec: OrderRecord, events: Events) -> bool:
        """Report a changed status; the first report is preceded by openOrder."""
        want = self._desired(rec)
        if want == rec.status:
            return False
        if not rec.status:
            events.append(OpenOrderEvent(rec.order, want))
        rec.status = want
        events.append(self._status_event(rec))
        return True

    # -- helpers -----------------------------------------------------------

    def _oca_key(self, rec: OrderRecord) -> OcaKey | None:
        order = rec.order
        if order.oca_group:
            return "oca", 0, order.oca_group
        if order.parent_id:
            return "bracket", order.client_id, str(order.parent_id)
        return None

    def _live(self) -> list[OrderRecord]:
        return [rec for book in self._book.values() for rec in book]

    def _status_event(self, rec: OrderRecord) -> OrderStatusEvent:
        order = rec.order
        return OrderStatusEvent(
            order.client_id, order.order_id, rec.status, rec.filled,
            rec.remaining, rec.avg_price(), order.perm_id,
            order.parent_id, rec.last_fill_price,
        )


def _check_terms(order: SimOrder) -> tuple[int, str] | None:
    """Error code and text for an order the gateway refuses, or None."""
    if order.action not in ("BUY", "SELL"):
        return 201, f"{REJECTED}invalid action {order.action!r}"
    if order.total_qty <= 0:
        return 201, f"{REJECTED}order quantity {order.total_qty} must be positive"
    if order.order_type not in ORDER_TYPES:
        return 201, (f"{REJECTED}order type {order.order_type!r} is not supported "
                     "by the simulated gateway")
    if order.tif not in TIFS:
        return 201, (f"{REJECTED}time in force {order.tif!r} is not supported "
                     "by the simulated gateway")
    prices = []
    if order.order_type in ("LMT", "STP LMT"):
        prices.append(("limit", order.lmt_price))
    if order.order_type in ("STP", "STP LMT"):
        prices.append(("stop", order.aux_price))
    for name, price in prices:
        if price is None or price <= 0:
            return 201, f"{REJECTED}{order.order_type} order needs a positive {name} price"
        if price % tick_size(price):
            return 110, ("The price does not conform to the minimum price variation "
                         "for this contract.")
    return None
