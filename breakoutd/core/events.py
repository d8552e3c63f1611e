"""The event catalog: every decision and every thing the daemon does.

Each event is a frozen, typed value. The journal, the status file and the
logs are views of these events; ``docs/events.md`` documents every field.
Instants (``at``) are integer nanoseconds since the epoch on the broker's
clock (the exchange time of the tape in backtest); prices are exact decimals,
encoded as strings in JSON.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

TriggerKind = Literal["close", "fast", "momentum", "retest"]
Outcome = Literal["entered", "rejected", "expired", "stopped"]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="event", tag=True):
    """Base of every event: ``event`` names the type in JSON."""

    at: int


# --- watcher lifecycle -------------------------------------------------------


class WatcherStarted(Event, frozen=True, kw_only=True):
    """A watcher was armed for its window ``[armed_at, disarm_at]``."""

    watcher_id: str
    symbol: str
    level: Decimal
    session_day: str
    disarm_at: int


class BreakDetected(Event, frozen=True, kw_only=True):
    """A 1-second bar closed at or above the level; the close rule may follow."""

    watcher_id: str
    price: Decimal


class FastTriggered(Event, frozen=True, kw_only=True):
    """The fast rule fired on the 1-second bar ending at ``at``."""

    watcher_id: str
    bar_start: int
    high: Decimal
    low: Decimal
    close: Decimal


class Confirmed(Event, frozen=True, kw_only=True):
    """The close rule (or its variant ``kind``) fired on the close-rule bar ending at ``at``."""

    watcher_id: str
    bar_start: int
    close: Decimal
    kind: TriggerKind = "close"


class Rejected(Event, frozen=True, kw_only=True):
    """A triggered watcher did not enter; it is done for the day."""

    watcher_id: str
    reason: str
    kind: TriggerKind
    trigger_at: int
    quote_age: float | None = None
    limit: Decimal | None = None
    detail: str = ""


class Expired(Event, frozen=True, kw_only=True):
    """A watcher ended without a trigger (``max_bars`` or ``session_end``)."""

    watcher_id: str
    reason: str
    bars_evaluated: int


class Stopped(Event, frozen=True, kw_only=True):
    """A watcher was disarmed by the operator (removed, disabled) or the kill switch."""

    watcher_id: str
    reason: str


class LevelResolved(Event, frozen=True, kw_only=True):
    """A named level was resolved for the day from the market's prints; ``at`` is when it is known."""

    watcher_id: str
    symbol: str
    name: str
    price: Decimal  # the level L: the prints' price plus the offset
    raw: Decimal  # the highest (or last) print itself
    offset: Decimal
    range_start: int
    range_end: int
    source: str  # where the prints came from: a tape, or the broker's historical bars


class NearMiss(Event, frozen=True, kw_only=True):
    """A close-rule bar came near a trigger (``kind``: no_volume | awaiting_retest | break_cancelled)."""

    watcher_id: str
    kind: str
    bar_start: int
    close: Decimal
    volume: int
    mean_volume: Decimal | None = None


class OrderIntent(Event, frozen=True, kw_only=True):
    """The entry and its exits, decided and about to be sent."""

    watcher_id: str
    order_ref: str
    kind: TriggerKind
    trigger_at: int
    symbol: str
    qty: int
    entry: str
    limit: Decimal | None
    take_profits: tuple[Decimal, ...]
    take_profit_qtys: tuple[int, ...]
    stop: Decimal | None
    stop_limit: Decimal | None
    outside_rth: bool
    tif: str
    reference: Decimal | None = None  # the price the entry is expected at (the ask for MKT)


class NearMissed(Event, frozen=True, kw_only=True):
    """A watcher ended without entering: how close it came (breakoutd.core.near_miss)."""

    watcher_id: str
    outcome: str  # expired | rejected
    level: Decimal
    closest: Decimal | None
    closest_at: int | None
    seconds: int
    seconds_closed_above: int
    bars_closed_above: int
    touched: int
    failed_distance: int
    failed_close: int
    failed_spread: int


class ScanCandidate(msgspec.Struct, frozen=True, kw_only=True):
    """One symbol of a scan: what the broker said of it and what the scan decided."""

    symbol: str
    rank: int  # the broker scanner's rank, 0 first
    last: Decimal | None
    prior_close: Decimal | None
    gap_pct: Decimal | None
    volume: int | None
    spread_pct: Decimal | None
    score: Decimal | None
    outcome: str  # armed | armed_before | below_top | filtered
    reason: str = ""  # why it was filtered out (breakoutd.core.scan)


