"""Engine events to wire messages, each to the client that should see it.

Order messages (openOrder, orderStatus, execDetails, commissionReport, order
errors) go to the client that owns the order, through its acknowledgement
queue (which the delay fault holds back); position and account changes go to
every client subscribed to them. Events for a client that is not connected
are dropped: the state stays in the engine and is sent again on request.
"""

from __future__ import annotations

import logging

from breakoutd.core.prices import format_price
from breakoutd.sim import outgoing as out
from breakoutd.sim.matching.values import (
    AccountChanged,
    CommissionEvent,
    EngineEvent,
    ExecutionEvent,
    OpenOrderEvent,
    OrderErrorEvent,
    OrderStatusEvent,
    PositionChanged,
)
from breakoutd.sim.requests_account import send_account_multi, send_account_values, send_portfolio
from breakoutd.sim.state import GatewayState

log = logging.getLogger("breakoutd.sim")


def route(state: GatewayState, events: list[EngineEvent]) -> None:
    """Send engine events to the clients that should see them."""
    for ev in events:
        if isinstance(ev, OpenOrderEvent):
            _to_client(state, ev.order.client_id, out.open_order(ev.order, ev.status))
        elif isinstance(ev, OrderStatusEvent):
            _order_status(state, ev)
        elif isinstance(ev, ExecutionEvent):
            _execution(state, ev)
        elif isinstance(ev, CommissionEvent):
            owner = state.exec_owner.get(ev.exec_id)
            if owner is not None:
                _to_client(state, owner, out.commission_report(
                    ev.exec_id, ev.commission, ev.currency, ev.realized_pnl))
        elif isinstance(ev, OrderErrorEvent):
            log.info("client %d order %d: error %d %s", ev.client_id, ev.order_id, ev.code,
                     ev.message)
            _to_client(state, ev.client_id, out.error(ev.order_id, ev.code, ev.message))
        elif isinstance(ev, PositionChanged):
            _position_changed(state, ev)
        elif isinstance(ev, AccountChanged):
            _account_changed(state)


def _to_client(state: GatewayState, client_id: int, fields: list[object]) -> None:
    client = state.clients.get(client_id)
    if client is not None:
        client.send_order_msg(fields)


def _order_status(state: GatewayState, ev: OrderStatusEvent) -> None:
    log.info("client %d order %d: %s filled %d remaining %d%s", ev.client_id, ev.order_id,
             ev.status, ev.filled, ev.remaining,
             f" avg {format_price(ev.avg_fill_price)}" if ev.filled else "")
    msg = out.order_status(ev)
    _to_client(state, ev.client_id, msg)
    if state.faults.duplicate_status:
        _to_client(state, ev.client_id, msg)


def _execution(state: GatewayState, ev: ExecutionEvent) -> None:
    state.exec_owner[ev.exec_id] = ev.client_id
    log.info("fill: client %d order %d %s %d %s @ %s (exec %s)", ev.client_id, ev.order_id,
             ev.side, ev.shares, ev.symbol, format_price(ev.price), ev.exec_id)
    _to_client(state, ev.client_id, out.exec_details(-1, ev))


def _position_changed(state: GatewayState, ev: PositionChanged) -> None:
    for client in state.position_subs:
        client.send(out.position(state.account, ev.symbol, ev.qty, ev.avg_cost))
    for client in state.account_subs:
        send_portfolio(state, client, ev.symbol)


def _account_changed(state: GatewayState) -> None:
    for client in state.account_subs:
        send_account_values(state, client)
    for client, req_id in state.multi_subs:
        send_account_multi(state, client, req_id)
