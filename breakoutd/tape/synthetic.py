"""A seeded synthetic trading day that looks like the recorded tapes.

One row per second in which something happened: sparse before the open,
dense in regular hours, about 20-30k rows per symbol for 04:00-20:00. The
latent price (``price_path``) walks in trending and ranging stretches and
breaks each given level during regular hours, by a one-second spike that
meets the fast rule or by a slow grind whose minute closes above the level.
Quotes carry a spread of a few ticks, wider and thinner outside regular hours;
every price is on its tick. The same seed gives the same tape; each symbol
draws from its own stream, so adding a symbol does not change the others.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Mapping, Sequence
from decimal import Decimal

import numpy as np

from breakoutd.core.bars import NS
from breakoutd.core.prices import MICROS_PER_DOLLAR, to_micros

from .breakout_plan import plan_breakouts
from .checks import SYMBOL_RE
from .model import EXCHANGE_TZ, SymbolTape, Tape
from .price_path import (
    Breakout,
    PricePath,
    build_path,
    ceil_tick,
    day_steps,
    floor_tick,
    tick_of,
)

RTH_OPEN, RTH_CLOSE = dt.time(9, 30), dt.time(16, 0)
STYLES = ("mixed", "fast", "grind")
MAX_LEVELS = 50
MAX_LEVEL = 900_000 * MICROS_PER_DOLLAR  # the day's prices stay readable (below $1e6)
# Probability that a second has a row, by exchange time of day (hours).
_ACTIVITY = ((4.0, 0.01), (7.0, 0.02), (8.0, 0.05), (9.0, 0.12), (9.5, 0.35),
             (10.0, 0.97), (15.5, 0.88), (16.0, 0.97), (16.5, 0.30), (20.0, 0.03))
# Breakouts trigger between 09:35 and 15:50 unless told otherwise: in regular
# hours, away from the open's first bars and from the close.
BREAKOUTS_BETWEEN = (dt.time(9, 35), dt.time(15, 50))


def synthetic_tape(seed: int, symbols: Sequence[str], day: dt.date,
                   levels: Mapping[str, Sequence[Decimal | int]] | None = None,
                   start: dt.time = dt.time(4, 0), end: dt.time = dt.time(20, 0),
                   base_prices: Mapping[str, Decimal] | None = None, *,
                   density: float = 1.0, style: str = "mixed",
                   breakouts_between: tuple[dt.time, dt.time] = BREAKOUTS_BETWEEN) -> Tape:
    """A deterministic synthetic tape of ``day`` from ``start`` to ``end`` (inclusive).

    ``levels`` are decimal prices or int micros; each is broken once, with the
    trigger (a spike's end or a minute's close) between ``breakouts_between``,
    by ``style``: "fast" spikes, "grind" minute closes, or "mixed". ``density``
    scales the chance that a second has a row.
    """
    levels = dict(levels or {})
    base_prices = dict(base_prices or {})
    first, last = _epoch(day, start), _epoch(day, end)
    _check_arguments(symbols, levels, base_prices, first, last, density, style)
    rth = (_epoch(day, RTH_OPEN) - first, _epoch(day, RTH_CLOSE) - first)
    window = (_epoch(day, breakouts_between[0]) - first, _epoch(day, breakouts_between[1]) - first)
    if levels and not 0 < window[0] < window[1] < last - first:
        raise ValueError(f"breakouts between {breakouts_between[0]} and {breakouts_between[1]} "
                         f"must fall inside {start}-{end}")
    tapes = {}
    for symbol in symbols:
        rng = np.random.default_rng([seed, zlib.crc32(symbol.encode())])
        micros = sorted({_as_micros(v) for v in levels.get(symbol, ())})
        if micros and not (0 < micros[0] and micros[-1] <= MAX_LEVEL):
            raise ValueError(f"{symbol}: levels must be above 0 and at most 900000")
        base = _base_price(rng, micros, base_prices.get(symbol), symbol)
        plan = plan_breakouts(rng, micros, window, first, style) if micros else []
        tapes[symbol] = _symbol_day(rng, symbol, first, last - first + 1, rth, plan, base,
                                    density)
    return Tape(tapes)


def _epoch(day: dt.date, at: dt.time) -> int:
    return int(dt.datetime.combine(day, at, tzinfo=EXCHANGE_TZ).timestamp())


def _as_micros(value: Decimal | int | str) -> int:
    return value if isinstance(value, int) else to_micros(value)


def _check_arguments(symbols: Sequence[str], levels: Mapping[str, Sequence[object]],
                     base_prices: Mapping[str, Decimal], first: int, last: int,
                     density: float, style: str) -> None:
    for symbol in symbols:
        if not SYMBOL_RE.fullmatch(symbol.encode()):
            raise ValueError(f"{symbol!r} is not an upper-case ticker")
    if len(set(symbols)) != len(symbols):
        raise ValueError("symbols must be distinct")
    unknown = (set(levels) | set(base_prices)) - set(symbols)
    if unknown:
        raise ValueError(f"levels or base prices for symbols not asked for: {sorted(unknown)}")
    if any(len(v) > MAX_LEVELS for v in levels.values()):
        raise ValueError(f"at most {MAX_LEVELS} levels per symbol")
    if last <= first:
        raise ValueError("end must be after start")
    if not density > 0:
        raise ValueError("density must be positive")
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}")


def _base_price(rng: np.random.Generator, levels: list[int], given: Decimal | None,
                symbol: str) -> int:
    if given is not None:
        base = to_micros(given)
        if base <= 0 or (levels and base >= levels[0]):
            raise ValueError(f"{symbol}: base price {given} must be positive and below "
                             "the lowest level")
        return base
    if levels:
        lowest = levels[0]
        below = int(floor_tick(int(lowest * (1 - rng.uniform(0.01, 0.03)))))
        return max(min(below, int(floor_tick(lowest - 1)) - 2 * int(tick_of(lowest))), 100)
    # No level: pick a price regime, then a price within it.
    lo, hi = ((0.2, 1.0), (1.0, 10.0), (10.0, 100.0), (100.0, 400.0))[int(rng.integers(4))]
    dollars = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return int(floor_tick(int(dollars * MICROS_PER_DOLLAR)))


def _session_profile(first: int, n: int, rth: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(activity probability, in regular hours) for each second."""
    offsets = np.arange(n)
    local = dt.datetime.fromtimestamp(first, EXCHANGE_TZ)
    hours = (local.hour * 3600 + local.minute * 60 + local.second + offsets) / 3600.0
    edges = np.array([h for h, _ in _ACTIVITY])
    probs = np.array([p for _, p in _ACTIVITY])
    idx = np.clip(np.searchsorted(edges, hours, side="right") - 1, 0, len(probs) - 1)
    activity = np.where(hours < edges[0], probs[0], probs[idx])
    in_rth = (offsets >= rth[0]) & (offsets < rth[1])
    return activity, in_rth


