"""Sliced entries live: the schedule of each entry's slices, sent once each.

strategy.md, Position management, ``slices: {count, every}``. At the trigger
the entry is sent as its first slice (the bracket, for the first slice's
shares: :mod:`breakoutd.ibkr.slicing`); slice k is due at
``T + (k-1) * every`` (:func:`breakoutd.core.slicing.slice_schedule`), priced
like the entry from the quote then (a fresh one, as the entry's: warmup and
one snapshot), and sent with its own orderRef ``...:sK``. Each ``SliceSent``
is journalled; the first slice that is not sent says why in ``SliceSkipped``
and no later one is sent:

- ``breaks_exits``: its reference is at or above the take-profit, or at or
  below the stop in force (the core's ``slice_keeps_exits``);
- ``no_quote``: no fresh ask;
- ``unfilled``: an earlier slice has not filled completely (the first slice's
  exits work only once it has, and a book that does not fill a slice is not
  fed another; a partly filled first slice keeps working as an entry does);
- ``closed``: an exit (the stop or the take-profit) has sold, and the slices
  still working were cancelled by the router; ``sold``: a flatten or a time
  exit sells the position (its working slices are cancelled with the exits);
- ``halted``: the kill switch or the operator halted trading (working slices
  are cancelled); a pause does not stop the slices of an entry already sent;
- ``late``: it came due more than ``every`` seconds before the daemon could
  send it (it was down): an old plan is not bought into a later market;
- ``failed``: the broker connection refused it.

A slice that fills after its exits are done (its cancel came too late) holds
shares no stop covers: they are sold at once as a flatten (``FlattenSent``,
reason ``unprotected``).

Restart-safe: after a kill -9 the slices sent are those the broker holds
(reconciled by orderRef: ``OrderRouter.slices_sent``) and those journalled
(the day ledger, folded from the journal); the trigger time comes from the
journal's ``OrderIntent``; the router refuses a slice's ref it, or the
broker, has seen. So no slice is sent twice, and the exits are sized once to
what the broker says is held (fills made while the daemon was down).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger

from breakoutd.core import events as ev
from breakoutd.core.bars import NS
from breakoutd.core.params import EntryKind, WatcherSpec
from breakoutd.core.plans import OrderPlan
from breakoutd.core.prices import round_to_tick, to_decimal
from breakoutd.core.slicing import Slice, slice_keeps_exits, slice_schedule, slice_shares
from breakoutd.errors import OrderRejected
from breakoutd.ibkr.router import RoutedEntry
from breakoutd.ibkr.slicing import exits_done, first_take_profit

if TYPE_CHECKING:
    from collections.abc import Callable

    from ib_async import Contract

    from breakoutd.daemon.app import Daemon

_NEVER = 2**62


@dataclass(slots=True)
class _Sliced:
    order_ref: str
    spec: WatcherSpec
    schedule: tuple[Slice, ...]
    next: int  # index in schedule of the next slice to send
    busy: bool = False  # its send is under way

    @property
    def due(self) -> Slice | None:
        return self.schedule[self.next] if self.next < len(self.schedule) else None


def sliced(spec: WatcherSpec | None) -> bool:
    """True when the watcher's entry goes out in more than one slice."""
    return spec is not None and spec.params.slices is not None and spec.params.slices.count > 1


def _with_shares(schedule: tuple[Slice, ...]) -> tuple[Slice, ...]:
    """The slices that have shares: a risk-sized entry smaller than the count has fewer
    (the empty ones are the last, the remainder going to the first)."""
    return tuple(s for s in schedule if s.qty > 0)


def first_slice(plan: OrderPlan, qty: int) -> OrderPlan:
    """The plan of the first slice: ``qty`` shares, and exits sized to them."""
    return plan._replace(qty=qty, rungs=tuple(r._replace(qty=qty) for r in plan.rungs))


