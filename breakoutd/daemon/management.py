"""Position management live: the stop rules and the time exits of each open position.

strategy.md, "Position management". Every 1-second bar of a held symbol is a
print (its high, as in the backtest): :mod:`breakoutd.core.stop_rules` says
where the stop should be, and the router modifies the broker-held stop
(``OrderRouter.raise_stop``: never down, whole ticks, at most once a second
per order; ``StopMoved`` with the rule). At ``exit_at`` or the first fill
plus ``max_hold`` (:mod:`breakoutd.core.time_exits`) the position is sold as
a flatten is (``TimeExit``, then ``FlattenSent`` with reason ``time_exit``).

Restart-safe: nothing here is the truth. After a restart the stop is where
the broker holds it (the router adopts it), the first fill's time comes from
the day ledger (folded from the journal), and a sale found at the broker
(``OrderRouter.sale_sent``) is never sent again. The prints since the fill
are not kept: the highest print is the one the journal's stop moves of the
position vouch for (:func:`breakoutd.core.stop_rules.resume_stop`; a trail
move to S was asked by a print near S + D), then every bar after the restart;
so a trail goes on from where it was and never lower. A named level and its
``sl_below`` stop (R) are the ones resolved today (``LevelResolved``, kept
across a restart by the trading day).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger

from breakoutd.calendar import exchange_ns
from breakoutd.core import events as ev
from breakoutd.core.bars import Bar
from breakoutd.core.params import WatcherSpec
from breakoutd.core.prices import to_micros
from breakoutd.core.stop_rules import (
    ManagedStop,
    StopProposal,
    StopRule,
    on_ladder_stop,
    on_print,
    resume_stop,
)
from breakoutd.core.time_exits import NS_PER_SECOND, TimeExit, time_exit
from breakoutd.ibkr.router import RoutedEntry

if TYPE_CHECKING:
    from breakoutd.daemon.app import Daemon

_NEVER = 2**62
RETRY_NS = 5 * NS_PER_SECOND  # a time exit that could not be sent is tried again this often


@dataclass(slots=True)
class _Managed:
    order_ref: str
    spec: WatcherSpec
    stop: ManagedStop | None = None
    due: TimeExit | None = None
    announced: bool = False  # TimeExit emitted
    selling: bool = False  # the sale is under way or sent


class PositionManager:
    """Follows the open positions whose watcher has position-management rules."""

    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        self._positions: dict[str, _Managed] = {}
        self._next_due = _NEVER

    def on_fill(self, entry: RoutedEntry, fill: ev.OrderFilled) -> None:
        """The router's fill hook: an entry fill starts (or updates) the management."""
        if fill.role == "entry":
            self.follow(entry)

    def rebuild(self) -> None:
        """After start-up's reconciliation: follow what the broker holds for us."""
        router = self._d.router
        if router is None:
            return
        for entry in router.entries():
            if entry.filled > 0:
                self.follow(entry)

    def forget_all(self) -> None:
        """A new trading day: yesterday's positions are not managed by today's rules."""
        self._positions.clear()
        self._next_due = _NEVER

    def follow(self, entry: RoutedEntry) -> None:
        """Manage ``entry``'s position if its watcher has rules (idempotent)."""
        d = self._d
        spec = d.config.watcher(entry.watcher_id) if d.config is not None else None
        if spec is None or not spec.params.manages_position or d.router is None:
            return
        spec = d.todays_spec(spec)  # a named level as resolved: sl_below's stop, R
        m = self._positions.get(entry.order_ref)
        if m is None:
            m = self._positions[entry.order_ref] = _Managed(entry.order_ref, spec)
            m.selling = d.router.sale_sent(entry.order_ref)
            m.announced = entry.order_ref in d.today.time_exits  # TimeExit once, restarts too
        held = d.router.stop_of(entry.order_ref)
        avg, initial = entry.avg_price, spec.sl
        if avg is not None and initial is not None and initial < avg and held is not None:
            m.stop = resume_stop(spec.params, avg, initial, held, self._moves(entry.order_ref)) \
                if m.stop is None else m.stop._replace(fill=avg)
        if m.due is None:
            book = d.today.ledger.books.get(entry.order_ref)
            first = book.first_fill_at if book is not None and book.first_fill_at else d.clock()
            m.due = time_exit(spec.params, first, exchange_ns(d.day, dt.time(0)))
            if m.due is not None:
                self._next_due = min(self._next_due, m.due.at)

    def _moves(self, order_ref: str) -> list[StopProposal]:
        """The position's stop moves journalled today (before a restart too), oldest first."""
        rules = {r.value: r for r in StopRule}
        return [StopProposal(to_micros(m.stop), rules[m.rule])
                for m in self._d.today.stop_moves.get(order_ref, []) if m.rule in rules]

    # --- the stop rules --------------------------------------------------------------

    def on_bar(self, symbol: str, bar: Bar) -> None:
        """A 1-second bar of a held symbol: its high is a print for the stop rules."""
        router = self._d.router
        if router is None:
            return
        for m in self._positions.values():
            if m.stop is None or m.selling or m.spec.symbol != symbol:
                continue
            held = router.stop_of(m.order_ref)
            if held is None:
                continue
            state = on_ladder_stop(m.stop, held) if held > m.stop.stop else m.stop
            m.stop = state = on_print(m.spec.params, state, bar.high)
            if state.stop > held:
                router.raise_stop(m.order_ref, state.stop, state.rule.value)

    # --- the time exits --------------------------------------------------------------

    def on_clock(self, now: int) -> None:
        """The daemon's tick: start the sale of each position whose time exit is due."""
        if now < self._next_due:
            return
        self._next_due = _NEVER
        for m in self._positions.values():
            if m.due is None or m.selling:
                continue
            if now >= m.due.at:
                m.selling = True
                asyncio.get_running_loop().create_task(self._sell(m, now))
            else:
                self._next_due = min(self._next_due, m.due.at)

    async def _sell(self, m: _Managed, now: int) -> None:
        d = self._d
        book = d.today.ledger.books.get(m.order_ref)
        if book is None or book.open_qty <= 0 or m.due is None:
            return  # flat already: nothing to sell
        if not m.announced:
            m.announced = True
            d.emit(ev.TimeExit(at=now, order_ref=m.order_ref, watcher_id=book.watcher_id,
                               symbol=book.symbol, rule=m.due.rule.value, due_at=m.due.at))
        failed = await d.controls.sell_on_time(book)
        if failed is None:
            return
        if d.router is not None and d.router.sale_sent(m.order_ref):
            return  # a sale is working: it is not sent twice
        logger.error("{}: the time exit could not be sent ({}); trying again in {} s",
                     m.order_ref, failed, RETRY_NS // NS_PER_SECOND)
        m.selling = False
        m.due = m.due._replace(at=d.clock() + RETRY_NS)
        self._next_due = min(self._next_due, m.due.at)
