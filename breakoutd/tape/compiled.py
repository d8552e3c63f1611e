"""A compiled one-pass reader for tape files as ``writer`` and the recorder write them.

pyarrow's CSV parser costs about 0.6 us a row; this loop (numba) reads the
canonical form of tape v1 in about a third of that, converting prices
straight from their decimal digits to micros (exact by construction) and
checking every rule of ``checks`` on the way. It accepts only text it is
sure of: a time exactly ``YYYY-MM-DDTHH:MM:SS±HH:MM``, prices with at most
six decimals below $1,000,000, sizes as plain digits, LF or CRLF line ends.
Anything else, valid or not, makes it give up (return None), and the
general reader (arrow, ``checks``, ``locate``) reads the file or says which
line is wrong. So this path never decides an error message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .checks import MAX_SECONDS, MIN_SECONDS

FIELDS = ("open", "high", "low", "close", "volume", "bid", "bid_size", "ask", "ask_size")
_MIN_ROW_BYTES = 37  # 25 time + 1 symbol + 10 commas + newline
_TABLE_BITS = 12  # symbol hash table: 4096 slots, at most half used
_MAX_SYMBOLS = 1 << (_TABLE_BITS - 1)
_ALPHABET = " ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789."  # base-38 digits of a symbol key
_IS_PRICE = np.array([name not in ("volume", "bid_size", "ask_size") for name in FIELDS])
_GIVE_UP = -1


@dataclass(frozen=True)
class Parsed:
    """A valid file's rows in file order: epoch seconds, symbol ids, the FIELDS
    (micros and sizes, 0 where absent) one row each, the symbol names by id."""

    seconds: np.ndarray
    symbol_ids: np.ndarray
    values: np.ndarray
    symbol_names: list[bytes]


def parse_canonical(body: memoryview) -> Parsed | None:
    """The rows of ``body`` (the text after the header), or None when the text is
    not canonical or some row breaks a rule (the general reader then decides)."""
    buf = np.frombuffer(body, dtype=np.uint8)
    if len(buf) == 0 or buf[-1] != ord("\n"):
        return None
    cap = len(buf) // _MIN_ROW_BYTES + 1
    seconds = np.empty(cap, dtype=np.int64)
    ids = np.empty(cap, dtype=np.int32)
    values = np.empty((len(FIELDS), cap), dtype=np.int64)
    keys = np.zeros(_MAX_SYMBOLS, dtype=np.int64)
    rows, count = _parse(buf, seconds, ids, values, keys, _IS_PRICE, MIN_SECONDS, MAX_SECONDS)
    if rows == _GIVE_UP:
        return None
    names = [_symbol_name(int(key)) for key in keys[:count]]
    return Parsed(seconds[:rows], ids[:rows], values[:, :rows], names)


def group_rows(parsed: Parsed) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """(seconds, values by field, bounds) with rows grouped by symbol id, in file
    order within a group; ``bounds`` are the groups' offsets."""
    count = len(parsed.symbol_names)
    bounds = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(parsed.symbol_ids, minlength=count), out=bounds[1:])
    seconds, values = parsed.seconds, parsed.values
    if count > 1:
        seconds, values = np.empty_like(seconds), np.empty(values.shape, dtype=np.int64)
        _scatter(parsed.symbol_ids, bounds[:-1].copy(), parsed.seconds, parsed.values,
                 seconds, values)
    return seconds, dict(zip(FIELDS, values, strict=True)), bounds


def _symbol_name(key: int) -> bytes:
    letters = []
    while key:
        key, digit = divmod(key, len(_ALPHABET))
        letters.append(_ALPHABET[digit])
    return "".join(reversed(letters)).encode()


@numba.njit(cache=True, nogil=True)
def _scatter(ids: np.ndarray, fill: np.ndarray, seconds: np.ndarray, values: np.ndarray,
             out_seconds: np.ndarray, out_values: np.ndarray) -> None:
    # Reads run in file order and writes in one stream per symbol, a column
    # at a time: unlike a gather, every cache line is loaded once.
    to = np.empty(len(ids), dtype=np.int64)
    for row in range(len(ids)):
        to[row] = fill[ids[row]]
        fill[ids[row]] += 1
        out_seconds[to[row]] = seconds[row]
    for f in range(values.shape[0]):
        for row in range(len(ids)):
            out_values[f, to[row]] = values[f, row]


@numba.njit(cache=True, nogil=True)
def _digits(buf: np.ndarray, at: int, count: int) -> int:
    """The number written by ``count`` ASCII digits at ``at``, or -1."""
    value = 0
    for k in range(at, at + count):
        digit = buf[k] - 48
        if digit < 0 or digit > 9:
            return -1
        value = value * 10 + digit
    return value


@numba.njit(cache=True, nogil=True)
def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    if month <= 2:
        year -= 1
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@numba.njit(cache=True, nogil=True)
def _time(buf: np.ndarray, at: int) -> int:
    """Epoch seconds of the 25-byte time at ``at``, or -1 if not canonical and valid."""
    if (buf[at + 4] != 45 or buf[at + 7] != 45 or buf[at + 10] != 84 or buf[at + 13] != 58
            or buf[at + 16] != 58 or buf[at + 22] != 58 or buf[at + 25] != 44):
        return -1
    year, month, day = _digits(buf, at, 4), _digits(buf, at + 5, 2), _digits(buf, at + 8, 2)
    hour, minute = _digits(buf, at + 11, 2), _digits(buf, at + 14, 2)
    second = _digits(buf, at + 17, 2)
    off_h, off_m = _digits(buf, at + 20, 2), _digits(buf, at + 23, 2)
    sign = buf[at + 19]
    if (year < 1900 or year >= 2200 or month < 1 or month > 12 or day < 1 or hour < 0
            or hour > 23 or minute < 0 or minute > 59 or second < 0 or second > 59
            or off_h < 0 or off_h > 23 or off_m < 0 or off_m > 59 or (sign != 43 and sign != 45)):
        return -1
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    month_days = 29 if month == 2 and leap else (28 if month == 2 else
                                                (30 if month in (4, 6, 9, 11) else 31))
    if day > month_days:
        return -1
    offset = (off_h * 60 + off_m) * 60
    clock = hour * 3600 + minute * 60 + second
    return _days_from_civil(year, month, day) * 86400 + clock - (offset if sign == 43 else -offset)