class SliceManager:
    """Sends the later slices of each sliced entry when they come due."""

    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        self._entries: dict[str, _Sliced] = {}
        self._next_due = _NEVER

    def slices_entry(self, watcher_id: str) -> bool:
        """True when ``watcher_id``'s entry is to be sent in slices."""
        config = self._d.config
        return config is not None and sliced(config.watcher(watcher_id))

    # --- the first slice ---------------------------------------------------------------

    def send_entry(self, plan: OrderPlan, contract: Contract, level: int,
                   announce: Callable[[], None]) -> None:
        """Send a sliced entry's first slice (the runner's send); the rest are scheduled."""
        d = self._d
        spec = d.config.watcher(plan.watcher_id) if d.config is not None else None
        router = d.router
        if router is None or spec is None or spec.params.slices is None:
            raise OrderRejected("no broker connection yet")
        qty = slice_shares(plan.qty, spec.params.slices.count)[0]
        entry = router.send_now(first_slice(plan, qty), contract, level, announce, sliced=True)
        book = d.today.ledger.books.get(plan.order_ref)  # OrderIntent, journalled by announce
        trigger_at = book.trigger_at if book is not None and book.trigger_at else d.clock()
        schedule = _with_shares(slice_schedule(plan.qty, spec.params.slices, trigger_at,
                                               plan.order_ref))
        m = self._follow(plan.order_ref, spec, schedule, start=1)
        d.emit(ev.SliceSent(at=d.clock(), order_ref=plan.order_ref, watcher_id=spec.id,
                            symbol=spec.symbol, number=1, count=len(schedule),
                            order_id=entry.parent_id, qty=qty,
                            limit=None if plan.limit is None else to_decimal(plan.limit),
                            due_at=trigger_at))
        if m.due is not None:
            self._next_due = min(self._next_due, m.due.at)
        else:  # one slice only (a risk-sized entry of one share): nothing more to send
            self._entries.pop(plan.order_ref, None)

    def _follow(self, order_ref: str, spec: WatcherSpec, schedule: tuple[Slice, ...],
                start: int) -> _Sliced:
        m = self._entries[order_ref] = _Sliced(order_ref, spec, schedule, start)
        return m

    # --- after a restart ---------------------------------------------------------------

    def rebuild(self) -> None:
        """After start-up's reconciliation: the slices still to send, from the broker and
        the journal; the exits sized to what the broker says is held."""
        d, router = self._d, self._d.router
        if router is None or d.config is None:
            return
        for entry in router.entries():
            spec = d.config.watcher(entry.watcher_id)
            book = d.today.ledger.books.get(entry.order_ref)
            sent = router.slices_sent(entry.order_ref)
            if spec is None or not sliced(spec) or not sent or entry.order_ref in self._entries:
                continue
            router.size_exits(entry.order_ref)
            if book is not None:
                sent |= book.slices_sent
            assert spec.params.slices is not None
            if book is None or book.trigger_at is None or book.slices_over is not None:
                continue  # over, or never journalled: nothing more is sent
            schedule = _with_shares(slice_schedule(book.qty, spec.params.slices,
                                                   book.trigger_at, entry.order_ref))
            m = self._follow(entry.order_ref, spec, schedule, start=max(sent))
            if m.due is not None:
                self._next_due = min(self._next_due, m.due.at)

    def forget_all(self) -> None:
        """A new trading day: yesterday's slices are not sent."""
        self._entries.clear()
        self._next_due = _NEVER

    # --- the later slices --------------------------------------------------------------

    def on_clock(self, now: int) -> None:
        """The daemon's tick: start the send of each slice that has come due."""
        if self._entries and self._d.today.ledger.halted is not None:
            self._halt()
        if now < self._next_due:
            return
        self._next_due = _NEVER
        for m in list(self._entries.values()):
            due = m.due
            if due is None or m.busy:
                continue
            if now >= due.at:
                m.busy = True
                asyncio.get_running_loop().create_task(self._send(m, due, now))
            else:
                self._next_due = min(self._next_due, due.at)

    async def _send(self, m: _Sliced, due: Slice, now: int) -> None:
        try:
            why = self._why_not(m, due, now)
            limit: int | None = None
            if why is None:
                why, limit = await self._price(m, due)
            if why is None:
                why = self._why_not(m, due, self._d.clock())  # the quote may have taken a while
            if why is None:
                why = await self._place(m, due, limit)
        finally:
            m.busy = False
        if why is not None:
            self._skip(m, due, *why)
            return
        m.next += 1
        if m.due is not None:
            self._next_due = min(self._next_due, m.due.at)

    def _why_not(self, m: _Sliced, due: Slice, now: int) -> tuple[str, str] | None:
        """Why slice ``due`` is not to be sent now (reason, detail), or None."""
        d, router = self._d, self._d.router
        entry = router.entry(m.order_ref) if router is not None else None
        if router is None or entry is None:
            return "failed", "the entry is not followed at the broker"
        if d.today.ledger.halted is not None:
            router.cancel_slices(m.order_ref, "trading halted")
            return "halted", f"trading is halted ({d.today.ledger.halted})"
        if router.sale_sent(m.order_ref):
            return "sold", "the position is being sold"
        if entry.sold > 0:
            return "closed", "an exit has sold"
        earlier = sum(s.qty for s in m.schedule[:due.number - 1])
        if entry.filled < earlier:
            return "unfilled", f"{entry.filled} of the earlier slices' {earlier} shares filled"
        every = m.spec.params.slices.every if m.spec.params.slices is not None else 0
        if now > due.at + every * NS:
            return "late", f"due {(now - due.at) // NS} s ago"
        return None

    async def _price(self, m: _Sliced, due: Slice) -> tuple[tuple[str, str] | None, int | None]:
        """The slice's reference from a fresh ask, checked against the exits in force."""
        d, params = self._d, m.spec.params
        quote, _ = await d.market.fresh_quote(m.spec.symbol, int(params.quote_age * NS),
                                              float(params.quote_warmup))
        ask = quote.valid_ask() if quote is not None else None
        if ask is None:
            return ("no_quote", "no fresh ask"), None
        reference = ask if params.entry is EntryKind.MARKET else round_to_tick(ask)
        router = d.router
        assert router is not None
        stop, tp = router.stop_of(m.order_ref), first_take_profit(router, m.order_ref)
        if not slice_keeps_exits(reference, stop, tp):
            return ("breaks_exits", f"reference {to_decimal(reference)} against stop "
                    f"{None if stop is None else to_decimal(stop)} and take-profit "
                    f"{None if tp is None else to_decimal(tp)}"), None
        return None, None if params.entry is EntryKind.MARKET else reference

    async def _place(self, m: _Sliced, due: Slice, limit: int | None) -> tuple[str, str] | None:
        d = self._d
        assert d.router is not None
        try:
            inst = await d.instrument(m.spec.symbol)
            order_id = d.router.send_slice(m.order_ref, due.number, due.qty, limit,
                                           inst.contract)
        except (OrderRejected, LookupError) as exc:
            logger.error("{}: slice {} not sent: {}", m.order_ref, due.number, exc)
            return "failed", str(exc)
        d.emit(ev.SliceSent(at=d.clock(), order_ref=m.order_ref, watcher_id=m.spec.id,
                            symbol=m.spec.symbol, number=due.number, count=len(m.schedule),
                            order_id=order_id, qty=due.qty,
                            limit=None if limit is None else to_decimal(limit), due_at=due.at))
        return None

    def _halt(self) -> None:
        """Trading halted: no slice is sent any more, and those working are cancelled."""
        d, router = self._d, self._d.router
        for m in list(self._entries.values()):
            if m.busy:
                continue  # its send checks the halt itself
            if router is not None:
                router.cancel_slices(m.order_ref, "trading halted")
            due = m.due
            if due is None:
                self._entries.pop(m.order_ref, None)
            else:
                self._skip(m, due, "halted", f"trading is halted ({d.today.ledger.halted})")

    def _skip(self, m: _Sliced, due: Slice, reason: str, detail: str) -> None:
        self._entries.pop(m.order_ref, None)
        d = self._d
        d.emit(ev.SliceSkipped(at=d.clock(), order_ref=m.order_ref, watcher_id=m.spec.id,
                               number=due.number, count=len(m.schedule), reason=reason,
                               detail=detail))

    def on_fill(self, entry: RoutedEntry, fill: ev.OrderFilled) -> None:
        """The router's fill hook: a slice that filled after the exits ended (its cancel
        came too late) holds shares no stop covers: they are sold at once."""
        router = self._d.router
        if fill.role != "entry" or fill.rung < 2 or router is None \
                or not exits_done(router, entry.order_ref) or entry.filled <= entry.sold \
                or router.sale_sent(entry.order_ref):
            return
        logger.error("{}: slice {} bought {} shares after the exits were done; selling what "
                     "is held", entry.order_ref, fill.rung, fill.qty)
        asyncio.get_running_loop().create_task(self._sell_unprotected(entry.order_ref))

    async def _sell_unprotected(self, order_ref: str) -> None:
        d = self._d
        book = d.today.ledger.books.get(order_ref)
        if book is None or book.open_qty <= 0:
            return
        failed = await d.controls.sell(book, "unprotected")
        if failed is not None:
            logger.error("{}: the unprotected shares could not be sold: {}", order_ref, failed)

    async def cancel_working(self) -> None:
        """A clean stop: the working later slices are cancelled (their fills would wait
        for the next start to be covered by the exits)."""
        router = self._d.router
        if router is None or not self._d.ib.isConnected():
            return
        for entry in router.entries():
            router.cancel_slices(entry.order_ref, "the daemon stops")
