"""The sender: order ids, the once-only guard, and the write of a bracket onto the socket.

Once only: :meth:`OrderSender.refuse_duplicate` raises ``DuplicateOrderError``
(nothing sent) for a ref sent before, one adopted from reconciliation, or one
ib_async knows from the broker's orders and executions. Order ids follow
ib_async's counter, bumped (:func:`~breakoutd.ibkr.wire.requests.next_order_ids`)
to stay above the high-water mark kept by ``ids`` (the daemon's trading day).

Nothing slow stands between a decision and the socket: a bracket is written
from the message written ahead when its watcher was armed
(:mod:`breakoutd.ibkr.readybracket`), else from templates learnt from the
messages ib_async serialised before (:mod:`breakoutd.ibkr.orderwire`), else by
ib_async itself, whose message is then learnt. In the next turn of the event
loop the sender begins making the send durable (:class:`Durability`: the
journal's sync and the save of the high-water mark), and before another order
leaves the router waits for it (:meth:`OrderSender.make_durable`), so the
events of one order are on disk before the next order leaves.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any, Protocol

from ib_async import IB, Contract, Fill, Order, Trade
from loguru import logger

from breakoutd.core.plans import OrderPlan
from breakoutd.core.refs import ENTRY
from breakoutd.errors import OrderRejected
from breakoutd.ibkr.orders_map import PlannedOrder, entry_values, exit_values
from breakoutd.ibkr.orderwire import OrderTemplates
from breakoutd.ibkr.readybracket import ReadyBracket, ready_bracket
from breakoutd.ibkr.wire.orders import (
    known_fills,
    known_trades,
    order_client,
    write_message,
    write_order,
)
from breakoutd.ibkr.wire.requests import next_order_ids, server_version


class OrderIds(Protocol):
    """Where the day's order-id high-water mark is kept (the daemon's trading day)."""

    @property
    def order_id_high_water(self) -> int:
        """The highest order id used today."""

    def note_order_id(self, order_id: int) -> None:
        """Raise the high-water mark (durable with the next save)."""

    def save(self) -> None:
        """Make it durable now."""


class Durability(Protocol):
    """How the router's journal lines and state reach the disk."""

    def begin(self) -> None:
        """Start forcing what was journalled and recorded so far to disk."""

    def wait(self) -> None:
        """Block until everything begun is on disk; raise OSError when it is not."""


class _SaveNow:
    """Without the daemon's disk thread: the state is saved when begun."""

    def __init__(self, sender: OrderSender) -> None:
        self._sender = sender

    def begin(self) -> None:
        ids = self._sender.ids
        if ids is not None:
            ids.save()

    def wait(self) -> None:
        return None


class DuplicateOrderError(OrderRejected):
    """An entry with this orderRef was already sent (here, before a restart, or by another client)."""


