"""Entry and exit order plans (strategy.md, Entry and Exits).

A plan is what will be sent: the parent BUY and its broker-held exits. Every
plan has ``stop < entry < take-profit`` for every rung, or the trigger ends as
a :class:`Rejection` with a reason.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import NamedTuple

from breakoutd.core.params import EntryKind, WatcherSpec
from breakoutd.core.prices import (
    MICROS_PER_CENT,
    MICROS_PER_DOLLAR,
    format_price,
    round_to_tick,
)

STOP_LIMIT_OFFSET = 2 * MICROS_PER_CENT  # the stop's limit is sl - 0.02


class Quote(NamedTuple):
    """A quote in force: prices in micros, None when that side is empty."""

    time: int
    bid: int | None
    bid_size: int | None
    ask: int | None
    ask_size: int | None

    def valid_ask(self) -> int | None:
        """The ask if it is a usable price (present and > 0)."""
        return self.ask if self.ask is not None and self.ask > 0 else None


class Rung(NamedTuple):
    """One take-profit rung: SELL LMT ``qty`` at ``price``."""

    price: int
    qty: int


class OrderPlan(NamedTuple):
    """The entry and its exits, ready for a router or a fill simulator."""

    watcher_id: str
    symbol: str
    order_ref: str
    qty: int
    entry: EntryKind
    limit: int | None  # None for a market entry
    reference_price: int  # the limit, or the ask a market order is expected at
    rungs: tuple[Rung, ...]
    stop: int | None
    stop_limit: int | None
    oca_group: str
    outside_rth: bool
    tif: str

    @property
    def notional(self) -> int:
        """Expected cost of the entry in micro-dollars."""
        return self.reference_price * self.qty


class Rejection(NamedTuple):
    """Why a triggered watcher did not enter."""

    reason: str
    detail: str = ""
    limit: int | None = None


def order_ref(day: str, session: str, watcher_id: str) -> str:
    """The deterministic, once-only key of a watcher's entry at the broker."""
    return f"bo:{day}:{session}:{watcher_id}"


def split_ladder(qty: int, splits: tuple[Decimal, ...], rungs: int) -> tuple[int, ...]:
    """Shares per rung: ``floor(qty * part)``, the remainder to the first rung."""
    if splits:
        shares = [int((qty * p).to_integral_value(rounding=ROUND_FLOOR)) for p in splits]
    else:
        shares = [qty // rungs] * rungs
    shares[0] += qty - sum(shares)
    return tuple(shares)


def size_position(spec: WatcherSpec, entry_price: int) -> int | Rejection:
    """Whole shares: the fixed ``qty``, or ``floor(risk_usd / (entry - sl))``."""
    risk = spec.params.risk_usd
    if risk is None:
        if spec.qty is None:
            return Rejection("no_size", "neither qty nor risk_usd is set")
        return spec.qty
    if spec.sl is None or entry_price <= spec.sl:
        return Rejection("entry_below_stop", "risk sizing needs an entry above the stop")
    qty = int(risk * MICROS_PER_DOLLAR // (entry_price - spec.sl))
    if spec.qty is not None:
        qty = min(qty, spec.qty)  # a fixed qty alongside risk_usd acts as a cap
    if qty < 1:
        return Rejection("size_zero", "risk_usd buys less than one share")
    return qty


def plan_order(spec: WatcherSpec, quote: Quote | None, ref: str) -> OrderPlan | Rejection:
    """Build the entry and exits for a trigger, priced from the quote in force."""
    ask = quote.valid_ask() if quote is not None else None
    if spec.params.entry is EntryKind.LIMIT_AT_ASK:
        if ask is None:
            return Rejection("no_quote", "no ask in force at the trigger")
        limit: int | None = round_to_tick(ask)
        reference = round_to_tick(ask)
    else:
        limit = None
        if ask is None:
            return Rejection("no_quote", "a market entry still needs an ask to check its exits")
        reference = ask
    qty = size_position(spec, reference)
    if isinstance(qty, Rejection):
        return qty._replace(limit=limit)
    return _with_exits(spec, ref, qty, limit, reference)


def _with_exits(
    spec: WatcherSpec, ref: str, qty: int, limit: int | None, reference: int
) -> OrderPlan | Rejection:
    rungs: tuple[Rung, ...] = ()
    if spec.tp:
        if spec.tp[0] <= reference:
            return Rejection("entry_above_tp", f"entry {format_price(reference)} is not below "
                                               f"tp {format_price(spec.tp[0])}", limit)
        shares = split_ladder(qty, spec.tp_split, len(spec.tp)) if spec.is_ladder else (qty,)
        if min(shares) < 1:
            return Rejection("ladder_too_small", f"{qty} shares cannot fill {len(spec.tp)} rungs", limit)
        rungs = tuple(Rung(p, q) for p, q in zip(spec.tp, shares, strict=True))
    stop = stop_limit = None
    if spec.sl is not None:
        if spec.sl >= reference:
            return Rejection("entry_below_stop", f"entry {format_price(reference)} is not above "
                                                 f"sl {format_price(spec.sl)}", limit)
        stop = spec.sl
        stop_limit = round_to_tick(spec.sl - STOP_LIMIT_OFFSET)
        if stop_limit <= 0:
            return Rejection("stop_limit_not_positive", "sl - 0.02 is not a positive price", limit)
    params = spec.params
    return OrderPlan(
        watcher_id=spec.id, symbol=spec.symbol, order_ref=ref, qty=qty, entry=params.entry,
        limit=limit, reference_price=reference, rungs=rungs, stop=stop, stop_limit=stop_limit,
        oca_group=f"oca:{ref}", outside_rth=params.outside_rth, tif=params.tif,
    )
