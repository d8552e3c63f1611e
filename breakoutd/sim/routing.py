"""Engine events to wire messages, each to the client that should see it.

Order messages (openOrder, orderStatus, execDetails, commissionReport, order
errors) go to the client that owns the order, through its acknowledgement
queue (which the delay fault holds back); position and account changes go to
every client subscribed to them. Events for a client that is not connected
are dropped: the state stays in the engine and is sent again on request.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from breakoutd.sim.gateway import SimGateway

log = logging.getLogger("breakoutd.sim")


class EventRouter:
    """Routes the matching engine's events to client sessions."""

    def __init__(self, gateway: SimGateway) -> None:
        self.gw = gateway
        self._exec_owner: dict[str, int] = {}

    def emit(self, events: list[EngineEvent]) -> None:
        """Send engine events to the clients that should see them."""
        for ev in events:
            if isinstance(ev, OpenOrderEvent):
                self._to_client(ev.order.client_id, out.open_order(ev.order, ev.status))
            elif isinstance(ev, OrderStatusEvent):
                self._order_status(ev)
            elif isinstance(ev, ExecutionEvent):
                self._execution(ev)
            elif isinstance(ev, CommissionEvent):
                owner = self._exec_owner.get(ev.exec_id)
                if owner is not None:
                    self._to_client(owner, out.commission_report(
                        ev.exec_id, ev.commission, ev.currency, ev.realized_pnl))
            elif isinstance(ev, OrderErrorEvent):
                log.info("client %d order %d: error %d %s", ev.client_id, ev.order_id, ev.code,
                         ev.message)
                self._to_client(ev.client_id, out.error(ev.order_id, ev.code, ev.message))
            elif isinstance(ev, PositionChanged):
                self._position_changed(ev)
            elif isinstance(ev, AccountChanged):
                self._account_changed()

    def _to_client(self, client_id: int, fields: list[object]) -> None:
        session = self.gw.clients.get(client_id)
        if session is not None:
            session.send_order_msg(fields)

    def _order_status(self, ev: OrderStatusEvent) -> None:
        log.info("client %d order %d: %s filled %d remaining %d%s", ev.client_id, ev.order_id,
                 ev.status, ev.filled, ev.remaining,
                 f" avg {format_price(ev.avg_fill_price)}" if ev.filled else "")
        msg = out.order_status(ev)
        self._to_client(ev.client_id, msg)
        if self.gw.faults.duplicate_status:
            self._to_client(ev.client_id, msg)

    def _execution(self, ev: ExecutionEvent) -> None:
        self._exec_owner[ev.exec_id] = ev.client_id
        log.info("fill: client %d order %d %s %d %s @ %s (exec %s)", ev.client_id, ev.order_id,
                 ev.side, ev.shares, ev.symbol, format_price(ev.price), ev.exec_id)
        self._to_client(ev.client_id, out.exec_details(-1, ev))

    def _position_changed(self, ev: PositionChanged) -> None:
        for session in self.gw.position_subs:
            session.send(out.position(self.gw.account, ev.symbol, ev.qty, ev.avg_cost))
        for session in self.gw.account_subs:
            send_portfolio(self.gw, session, ev.symbol)

    def _account_changed(self) -> None:
        for session in self.gw.account_subs:
            send_account_values(self.gw, session)
        for session, req_id in self.gw.multi_subs:
            send_account_multi(self.gw, session, req_id)

