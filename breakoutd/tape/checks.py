"""Vectorised validation of a parsed tape file (tape-format.md).

Every check is a boolean mask over all rows at once; the error reported is
the one on the earliest bad row (ties: the order of the checks below), so the
operator fixes a file top to bottom. Only that one row's message is built.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from breakoutd.core.prices import MICROS_PER_DOLLAR, format_price

from .model import EXCHANGE_TZ

PRICE_COLUMNS = ("open", "high", "low", "close", "bid", "ask")
INT_COLUMNS = ("volume", "bid_size", "ask_size")
TRADE_PRICES = ("open", "high", "low", "close")
SYMBOL_RE = re.compile(rb"[A-Z][A-Z0-9.]{0,11}")
MAX_PRICE = 1_000_000.0  # prices convert exactly below this (see decimal_floats_to_micros)
MIN_SECONDS = 0  # 1970-01-01
MAX_SECONDS = int(dt.datetime(2200, 1, 1, tzinfo=dt.UTC).timestamp())


def decimal_floats_to_micros(floats: np.ndarray,
                             out: tuple[np.ndarray, np.ndarray] | None = None,
                             ) -> tuple[np.ndarray, np.ndarray]:
    """(micros as float64, exact) for doubles parsed from decimal text.

    For text d with at most six decimals, d = n / 1e6 with n an integer below
    1e12 (prices below $1e6). The parser returns the nearest double x, so
    |x - d| <= d * 2**-53; the product x * 1e6 rounds once more, so
    |fl(x * 1e6) - n| <= n * 2**-52 < 2.3e-4 and rint gives n exactly. Then
    n / 1e6, rounded once, is again the double nearest d, which is x: such
    text always passes ``exact``. Text with finer digits passes only if its
    double is the very double of a six-decimal value, i.e. when float64
    cannot tell the two apart. ``out`` is two float64 scratch arrays.
    """
    micros, back = out if out is not None else (np.empty_like(floats), np.empty_like(floats))
    with np.errstate(invalid="ignore", over="ignore"):
        np.multiply(floats, MICROS_PER_DOLLAR, out=micros)
        np.rint(micros, out=micros)
        np.divide(micros, MICROS_PER_DOLLAR, out=back)
        exact = back == floats
    return micros, exact


@dataclass(frozen=True)
class PriceColumn:
    """A parsed price column: the doubles read, exact micros (0 if absent or bad)."""

    floats: np.ndarray
    micros: np.ndarray
    valid: np.ndarray
    bad: np.ndarray | None  # present but not a usable price; None when no row is

    @classmethod
    def from_floats(cls, floats: np.ndarray, valid: np.ndarray,
                    scratch: tuple[np.ndarray, np.ndarray] | None = None) -> PriceColumn:
        """Convert doubles as parsed (anything where not valid) to exact micros."""
        micros, good = decimal_floats_to_micros(floats, scratch)
        with np.errstate(invalid="ignore"):
            good &= micros > 0
            good &= micros < MAX_PRICE * MICROS_PER_DOLLAR
        bad = valid & ~good
        np.copyto(micros, 0.0, where=~good)  # 0 where absent or bad (NaN * 0 is NaN)
        return cls(floats, micros.astype(np.int64), valid, bad if bad.any() else None)


@dataclass(frozen=True)
class IntColumn:
    """A parsed integer column (0 where absent) and its presence."""

    values: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class ParsedColumns:
    """All columns of one file as numpy arrays, in file row order."""

    seconds: np.ndarray  # int64 epoch seconds (0 where missing)
    time_valid: np.ndarray
    symbol_index: np.ndarray  # index into symbol_names per row
    symbol_names: list[bytes]
    # Rows grouped by symbol (a stable sort, so each group is in time order),
    # None when the file has one symbol; the seconds in that order; the
    # group boundaries (len(symbol_names) + 1 offsets).
    symbol_order: np.ndarray | None
    grouped_seconds: np.ndarray
    group_bounds: np.ndarray
    prices: dict[str, PriceColumn]
    ints: dict[str, IntColumn]


@dataclass(frozen=True)
class Problem:
    """The first bad row: 0-based data row index, column, what is wrong."""

    row: int
    column: str
    reason: str


Check = tuple[np.ndarray, str, Callable[[int], str]]


def first_problem(cols: ParsedColumns) -> Problem | None:
    """The earliest problem in the file, or None when every row is valid."""
    best: Problem | None = None
    for mask, column, describe in _checks(cols):
        if best is not None:
            mask = mask[: best.row]  # only an earlier row can win
        if len(mask) == 0 or not mask.any():
            continue
        row = int(mask.argmax())
        best = Problem(row, column, describe(row))
    return best


def exchange_iso(seconds: int) -> str:
    """An epoch-seconds instant as exchange-time ISO 8601 text."""
    return dt.datetime.fromtimestamp(seconds, EXCHANGE_TZ).isoformat()


def _checks(cols: ParsedColumns) -> Iterator[Check]:
    if not cols.time_valid.all():
        yield _blank_line_check(cols)
    yield from _time_checks(cols)
    yield from _symbol_checks(cols)
    for name in PRICE_COLUMNS:
        col = cols.prices[name]
        if col.bad is not None:
            yield col.bad, name, _price_reason(col.floats)
    yield from _trade_checks(cols)
    yield from _quote_checks(cols)
    yield _duplicate_check(cols)


def _price_reason(floats: np.ndarray) -> Callable[[int], str]:
    return lambda i: _why_not_a_price(float(floats[i]))


def _fixed(reason: str) -> Callable[[int], str]:
    return lambda i: reason


def _negative(values: np.ndarray) -> Callable[[int], str]:
    return lambda i: f"{int(values[i])} is negative"


def _why_not_a_price(value: float) -> str:
    if not np.isfinite(value):
        return f"{value!r} is not a finite number"
    if value <= 0:
        return f"{value!r} is not a positive price"
    if value >= MAX_PRICE:
        return f"{value!r} is not below {MAX_PRICE:,.0f}"
    return f"{value!r} has more than 6 decimal places"


def _blank_line_check(cols: ParsedColumns) -> Check:
    blank = ~cols.time_valid
    empty_names = [k for k, name in enumerate(cols.symbol_names) if not name]
    blank &= np.isin(cols.symbol_index, empty_names)
    for valid in [c.valid for c in cols.prices.values()] + [c.valid for c in cols.ints.values()]:
        blank &= ~valid
    return blank, "row", _fixed("blank line")


def _time_checks(cols: ParsedColumns) -> Iterator[Check]:
    s, valid = cols.seconds, cols.time_valid
    yield ~valid, "time", _fixed("missing")
    out = (s < MIN_SECONDS) | (s >= MAX_SECONDS)
    yield out, "time", lambda i: f"{int(s[i])} s since the epoch is out of range (1970-2199)"
    back = np.zeros(len(s), dtype=bool)
    back[1:] = s[1:] < s[:-1]
    yield back, "time", lambda i: (f"{exchange_iso(int(s[i]))} is before the previous row's "
                                   f"{exchange_iso(int(s[i - 1]))}; rows must be sorted by time")


def _symbol_checks(cols: ParsedColumns) -> Iterator[Check]:
    names = cols.symbol_names
    bad_ids = [k for k, name in enumerate(names) if not SYMBOL_RE.fullmatch(name)]
    if not bad_ids:
        return

    def describe(i: int) -> str:
        name = names[int(cols.symbol_index[i])]
        if not name:
            return "missing"
        return f"{name.decode('utf-8', 'replace')!r} is not an upper-case ticker"

    yield np.isin(cols.symbol_index, bad_ids), "symbol", describe


def _trade_checks(cols: ParsedColumns) -> Iterator[Check]:
    p = cols.prices
    some = p["open"].valid | p["high"].valid | p["low"].valid | p["close"].valid
    every = p["open"].valid & p["high"].valid & p["low"].valid & p["close"].valid
    partial = some & ~every
    if partial.any():
        def missing(i: int) -> str:
            given = ", ".join(n for n in TRADE_PRICES if p[n].valid[i])
            return f"missing while {given} given (a trade needs open, high, low, close and volume)"

        earlier_present = np.ones(len(some), dtype=bool)
        for name in TRADE_PRICES:  # name the first empty one of the four
            yield partial & earlier_present & ~p[name].valid, name, missing
            earlier_present = earlier_present & p[name].valid
    vol = cols.ints["volume"]
    yield every & ~vol.valid, "volume", _fixed("missing while trade prices are given")
    yield vol.valid & ~some, "volume", _fixed("given without trade prices")
    yield vol.values < 0, "volume", _negative(vol.values)
    yield from _bar_shape_checks(p, every)


def _bar_shape_checks(p: dict[str, PriceColumn], every: np.ndarray) -> Iterator[Check]:
    o, h, lo, c = (p[n].micros for n in TRADE_PRICES)

    def text(arr: np.ndarray, i: int) -> str:
        return format_price(int(arr[i]))

    def outside(arr: np.ndarray) -> Callable[[int], str]:
        return lambda i: (f"{text(arr, i)} is outside the bar's low..high "
                          f"{text(lo, i)}..{text(h, i)}")

    # Bad prices are 0 in micros and already reported on their own row.
    yield every & (h < lo), "high", lambda i: f"{text(h, i)} is below low {text(lo, i)}"
    yield every & ((o < lo) | (o > h)), "open", outside(o)
    yield every & ((c < lo) | (c > h)), "close", outside(c)


def _quote_checks(cols: ParsedColumns) -> Iterator[Check]:
    for side in ("bid", "ask"):
        price, size = cols.prices[side], cols.ints[f"{side}_size"]
        yield price.valid & ~size.valid, f"{side}_size", _fixed(f"missing while {side} is given")
        yield size.valid & ~price.valid, side, _fixed(f"missing while {side}_size is given")
        yield size.values < 0, f"{side}_size", _negative(size.values)


def _duplicate_check(cols: ParsedColumns) -> Check:
    # Within a symbol's group the rows are in file order, hence in time
    # order: a repeated (symbol, time) is two neighbours with equal seconds.
    grouped = cols.grouped_seconds
    same = grouped[1:] == grouped[:-1]
    inner = cols.group_bounds[1:-1]
    same[inner[(inner > 0) & (inner < len(grouped))] - 1] = False  # neighbours in two groups
    later = np.flatnonzero(same) + 1
    order = cols.symbol_order
    mask = np.zeros(len(grouped), dtype=bool)
    if len(later):
        mask[later if order is None else order[later]] = True

    def describe(i: int) -> str:
        position = i if order is None else int(np.flatnonzero(order == i)[0])
        first = position - 1 if order is None else int(order[position - 1])
        name = cols.symbol_names[int(cols.symbol_index[i])].decode()
        return (f"second row for {name} at {exchange_iso(int(cols.seconds[i]))} "
                f"(the first is line {first + 2})")

    return mask, "time", describe
