"""The simulated gateway's order side: the interface SIM-WIRE codes against.

Decoded orders (:class:`SimOrder`) go into a :class:`MatchingEngine`; the
engine answers with events the wire encodes (openOrder, orderStatus,
execDetails, commissionReport, error, position and account updates).
"""

from __future__ import annotations

from breakoutd.sim.account import CommissionSchedule, PortfolioItem
from breakoutd.sim.match_engine import MatchingEngine
from breakoutd.sim.match_types import (
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
