"""The day ledger: today's entries, positions, P&L and the kill switch.

strategy.md, "Risk limits and the kill switch". One piece of code computes the
numbers the operator relies on (entries sent, open positions and unfilled
entries, notional, realized P&L after commissions, unrealized P&L at the last
print, consecutive losses, the halt), and the same code decides live and in
backtest. It is fed plain values: an entry sent, an execution (side, shares,
price, commission), an entry order done (filled or cancelled), a mark (the
close of a symbol's latest 1-second bar), and the halt, pause and resume.
:meth:`DayLedger.apply` maps the daemon's events onto them, so replaying a
day's journal rebuilds the ledger exactly (that is how it survives a restart).

Money is integer micro-dollars. A position's cost basis is its average cost;
a sell realizes ``qty * (price - average cost)``. A trade closes when its entry
order is done and every share it bought is sold; it is a loss when its P&L
after all its commissions is below zero, judged once the commission of each of
its executions is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from breakoutd.core import events as ev
from breakoutd.core.params import RiskLimits
from breakoutd.core.plans import OrderPlan, Rejection
from breakoutd.core.prices import MICROS_PER_DOLLAR, format_price, to_micros

UNSET_DOUBLE = 1e300  # IB sends DBL_MAX for "no value" (a commission not known yet, the
# realized P&L of an opening fill): anything this large is none
_SELL_SIDES = frozenset({"SLD", "SELL"})
HALT_REASONS = frozenset({"daily_loss", "consecutive_losses", "operator", "disk"})
DISK_HALT = "disk"  # the journal or the state file cannot be written: nothing may be sent


class Trip(NamedTuple):
    """The kill switch tripped: ``reason`` is ``daily_loss`` or ``consecutive_losses``."""

    reason: str
    detail: str


@dataclass(slots=True)
class EntryBook:
    """One entry and the position it opened; money in micro-dollars."""

    order_ref: str
    watcher_id: str
    symbol: str
    qty: int  # shares the entry asked for
    reference: int  # the limit, or the ask a market entry was priced from
    working: bool = True  # the entry order can still fill
    bought: int = 0
    sold: int = 0
    open_cost: int = 0  # cost basis of the shares still held
    realized: int = 0  # gross of commissions
    commissions: int = 0
    unpriced: set[str] = field(default_factory=set)  # exec ids without a commission yet
    closed: bool = False  # the trade is over and has been counted
    first_fill_at: int | None = None  # the entry's first execution (max_hold counts from it)
    trigger_at: int | None = None  # the trigger of its entry (a slice schedule counts from it)
    slices_sent: set[int] = field(default_factory=set)  # slice numbers sent (SliceSent)
    slices_over: str | None = None  # why no more slices are sent (SliceSkipped)

    @property
    def open_qty(self) -> int:
        """Shares held now."""
        return self.bought - self.sold

    @property
    def takes_slot(self) -> bool:
        """An open position or an entry not yet filled or cancelled (max_positions)."""
        return self.open_qty > 0 or (self.working and self.bought < self.qty)

    @property
    def notional(self) -> int:
        """qty x price of what is held (at cost) and of what the entry may still buy."""
        waiting = self.qty - self.bought if self.working else 0
        return self.open_cost + max(waiting, 0) * self.reference

    @property
    def avg_cost(self) -> int | None:
        """The average cost of the shares held, on the micro-dollar."""
        return self.open_cost // self.open_qty if self.open_qty > 0 else None

    def unrealized(self, mark: int | None) -> int:
        """The P&L of the shares held at ``mark`` (0 without a mark)."""
        return 0 if mark is None or self.open_qty <= 0 else self.open_qty * mark - self.open_cost


@dataclass(slots=True)
class DayLedger:
    """Today's trading numbers against the risk limits (see the module docstring)."""

    limits: RiskLimits
    books: dict[str, EntryBook] = field(default_factory=dict)  # by order ref
    entries: int = 0
    marks: dict[str, int] = field(default_factory=dict)  # symbol -> last 1-second close
    consecutive_losses: int = 0
    halted: str | None = None  # why trading is halted (daily_loss, consecutive_losses, operator,
    # disk)
    paused: bool = False
    _execs: set[str] = field(default_factory=set)
    _priced: set[str] = field(default_factory=set)

    # --- the numbers -------------------------------------------------------------------

    @property
    def realized(self) -> int:
        """Realized P&L after commissions."""
        return sum(b.realized - b.commissions for b in self.books.values())

    @property
    def commissions(self) -> int:
        """Commissions paid today."""
        return sum(b.commissions for b in self.books.values())

    @property
    def unrealized(self) -> int:
        """Unrealized P&L of every open position at its symbol's last mark."""
        return sum(b.unrealized(self.marks.get(b.symbol)) for b in self.books.values())

    @property
    def pnl(self) -> int:
        """The day's P&L: realized after commissions plus unrealized."""
        return self.realized + self.unrealized

    @property
    def slots(self) -> int:
        """Open positions plus entries not yet filled or cancelled."""
        return sum(1 for b in self.books.values() if b.takes_slot)

    @property
    def notional(self) -> int:
        """The notional of every slot."""
        return sum(b.notional for b in self.books.values() if b.takes_slot)

    def open_books(self) -> list[EntryBook]:
        """Entries that hold shares now."""
        return [b for b in self.books.values() if b.open_qty > 0]

    def positions(self) -> dict[str, tuple[int, int]]:
        """Per symbol: shares held and their cost basis."""
        out: dict[str, tuple[int, int]] = {}
        for b in self.open_books():
            qty, cost = out.get(b.symbol, (0, 0))
            out[b.symbol] = (qty + b.open_qty, cost + b.open_cost)
        return out

    # --- the decision --------------------------------------------------------------------

    def check(self, plan: OrderPlan) -> Rejection | None:
        """The first reason this entry must not be sent now, or None.

        A loss past the limit that no mark has reported yet trips the kill switch
        here (:meth:`trip_due` tells the caller)."""
        lim = self.limits
        why = self.halted
        if why is None:
            due = self.trip_due()
            why = due.reason if due is not None else None
        if why == DISK_HALT:
            return disk_rejection(plan)
        if why is not None:
            return Rejection("risk_halted", f"trading is halted ({why})", plan.limit)
        if self.paused:
            return Rejection("paused", "the operator paused new entries", plan.limit)
        if lim.max_entries_per_day is not None and self.entries >= lim.max_entries_per_day:
            return Rejection("risk_max_entries", f"{self.entries} entries today", plan.limit)
        if lim.max_positions is not None and self.slots >= lim.max_positions:
            return Rejection("risk_max_positions", f"{self.slots} open", plan.limit)
        if lim.max_notional_usd is not None:
            total = self.notional + plan.notional
            if total > _micros(lim.max_notional_usd):
                return Rejection("risk_max_notional",
                                 f"notional would be {format_price(total)}", plan.limit)
        return None

    def trip_due(self) -> Trip | None:
        """The kill switch's reason to trip now, if it is not halted already."""
        if self.halted is not None:
            return None
        lim = self.limits
        if lim.max_daily_loss_usd is not None and self.pnl <= -_micros(lim.max_daily_loss_usd):
            return Trip("daily_loss", f"the day's P&L {format_price(self.pnl)} reached "
                                      f"-{lim.max_daily_loss_usd}")
        streak = lim.max_consecutive_losses
        if streak is not None and self.consecutive_losses >= streak:
            return Trip("consecutive_losses", f"{self.consecutive_losses} losing trades in a row")
        return None

    def can_resume(self) -> str | None:
        """Why a resume must be refused now, or None."""
        if self.halted is None and not self.paused:
            return "trading is neither halted nor paused"
        lim = self.limits
        if self.halted == "daily_loss" and lim.max_daily_loss_usd is not None \
                and self.pnl <= -_micros(lim.max_daily_loss_usd):
            return (f"the day's P&L {format_price(self.pnl)} is still past the daily loss limit "
                    f"-{lim.max_daily_loss_usd}; raise max_daily_loss_usd to trade on")
        return None

    # --- what happened ---------------------------------------------------------------------

    def sent(self, order_ref: str, watcher_id: str, symbol: str, qty: int, reference: int) -> None:
        """An entry is on its way to the broker: it counts and takes a slot."""
        if order_ref in self.books:
            return
        self.entries += 1
        self.books[order_ref] = EntryBook(order_ref, watcher_id, symbol, qty, reference)

    def filled(self, order_ref: str, exec_id: str, symbol: str, side: str, qty: int,
               price: int, commission: int | None) -> None:
        """One execution of an entry's order (once per exec id)."""
        if exec_id in self._execs:
            return
        self._execs.add(exec_id)
        if qty <= 0:
            return
        book = self._book(order_ref, symbol, qty, price)
        if side in _SELL_SIDES:
            held = book.open_qty
            basis = book.open_cost * min(qty, held) // held if held > 0 else qty * price
            book.open_cost -= basis if held > 0 else 0
            book.realized += qty * price - basis
            book.sold += qty
        else:
            book.bought += qty
            book.open_cost += qty * price
            if book.bought >= book.qty:
                book.working = False
        book.unpriced.add(exec_id)
        if commission is not None:
            self.commission(exec_id, commission, order_ref)
        self._close_if_done(book)

    def has_execution(self, exec_id: str) -> bool:
        """True once the execution is counted (live, or in the journal replayed)."""
        return exec_id in self._execs

    def commission(self, exec_id: str, commission: int, order_ref: str) -> None:
        """The broker's commission of one execution (once per exec id)."""
        book = self.books.get(order_ref)
        if book is None or exec_id in self._priced:
            return
        self._priced.add(exec_id)
        book.commissions += commission
        book.unpriced.discard(exec_id)
        self._close_if_done(book)

    def entry_done(self, order_ref: str) -> None:
        """The entry order is over (filled, cancelled or rejected): it buys no more."""
        book = self.books.get(order_ref)
        if book is not None and book.working:
            book.working = False
            self._close_if_done(book)

    def mark(self, symbol: str, price: int) -> None:
        """The close of the symbol's latest 1-second bar."""
        self.marks[symbol] = price

    def halt(self, reason: str) -> None:
        """Halt trading (the kill switch or the operator)."""
        self.halted = reason

    def pause(self) -> None:
        """The operator's pause: no new entries."""
        self.paused = True

    def resume(self) -> None:
        """Trade again; the losing streak that may have tripped the switch starts over."""
        if self.halted == "consecutive_losses":
            self.consecutive_losses = 0
        self.halted = None
        self.paused = False

    def _book(self, order_ref: str, symbol: str, qty: int, price: int) -> EntryBook:
        book = self.books.get(order_ref)
        if book is None:  # its send was lost in a crash; the broker's fill tells of it
            watcher = order_ref.split(":", 3)[-1]
            self.entries += 1
            book = self.books[order_ref] = EntryBook(order_ref, watcher, symbol, qty, price,
                                                     working=False)
        return book

    def _close_if_done(self, book: EntryBook) -> None:
        if book.closed or book.working or book.bought == 0 or book.open_qty > 0 or book.unpriced:
            return
        book.closed = True
        if book.realized - book.commissions < 0:
            self.consecutive_losses += 1
        else:
            self.consecutive_losses = 0

    # --- events ------------------------------------------------------------------------------

    def apply(self, e: ev.Event) -> None:
        """Fold one of the daemon's events into the ledger (others are ignored)."""
        handler = _HANDLERS.get(type(e))
        if handler is not None:
            handler(self, e)


