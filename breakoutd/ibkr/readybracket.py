"""An entry's orders written ahead, while its watcher waits: ids and the limit are left.

When a watcher is armed the router knows everything of its entry but the
price: the symbol, size, take-profits, stop, tif, ref and OCA group come from
the watchlist. :func:`ready_bracket` writes the bracket's placeOrder messages
then, from the learnt templates (:mod:`breakoutd.ibkr.orderwire`), with holes
for the order ids, the parent's id in each exit and the parent's limit. A
trigger whose plan has exactly those constants (:meth:`ReadyBracket.fits`)
only fills the holes; any other plan (a risk-sized quantity, another session's
ref, a new contract, a connection to a gateway of another server version,
whose messages have other fields) goes the general way. Tests hold both against
ib_async's serialiser byte for byte.
"""

from __future__ import annotations

from typing import Any

from ib_async import Contract

from breakoutd.core.plans import OrderPlan
from breakoutd.core.prices import to_float
from breakoutd.ibkr.orders_map import entry_values, exit_values
from breakoutd.ibkr.orderwire import OrderTemplates, ReadyMessage


def bracket_key(plan: OrderPlan, contract: Contract, account: str,
                server_version: int) -> tuple[Any, ...]:
    """Everything a ready bracket's messages depend on except the ids and the limit."""
    return (server_version, id(contract), account, plan.order_ref, plan.symbol, plan.qty,
            plan.entry,
            plan.limit is None, plan.rungs, plan.stop, plan.stop_limit, plan.oca_group,
            plan.outside_rth, plan.tif)


class ReadyBracket:
    """The messages of one entry's orders, parent first, with their holes."""

    __slots__ = ("key", "_parent", "_exits")

    def __init__(self, key: tuple[Any, ...], parent: ReadyMessage,
                 exits: list[ReadyMessage]) -> None:
        self.key = key
        self._parent = parent
        self._exits = exits

    @property
    def size(self) -> int:
        """How many orders (and order ids) the bracket has."""
        return 1 + len(self._exits)

    def fits(self, plan: OrderPlan, contract: Contract, account: str,
             server_version: int) -> bool:
        """True when these messages are ``plan``'s, once its ids and limit are in, on a
        connection of ``server_version``."""
        return self.key == bracket_key(plan, contract, account, server_version)

    def parent(self, plan: OrderPlan, order_id: int) -> str:
        """The parent's message: its id and, for a limit entry, ``plan``'s limit."""
        limit = to_float(plan.limit) if plan.limit is not None else None
        return self._parent.text(*(order_id if h == "orderId" else limit
                                   for h in self._parent.holes))

    def exits(self, ids: list[int]) -> list[str]:
        """The exits' messages, ``ids`` being the bracket's (the parent's first)."""
        return [m.text(*(ids[n] if h == "orderId" else ids[0] for h in m.holes))
                for n, m in enumerate(self._exits, 1)]


def ready_bracket(templates: OrderTemplates, contract: Contract, plan: OrderPlan,
                  account: str, server_version: int) -> ReadyBracket | None:
    """``plan``'s bracket written ahead; None when a shape of it is not learnt."""
    ids = list(range(1, 2 + len(plan.rungs) + (plan.stop is not None)))
    entry = entry_values(plan, account, ids[0])
    parent = templates.ready(contract, entry, ("orderId", "lmtPrice") if "lmtPrice" in entry
                             else ("orderId",))
    exits = [templates.ready(contract, values, ("orderId", "parentId"))
             for _, _, values in exit_values(plan, account, ids, ids[0])]
    if parent is None or None in exits:
        return None
    return ReadyBracket(bracket_key(plan, contract, account, server_version), parent,
                        [m for m in exits if m is not None])
