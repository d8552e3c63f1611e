"""Values exchanged between the simulated gateway's wire and its matching engine.

The wire decodes a placeOrder into a :class:`SimOrder` and encodes every event
the engine returns. Prices are integer micro-dollars (averages rounded to the
nearest micro-dollar); the wire converts them with
``breakoutd.core.prices.to_float``. Money amounts for IB's commission report
are float USD, as the wire sends them. Instants are epoch nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

# Order states the engine reports, with IB's spelling.
PRE_SUBMITTED = "PreSubmitted"
SUBMITTED = "Submitted"
FILLED = "Filled"
CANCELLED = "Cancelled"
INACTIVE = "Inactive"
DONE_STATES = frozenset({FILLED, CANCELLED, INACTIVE})

ORDER_TYPES = frozenset({"MKT", "LMT", "STP", "STP LMT"})
TIFS = frozenset({"DAY", "GTC", "IOC"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SimOrder:
    """An order as the wire decoded it (the engine assigns ``perm_id``)."""

    client_id: int
    order_id: int
    perm_id: int = 0
    symbol: str
    con_id: int = 0
    action: str  # "BUY" | "SELL"
    total_qty: int
    order_type: str  # "MKT" | "LMT" | "STP" | "STP LMT"
    lmt_price: int | None = None
    aux_price: int | None = None
    tif: str = "DAY"
    outside_rth: bool = False
    order_ref: str = ""
    parent_id: int = 0
    transmit: bool = True
    oca_group: str = ""
    oca_type: int = 0
    account: str = ""

    @property
    def is_buy(self) -> bool:
        """True for a BUY order."""
        return self.action == "BUY"


@dataclass(frozen=True, slots=True)
class OpenOrderEvent:
    """An order's current terms and state: openOrder (5)."""

    order: SimOrder
    status: str


@dataclass(frozen=True, slots=True)
class OrderStatusEvent:
    """orderStatus (3); prices in micro-dollars, 0 before any fill."""

    client_id: int
    order_id: int
    status: str
    filled: int
    remaining: int
    avg_fill_price: int
    perm_id: int
    parent_id: int
    last_fill_price: int
    why_held: str = ""


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    """execDetails (11): one fill; prices in micro-dollars."""

    client_id: int
    order_id: int
    exec_id: str
    time_ns: int
    symbol: str
    side: str  # "BOT" | "SLD"
    shares: int
    price: int
    perm_id: int
    cum_qty: int
    avg_price: int
    order_ref: str
    account: str
    con_id: int = 0


@dataclass(frozen=True, slots=True)
class CommissionEvent:
    """commissionReport (59); realized_pnl is None on opening fills (IB sends UNSET_DOUBLE)."""

    exec_id: str
    commission: float
    currency: str
    realized_pnl: float | None


@dataclass(frozen=True, slots=True)
class OrderErrorEvent:
    """error (4) about one order, for the client that owns it."""

    client_id: int
    order_id: int
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class PositionChanged:
    """A position moved: position (61) / updatePortfolio (7) for subscribers."""

    account: str
    symbol: str
    con_id: int
    qty: int
    avg_cost: int


@dataclass(frozen=True, slots=True)
class AccountChanged:
    """Account values after a fill: updateAccountValue (6) for subscribers."""

    account: str
    values: dict[str, str]


EngineEvent = (
    OpenOrderEvent
    | OrderStatusEvent
    | ExecutionEvent
    | CommissionEvent
    | OrderErrorEvent
    | PositionChanged
    | AccountChanged
)