def _intent(ledger: DayLedger, e: ev.Event) -> None:
    assert isinstance(e, ev.OrderIntent)
    reference = e.reference if e.reference is not None else e.limit
    ledger.sent(e.order_ref, e.watcher_id, e.symbol, e.qty,
                to_micros(reference) if reference is not None else 0)
    ledger.books[e.order_ref].trigger_at = e.trigger_at


def _slice_sent(ledger: DayLedger, e: ev.Event) -> None:
    assert isinstance(e, ev.SliceSent)
    book = ledger.books.get(e.order_ref)
    if book is not None:
        book.slices_sent.add(e.number)


def _slice_skipped(ledger: DayLedger, e: ev.Event) -> None:
    assert isinstance(e, ev.SliceSkipped)
    book = ledger.books.get(e.order_ref)
    if book is not None and book.slices_over is None:
        book.slices_over = e.reason


def _fill(ledger: DayLedger, e: ev.Event) -> None:
    assert isinstance(e, ev.OrderFilled)
    ledger.filled(e.order_ref, e.exec_id, e.symbol, e.side, e.qty, to_micros(e.price),
                  commission_micros(e.commission))
    book = ledger.books.get(e.order_ref)
    if e.role == "entry" and book is not None and book.first_fill_at is None:
        book.first_fill_at = e.at


