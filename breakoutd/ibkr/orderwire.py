"""placeOrder messages from templates: an entry's bytes without ib_async's serialiser.

ib_async's ``Client.placeOrder`` turns some 150 fields into text through a
table of lambdas built anew for every message (0.05 ms warm, well over 0.1 ms
when the path has gone cold between two entries). The orders of one shape
(action, order type, account and every other fixed attribute) differ only in
a few fields: the order id, quantity, prices, tif, ref, outsideRth, transmit,
parent id and OCA group, and the contract's own block. :class:`OrderTemplates`
learns, once per shape and connection, where each of these lies in ib_async's
own message (serialising probe orders that differ in one field at a time and
checking that exactly that field moved), then builds messages by putting the
values in. A shape it cannot learn that way is left to ib_async. Tests hold
the result byte for byte against ib_async's serialiser over random orders.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

from ib_async import Contract, Order
from ib_async.util import UNSET_DOUBLE, UNSET_INTEGER

from breakoutd.ibkr.wire.orders import serialise_order

# attribute -> two probe values of the type it carries (orderId: placeOrder's argument)
_VARIABLE: dict[str, tuple[Any, Any]] = {
    "orderId": (900_000_001, 900_000_002),
    "totalQuantity": (101, 202),
    "lmtPrice": (1.25, 2.5),
    "auxPrice": (3.25, 4.5),
    "tif": ("DAY", "GTC"),
    "orderRef": ("probe:a", "probe:b"),
    "outsideRth": (False, True),
    "transmit": (False, True),
    "parentId": (0, 7),
    "ocaGroup": ("", "probe-oca"),
}
_CONTRACT_AT = 2  # the contract's block starts at this field of a placeOrder message


def wire_text(value: Any) -> str:
    """One field as ib_async's ``Client.send`` writes it (``makeEmpty``)."""
    kind = type(value)
    if kind is bool:
        return "1" if value else "0"
    if kind is int:
        return "" if value == UNSET_INTEGER else str(value)
    if kind is float:
        if value == UNSET_DOUBLE:
            return ""
        return "Infinite" if value == math.inf else str(value)
    if value is None:
        return ""
    return str(value)  # str, and what ib_async has no handler for


def contract_fields(c: Contract) -> list[str]:
    """The contract's block, as ib_async's ``Client.send`` formats a Contract."""
    return [str(f) for f in (c.conId, c.symbol, c.secType, c.lastTradeDateOrContractMonth,
                             c.strike, c.right, c.multiplier, c.exchange, c.primaryExchange,
                             c.currency, c.localSymbol, c.tradingClass)]


class _Template:
    """ib_async's message of one shape, and where its variable fields lie."""

    __slots__ = ("fields", "slots", "_by_contract")

    def __init__(self, fields: list[str], slots: dict[str, int]) -> None:
        self.fields = fields
        self.slots = sorted(slots.items(), key=lambda item: item[1])  # (name, index)
        self._by_contract: dict[int, tuple[Contract, list[str], str]] = {}

    def pieces(self, contract: Contract) -> tuple[list[str], str]:
        """The text before each variable field (with its separator), and the tail."""
        known = self._by_contract.get(id(contract))
        if known is not None and known[0] is contract:
            return known[1], known[2]
        fields = self.fields.copy()
        fields[_CONTRACT_AT:_CONTRACT_AT + _CONTRACT_LEN] = contract_fields(contract)
        before, prev = [], 0
        for _, at in self.slots:
            before.append("".join(f + "\0" for f in fields[prev:at]))
            prev = at + 1
        tail = "".join(f + "\0" for f in fields[prev:])
        self._by_contract[id(contract)] = (contract, before, tail)
        return before, tail


class ReadyMessage:
    """One order's placeOrder message with every field written but a few (its holes)."""

    __slots__ = ("holes", "_pieces")

    def __init__(self, holes: tuple[str, ...], pieces: list[str]) -> None:
        self.holes = holes  # in the order they appear in the message
        self._pieces = pieces  # one more than holes; each hole's separator starts a piece

    def text(self, *values: Any) -> str:
        """The message with ``values`` (one per hole, in :attr:`holes` order) put in."""
        pieces = self._pieces
        parts = [pieces[0]]
        for value, piece in zip(values, pieces[1:], strict=True):
            parts.append(wire_text(value))
            parts.append(piece)
        return "".join(parts)