class ScanResult(Event, frozen=True, kw_only=True):
    """The market scanner ran: every candidate with its score or why it was filtered out."""

    code: str
    trigger: str  # schedule | start-up | breakoutctl
    candidates: tuple[ScanCandidate, ...]
    armed: tuple[str, ...]  # the watcher ids this scan armed (scan:SYMBOL)
    error: str = ""  # the scan could not run: why (nothing was armed)


# --- orders at the broker --------------------------------------------------------

OrderRole = Literal["entry", "take_profit", "stop", "flatten"]
# The statuses after which an order can no longer trade. OrderStatusChanged carries the
# broker's own word (journals and the status file show it); breakoutd.ibkr alone knows
# the rest of IB's vocabulary, and everyone reads the end of an order here.
DONE_STATUSES = frozenset({"ApiCancelled", "Cancelled", "Filled", "Inactive"})
# An entry's status in breakoutd's own words (OrderReconciled): working, partially_filled,
# filled, cancelled, rejected, closed; these two ended with nothing bought.
ENTRY_ENDED_UNFILLED = frozenset({"cancelled", "rejected"})


class OrderSent(Event, frozen=True, kw_only=True):
    """One order of a plan was handed to the broker connection."""

    order_ref: str
    role: OrderRole
    rung: int  # 1-based take-profit rung; 0 for the entry and the stop
    order_id: int
    parent_id: int
    symbol: str
    action: str
    order_type: str
    qty: int
    limit: Decimal | None
    stop: Decimal | None
    oca_group: str
    transmit: bool


class OrderIdAssigned(Event, frozen=True, kw_only=True):
    """The broker acknowledged an order: its permanent id is known."""

    order_ref: str
    role: OrderRole
    order_id: int
    perm_id: int


class OrderStatusChanged(Event, frozen=True, kw_only=True):
    """An order's status changed at the broker (PreSubmitted, Submitted, Cancelled, ...)."""

    order_ref: str
    role: OrderRole
    rung: int
    order_id: int
    status: str
    filled: int
    remaining: int
    detail: str = ""


class OrderFilled(Event, frozen=True, kw_only=True):
    """An execution: ``qty`` shares of an order at ``price`` (one per execDetails)."""

    order_ref: str
    role: OrderRole
    rung: int
    order_id: int
    exec_id: str
    symbol: str
    side: str
    qty: int
    price: Decimal
    cum_qty: int
    commission: float | None = None


class StopMoved(Event, frozen=True, kw_only=True):
    """A stop was moved up at the broker: by the ladder after a rung filled, or by a
    position-management rule (``rule``: ladder, breakeven, trail)."""

    order_ref: str
    order_id: int
    stop: Decimal
    stop_limit: Decimal
    qty: int
    rule: str = "ladder"  # journals written before the rules existed: the ladder's moves


class OrderModified(Event, frozen=True, kw_only=True):
    """A working order's terms were changed at the broker (the operator's new tp/sl, or
    exits grown to a slice's fill: ``reason`` operator or slice)."""

    order_ref: str
    role: OrderRole
    rung: int
    order_id: int
    qty: int
    limit: Decimal | None
    stop: Decimal | None
    reason: str


class CommissionReported(Event, frozen=True, kw_only=True):
    """The broker's commission report for one execution (after its OrderFilled)."""

    order_ref: str
    exec_id: str
    commission: float
    realized_pnl: float


class OrderReconciled(Event, frozen=True, kw_only=True):
    """At start-up an entry of today was found at the broker by its orderRef."""

    order_ref: str
    watcher_id: str
    status: str  # ours: working, partially_filled, filled, cancelled, rejected, closed
    filled: int


class TimeExit(Event, frozen=True, kw_only=True):
    """A position's time exit is due (``rule``: exit_at or max_hold); the sale follows as
    ``FlattenSent`` with reason ``time_exit``."""

    order_ref: str
    watcher_id: str
    symbol: str
    rule: str
    due_at: int


class SliceSent(Event, frozen=True, kw_only=True):
    """Slice ``number`` of ``count`` of a sliced entry was sent (strategy.md, slices):
    its own orderRef ``{order_ref}:s{number}``, ``qty`` shares at ``limit`` (None: MKT)."""

    order_ref: str
    watcher_id: str
    symbol: str
    number: int
    count: int
    order_id: int
    qty: int
    limit: Decimal | None
    due_at: int


class SliceSkipped(Event, frozen=True, kw_only=True):
    """Slice ``number`` and every later one of a sliced entry will not be sent, and why
    (``reason``: breaks_exits, no_quote, unfilled, closed, sold, halted, late, failed)."""

    order_ref: str
    watcher_id: str
    number: int
    count: int
    reason: str
    detail: str = ""


