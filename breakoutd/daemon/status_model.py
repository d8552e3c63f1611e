"""What the event stream says about watchers, orders, positions and P&L.

The status file is a view of the event catalog: :class:`StatusModel` folds
events into a few small records and does nothing else (no clock, no I/O),
so replaying a journal rebuilds the same view the live daemon had.
Prices stay exact: ``Decimal`` dollars, as the events carry them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from breakoutd.calendar import EXCHANGE_TZ, exchange_date
from breakoutd.core import events as ev
from breakoutd.core.ledger import DISK_HALT, UNSET_DOUBLE, DayLedger
from breakoutd.core.params import RiskLimits


@dataclass(slots=True)
class WatcherRow:
    """One watcher's line: configured, armed, triggered, entered, done."""

    id: str
    symbol: str
    level: Decimal
    session: str
    state: str = "waiting"
    outcome: str | None = None
    reason: str | None = None
    order_ref: str | None = None
    level_name: str | None = None  # a named level: its name (``level`` once resolved)
    near_miss: str | None = None  # the last near miss: ``no_volume at 09:41:00``


@dataclass(slots=True)
class OrderRow:
    """One order of an entry's bracket or ladder, as the broker last described it."""

    ref: str
    role: ev.OrderRole
    rung: int
    id: int
    symbol: str = ""
    action: str = ""
    type: str = ""
    status: str = "PendingSubmit"
    qty: int = 0
    status_filled: int = 0
    fill_qty: int = 0
    fill_value: Decimal = Decimal(0)
    limit: Decimal | None = None
    stop: Decimal | None = None
    rule: str = "initial"  # a stop's: the rule that put it where it is (StopMoved)

    @property
    def filled(self) -> int:
        """Shares filled: executions seen, or the broker's count when those are late."""
        return max(self.fill_qty, self.status_filled)

    @property
    def is_open(self) -> bool:
        """Still working at the broker."""
        return self.status not in ev.DONE_STATUSES

    @property
    def avg_fill_price(self) -> Decimal | None:
        """Average price of the executions seen."""
        return self.fill_value / self.fill_qty if self.fill_qty else None


@dataclass(slots=True)
class SliceRow:
    """A sliced entry's slices: how many of how many were sent, and why the rest were not."""

    ref: str
    symbol: str
    count: int
    sent: int = 0
    sent_qty: int = 0
    skipped: str | None = None  # SliceSkipped's reason


@dataclass(slots=True)
class Position:
    """Shares held in one symbol at their average cost (signed quantity)."""

    qty: int = 0
    cost: Decimal = Decimal(0)

    def fill(self, signed_qty: int, price: Decimal) -> Decimal:
        """Apply an execution; the P&L it realizes is returned."""
        realized = Decimal(0)
        if self.qty and (self.qty > 0) != (signed_qty > 0):
            closing = min(abs(signed_qty), abs(self.qty)) * (1 if signed_qty > 0 else -1)
            avg = self.cost / self.qty
            realized = (price - avg) * -closing
            self.cost -= avg * -closing
            self.qty += closing
            signed_qty -= closing
        if signed_qty:
            self.qty += signed_qty
            self.cost += price * signed_qty
        if self.qty == 0:
            self.cost = Decimal(0)
        return realized

    @property
    def avg_price(self) -> Decimal | None:
        """Average cost per share."""
        return self.cost / self.qty if self.qty else None


@dataclass(slots=True)
class Connection:
    """The broker link as the connection events describe it."""

    connected: bool = False
    account: str = ""
    address: str = ""
    client_id: int | None = None
    connected_at: int | None = None
    disconnect_at: int | None = None
    disconnect_reason: str | None = None


@dataclass(slots=True)
class ConfigView:
    """The configuration in force and the last reload's result."""

    files: list[str] = field(default_factory=list)
    digest: str = ""
    reloaded_at: int | None = None
    result: str = "initial"
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # watchers not applied: old kept


