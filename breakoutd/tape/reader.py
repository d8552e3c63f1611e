"""Read tape v1 files (tape-format.md) into column arrays, fast.

pyarrow's C++ CSV parser reads the text with explicit column types, numpy
validates every row at once (``checks``), and only when something is wrong
does slow Python re-read the text to say which line (``locate``).
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from breakoutd.core.bars import NS

from .checks import (
    INT_COLUMNS,
    PRICE_COLUMNS,
    IntColumn,
    ParsedColumns,
    PriceColumn,
    exchange_iso,
    first_problem,
)
from .locate import locate_parse_error
from .model import COLUMNS, HEADER, SymbolTape, Tape, TapeError

_BLOCK_SIZE = 4 << 20
_ARRAY_FIELDS = ("time", "has_trade", "open", "high", "low", "close", "volume",
                 "has_bid", "bid", "bid_size", "has_ask", "ask", "ask_size")
_BOM = b"\xef\xbb\xbf"
_TYPES = {
    "time": pa.timestamp("s", tz="UTC"),
    "symbol": pa.dictionary(pa.int32(), pa.binary()),
    **{name: pa.float64() for name in PRICE_COLUMNS},
    **{name: pa.int64() for name in INT_COLUMNS},
}


@dataclass(frozen=True)
class _FileTape:
    """One file's symbols, and where their rows were in the file."""

    path: str
    symbols: dict[str, SymbolTape]
    order: np.ndarray | None  # file row of each grouped row (None: the identity)
    spans: dict[str, tuple[int, int]]  # each symbol's slice of the grouped rows

    def lines(self, symbol: str) -> np.ndarray:
        """The file line of each of the symbol's rows."""
        lo, hi = self.spans[symbol]
        rows = np.arange(lo, hi) if self.order is None else self.order[lo:hi]
        return rows + 2


def read_tape(path: str | os.PathLike[str], *, use_threads: bool = False) -> Tape:
    """Read one tape file (gzip when the name ends in .gz)."""
    part = _read_file(path, use_threads)
    return Tape(part.symbols, (part.path,))


def read_tapes(paths: Iterable[str | os.PathLike[str]], *, use_threads: bool = False) -> Tape:
    """Read and merge tape files; a symbol in several files gets its rows merged by time."""
    parts = [_read_file(path, use_threads) for path in paths]
    names = sorted({sym for part in parts for sym in part.symbols})
    merged = {sym: _merge_symbol(sym, [p for p in parts if sym in p.symbols]) for sym in names}
    return Tape(merged, tuple(p.path for p in parts))


def parse_tape(data: bytes, source: str = "<memory>", *, use_threads: bool = False) -> Tape:
    """Parse the text of a whole tape file held in memory (not gzipped)."""
    part = _parse(memoryview(data), source, use_threads)
    return Tape(part.symbols, (source,))


def _load(path: str | os.PathLike[str]) -> memoryview:
    """The file's bytes, gunzipped in memory when the name ends in .gz."""
    with open(path, "rb") as handle:
        raw = handle.read()
    if not os.fspath(path).endswith(".gz"):
        return memoryview(raw)
    return _gunzip(raw, os.fspath(path))


def _gunzip(raw: bytes, path: str) -> memoryview:
    # Arrow's zlib inflates into a buffer of the size the gzip trailer states,
    # about twice as fast as the gzip module, which grows its buffer. It
    # refuses anything else (several gzip members, a size over 4 GiB,
    # corruption); the gzip module then handles it or says what is wrong.
    if len(raw) >= 18:
        size = struct.unpack("<I", raw[-4:])[0]
        try:
            return memoryview(pa.Codec("gzip").decompress(raw, decompressed_size=size))
        except (pa.ArrowException, OSError, ValueError):
            pass
    try:
        return memoryview(gzip.decompress(raw))
    except (OSError, EOFError, zlib.error) as exc:
        raise TapeError(path, None, "gzip", f"not a readable gzip file ({exc})") from exc


def _read_file(path: str | os.PathLike[str], use_threads: bool) -> _FileTape:
    return _parse(_load(path), os.fspath(path), use_threads)


