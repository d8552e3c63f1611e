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

TriggerKind = Literal["close", "fast"]
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
    """The close rule fired on the close-rule bar ending at ``at``."""

    watcher_id: str
    bar_start: int
    close: Decimal


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


CORE_EVENTS: tuple[type[Event], ...] = (
    WatcherStarted,
    BreakDetected,
    FastTriggered,
    Confirmed,
    Rejected,
    Expired,
    Stopped,
    OrderIntent,
)
