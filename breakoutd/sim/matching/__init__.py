"""The matching engine: orders in, IB-style events out, with no socket in sight.

Pure and synchronous, so the matching rules are tested without a client. The
wire decodes a placeOrder into a :class:`SimOrder` and hands it to a
:class:`MatchingEngine`; the engine answers with events the wire encodes
(openOrder, orderStatus, execDetails, commissionReport, error, position and
account updates). Nothing in this package imports the rest of the sim. Its
modules: ``values`` (what crosses the boundary), ``book`` (order records and
the pricing rules), ``lifecycle`` (holding, sessions, cancels, OCA),
``account`` (cash, positions, commissions) and ``engine`` (the public calls).
"""

from __future__ import annotations

from breakoutd.sim.matching.account import CommissionSchedule, PortfolioItem
from breakoutd.sim.matching.engine import MatchingEngine
from breakoutd.sim.matching.values import (
    CANCELLED,
    DONE_STATES,
    FILLED,
    INACTIVE,
    PRE_SUBMITTED,
    SUBMITTED,
    AccountChanged,
    CommissionEvent,
    EngineEvent,
    ExecutionEvent,
    OpenOrderEvent,
    OrderErrorEvent,
    OrderStatusEvent,
    PositionChanged,
    SimOrder,
)

__all__ = [
    "CANCELLED",
    "DONE_STATES",
    "FILLED",
    "INACTIVE",
    "PRE_SUBMITTED",
    "SUBMITTED",
    "AccountChanged",
    "CommissionEvent",
    "CommissionSchedule",
    "EngineEvent",
    "ExecutionEvent",
    "MatchingEngine",
    "OpenOrderEvent",
    "OrderErrorEvent",
    "OrderStatusEvent",
    "PortfolioItem",
    "PositionChanged",
    "SimOrder",
]