def _parse(data: memoryview, source: str, use_threads: bool) -> _FileTape:
    body_start = _check_header(data, source)
    body = data[body_start:]
    if len(body) == 0:
        return _FileTape(source, {}, None, {})
    try:
        table = _arrow_read(pa.py_buffer(body), use_threads)
    except pa.ArrowInvalid as exc:
        message = _first_error(body, exc) if use_threads else str(exc)
        raise locate_parse_error(bytes(body), source, _parses, message) from None
    cols = _columns(table)
    problem = first_problem(cols)
    if problem is not None:
        raise TapeError(source, problem.row + 2, problem.column, problem.reason)
    return _split(cols, source)


def _check_header(data: memoryview, source: str) -> int:
    head = bytes(data[:4096])  # the header is one short line
    end = head.find(b"\n")
    line = head if end < 0 else head[:end]
    start = len(_BOM) if line.startswith(_BOM) else 0
    header = line[start:].removesuffix(b"\r").decode("utf-8", "replace")
    if header != HEADER:
        found = repr(header[:200]) if header else "an empty line"
        raise TapeError(source, 1, "header", f"expected {HEADER!r}, found {found}")
    return len(data) if end < 0 else end + 1


def _arrow_read(body: pa.Buffer, use_threads: bool = False) -> pa.Table:
    # One block when single-threaded: the columns then need no concatenation.
    block_size = _BLOCK_SIZE if use_threads else min(max(len(body) + 1, _BLOCK_SIZE), 1 << 30)
    return pacsv.read_csv(
        body,
        read_options=pacsv.ReadOptions(column_names=list(COLUMNS), use_threads=use_threads,
                                       block_size=block_size),
        # No quoting: no tape field needs it, and the tokenizer is faster without.
        parse_options=pacsv.ParseOptions(quote_char=False, double_quote=False,
                                         ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types=_TYPES, null_values=[""], strings_can_be_null=False,
            quoted_strings_can_be_null=False, check_utf8=False),
    )


def _first_error(body: memoryview, exc: pa.ArrowInvalid) -> str:
    """Arrow's message for the first bad row: a threaded read may report a later one."""
    try:
        _arrow_read(pa.py_buffer(body), use_threads=False)
    except pa.ArrowInvalid as single:
        return str(single)
    return str(exc)


def _parses(prefix: bytes) -> bool:
    try:
        _arrow_read(pa.py_buffer(prefix))
    except pa.ArrowInvalid:
        return False
    return True


