"""New orders onto ib_async's socket first, its bookkeeping after.

``IB.placeOrder`` serialises and writes an order, then builds its ``Trade`` and
logs it with ``f"placeOrder: New order {trade}"``, an f-string of a whole
Trade that Python formats whether or not anyone logs INFO (about 0.17 ms an
order here). The router sends a bracket's orders back to back with
:func:`write_order`, then registers them with :func:`register_order`, which
does what ``IB.placeOrder`` does for a new order (ib_async 2.1.0, pinned)
without the log line. Nothing can arrive from the gateway in between: the
event loop does not run until the router returns.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ib_async import IB, Contract, Order, OrderStatus, Trade, TradeLogEntry


def write_order(ib: IB, contract: Contract, order: Order) -> None:
    """Serialise a new order (with its ``orderId`` set) and write it to the socket."""
    client: Any = ib.client  # its request methods are untyped
    client.placeOrder(order.orderId, contract, order)


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
