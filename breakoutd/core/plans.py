"""Entry and exit order plans (strategy.md, Entry and Exits).

A plan is what will be sent: the parent BUY and its broker-held exits. Every
plan has ``stop < entry < take-profit`` for every rung and an ask in
``[level, level + max_chase]``, or the trigger ends as a :class:`Rejection`
with a reason.
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
from breakoutd.core.relative_exits import tp_from_r

STOP_LIMIT_OFFSET = 2 * MICROS_PER_CENT  # the stop's limit is sl - 0.02
NO_MAX_ASK = 1 << 62  # no max_chase: above any price in micros (an int compare, not a None test)


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
    return PlanTemplate(spec, ref).at_quote(quote)


class PlanTemplate:
    """A watcher's entry plan up to the quote: what does not depend on the price, made once.

    :func:`plan_order` is ``PlanTemplate(spec, ref).at_quote(quote)``; the live
    daemon keeps the template from the moment the watcher is armed, so that a
    trigger only prices it. With ``risk_usd`` the size, and so the rungs,
    depend on the price and are made at the quote.
    """

    __slots__ = ("spec", "ref", "_limit_at_ask", "_level", "_max_ask", "_qty", "_rungs", "_stop",
                 "_stop_limit", "_stop_bad", "_oca", "_tp_r")

    def __init__(self, spec: WatcherSpec, ref: str) -> None:
        self.spec = spec
        self.ref = ref
        self._limit_at_ask = spec.params.entry is EntryKind.LIMIT_AT_ASK
        # The asks that confirm the break: [L, L + max_chase], one chained compare at the quote.
        chase = spec.params.max_chase
        self._level = spec.level
        self._max_ask = NO_MAX_ASK if chase is None else spec.level + chase
        # The size and the rungs, when they do not depend on the price (else None).
        self._qty: int | Rejection | None = None
        self._rungs: tuple[Rung, ...] | Rejection | None = None
        self._tp_r = spec.params.tp_r  # take-profits in R are priced from the entry, at the quote
        if spec.params.risk_usd is None:
            self._qty = size_position(spec, 0)
            if not isinstance(self._qty, Rejection) and not self._tp_r:
                self._rungs = _rungs(spec, self._qty)
        self._stop = spec.sl
        self._stop_limit = None if spec.sl is None else round_to_tick(spec.sl - STOP_LIMIT_OFFSET)
        self._stop_bad = self._stop_limit is not None and self._stop_limit <= 0
        self._oca = f"oca:{ref}"

    def at_quote(self, quote: Quote | None) -> OrderPlan | Rejection:
        """The plan priced from the quote in force, or why there is none."""
        spec = self.spec
        ask = quote.ask if quote is not None else None
        if ask is None or ask <= 0:
            return Rejection("no_quote", "no ask in force at the trigger" if self._limit_at_ask
                             else "a market entry still needs an ask to check its exits")
        limit: int | None
        if self._limit_at_ask:
            limit = reference = round_to_tick(ask)
        else:
            limit, reference = None, ask
        if not self._level <= ask <= self._max_ask:
            return self._unconfirmed(ask, limit)
        qty = self._qty if self._qty is not None else size_position(spec, reference)
        if isinstance(qty, Rejection):
            return qty._replace(limit=limit)
        if spec.tp and spec.tp[0] <= reference:
            return Rejection("entry_above_tp", f"entry {format_price(reference)} is not below "
                                               f"tp {format_price(spec.tp[0])}", limit)
        rungs = self._rungs if self._rungs is not None else _rungs(spec, qty)
        if isinstance(rungs, Rejection):
            return rungs._replace(limit=limit)
        stop = self._stop
        if stop is not None:
            if stop >= reference:
                return Rejection("entry_below_stop", f"entry {format_price(reference)} is not "
                                                     f"above sl {format_price(stop)}", limit)
            if self._stop_bad:
                return Rejection("stop_limit_not_positive", "sl - 0.02 is not a positive price",
                                 limit)
        if self._tp_r:
            rungs = self._rungs_in_r(qty, reference, stop)
            if isinstance(rungs, Rejection):
                return rungs._replace(limit=limit)
        params = spec.params
        return OrderPlan(spec.id, spec.symbol, self.ref, qty, params.entry, limit, reference,
                         rungs, stop, self._stop_limit, self._oca, params.outside_rth,
                         params.tif)

    def _rungs_in_r(self, qty: int, reference: int, stop: int | None
                    ) -> tuple[Rung, ...] | Rejection:
        """The rungs of ``tp_r``: their prices are R multiples from this entry's reference."""
        if stop is None:
            return Rejection("no_stop", "tp_r is in R, which needs a stop")
        return _rungs(self.spec, qty, tp_from_r(reference, stop, self._tp_r))

    def _unconfirmed(self, ask: int, limit: int | None) -> Rejection:
        """Why an ask outside [L, L + max_chase] does not confirm the break."""
        level = self._level
        if ask < level:  # a print the market's own quote does not reach: a bad print
            return Rejection("quote_below_level", f"ask {format_price(ask)} is below level "
                                                  f"{format_price(level)}", limit)
        return Rejection("chased", f"ask {format_price(ask)} is above level {format_price(level)} "
                                   f"+ max_chase {format_price(self._max_ask - level)}", limit)


def _rungs(spec: WatcherSpec, qty: int, prices: tuple[int, ...] | None = None
           ) -> tuple[Rung, ...] | Rejection:
    """The take-profit rungs of ``qty`` shares, or why the ladder cannot hold them."""
    tp = spec.tp if prices is None else prices
    if not tp:
        return ()
    shares = split_ladder(qty, spec.tp_split, len(tp)) if len(tp) > 1 else (qty,)
    if min(shares) < 1:
        return Rejection("ladder_too_small", f"{qty} shares cannot fill {len(tp)} rungs")
    return tuple(Rung(p, q) for p, q in zip(tp, shares, strict=True))