# --- the broker connection and data streams -------------------------------------


class ConnectionUp(Event, frozen=True, kw_only=True):
    """Connected and synchronised with the gateway."""

    host: str
    port: int
    client_id: int
    account: str
    server_version: int
    attempt: int


class ConnectionLost(Event, frozen=True, kw_only=True):
    """The connection to the gateway is down (socket closed, 1100, or silence)."""

    reason: str


class Reconnecting(Event, frozen=True, kw_only=True):
    """The next reconnect attempt is scheduled after ``delay`` seconds."""

    attempt: int
    delay: float


class DataResubscribed(Event, frozen=True, kw_only=True):
    """Market data was requested again after 1101, a reconnect or a farm blip."""

    reason: str
    symbols: int


class GatewayMessage(Event, frozen=True, kw_only=True):
    """An error or notice from the gateway, with IB's code."""

    code: int
    message: str
    req_id: int


class BarStreamHealth(Event, frozen=True, kw_only=True):
    """A bar stream is late or has a gap (``kind``: ``gap`` | ``lag`` | ``late_print``)."""

    symbol: str
    kind: str
    seconds: float
    detail: str = ""


class ConnectWaiting(Event, frozen=True, kw_only=True):
    """A connection attempt waits for the gateway (``waiting_for``: socket | handshake | sync).

    ``timeout``: the seconds that step may take before the attempt fails."""

    host: str
    port: int
    client_id: int
    attempt: int
    waiting_for: str
    timeout: float


class TapeRecorded(Event, frozen=True, kw_only=True):
    """The tape recorder closed a day's file (at a stop or the day's end), or failed."""

    path: str
    rows: int
    late: int
    error: str = ""


class ConfigReloaded(Event, frozen=True, kw_only=True):
    """The watchlists were read again (``result``: applied | partial | unchanged | invalid).

    ``failed``: the watchers that could not be applied, ``"id: file:line: reason"``."""

    result: str
    trigger: str
    digest: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what the reload means for watchers that fired today


class DaemonState(Event, frozen=True, kw_only=True):
    """The daemon changed state: starting, running, degraded, paused, halted, stopping, stopped."""

    state: str
    detail: str = ""


# --- the engine: the kill switch and the operator's controls ---------------------


class Halted(Event, frozen=True, kw_only=True):
    """Trading is halted: no new entry is sent, unfilled entries are cancelled.

    ``reason``: ``daily_loss`` or ``consecutive_losses`` (the kill switch) or
    ``operator``; ``by``: ``risk`` or ``uid N``; ``flatten``: open positions are sold."""

    reason: str
    detail: str = ""
    by: str = "risk"
    flatten: bool = False


class Paused(Event, frozen=True, kw_only=True):
    """The operator paused new entries (working orders and positions are left alone)."""

    by: str


class Resumed(Event, frozen=True, kw_only=True):
    """Trading goes on after a halt or a pause (``was``: halted | paused)."""

    by: str
    was: str


class FlattenSent(Event, frozen=True, kw_only=True):
    """An open position is being sold: its exits cancelled, ``qty`` shares offered.

    ``order_type`` is MKT in regular hours, else LMT at the bid minus 0.05 (``limit``);
    ``reason``: ``halt`` (the kill switch's on_halt: flatten), ``operator``, ``time_exit`` or
    ``unprotected`` (a slice filled after the exits were done)."""

    order_ref: str
    watcher_id: str
    symbol: str
    qty: int
    order_type: str
    limit: Decimal | None
    reason: str
class OperatorCommand(Event, frozen=True, kw_only=True):
    """The operator asked for something over the control socket, and what the daemon answered."""

    command: str
    target: str
    flatten: bool
    uid: int
    ok: bool
    code: str
    message: str


CORE_EVENTS: tuple[type[Event], ...] = (
    WatcherStarted,
    BreakDetected,
    FastTriggered,
    Confirmed,
    Rejected,
    Expired,
    Stopped,
    LevelResolved,
    NearMiss,
    OrderIntent,
    NearMissed,
    ScanResult,
    OrderSent,
    OrderIdAssigned,
    OrderStatusChanged,
    OrderFilled,
    StopMoved,
    OrderModified,
    CommissionReported,
    OrderReconciled,
    TimeExit,
    SliceSent,
    SliceSkipped,
    ConnectionUp,
    ConnectionLost,
    Reconnecting,
    DataResubscribed,
    GatewayMessage,
    BarStreamHealth,
    ConnectWaiting,
    TapeRecorded,
    ConfigReloaded,
    DaemonState,
    Halted,
    Paused,
    Resumed,
    FlattenSent,
    OperatorCommand,
)
