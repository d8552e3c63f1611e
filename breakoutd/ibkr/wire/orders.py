"""Orders onto ib_async's socket and into its bookkeeping (ib_async 2.1.0).

``IB.placeOrder`` serialises and writes an order, then builds its ``Trade`` and
logs it with ``f"placeOrder: New order {trade}"``, an f-string of a whole
Trade that Python formats whether or not anyone logs INFO (about 0.17 ms an
order here). The router sends a bracket's orders back to back with
:func:`write_order` (or :func:`write_message` for a message built from a
template), then registers them with :func:`register_order`, which does what
``IB.placeOrder`` does for a new order without the log line. Nothing can
arrive from the gateway in between: the event loop does not run until the
router returns.

ib_async's ``Wrapper`` keeps every order and fill of the connection in dicts
(``trades``, ``fills``) that only grow within a connection and are new after
one; the router reads them for the broker's refs and terms. ib_async marks an
order Cancelled on errors that do not end it; :func:`restore_status` puts the
gateway's last word back so the order can still be modified.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ib_async import IB, Contract, Fill, Order, OrderStatus, Trade, TradeLogEntry


def write_order(ib: IB, contract: Contract, order: Order) -> None:
    """Serialise a new order (with its ``orderId`` set) and write it to the socket."""
    client: Any = ib.client  # its request methods are untyped
    client.placeOrder(order.orderId, contract, order)


def write_message(ib: IB, message: str) -> None:
    """Write one serialised message (fields joined by NUL) through ib_async's throttle."""
    client: Any = ib.client
    if not client.isConnected():
        raise ConnectionError("Not connected")
    client.sendMsg(message)


def register_order(ib: IB, contract: Contract, order: Order) -> Trade:
    """Make ib_async follow an order written by :func:`write_order`, as ``IB.placeOrder`` does."""
    wrapper: Any = ib.wrapper
    now = dt.datetime.now(wrapper.defaultTimezone)
    order.clientId = wrapper.clientId
    key = wrapper.orderKey(wrapper.clientId, order.orderId, order.permId)
    status = OrderStatus(orderId=order.orderId, status=OrderStatus.PendingSubmit)
    trade = Trade(contract, order, status, [], [TradeLogEntry(now, status.status)])
    wrapper.trades[key] = trade
    ib.newOrderEvent.emit(trade)
    return trade


def order_client(ib: IB) -> Any:
    """The client :func:`serialise_order` serialises with (for order templates)."""
    return ib.client


def serialise_order(client: Any, order_id: int, contract: Contract, order: Order) -> list[str]:
    """The fields ib_async would write for ``placeOrder`` (nothing is sent)."""
    sent: list[str] = []
    client.sendMsg = sent.append  # capture instead of writing
    try:
        client.placeOrder(order_id, contract, order)
    finally:
        del client.sendMsg
    fields = sent[0].split("\0")
    fields.pop()  # the message ends with a separator
    return fields


def known_trades(ib: IB) -> dict[Any, Trade]:
    """ib_async's dict of this connection's orders (a new dict after a reconnect)."""
    trades: dict[Any, Trade] = ib.wrapper.trades
    return trades


def known_fills(ib: IB) -> dict[str, Fill]:
    """ib_async's dict of this connection's fills, by exec id."""
    fills: dict[str, Fill] = ib.wrapper.fills
    return fills


def trade_of(ib: IB, client_id: int, order_id: int) -> Trade | None:
    """ib_async's Trade of an order of this connection (replaced on every reconnect)."""
    trade: Trade | None = ib.wrapper.trades.get((client_id, order_id))
    return trade


def restore_status(trade: Trade, status: str) -> None:
    """Put back the gateway's last status over ib_async's verdict on an error."""
    if trade.orderStatus.status != status:
        trade.orderStatus.status = status
