"""Trades from a day's events, folded through the daemon's day ledger.

A trade is one entry order and the shares it bought: its fills, its exits,
the stop moves, and its P&L after commissions as :class:`DayLedger` counts
it. The R multiple is that P&L over the trade's initial risk, (entry price -
initial stop) x shares; a trade without a stop has no R.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from breakoutd.core import events as ev
from breakoutd.core.ledger import DayLedger
from breakoutd.core.params import RiskLimits
from breakoutd.core.prices import to_micros


@dataclass(frozen=True, slots=True)
class TradeFill:
    """One execution of a trade."""

    at: int
    side: str  # BOT | SLD
    role: ev.OrderRole
    rung: int
    qty: int
    price: int  # micro-dollars
    reason: str = ""  # a flatten's: time_exit, halt, operator (FlattenSent)

    @property
    def label(self) -> str:
        """tp1.., stop, entry, or a flatten's reason (flatten when unknown)."""
        if self.role == "take_profit":
            return f"tp{self.rung}"
        return self.reason or self.role


@dataclass(frozen=True, slots=True)
class Trade:
    """One entry and the position it opened, with its figures (money in micro-dollars)."""

    day: str
    watcher_id: str
    symbol: str
    kind: str
    preset: str
    order_ref: str
    level: int | None
    trigger_at: int
    entry_at: int
    entry_price: int  # average price of the shares bought
    shares: int
    exit_at: int | None  # the last sale, None while shares are held
    exit_price: int | None  # average price of the shares sold
    stop: int | None  # the initial stop
    pnl: int  # after commissions; shares still held are marked when a mark is known
    commissions: int
    open_qty: int
    fills: tuple[TradeFill, ...] = ()
    stops: tuple[tuple[int, int], ...] = ()  # (at, new stop) after each ladder move

    @property
    def risk(self) -> int | None:
        """The initial risk: (entry price - initial stop) x shares."""
        if self.stop is None or self.entry_price <= self.stop:
            return None
        return (self.entry_price - self.stop) * self.shares

    @property
    def r(self) -> float | None:
        """The P&L in multiples of the initial risk."""
        risk = self.risk
        return self.pnl / risk if risk else None

    @property
    def exit_reason(self) -> str:
        """How the shares left: the exits' labels in order (``tp1+stop``), or ``open``."""
        labels: list[str] = []
        for f in self.fills:
            if f.side != "BOT" and f.label not in labels:
                labels.append(f.label)
        if self.open_qty > 0:
            labels.append("open")
        return "+".join(labels) or "open"

    @property
    def closed_at(self) -> int:
        """When the trade counts on the equity curve: its last sale, else its entry."""
        return self.exit_at if self.exit_at is not None else self.entry_at


@dataclass(slots=True)
class _Open:
    intent: ev.OrderIntent
    fills: list[TradeFill] = field(default_factory=list)
    stops: list[tuple[int, int]] = field(default_factory=list)


def fold_trades(day: str, events: Iterable[ev.Event], marks: Mapping[str, int] | None = None,
                presets: Mapping[str, str] | None = None) -> list[Trade]:
    """The trades of one day's events, in entry order; ``marks`` price what is still held."""
    ledger = DayLedger(RiskLimits())
    levels: dict[str, int] = {}
    orders: dict[str, _Open] = {}
    flattens: dict[str, str] = {}  # order ref -> why its position is being sold
    execs: set[str] = set()  # an execution journaled twice (a resync) counts once, as in the ledger
    for e in events:
        ledger.apply(e)
        if isinstance(e, ev.WatcherStarted):
            levels[e.watcher_id] = to_micros(e.level)
        elif isinstance(e, ev.OrderIntent):
            orders.setdefault(e.order_ref, _Open(e))
        elif isinstance(e, ev.OrderFilled) and e.order_ref in orders and e.exec_id not in execs:
            execs.add(e.exec_id)
            orders[e.order_ref].fills.append(TradeFill(
                e.at, "SLD" if e.side in ("SLD", "SELL") else "BOT", e.role, e.rung, e.qty,
                to_micros(e.price), flattens.get(e.order_ref, "") if e.role == "flatten" else ""))
        elif isinstance(e, ev.FlattenSent):
            flattens[e.order_ref] = e.reason
        elif isinstance(e, ev.StopMoved) and e.order_ref in orders:
            orders[e.order_ref].stops.append((e.at, to_micros(e.stop)))
    for symbol, price in (marks or {}).items():
        ledger.mark(symbol, price)
    trades = []
    for ref, o in orders.items():
        book = ledger.books.get(ref)
        if book is None or book.bought == 0:
            continue
        trades.append(_trade(day, o, book, ledger, levels, presets or {}))
    return sorted(trades, key=lambda t: (t.entry_at, t.watcher_id))


def _trade(day: str, o: _Open, book, ledger: DayLedger,  # type: ignore[no-untyped-def]
           levels: Mapping[str, int], presets: Mapping[str, str]) -> Trade:
    i = o.intent
    buys = [f for f in o.fills if f.side == "BOT"]
    sells = [f for f in o.fills if f.side != "BOT"]
    bought_value = sum(f.qty * f.price for f in buys)
    sold = sum(f.qty for f in sells)
    mark = ledger.marks.get(book.symbol)
    return Trade(
        day=day, watcher_id=i.watcher_id, symbol=i.symbol, kind=i.kind,
        preset=presets.get(i.watcher_id, "-"), order_ref=i.order_ref,
        level=levels.get(i.watcher_id), trigger_at=i.trigger_at,
        entry_at=min(f.at for f in buys) if buys else i.at,
        entry_price=bought_value // book.bought if buys else book.reference,
        shares=book.bought,
        exit_at=max(f.at for f in sells) if sells and book.open_qty == 0 else None,
        exit_price=sum(f.qty * f.price for f in sells) // sold if sold else None,
        stop=to_micros(i.stop) if i.stop is not None else None,
        pnl=book.realized - book.commissions + book.unrealized(mark),
        commissions=book.commissions, open_qty=book.open_qty,
        fills=tuple(o.fills), stops=tuple(o.stops))
