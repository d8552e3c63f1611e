"""The fast path for a valid tape file: convert and check all rows in few passes.

Almost every file read is valid, so this only answers "is every row valid?"
while converting prices to micros, and leaves "which row, and why" to
``checks`` (slow, run only when the answer is no or unsure). It passes over
memory as few times as it can: prices in cache-sized chunks; presence
compared as arrow's validity bitmaps (a trade's five fields are all present
or all absent iff their bitmaps are equal); the time range from the first
and last rows, since the rows must be sorted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from breakoutd.core.prices import MICROS_PER_DOLLAR

from .checks import INT_COLUMNS, MAX_PRICE, MAX_SECONDS, MIN_SECONDS, PRICE_COLUMNS, SYMBOL_RE
from .times import Times

_CHUNK = 1 << 14  # rows: the chunk's columns and scratch stay in a core's cache
_MAX_MICROS = MAX_PRICE * MICROS_PER_DOLLAR
_SAME_PRESENCE = (("open", "high", "low", "close", "volume"), ("bid", "bid_size"),
                  ("ask", "ask_size"))


@dataclass(frozen=True)
class FastColumns:
    """The columns of a file whose rows are all valid (but for duplicates), in file order."""

    seconds: np.ndarray
    symbol_index: np.ndarray
    symbol_names: list[bytes]
    values: dict[str, np.ndarray]  # prices in micros and the sizes, 0 where absent


def fast_columns(table: pa.Table, times: Times) -> FastColumns | None:
    """The converted columns when every row passes every check but the duplicate
    one (see ``checks``); None when some row may fail one."""
    n = table.num_rows
    arrays = {name: _only_chunk(table, name) for name in table.column_names}
    if n == 0 or times.empty is not None or any(a.offset for a in arrays.values()):
        return None
    symbols = arrays["symbol"]
    names = symbols.dictionary.to_pylist()
    if symbols.null_count or not all(name and SYMBOL_RE.fullmatch(name) for name in names):
        return None
    seconds = times.seconds
    one_symbol = len(names) == 1
    if not (MIN_SECONDS <= seconds[0] and seconds[-1] < MAX_SECONDS
            and _sorted(seconds, strict=one_symbol)):
        return None
    if not all(_same_presence([arrays[name] for name in group]) for group in _SAME_PRESENCE):
        return None
    values = _prices(arrays, n)
    if values is None:
        return None
    for name in INT_COLUMNS:
        ints = _values(arrays[name], np.int64)
        if ints.min() < 0:  # absent is 0 in arrow's value buffer
            return None
        values[name] = ints
    index = _values(symbols.indices, np.int32)
    return FastColumns(seconds, index, names, values)


def _only_chunk(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _values(arr: pa.Array, dtype: type) -> np.ndarray:
    """The value buffer of a primitive array, zero-copy."""
    n = len(arr)
    data = arr.buffers()[1]
    if data is None:
        return np.zeros(n, dtype=dtype)
    values: np.ndarray = np.frombuffer(data, dtype=dtype, count=arr.offset + n)[arr.offset:]
    return values


def _sorted(seconds: np.ndarray, strict: bool) -> bool:
    later, earlier = seconds[1:], seconds[:-1]
    return bool(np.all(later > earlier) if strict else np.all(later >= earlier))


def _same_presence(arrays: list[pa.Array]) -> bool:
    """Whether the arrays have nulls in exactly the same rows."""
    n, nulls = len(arrays[0]), arrays[0].null_count
    if any(a.null_count != nulls for a in arrays):
        return False
    if nulls in (0, n):
        return True
    full, rest = divmod(n, 8)
    maps = [np.frombuffer(a.buffers()[0], dtype=np.uint8, count=full + (rest > 0))
            for a in arrays]
    tail = np.uint8((1 << rest) - 1)  # the bits of the last byte that are rows
    first = maps[0]
    return all(np.array_equal(first[:full], m[:full]) and
               (rest == 0 or (first[full] ^ m[full]) & tail == 0) for m in maps[1:])


def _prices(arrays: dict[str, pa.Array], n: int) -> dict[str, np.ndarray] | None:
    """Exact micros of every price column (0 where absent), or None if a present
    price is not usable or a bar is outside its low..high."""
    floats = {name: _values(arrays[name], np.float64) for name in PRICE_COLUMNS}
    micros = {name: np.empty(n, dtype=np.int64) for name in PRICE_COLUMNS}
    nonzero = dict.fromkeys(PRICE_COLUMNS, 0)
    scratch = (np.empty(_CHUNK), np.empty(_CHUNK), np.empty(_CHUNK, dtype=bool))
    with np.errstate(invalid="ignore", over="ignore"):
        for lo in range(0, n, _CHUNK):
            hi = min(n, lo + _CHUNK)
            for name in PRICE_COLUMNS:
                count = _to_micros(floats[name][lo:hi], micros[name][lo:hi], scratch)
                if count < 0:
                    return None
                nonzero[name] += count
            o, h, low, c = (micros[name][lo:hi] for name in ("open", "high", "low", "close"))
            if not (np.all(np.maximum(o, c) <= h) and np.all(np.minimum(o, c) >= low)):
                return None
    # Absent prices are 0 in arrow's value buffer, and a present one that
    # is not above 0 is refused: so all present prices are usable iff as
    # many are non-zero as are present.
    if any(nonzero[name] != n - arrays[name].null_count for name in PRICE_COLUMNS):
        return None
    return micros


def _to_micros(floats: np.ndarray, out: np.ndarray,
               scratch: tuple[np.ndarray, np.ndarray, np.ndarray]) -> int:
    """Write rint(floats * 1e6) to ``out``: how many are non-zero, or -1 if one
    is not exact (see ``decimal_floats_to_micros``) or not within 0..MAX_PRICE."""
    k = len(floats)
    micros, back, exact = (s[:k] for s in scratch)
    np.multiply(floats, MICROS_PER_DOLLAR, out=micros)
    np.rint(micros, out=micros)
    np.divide(micros, MICROS_PER_DOLLAR, out=back)
    np.equal(back, floats, out=exact)
    if not exact.all():
        return -1
    np.copyto(out, micros, casting="unsafe")  # NaN and infinities become negative
    if out.min() < 0 or out.max() >= _MAX_MICROS:
        return -1
    return int(np.count_nonzero(out))