class OrderSender:
    """Ids, the once-only guard, brackets written ahead, and the writes themselves."""

    def __init__(self, ib: IB, account: str, ids: OrderIds | None,
                 durability: Durability | None) -> None:
        """``ids`` keeps the order-id high-water mark; ``durability`` (by default
        ``ids`` saved on the spot) makes each send's events and state durable."""
        self._ib = ib
        self.account = account
        self.ids = ids
        self._durability: Durability = durability or _SaveNow(self)
        self.sent_refs: set[str] = set()
        self._known_refs: set[str] = set()  # see _broker_refs
        self._scanned: dict[str, tuple[Any, int]] = {}
        self._durable_pending = False
        self.templates = OrderTemplates(order_client(ib))
        self._ready: dict[str, ReadyBracket] = {}  # order ref -> its bracket written ahead
        self._to_learn: list[tuple[Contract, dict[str, Any]]] = []

    def use_ids(self, ids: OrderIds) -> None:
        """Keep the order-id high-water mark in a new day's state from now on."""
        ids.note_order_id(self.ids.order_id_high_water if self.ids else 0)
        self.ids = ids

    def next_ids(self, count: int) -> list[int]:
        """``count`` fresh order ids, above every id used today."""
        return next_order_ids(self._ib, count,
                              self.ids.order_id_high_water if self.ids is not None else 0)

    def note_id(self, order_id: int) -> None:
        """An id has gone out: a restart never reuses it."""
        if self.ids is not None:
            self.ids.note_order_id(order_id)

    # --- once only -------------------------------------------------------------------------

    def refuse_duplicate(self, ref: str) -> None:
        """Raise DuplicateOrderError when ``ref`` was ever sent, here or by anyone."""
        if ref in self.sent_refs:
            raise DuplicateOrderError(f"{ref}: already sent today; not sending it again")
        if ref in self._broker_refs():
            raise DuplicateOrderError(f"{ref}: the broker already has orders with this ref")

    def _broker_refs(self) -> set[str]:
        """The refs (and each ``:``-prefix of them) of every order and fill ib_async knows.

        ib_async's dicts only grow within a connection and are new after one, so
        only what was added since the last look is read."""
        sources: tuple[tuple[str, dict[Any, Any], Callable[[Any], str]], ...] = (
            ("trades", known_trades(self._ib), _trade_ref),
            ("fills", known_fills(self._ib), _fill_ref))
        for name, known, ref_of in sources:
            seen_dict, seen = self._scanned.get(name, (None, 0))
            if known is seen_dict and len(known) == seen:
                continue  # nothing new (the common case, on the hot path)
            if known is not seen_dict or len(known) < seen:
                seen = 0
            for item in itertools.islice(known.values(), seen, None):
                parts = ref_of(item).split(":")
                self._known_refs.update(":".join(parts[:k]) for k in range(1, len(parts) + 1))
            self._scanned[name] = (known, len(known))
        return self._known_refs

    # --- the write -------------------------------------------------------------------------

    def write_bracket(self, plan: OrderPlan, contract: Contract, ids: list[int],
                      parent_ref: str | None) -> list[PlannedOrder]:
        """Write the parent, then its exits, onto the socket; the orders, the parent first.

        ``parent_ref``: a first slice's ref (never written ahead), else the plan's.
        ConnectionError or OSError when the socket would not take them."""
        ready = self._ready.pop(plan.order_ref, None)
        if ready is not None and parent_ref is None and ready.fits(
                plan, contract, self.account, server_version(self._ib)):
            write_message(self._ib, ready.parent(plan, ids[0]))
            for message in ready.exits(ids):
                write_message(self._ib, message)
            entry = entry_values(plan, self.account, ids[0])
            exits = exit_values(plan, self.account, ids, ids[0])
            orders: list[Order | None] = [None] * ready.size
        else:
            entry = entry_values(plan, self.account, ids[0], parent_ref)
            orders = [self.write(contract, entry)]
            exits = exit_values(plan, self.account, ids, ids[0])
            orders += [self.write(contract, values) for _, _, values in exits]
        shapes = [(ENTRY, 0 if parent_ref is None else 1, entry), *exits]
        return [PlannedOrder(role, rung, order or Order(**values))
                for (role, rung, values), order in zip(shapes, orders, strict=True)]

    def write(self, contract: Contract, values: dict[str, Any]) -> Order | None:
        """Write one new order: from a learnt template, else through ib_async (returned)."""
        message = self.templates.message(contract, values)
        if message is not None:
            write_message(self._ib, message)
            return None
        order = Order(**values)
        write_order(self._ib, contract, order)
        self._to_learn.append((contract, values))
        return order

    def prepare(self, contract: Contract, plan: OrderPlan) -> None:
        """Learn the message shapes of a plan like ``plan`` before it is needed, and write
        ``plan``'s bracket ahead (:mod:`breakoutd.ibkr.readybracket`).

        Call it when a watcher is armed: its entry then leaves without ib_async's
        serialiser, and a plan with the same constants (its limit aside) only
        fills in ids and price. Harmless when not connected (the shapes are
        learnt after the first send instead)."""
        if not self._ib.isConnected():
            return
        ids = list(range(1, 3 + len(plan.rungs)))  # the parent, the rungs and a stop
        self.templates.learn(contract, entry_values(plan, self.account, ids[0]))
        for _, _, values in exit_values(plan, self.account, ids, ids[0]):
            self.templates.learn(contract, values)
        if plan.order_ref not in self.sent_refs:
            ready = ready_bracket(self.templates, contract, plan, self.account,
                                  server_version(self._ib))
            if ready is not None:  # a trigger with these constants only fills in its price
                self._ready[plan.order_ref] = ready

    def unprepare(self, order_ref: str) -> None:
        """Forget what :meth:`prepare` wrote ahead for ``order_ref`` (its watcher is done)."""
        self._ready.pop(order_ref, None)

    # --- durability ------------------------------------------------------------------------

    def durable_soon(self) -> None:
        """Begin making the last send durable in the next turn of the event loop."""
        if not self._durable_pending:
            self._durable_pending = True
            asyncio.get_running_loop().call_soon(self._begin_durable)

    def make_durable(self) -> None:
        """Have what the last send journalled and recorded on disk; OSError if it is not."""
        self._begin_durable()
        self._durability.wait()

    def durable_or_logged(self) -> None:
        """:meth:`make_durable` before a cancel or modify, which go out in any case."""
        try:
            self.make_durable()
        except OSError as exc:
            logger.error("the journal and state are not on disk ({}); the order goes out "
                         "anyway", exc)

    def _begin_durable(self) -> None:
        """Begin the journal sync and the state save of a send, if one awaits them."""
        if not self._durable_pending:
            return
        self._durable_pending = False
        self._durability.begin()
        to_learn, self._to_learn = self._to_learn, []
        for contract, values in to_learn:  # the next order of these shapes leaves faster
            if self._ib.isConnected():
                self.templates.learn(contract, values)
        self._broker_refs()  # read the new orders now, not on the next send


def _trade_ref(trade: Trade) -> str:
    return str(trade.order.orderRef)


def _fill_ref(fill: Fill) -> str:
    return str(fill.execution.orderRef)