class StatusModel:
    """Folds catalog events into the status file's records."""

    def __init__(self) -> None:
        self.daemon_state = "starting"
        self.detail = ""
        self.link = Connection()
        self.config = ConfigView()
        self.watchers: dict[str, WatcherRow] = {}
        self.orders: dict[tuple[str, str, int], OrderRow] = {}
        self.positions: dict[str, Position] = {}
        self.slices: dict[str, SliceRow] = {}  # sliced entries by order ref
        # The day's money, entries and halt: the daemon's own ledger code, fed the same events.
        self.ledger = DayLedger(RiskLimits())
        self.broker_realized: dict[str, float] = {}
        self.prices: dict[str, Decimal] = {}  # last price seen in events, per symbol
        self._ref_watcher: dict[str, str] = {}
        self._ref_symbol: dict[str, str] = {}
        self._execs: set[str] = set()
        self._day: dt.date | None = None
        self.disk_problem: str | None = None  # why the journal cannot be written, and what to do
        self._handlers: dict[type[ev.Event], Callable[[Any], None]] = {
            ev.WatcherStarted: self._started, ev.BreakDetected: self._break,
            ev.FastTriggered: self._fast, ev.Confirmed: self._confirmed,
            ev.Rejected: self._ended, ev.Expired: self._ended, ev.Stopped: self._ended,
            ev.OrderIntent: self._intent, ev.OrderSent: self._sent,
            ev.OrderStatusChanged: self._status, ev.OrderFilled: self._filled,
            ev.StopMoved: self._stop_moved, ev.OrderModified: self._modified,
            ev.CommissionReported: self._commission, ev.OrderReconciled: self._reconciled,
            ev.ConnectionUp: self._up, ev.ConnectionLost: self._lost,
            ev.ConfigReloaded: self._reloaded, ev.DaemonState: self._daemon_state,
            ev.LevelResolved: self._level_resolved, ev.NearMiss: self._near_miss,
            ev.Halted: self._halted, ev.Resumed: self._resumed,
            ev.SliceSent: self._slice_sent, ev.SliceSkipped: self._slice_skipped,
        }

    @property
    def state(self) -> str:
        """The daemon's state, degraded while the connection is down."""
        if self.daemon_state in ("running", "degraded") and self.link.disconnect_at is not None \
                and not self.link.connected:
            return "degraded"
        return self.daemon_state

    def apply(self, e: ev.Event) -> None:
        """Fold one event in."""
        self._roll_day(e.at)
        self.ledger.apply(e)
        handler = self._handlers.get(type(e))
        if handler is not None:
            handler(e)

    def _roll_day(self, at: int) -> None:
        """A new exchange day: today's P&L and finished rows start over."""
        day = exchange_date(at)
        if self._day is not None and day > self._day:
            self.ledger = DayLedger(RiskLimits())
            self.broker_realized.clear()
            self.watchers = {k: w for k, w in self.watchers.items() if w.state == "waiting"}
            self.orders = {k: o for k, o in self.orders.items() if o.is_open}
        if self._day is None or day > self._day:
            self._day = day

    # --- watchers ------------------------------------------------------------------------

    def _row(self, watcher_id: str) -> WatcherRow:
        row = self.watchers.get(watcher_id)
        if row is None:  # known only from its events (e.g. a journal replayed after a reload)
            row = self.watchers[watcher_id] = WatcherRow(watcher_id, "", Decimal(0), "")
        return row

    def _started(self, e: ev.WatcherStarted) -> None:
        row = self._row(e.watcher_id)
        row.symbol, row.level, row.state = e.symbol, e.level, "armed"
        row.outcome = row.reason = row.order_ref = None

    def _level_resolved(self, e: ev.LevelResolved) -> None:
        row = self._row(e.watcher_id)
        row.symbol, row.level, row.level_name = e.symbol, e.price, e.name

    def _near_miss(self, e: ev.NearMiss) -> None:
        row = self._row(e.watcher_id)
        self._saw_price(row.symbol, e.close)
        clock = dt.datetime.fromtimestamp(e.at // 1_000_000_000, EXCHANGE_TZ).strftime("%H:%M:%S")
        row.near_miss = f"{e.kind} at {clock}"

    def _break(self, e: ev.BreakDetected) -> None:
        self._saw_price(self._row(e.watcher_id).symbol, e.price)

    def _fast(self, e: ev.FastTriggered) -> None:
        self._triggered(e.watcher_id, e.close)

    def _confirmed(self, e: ev.Confirmed) -> None:
        self._triggered(e.watcher_id, e.close)

    def _triggered(self, watcher_id: str, price: Decimal) -> None:
        row = self._row(watcher_id)
        self._saw_price(row.symbol, price)
        if row.state in ("waiting", "armed"):
            row.state = "triggered"

    def _ended(self, e: ev.Rejected | ev.Expired | ev.Stopped) -> None:
        row = self._row(e.watcher_id)
        row.state, row.reason = "done", e.reason
        row.outcome = {ev.Rejected: "rejected", ev.Expired: "expired"}.get(type(e), "stopped")

    def _intent(self, e: ev.OrderIntent) -> None:
        self._ref_watcher[e.order_ref] = e.watcher_id
        self._ref_symbol[e.order_ref] = e.symbol
        row = self._row(e.watcher_id)
        row.order_ref = e.order_ref
        if row.state != "done":
            row.state = "triggered"

    def _entered(self, watcher_id: str, ref: str) -> None:
        row = self._row(watcher_id)
        row.order_ref = ref
        if row.outcome != "rejected":
            row.state, row.outcome, row.reason = "entered", "entered", None

    def _reconciled(self, e: ev.OrderReconciled) -> None:
        self._ref_watcher[e.order_ref] = e.watcher_id
        self._entered(e.watcher_id, e.order_ref)
        if e.status in ev.ENTRY_ENDED_UNFILLED and e.filled == 0:  # ended while we were away
            row = self._row(e.watcher_id)
            row.state, row.reason = "done", f"entry {e.status}"

    def _trade_over(self, ref: str) -> None:
        """An entered watcher is done when its entry is over and nothing is held."""
        wid = self._ref_watcher.get(ref)
        buys = [o for (r, role, _), o in self.orders.items() if r == ref and role == "entry"]
        row = self.watchers.get(wid) if wid is not None else None
        if row is None or not buys or any(o.is_open for o in buys) or row.state != "entered":
            return
        bought = sum(o.filled for o in buys)  # the entry, or each slice sent
        sold = sum(o.filled for (r, role, _), o in self.orders.items() if r == ref and role != "entry")
        if sold >= bought:
            row.state = "done"
            row.reason = "closed" if bought else f"entry {buys[0].status}"

    # --- orders ------------------------------------------------------------------------

    def _order(self, ref: str, role: ev.OrderRole, rung: int, order_id: int) -> OrderRow:
        key = (ref, role, rung)
        o = self.orders.get(key)
        if o is None:
            o = self.orders[key] = OrderRow(ref, role, rung, order_id,
                                            symbol=self._ref_symbol.get(ref, ""))
        return o

    def _sent(self, e: ev.OrderSent) -> None:
        self._ref_symbol[e.order_ref] = e.symbol
        o = self._order(e.order_ref, e.role, e.rung, e.order_id)
        o.id, o.symbol, o.action, o.type = e.order_id, e.symbol, e.action, e.order_type
        o.qty, o.limit, o.stop = e.qty, e.limit, e.stop
        wid = self._ref_watcher.get(e.order_ref)
        if e.role == "entry" and wid is not None:
            self._entered(wid, e.order_ref)

    def _status(self, e: ev.OrderStatusChanged) -> None:
        o = self._order(e.order_ref, e.role, e.rung, e.order_id)
        o.status, o.status_filled = e.status, e.filled
        if o.is_open:  # the broker's size: an OCA sibling's fill shrinks it
            o.qty = e.filled + e.remaining
        self._trade_over(e.order_ref)

    def _filled(self, e: ev.OrderFilled) -> None:
        self._saw_price(e.symbol, e.price)
        if e.exec_id in self._execs:
            return
        self._execs.add(e.exec_id)
        o = self._order(e.order_ref, e.role, e.rung, e.order_id)
        o.symbol = o.symbol or e.symbol
        o.fill_qty += e.qty
        o.fill_value += e.price * e.qty
        if o.qty and o.fill_qty >= o.qty:  # whole: done even if its status event was missed
            o.status = "Filled"
        signed = e.qty if e.side in ("BOT", "BUY") else -e.qty
        self.positions.setdefault(e.symbol, Position()).fill(signed, e.price)
        wid = self._ref_watcher.get(e.order_ref)
        if e.role == "entry" and wid is not None:
            self._entered(wid, e.order_ref)
        self._trade_over(e.order_ref)

    def _stop_moved(self, e: ev.StopMoved) -> None:
        o = self._order(e.order_ref, "stop", 0, e.order_id)
        o.stop, o.limit, o.qty, o.rule = e.stop, e.stop_limit, o.filled + e.qty, e.rule

    def _modified(self, e: ev.OrderModified) -> None:
        o = self._order(e.order_ref, e.role, e.rung, e.order_id)
        o.qty = e.qty
        o.limit = e.limit if e.limit is not None else o.limit
        o.stop = e.stop if e.stop is not None else o.stop

    def _slice_sent(self, e: ev.SliceSent) -> None:
        row = self.slices.setdefault(e.order_ref, SliceRow(e.order_ref, e.symbol, e.count))
        row.sent, row.sent_qty = max(row.sent, e.number), row.sent_qty + e.qty

    def _slice_skipped(self, e: ev.SliceSkipped) -> None:
        row = self.slices.setdefault(e.order_ref, SliceRow(e.order_ref, "", e.count))
        row.skipped = e.reason

    def slices_of(self, symbol: str) -> list[dict[str, Any]]:
        """The sliced entries in ``symbol``: slices sent of the count, shares sent and filled."""
        out = []
        for row in self.slices.values():
            if row.symbol != symbol:
                continue
            filled = sum(o.filled for (r, role, _), o in self.orders.items()
                         if r == row.ref and role == "entry")
            out.append({"ref": row.ref, "count": row.count, "sent": row.sent,
                        "sent_qty": row.sent_qty, "filled": filled, "skipped": row.skipped})
        return out

    def _commission(self, e: ev.CommissionReported) -> None:
        if abs(e.realized_pnl) < UNSET_DOUBLE:
            self.broker_realized[e.exec_id] = e.realized_pnl

    def _saw_price(self, symbol: str, price: Decimal) -> None:
        if symbol:
            self.prices[symbol] = price

    def working_exits(self) -> dict[str, tuple[list[OrderRow], list[OrderRow]]]:
        """Each symbol's working take-profit and stop orders (one pass over the orders)."""
        out: dict[str, tuple[list[OrderRow], list[OrderRow]]] = {}
        for o in self.orders.values():
            if o.role in ("take_profit", "stop") and o.is_open:
                tps, stops = out.setdefault(o.symbol, ([], []))
                (tps if o.role == "take_profit" else stops).append(o)
        return out

    # --- connection, configuration, daemon ---------------------------------------------

    def _up(self, e: ev.ConnectionUp) -> None:
        link = self.link
        link.connected, link.account, link.client_id = True, e.account, e.client_id
        link.address, link.connected_at = f"{e.host}:{e.port}", e.at

    def _lost(self, e: ev.ConnectionLost) -> None:
        self.link.connected = False
        self.link.disconnect_at, self.link.disconnect_reason = e.at, e.reason

    def _reloaded(self, e: ev.ConfigReloaded) -> None:
        cfg = self.config
        cfg.reloaded_at, cfg.result, cfg.errors = e.at, e.result, list(e.errors)
        cfg.digest = e.digest or cfg.digest
        if e.result != "invalid":  # an invalid reload changed nothing: the failures stand
            cfg.failed = list(e.failed)

    def _halted(self, e: ev.Halted) -> None:
        if e.reason == DISK_HALT:
            self.disk_problem = e.detail

    def _resumed(self, e: ev.Resumed) -> None:
        self.disk_problem = None

    def _daemon_state(self, e: ev.DaemonState) -> None:
        self.daemon_state, self.detail = e.state, e.detail