class OrderTemplates:
    """placeOrder messages for one connection (``client``: ib_async's Client)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._templates: dict[Hashable, _Template | None] = {}

    def message(self, contract: Contract, values: dict[str, Any]) -> str | None:
        """The placeOrder message of ``Order(**values)`` for ``contract``; None when unknown."""
        template = self._templates.get(self._key(contract, values))
        if template is None:
            return None
        before, tail = template.pieces(contract)
        parts = []
        for text, (name, _) in zip(before, template.slots, strict=True):
            parts.append(text)
            parts.append(wire_text(values[name] if name in values else _DEFAULTS[name]))
            parts.append("\0")
        parts.append(tail)
        return "".join(parts)

    def ready(self, contract: Contract, values: dict[str, Any],
              holes: tuple[str, ...]) -> ReadyMessage | None:
        """The message of ``Order(**values)`` with only ``holes`` (variable fields, e.g.
        orderId and lmtPrice) left to fill; None when the shape is not learnt."""
        template = self._templates.get(self._key(contract, values))
        if template is None or not set(holes) <= {name for name, _ in template.slots}:
            return None
        before, tail = template.pieces(contract)
        names, pieces, text = [], [], ""
        for piece, (name, _) in zip(before, template.slots, strict=True):
            text += piece
            if name in holes:
                names.append(name)
                pieces.append(text)
                text = "\0"
            else:
                text += wire_text(values[name] if name in values else _DEFAULTS[name]) + "\0"
        pieces.append(text + tail)
        return ReadyMessage(tuple(names), pieces)

    def learn(self, contract: Contract, values: dict[str, Any]) -> bool:
        """Learn the shape of ``Order(**values)``; False when it has to stay with ib_async.

        Needs a connected client: it serialises probe orders (nothing is sent)."""
        key = self._key(contract, values)
        if key not in self._templates:
            self._templates[key] = self._learn(contract, values)
        template = self._templates[key]
        if template is None:
            return False
        template.pieces(contract)  # this contract's text, ready before it is needed
        return True

    def forget(self) -> None:
        """A new connection (perhaps a new server version): learn again."""
        self._templates.clear()

    def _key(self, contract: Contract, values: dict[str, Any]) -> Hashable:
        fixed = tuple(sorted((k, v) for k, v in values.items() if k not in _VARIABLE))
        return (self._client.serverVersion(), contract.secType, contract.secIdType,
                contract.secId, contract.exchange == "IBKRATS",
                contract.deltaNeutralContract is None, bool(contract.comboLegs), fixed)

    def _learn(self, contract: Contract, values: dict[str, Any]) -> _Template | None:
        if contract.secType == "BAG":  # legs are not part of the key: ib_async's alone
            return None
        probe = {**values, **{name: pair[0] for name, pair in _VARIABLE.items()}}
        base = self._serialise(contract, probe)
        if base[_CONTRACT_AT:_CONTRACT_AT + _CONTRACT_LEN] != contract_fields(contract):
            return None
        slots: dict[str, int] = {}
        for name, (_, other) in _VARIABLE.items():
            moved = self._serialise(contract, {**probe, name: other})
            changed = [i for i, (a, b) in enumerate(zip(base, moved, strict=False)) if a != b]
            if len(moved) != len(base) or len(changed) != 1 or moved[changed[0]] != wire_text(other):
                return None
            slots[name] = changed[0]
        return _Template(base, slots)

    def _serialise(self, contract: Contract, values: dict[str, Any]) -> list[str]:
        order = Order(**{k: v for k, v in values.items() if k != "orderId"})
        return serialise_order(self._client, values["orderId"], contract, order)


_CONTRACT_LEN = len(contract_fields(Contract()))
_DEFAULTS: dict[str, Any] = {name: getattr(Order(), name) for name in _VARIABLE}