@numba.njit(cache=True, nogil=True)
def _symbol(buf: np.ndarray, at: int) -> tuple[int, int]:
    """(key, end) of the ticker at ``at`` ([A-Z][A-Z0-9.]{0,11} then a comma), or (-1, at)."""
    key, k = 0, at
    while k < len(buf) and buf[k] != 44:
        c = buf[k]
        if 65 <= c <= 90:
            code = c - 64
        elif k > at and 48 <= c <= 57:
            code = c - 21
        elif k > at and c == 46:
            code = 37
        else:
            return -1, at
        key = key * 38 + code
        k += 1
        if k - at > 12:
            return -1, at
    return (key, k) if at < k < len(buf) else (-1, at)


@numba.njit(cache=True, nogil=True)
def _symbol_id(key: int, keys: np.ndarray, count: int, table: np.ndarray) -> tuple[int, int]:
    """The id of ``key`` (a new one if unseen), or -1 when there are too many symbols."""
    # Fibonacci hashing: the top 12 bits of key * 2**64 / golden ratio.
    slot = np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - _TABLE_BITS))
    while table[slot] >= 0:
        if keys[table[slot]] == key:
            return table[slot], count
        slot = (slot + 1) & (len(table) - 1)
    if count >= len(keys):
        return -1, count
    keys[count] = key
    table[slot] = count
    return count, count + 1


@numba.njit(cache=True, nogil=True, inline="always")
def _fields(buf: np.ndarray, at: int, values: np.ndarray, row: int,  # noqa: C901
            is_price: np.ndarray) -> tuple[int, int]:
    """Read the nine fields after the comma at ``at`` into ``values[:, row]``: (the
    newline's position, a bit per present field), or (-1, 0) if not canonical.

    A price is digits (at most six before the point, one to six after),
    converted to micros exactly, and above 0; a size at most 18 digits.
    """
    present = 0
    for f in range(9):
        at += 1
        start, value, c = at, 0, buf[at]
        while 48 <= c <= 57:
            value = value * 10 + (c - 48)
            at += 1
            c = buf[at]
        whole = at - start
        if is_price[f] and whole > 0:
            decimals = 0
            if c == 46:
                at += 1
                c = buf[at]
                while 48 <= c <= 57 and decimals < 7:
                    value = value * 10 + (c - 48)
                    decimals += 1
                    at += 1
                    c = buf[at]
                if decimals == 0:
                    return -1, 0
            if whole > 6 or decimals > 6 or value == 0:
                return -1, 0
            for _ in range(6 - decimals):
                value *= 10
        elif whole > 18:
            return -1, 0
        if f == 8 and c == 13 and buf[at + 1] == 10:  # a CRLF line end
            at += 1
            c = 10
        if c != (10 if f == 8 else 44):  # the digits run into something else
            return -1, 0
        values[f, row] = value
        if whole > 0:
            present |= 1 << f
    return at, present


@numba.njit(cache=True, nogil=True)
def _parse(buf: np.ndarray, seconds: np.ndarray, ids: np.ndarray,  # noqa: C901
           values: np.ndarray, keys: np.ndarray, is_price: np.ndarray, min_seconds: int,
           max_seconds: int) -> tuple[int, int]:
    """Parse and check every row: (rows, symbols), or (-1, 0) to give up."""
    table = np.full(1 << _TABLE_BITS, -1, dtype=np.int64)
    last = np.full(len(keys), -1, dtype=np.int64)  # each symbol's latest second
    n, at, row, count, previous = len(buf), 0, 0, 0, min_seconds
    last_key, last_id = -1, -1
    while at < n:
        if at + 26 >= n:
            return _GIVE_UP, 0
        second = _time(buf, at)
        if second < previous or second >= max_seconds:
            return _GIVE_UP, 0
        previous = second
        key, at = _symbol(buf, at + 26)
        if key < 0:
            return _GIVE_UP, 0
        if key != last_key:
            last_id, count = _symbol_id(key, keys, count, table)
            if last_id < 0:
                return _GIVE_UP, 0
            last_key = key
        if last[last_id] == second:  # a second row for the symbol at that time
            return _GIVE_UP, 0
        last[last_id] = second
        at, present = _fields(buf, at, values, row, is_price)
        if at < 0:
            return _GIVE_UP, 0
        o, h, lo, c = values[0, row], values[1, row], values[2, row], values[3, row]
        trade = present & 0x1F
        if ((trade != 0 and trade != 0x1F) or ((present >> 5) & 3) % 3 != 0
                or ((present >> 7) & 3) % 3 != 0 or min(o, c) < lo or max(o, c) > h):
            return _GIVE_UP, 0
        seconds[row] = second
        ids[row] = last_id
        row += 1
        at += 1
    return row, count