def _symbol_day(rng: np.random.Generator, symbol: str, first: int, n: int,
                rth: tuple[int, int], plan: list[Breakout], base: int,
                density: float) -> SymbolTape:
    activity, in_rth = _session_profile(first, n, rth)
    sigma = np.where(in_rth, 1.1e-4, 0.4e-4)
    path = build_path(rng, day_steps(rng, sigma), base, plan)
    active = rng.random(n) < np.minimum(activity * density, 1.0)
    active[[0, n - 1]] = True  # the opening quote snapshot and the closing one
    trade = active & (rng.random(n) < np.where(in_rth, 0.65, 0.45))
    must = np.fromiter(sorted(path.must_trade), dtype=np.int64)
    active[must] = trade[must] = True
    bid, ask = _quotes(rng, path, in_rth)
    bid_size, ask_size = (_sizes(rng, bid, in_rth) for _ in range(2))
    o, h, lo, c = _trades(rng, path, bid, ask)
    volume = _volumes(rng, n, in_rth)
    for second, ohlc in path.forced.items():
        o[second], h[second], lo[second], c[second] = ohlc
    rows = np.flatnonzero(active)
    has_trade = trade[rows]

    def traded(arr: np.ndarray) -> np.ndarray:
        return np.where(has_trade, arr[rows], 0)

    present = np.ones(len(rows), dtype=bool)
    return SymbolTape(symbol, time=(first + rows) * NS, has_trade=has_trade,
                      open=traded(o), high=traded(h), low=traded(lo), close=traded(c),
                      volume=traded(volume), has_bid=present, bid=bid[rows],
                      bid_size=bid_size[rows], has_ask=present.copy(), ask=ask[rows],
                      ask_size=ask_size[rows])


def _quotes(rng: np.random.Generator, path: PricePath,
            in_rth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(path.mid)
    mid = np.rint(path.mid * MICROS_PER_DOLLAR).astype(np.int64)
    rth_spread = rng.choice([1, 1, 1, 1, 1, 2, 2, 3], size=n)
    ext_spread = rng.integers(2, 11, size=n)
    ticks = np.where(in_rth, rth_spread, ext_spread)
    ticks = np.where(mid < MICROS_PER_DOLLAR, ticks * 10, ticks)  # sub-dollar ticks are tiny
    width = ticks * tick_of(mid)
    bid = np.maximum(floor_tick(mid - width // 2), 100)
    ask = ceil_tick(bid + width)
    return bid, ask


def _sizes(rng: np.random.Generator, price: np.ndarray, in_rth: np.ndarray) -> np.ndarray:
    # About a million dollars of shares at the touch in regular hours, a tenth outside.
    shares = 1e12 / price * np.where(in_rth, 1.0, 0.1)
    lots = np.rint(shares / 100 * rng.lognormal(0.0, 0.9, len(price)))
    return np.maximum(lots, 1).astype(np.int64) * 100


def _volumes(rng: np.random.Generator, n: int, in_rth: np.ndarray) -> np.ndarray:
    raw = rng.lognormal(np.log(np.where(in_rth, 800.0, 300.0)), 1.3)
    round_lot = rng.random(n) < 0.75
    volume = np.where(round_lot, np.maximum(np.rint(raw / 100), 1) * 100, np.ceil(raw))
    return volume.astype(np.int64)


def _trades(rng: np.random.Generator, path: PricePath, bid: np.ndarray,
            ask: np.ndarray) -> tuple[np.ndarray, ...]:
    """OHLC of a trade in every second (used where a trade printed), under the cap."""
    n = len(bid)
    prev_bid, prev_ask = np.roll(bid, 1), np.roll(ask, 1)
    prev_bid[0], prev_ask[0] = bid[0], ask[0]
    o = np.where(rng.random(n) < 0.5, prev_bid, prev_ask)
    c = np.where(rng.random(n) < 0.5, bid, ask)
    h, lo = np.maximum(o, c), np.minimum(o, c)
    h = np.where(rng.random(n) < 0.12, ceil_tick(h + tick_of(h)), h)
    lo = np.where(rng.random(n) < 0.12, np.maximum(floor_tick(lo - tick_of(lo)), 100), lo)
    return tuple(np.minimum(x, path.cap) for x in (o, h, lo, c))