def _commission(ledger: DayLedger, e: ev.Event) -> None:
    assert isinstance(e, ev.CommissionReported)
    micros = commission_micros(e.commission)
    if micros is not None:
        ledger.commission(e.exec_id, micros, e.order_ref)


def _status(ledger: DayLedger, e: ev.Event) -> None:
    assert isinstance(e, ev.OrderStatusChanged)
    if e.role == "entry" and e.status in ev.DONE_STATUSES:
        ledger.entry_done(e.order_ref)


def _halted(ledger: DayLedger, e: ev.Event) -> None:
    assert isinstance(e, ev.Halted)
    ledger.halt(e.reason)


def _paused(ledger: DayLedger, e: ev.Event) -> None:
    ledger.pause()


def _resumed(ledger: DayLedger, e: ev.Event) -> None:
    ledger.resume()


_HANDLERS = {
    ev.OrderIntent: _intent, ev.OrderFilled: _fill, ev.CommissionReported: _commission,
    ev.OrderStatusChanged: _status, ev.Halted: _halted,
    ev.Paused: _paused, ev.Resumed: _resumed,
    ev.SliceSent: _slice_sent, ev.SliceSkipped: _slice_skipped,
}


def disk_rejection(plan: OrderPlan) -> Rejection:
    """An entry refused because what it would journal cannot reach the disk."""
    return Rejection("risk_halted", "trading is halted (disk): the journal or the state file "
                                    "cannot be written", plan.limit)


def commission_micros(commission: float | None) -> int | None:
    """A commission in dollars as the broker reports it, in micro-dollars (None: not known)."""
    if commission is None or not abs(commission) < UNSET_DOUBLE:
        return None
    return round(commission * MICROS_PER_DOLLAR)


def _micros(usd: object) -> int:
    return to_micros(str(usd))
