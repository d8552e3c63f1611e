"""Cut one file's valid rows into a SymbolTape per symbol.

A file of one symbol (the common case) needs no copy at all: the tape's
arrays are the parsed columns. Several interleaved symbols are grouped with
one stable sort of the symbol index, then every column is gathered in that
order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from breakoutd.core.bars import NS

from .model import SymbolTape


@dataclass(frozen=True)
class FileTape:
    """One file's symbols, and where their rows were in the file."""

    path: str
    symbols: dict[str, SymbolTape]
    symbol_index: np.ndarray | None  # each file row's symbol (None: one symbol)
    spans: dict[str, tuple[int, int]]  # each symbol's slice of the rows grouped by symbol

    def lines(self, symbol: str) -> np.ndarray:
        """The file line of each of the symbol's rows."""
        lo, hi = self.spans[symbol]
        if self.symbol_index is None:
            return np.arange(lo, hi) + 2
        order, _ = group_by_symbol(self.symbol_index, int(self.symbol_index.max()) + 1)
        assert order is not None
        return order[lo:hi] + 2


def group_by_symbol(index: np.ndarray, count: int) -> tuple[np.ndarray | None, np.ndarray]:
    """A stable order grouping rows by symbol (None: one symbol), and group offsets."""
    bounds = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(index, minlength=count), out=bounds[1:])
    if count <= 1:
        return None, bounds
    # numpy sorts small unsigned ints by radix: several times faster than int32.
    narrow = index.astype(np.uint8 if count <= 256 else np.uint16 if count <= 65536 else np.int64)
    return np.argsort(narrow, kind="stable"), bounds


def gather(values: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """``values`` in the grouped order."""
    if order is None:
        return values
    return np.take(values, order, mode="clip")  # order is in range; clip skips the check


def unique_within_groups(grouped_seconds: np.ndarray, bounds: np.ndarray) -> bool:
    """Whether no group has two rows at one second (each group is sorted)."""
    later = grouped_seconds[1:] > grouped_seconds[:-1]
    inner = bounds[1:-1]
    later[inner[(inner > 0) & (inner < len(grouped_seconds))] - 1] = True  # two groups meet
    return bool(later.all())


def cut(source: str, names: list[bytes], index: np.ndarray | None, bounds: np.ndarray,
        seconds: np.ndarray, values: dict[str, np.ndarray]) -> FileTape:
    """The FileTape of valid rows already grouped by symbol: ``index`` is each file
    row's symbol, ``values`` are micros and sizes (0 where absent)."""
    columns = {"time": seconds * NS, **values}
    # Valid prices are positive, so presence is "non-zero".
    columns["has_trade"] = columns["open"] != 0
    columns["has_bid"] = columns["bid"] != 0
    columns["has_ask"] = columns["ask"] != 0
    symbols, spans = {}, {}
    for k, raw_name in enumerate(names):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        if lo == hi:
            continue
        name = raw_name.decode()
        symbols[name] = SymbolTape(name, **{key: arr[lo:hi] for key, arr in columns.items()})
        spans[name] = (lo, hi)
    return FileTape(source, symbols, index if len(names) > 1 else None, spans)


def cut_file_order(source: str, names: list[bytes], index: np.ndarray, seconds: np.ndarray,
                   values: dict[str, np.ndarray]) -> FileTape | None:
    """``cut`` for valid rows in file order; None when a symbol has two rows at one second."""
    order, bounds = group_by_symbol(index, len(names))
    grouped = gather(seconds, order)
    if order is not None and not unique_within_groups(grouped, bounds):
        return None
    return cut(source, names, index, bounds, grouped,
               {name: gather(arr, order) for name, arr in values.items()})
