"""The kill switch and the operator's controls, acting on the daemon.

strategy.md, "Risk limits and the kill switch": when the day ledger says a
limit is reached, trading halts: no new entry (the runner's check rejects
``risk_halted``), unfilled entries are cancelled, open positions keep their
exits, or are sold when ``on_halt: flatten``. The operator's ``halt``,
``resume``, ``pause``, ``flatten``, ``cancel`` and ``stop`` act through the
same code; what cannot be done is
refused with the reason (:class:`breakoutd.daemon.control.ControlResult`, the
answer the control socket sends back). Every action is an event (``Halted``, ``Paused``,
``Resumed``, ``FlattenSent``, ``Stopped``, the orders' own), so the journal
holds it and a restart replays the halt.

A position is sold as ``exit_at`` sells (strategy.md): MKT in regular hours,
else a SELL LMT at the bid minus 0.05 on the tick, with outside_rth.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from loguru import logger

from breakoutd.calendar import DaySessions, day_sessions
from breakoutd.core import events as ev
from breakoutd.core.ledger import DISK_HALT, EntryBook, Trip
from breakoutd.core.params import OnHalt, Session
from breakoutd.core.prices import MICROS_PER_CENT, round_to_tick, to_decimal
from breakoutd.daemon.control import ControlResult, refused
from breakoutd.daemon.disk import describe_failure
from breakoutd.daemon.state import FiredEntry
from breakoutd.errors import OrderRejected

if TYPE_CHECKING:
    from breakoutd.daemon.app import Daemon

FLATTEN_OFFSET = 5 * MICROS_PER_CENT  # outside regular hours: the bid minus 0.05


def _done(message: str) -> ControlResult:
    return ControlResult(ok=True, code="done", message=message)


_refused = refused


class Controls:
    """The kill switch and the operator's actions on one daemon."""

    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        self._tripping: asyncio.Task[ControlResult] | None = None
        self._lock = asyncio.Lock()  # one action at a time: no two flattens of one position

    # --- the kill switch -------------------------------------------------------------------

    def check_trip(self) -> None:
        """Trip the kill switch if the ledger says so (after a mark, a fill, a commission)."""
        if self._tripping is not None and not self._tripping.done():
            return
        trip = self._d.today.trip_due()
        if trip is not None:
            self._tripping = asyncio.get_running_loop().create_task(self._trip(trip))

    async def _trip(self, trip: Trip) -> ControlResult:
        flatten = self._d.today.ledger.limits.on_halt is OnHalt.FLATTEN
        logger.warning("kill switch: {}; trading halts{}", trip.detail,
                       ", open positions are sold" if flatten else "")
        return await self._halt(trip.reason, trip.detail, "risk", flatten)

    async def _halt(self, reason: str, detail: str, by: str, flatten: bool) -> ControlResult:
        async with self._lock:
            d = self._d
            if d.today.ledger.halted is None:
                d.emit(ev.Halted(at=d.clock(), reason=reason, detail=detail, by=by,
                                 flatten=flatten))
            d.refresh_state()
            cancelled = await self.cancel_unfilled()
            sold = [await self._flatten_book(b, "halt") for b in d.today.ledger.open_books()] \
                if flatten else []
            failed = [m for m in sold if m is not None]
            text = f"halted ({reason}); {cancelled} unfilled entr{'y' if cancelled == 1 else 'ies'} " \
                   f"cancelled"
            if flatten:
                text += f"; {len(sold) - len(failed)} position(s) being sold"
            if failed:
                return _refused("partly_done", text + "; not sold: " + "; ".join(failed))
            return _done(text)

    async def cancel_unfilled(self) -> int:
        """Cancel every entry still working with nothing bought (a halt, a stop of the daemon)."""
        d = self._d
        if d.router is None or not d.ib.isConnected():
            return 0
        count = 0
        for entry in d.router.entries():  # also those adopted from the broker at start-up
            if not entry.unfilled:
                continue
            try:
                await d.router.cancel_entry(entry.order_ref)
                count += 1
            except OrderRejected as exc:
                logger.error("{}: the unfilled entry could not be cancelled: {}",
                             entry.order_ref, exc)
        return count

    # --- selling a position ------------------------------------------------------------------

    async def _flatten_book(self, book: EntryBook, reason: str) -> str | None:
        """Sell what one entry holds; None when sent, else why not."""
        d = self._d
        if d.router is None or not d.ib.isConnected():
            return f"{book.watcher_id}: no broker connection"
        try:
            inst = await d.instrument(book.symbol)
            limit = self._sale_limit(book.symbol, inst.sessions.get(d.day))
            qty = await d.router.flatten(book.order_ref, inst.contract, limit=limit)
        except (OrderRejected, LookupError) as exc:
            logger.error("{}: the position could not be sold: {}", book.order_ref, exc)
            return f"{book.watcher_id}: {exc}"
        if qty:
            d.emit(ev.FlattenSent(at=d.clock(), order_ref=book.order_ref,
                                  watcher_id=book.watcher_id, symbol=book.symbol, qty=qty,
                                  order_type="MKT" if limit is None else "LMT",
                                  limit=None if limit is None else to_decimal(limit),
                                  reason=reason))
        return None

    async def sell_on_time(self, book: EntryBook) -> str | None:
        """A position's time exit (``exit_at``, ``max_hold``): sold as a flatten is, reason
        ``time_exit``; None when sent, else why not."""
        return await self.sell(book, "time_exit")

    async def sell(self, book: EntryBook, reason: str) -> str | None:
        """Sell one position as a flatten does, for ``reason``; None when sent, else why not."""
        async with self._lock:
            return await self._flatten_book(book, reason)

    def _sale_limit(self, symbol: str, sessions: DaySessions | None) -> int | None:
        """None (MKT) in regular hours; else the bid minus 0.05 on the tick."""
        d = self._d
        now = d.clock()
        days = sessions if sessions is not None else day_sessions(d.day)
        if days is not None and days.session_at(now) is Session.RTH:
            return None
        stream = d.market.stream(symbol)
        bid = stream.quote.bid if stream is not None and stream.quote is not None else None
        if bid is None or bid <= 0:
            bid = d.today.ledger.marks.get(symbol)
        if bid is None or bid <= FLATTEN_OFFSET:
            raise LookupError("no bid to price a sale outside regular hours")
        return round_to_tick(bid - FLATTEN_OFFSET)

    # --- the operator ------------------------------------------------------------------------

    async def halt(self, flatten: bool, uid: int) -> ControlResult:
        """``breakoutctl halt [--flatten]``."""
        if self._d.today.ledger.halted is not None and not flatten:
            return _refused("already", f"trading is already halted ({self._d.today.ledger.halted})")
        return await self._halt("operator", "the operator halted trading", f"uid {uid}", flatten)

    async def resume(self, uid: int) -> ControlResult:
        """``breakoutctl resume``: after a halt or a pause."""
        d = self._d
        ledger = d.today.ledger
        if ledger.halted == DISK_HALT or d.disk.failure() is not None:
            if not await d.guard.probe():  # the disk is tried now, not at the guard's next second
                problem = describe_failure(d.disk.failure() or OSError("the disk failed"))
                return _refused("refused", f"the journal or the state file still cannot be "
                                           f"written ({problem}); {d.guard.action()}")
            if ledger.halted == DISK_HALT:
                d.guard.mended(f"uid {uid}")
                return _done("trading resumed (was halted: disk); the journal and the state "
                             "file are written again")
        why = ledger.can_resume()
        if why is not None:
            return _refused("refused", why)
        was = "halted" if ledger.halted is not None else "paused"
        d.emit(ev.Resumed(at=d.clock(), by=f"uid {uid}", was=was))
        d.refresh_state()
        return _done(f"trading resumed (was {was})")

    async def pause(self, uid: int) -> ControlResult:
        """``breakoutctl pause``: no new entries; working orders and positions stay."""
        d = self._d
        if d.today.ledger.paused:
            return _refused("already", "new entries are already paused")
        d.emit(ev.Paused(at=d.clock(), by=f"uid {uid}"))
        d.refresh_state()
        return _done("paused: no new entries until `breakoutctl resume`")

    async def flatten(self, target: str | None, all: bool, uid: int) -> ControlResult:  # noqa: A002
        """``breakoutctl flatten (WATCHER | SYMBOL | --all)``."""
        async with self._lock:
            books = self._d.today.ledger.open_books()
            everything = all
            if not everything:
                books = [b for b in books if target in (b.watcher_id, b.symbol)]
            if not books:
                what = "nothing is held" if everything else f"nothing is held for {target}"
                return _refused("nothing", what)
            failed = [m for m in [await self._flatten_book(b, "operator") for b in books]
                      if m is not None]
            if failed:
                return _refused("partly_done" if len(failed) < len(books) else "failed",
                                "; ".join(failed))
            shares = sum(b.open_qty for b in books)
            return _done(f"selling {shares} share(s) of {len(books)} position(s)")

    async def cancel(self, watcher_id: str, uid: int) -> ControlResult:
        """``breakoutctl cancel WATCHER``: cancel an entry that has not filled."""
        d = self._d
        fired = d.store.state.fired.get(watcher_id)
        entry = d.router.entry(fired.order_ref) if fired is not None and d.router else None
        if entry is None:
            return _refused("nothing", f"{watcher_id} has no entry at the broker today")
        if entry.filled:
            return _refused("filled", f"{watcher_id}'s entry has bought {entry.filled} shares; "
                                      f"use `breakoutctl flatten {watcher_id}` to sell them")
        if entry.status != "working":
            return _refused("nothing", f"{watcher_id}'s entry is {entry.status}, not working")
        await d.router.cancel_entry(entry.order_ref)  # type: ignore[union-attr]
        after = d.router.entry(entry.order_ref)  # type: ignore[union-attr]
        status = after.status if after is not None else "unknown"
        if status != "cancelled":
            return _refused("failed", f"{watcher_id}'s entry is {status} after the cancel")
        return _done(f"{watcher_id}'s entry is cancelled")

    async def stop(self, watcher_id: str, uid: int) -> ControlResult:
        """``breakoutctl stop WATCHER``: disarm for today (outcome stopped)."""
        d = self._d
        if d.store.has_fired(watcher_id):
            return _refused("done", f"{watcher_id} is already done for today")
        if watcher_id not in d.runners and watcher_id not in d.pending:
            return _refused("unknown", f"{watcher_id} is not armed or waiting today")
        runner = d.runners.get(watcher_id)
        if runner is not None and runner.task is not None:
            return _refused("busy", f"{watcher_id} has triggered and is entering")
        armed = runner is not None
        await d.disarm(watcher_id, "operator")
        if not armed:  # waiting for its window: no runner said it
            d.emit(ev.Stopped(at=d.clock(), watcher_id=watcher_id, reason="operator"))
        d.store.mark_fired(watcher_id, FiredEntry("", d.clock(), "stopped", "operator"))
        return _done(f"{watcher_id} is stopped for today")