def _numpy(arr: pa.Array, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """(values, valid) of a primitive arrow array, zero-copy for the values."""
    n = len(arr)
    data = arr.buffers()[1]
    if n == 0 or data is None:
        return np.zeros(n, dtype=dtype), np.zeros(n, dtype=bool)
    values: np.ndarray = np.frombuffer(data, dtype=dtype, count=arr.offset + n)[arr.offset:]
    return values, _valid_mask(arr)


def _valid_mask(arr: pa.Array) -> np.ndarray:
    # Unpacked from the validity bitmap directly: arrow's own to_numpy for
    # booleans goes through pandas, which costs most of a second to import.
    bitmap = arr.buffers()[0]
    n = len(arr)
    if arr.null_count == 0 or bitmap is None:
        return np.ones(n, dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits[arr.offset:arr.offset + n].view(np.bool_)  # 0/1 bytes are valid bools


def _columns(table: pa.Table) -> ParsedColumns:
    table = table.unify_dictionaries().combine_chunks()

    def chunk(name: str) -> pa.Array:
        col = table.column(name)
        return col.chunk(0) if col.num_chunks else pa.nulls(0, col.type)

    seconds, time_valid = _numpy(chunk("time"), np.int64)
    if not time_valid.all():
        seconds = np.where(time_valid, seconds, 0)
    index, names = _symbols(chunk("symbol"))
    order, bounds = _group_by_symbol(index, len(names))
    scratch = (np.empty(len(seconds)), np.empty(len(seconds)))
    prices = {name: PriceColumn.from_floats(*_numpy(chunk(name), np.float64), scratch)
              for name in PRICE_COLUMNS}
    ints = {}
    for name in INT_COLUMNS:
        values, valid = _numpy(chunk(name), np.int64)
        ints[name] = IntColumn(values if valid.all() else np.where(valid, values, 0), valid)
    grouped = seconds if order is None else _gather(seconds, order)
    return ParsedColumns(seconds, time_valid, index, names, order, grouped, bounds, prices, ints)


def _symbols(arr: pa.DictionaryArray) -> tuple[np.ndarray, list[bytes]]:
    index, valid = _numpy(arr.indices, np.int32)
    names = [v.as_py() for v in arr.dictionary]
    if not valid.all():
        index = np.where(valid, index, len(names))
        names.append(b"")
    return index, names


def _group_by_symbol(index: np.ndarray, count: int) -> tuple[np.ndarray | None, np.ndarray]:
    """A stable order grouping rows by symbol (None: one symbol), and group offsets."""
    bounds = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(index, minlength=count), out=bounds[1:])
    if count <= 1:
        return None, bounds
    # numpy sorts small unsigned ints by radix: several times faster than int32.
    narrow = index.astype(np.uint8 if count <= 256 else np.uint16 if count <= 65536 else np.int64)
    return np.argsort(narrow, kind="stable"), bounds


def _gather(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    return np.take(values, order, mode="clip")  # order is in range; clip skips the check


def _split(cols: ParsedColumns, source: str) -> _FileTape:
    """Cut the (valid) rows into one SymbolTape per symbol."""
    order = cols.symbol_order

    def grouped(arr: np.ndarray) -> np.ndarray:
        return arr if order is None else _gather(arr, order)

    p, n = cols.prices, cols.ints
    columns = {
        "time": cols.grouped_seconds * NS,
        **{name: grouped(p[name].micros) for name in ("open", "high", "low", "close")},
        "volume": grouped(n["volume"].values),
        "bid": grouped(p["bid"].micros), "bid_size": grouped(n["bid_size"].values),
        "ask": grouped(p["ask"].micros), "ask_size": grouped(n["ask_size"].values),
    }
    # Valid prices are positive, so presence is "non-zero" after the gather.
    columns["has_trade"] = columns["open"] != 0
    columns["has_bid"] = columns["bid"] != 0
    columns["has_ask"] = columns["ask"] != 0
    symbols, spans = {}, {}
    for k, raw_name in enumerate(cols.symbol_names):
        lo, hi = int(cols.group_bounds[k]), int(cols.group_bounds[k + 1])
        if lo == hi:
            continue
        name = raw_name.decode()
        symbols[name] = SymbolTape(name, **{key: arr[lo:hi] for key, arr in columns.items()})
        spans[name] = (lo, hi)
    return _FileTape(source, symbols, order, spans)


def _merge_symbol(symbol: str, parts: list[_FileTape]) -> SymbolTape:
    if len(parts) == 1:
        return parts[0].symbols[symbol]
    tapes = [p.symbols[symbol] for p in parts]
    times = np.concatenate([t.time for t in tapes])
    if (times[1:] > times[:-1]).all():  # files given day by day: nothing to reorder
        order = None
    else:
        order = np.argsort(times, kind="stable")  # equal times keep the files' order
        dup = np.flatnonzero(times[order][1:] == times[order][:-1])
        if len(dup):
            _raise_duplicate(symbol, parts, order, dup)
    fields = {}
    for name in _ARRAY_FIELDS:
        merged = np.concatenate([getattr(t, name) for t in tapes])
        fields[name] = merged if order is None else merged[order]
    return SymbolTape(symbol, **fields)


def _raise_duplicate(symbol: str, parts: list[_FileTape], order: np.ndarray,
                     dup: np.ndarray) -> None:
    file_of = np.concatenate([np.full(len(p.symbols[symbol]), k) for k, p in enumerate(parts)])
    line_of = np.concatenate([p.lines(symbol) for p in parts])
    times = np.concatenate([p.symbols[symbol].time for p in parts])
    # Report the later copy that comes first in the files' order.
    candidates = [(int(file_of[order[d + 1]]), int(line_of[order[d + 1]]), int(order[d]))
                  for d in dup.tolist()]
    later_file, later_line, first = min(candidates)
    first_at = f"{parts[int(file_of[first])].path}:{int(line_of[first])}"
    when = exchange_iso(int(times[first]) // NS)
    raise TapeError(parts[later_file].path, later_line, "time",
                    f"second row for {symbol} at {when} (the first is {first_at})")
