"""The market scanner's filter and score: candidates in, verdicts out.

The broker's scanner ranks symbols by one code (``TOP_PERC_GAIN``, ...) and
says nothing else about them; the daemon then reads each candidate's last
print, prior close, day volume and quote, and this module decides which of
them become watchers (docs/watchlists.md, "The market scanner"):

1. Filters, in this order, the first that fails is the reason (the ones
   the snapshot answers first, so history is asked only for what passes them):
   ``no_last`` (no print today), ``price_below`` / ``price_above``
   (``min_price`` / ``max_price`` against the last print), ``volume_below``
   (``min_volume``: shares today), ``no_quote`` (no bid and ask, with
   ``max_spread_pct`` only), ``spread_above`` (``max_spread_pct``: the spread
   over the midpoint), ``on_watchlist`` (an operator's watcher already trades
   the symbol), ``no_prior_close``, ``gap_below`` (``min_gap_pct``: the last
   print over the prior regular session's close).
2. Score: ``gap % x sqrt(dollar volume today in $M)``, exact decimals rounded
   to 0.01: the gap is the setup, the traded dollars make it tradeable, with
   diminishing returns so a large stock with a small gap does not win.
3. The ``top`` best scores (ties: the broker's rank) are the day's picks:
   ``armed``, or ``armed_before`` when an earlier scan of the day armed it;
   the others are ``below_top``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

import msgspec

from breakoutd.core.events import ScanCandidate
from breakoutd.core.params import WatcherSpec
from breakoutd.core.prices import MICROS_PER_DOLLAR, to_decimal

ID_PREFIX = "scan:"
CENT = Decimal("0.01")
DEFAULT_ROWS, DEFAULT_TOP = 20, 3
ARMED, ARMED_BEFORE, BELOW_TOP, FILTERED = "armed", "armed_before", "below_top", "filtered"


@dataclass(frozen=True, slots=True)
class ScanSettings:
    """The watchlist's ``scan:`` block, resolved (prices in micros, times in seconds)."""

    times: tuple[int, ...]  # seconds after 00:00 exchange time, ascending
    template: WatcherSpec  # the watcher each pick becomes (symbol and id replaced)
    code: str = "TOP_PERC_GAIN"
    rows: int = DEFAULT_ROWS  # rows asked of the broker's scanner
    top: int = DEFAULT_TOP
    min_price: int | None = None
    max_price: int | None = None
    min_gap_pct: Decimal | None = None
    min_volume: int | None = None
    max_spread_pct: Decimal | None = None


@dataclass(frozen=True, slots=True)
class CandidateData:
    """What the broker said of one candidate (prices in micros; None: not known)."""

    symbol: str
    rank: int  # the scanner's own, 0 first
    last: int | None = None
    prior_close: int | None = None
    volume: int | None = None
    bid: int | None = None
    ask: int | None = None


def scanned_id(symbol: str) -> str:
    """The stable id of a scanned watcher: ``scan:SYMBOL`` (watchlist ids never hold ``:``)."""
    return f"{ID_PREFIX}{symbol}"


def scanned_spec(template: WatcherSpec, symbol: str) -> WatcherSpec:
    """The template made a watcher for ``symbol``."""
    return dataclasses.replace(template, id=scanned_id(symbol), symbol=symbol)


def _pct(part: int, whole: int) -> Decimal:
    return (Decimal(part) * 100 / Decimal(whole)).quantize(CENT, ROUND_HALF_UP)


def gap_pct(last: int, prior_close: int) -> Decimal:
    """The last print over the prior close, in percent (0.01)."""
    return _pct(last - prior_close, prior_close)


def spread_pct(bid: int, ask: int) -> Decimal:
    """The spread over the midpoint, in percent (0.01)."""
    return _pct(ask - bid, (bid + ask) // 2 or 1)


def score(gap: Decimal, last: int, volume: int) -> Decimal:
    """``gap % x sqrt(dollar volume in $M)``, to 0.01."""
    millions = Decimal(last) * Decimal(volume) / (MICROS_PER_DOLLAR * 1_000_000)
    with localcontext() as ctx:
        ctx.prec = 28
        return (gap * millions.sqrt()).quantize(CENT, ROUND_HALF_UP)


def _price_reason(s: ScanSettings, last: int) -> str | None:
    if s.min_price is not None and last < s.min_price:
        return "price_below"
    if s.max_price is not None and last > s.max_price:
        return "price_above"
    return None


def filter_reason(s: ScanSettings, c: CandidateData, watched: Iterable[str] = ()) -> str | None:
    """Why ``c`` is filtered out (module doc, step 1), or None when it passes."""
    if c.last is None or c.last <= 0:
        return "no_last"
    if (why := _price_reason(s, c.last)) is not None:
        return why
    if s.min_volume is not None and (c.volume or 0) < s.min_volume:
        return "volume_below"
    if s.max_spread_pct is not None:
        if c.bid is None or c.ask is None or c.bid <= 0 or c.ask < c.bid:
            return "no_quote"
        if spread_pct(c.bid, c.ask) > s.max_spread_pct:
            return "spread_above"
    if c.symbol in set(watched):
        return "on_watchlist"
    if c.prior_close is None or c.prior_close <= 0:
        return "no_prior_close"
    if s.min_gap_pct is not None and gap_pct(c.last, c.prior_close) < s.min_gap_pct:
        return "gap_below"
    return None


def _row(c: CandidateData, outcome: str, reason: str = "") -> ScanCandidate:
    gap = gap_pct(c.last, c.prior_close) if c.last and c.prior_close else None
    quoted = c.bid is not None and c.ask is not None and c.bid > 0 and c.ask >= c.bid
    spread = spread_pct(c.bid, c.ask) if quoted and c.bid and c.ask else None
    value = score(gap, c.last, c.volume or 0) if gap is not None and c.last else None
    return ScanCandidate(
        symbol=c.symbol, rank=c.rank, last=to_decimal(c.last) if c.last else None,
        prior_close=to_decimal(c.prior_close) if c.prior_close else None, gap_pct=gap,
        volume=c.volume, spread_pct=spread, score=value, outcome=outcome, reason=reason)


def evaluate(s: ScanSettings, found: Iterable[CandidateData], armed_today: Iterable[str] = (),
             watched: Iterable[str] = ()) -> tuple[ScanCandidate, ...]:
    """Every candidate's verdict, the picks first (best score first), then the others.

    ``armed_today``: symbols an earlier scan of the day armed; ``watched``: symbols
    an operator's watcher trades."""
    before, on_list = set(armed_today), set(watched)
    passing: list[ScanCandidate] = []
    filtered: list[ScanCandidate] = []
    for c in found:
        why = filter_reason(s, c, on_list)
        if why is None:
            passing.append(_row(c, ""))
        else:
            filtered.append(_row(c, FILTERED, why))
    passing.sort(key=lambda r: (-(r.score or Decimal(0)), r.rank, r.symbol))
    picks = [msgspec.structs.replace(r, outcome=ARMED_BEFORE if r.symbol in before else ARMED)
             for r in passing[: s.top]]
    rest = [msgspec.structs.replace(r, outcome=BELOW_TOP) for r in passing[s.top:]]
    return (*picks, *rest, *filtered)


def to_arm(verdicts: Iterable[ScanCandidate]) -> tuple[str, ...]:
    """The symbols a scan's verdicts arm now."""
    return tuple(v.symbol for v in verdicts if v.outcome == ARMED)
