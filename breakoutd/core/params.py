"""Strategy parameters and watcher specifications, as typed frozen values.

``breakoutd.config`` builds these from the operator's YAML; the core only
reads them. Prices are micro-dollars (see :mod:`breakoutd.core.prices`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from breakoutd.core.records import pickled_by_fields


class Session(StrEnum):
    """A trading session a watcher can name."""

    PREMARKET = "premarket"
    RTH = "rth"
    AFTERHOURS = "afterhours"


class OnHalt(StrEnum):
    """What the daemon does with open positions when a risk limit halts trading."""

    HOLD = "hold"  # keep the positions and their broker-held exits
    FLATTEN = "flatten"  # cancel the exits and sell what is open


class Rule(StrEnum):
    """Which bar rule confirms a break (strategy.md, Rule variants)."""

    CLOSE = "close"
    MOMENTUM = "momentum"  # the close rule with the bar's volume confirming it
    RETEST = "retest"  # a break, then a later bar that comes back to the level and holds


class LevelName(StrEnum):
    """A level taken from the market (strategy.md, Levels from the market)."""

    PREMARKET_HIGH = "premarket_high"
    OPENING_RANGE_HIGH = "opening_range_high"
    PRIOR_HIGH = "prior_high"
    PRIOR_CLOSE = "prior_close"


class EntryKind(StrEnum):
    """How the entry order is priced."""

    LIMIT_AT_ASK = "limit_at_ask"
    MARKET = "market"


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class FastSchedule:
    """The fast rule's distance and spread schedule, in cents and seconds."""

    distance_start: Decimal = Decimal(15)
    distance_end: Decimal = Decimal(5)
    spread_start: Decimal = Decimal(4)
    spread_end: Decimal = Decimal(1)
    step: int = 10


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Slices:
    """Entry slicing (strategy.md, Position management): ``count`` orders ``every`` seconds apart."""

    count: int
    every: int = 0


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class StrategyParams:
    """A preset resolved with defaults and per-breakout overrides."""

    sessions: tuple[Session, ...] = (Session.PREMARKET, Session.RTH)
    not_before: int | None = None  # seconds after 00:00 exchange time
    not_after: int | None = None
    entry: EntryKind = EntryKind.LIMIT_AT_ASK
    bar_seconds: int = 60
    fast: FastSchedule | None = field(default_factory=FastSchedule)
    quote_age: Decimal = Decimal("2.0")
    quote_warmup: Decimal = Decimal("0.5")
    max_bars: int | None = None
    rth: bool = False
    tif: str = "DAY"
    risk_usd: Decimal | None = None
    max_chase: int | None = None  # micros above the level an ask may be; None: no limit
    rule: Rule = Rule.CLOSE
    volume_mult: Decimal = Decimal("2.0")
    volume_lookback: int = 20
    retest_within: int = 50_000  # micros above the level a retest's low may stay
    opening_range: int = 5  # minutes, for level: opening_range_high
    level_offset: int = 0  # micros added to a named level (may be negative)
    # Position management and relative exits (strategy.md); None or () when unset.
    breakeven: Decimal | None = None  # in R
    trail: int | None = None  # micros below the highest print since the fill
    trail_after: Decimal | None = None  # in R; None: from the fill (0)
    exit_at: int | None = None  # seconds after 00:00 exchange time
    max_hold: int | None = None  # seconds after the fill
    slices: Slices | None = None
    sl_below: int | None = None  # micros below the level
    tp_r: tuple[Decimal, ...] = ()  # take-profits in R from the entry, ascending

    @property
    def manages_position(self) -> bool:
        """True when some rule acts on the position after the entry fills."""
        return (self.breakeven is not None or self.trail is not None
                or self.exit_at is not None or self.max_hold is not None)

    @property
    def outside_rth(self) -> bool:
        """Orders may work outside regular hours unless the preset says rth."""
        return not self.rth


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a value came from, for error messages and status."""

    file: str
    line: int


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class WatcherSpec:
    """One breakout of a watchlist, fully resolved."""

    id: str
    symbol: str
    level: int
    params: StrategyParams
    qty: int | None = None
    tp: tuple[int, ...] = ()
    tp_split: tuple[Decimal, ...] = ()
    sl: int | None = None
    enabled: bool = True
    source: SourceRef | None = field(default=None, compare=False)
    level_name: LevelName | None = None  # a named level: ``level`` is 0 until resolved

    @property
    def is_ladder(self) -> bool:
        """A ladder has more than one take-profit rung."""
        return len(self.tp) > 1


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Daemon-wide portfolio limits (watchlist ``risk:``); None means no limit."""

    max_positions: int | None = None
    max_daily_loss_usd: Decimal | None = None
    max_notional_usd: Decimal | None = None
    max_entries_per_day: int | None = None
    max_consecutive_losses: int | None = None
    on_halt: OnHalt = OnHalt.HOLD
