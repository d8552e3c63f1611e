"""Read tape v1 files (tape-format.md) into column arrays, fast.

Files as the writer and the recorder write them go through ``compiled``, a
one-pass reader that parses, converts and checks every row. Any other file,
and any file with something wrong, goes through the general path: pyarrow's
C++ CSV parser with explicit column types (the time as raw bytes, which
``times`` converts faster than arrow would), then ``fast`` converts and
checks a valid file in few passes; only when something is wrong do the
slower row-by-row masks of ``checks`` (and, for unreadable text, ``locate``)
say which line. Either way ``split`` cuts the rows per symbol.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable

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
from .fast import fast_columns
from .locate import locate_parse_error
from .model import COLUMNS, SymbolTape, Tape, TapeError
from .source import body_start, load
from .split import FileTape, cut, cut_file_order, gather, group_by_symbol
from .times import Times, epoch_seconds

_BLOCK_SIZE = 4 << 20
_ARRAY_FIELDS = ("time", "has_trade", "open", "high", "low", "close", "volume",
                 "has_bid", "bid", "bid_size", "has_ask", "ask", "ask_size")
_TYPES = {
    "time": pa.binary(),  # converted by ``times``
    "symbol": pa.dictionary(pa.int32(), pa.binary()),
    **{name: pa.float64() for name in PRICE_COLUMNS},
    **{name: pa.int64() for name in INT_COLUMNS},
}


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


def _read_file(path: str | os.PathLike[str], use_threads: bool) -> FileTape:
    return _parse(load(path), os.fspath(path), use_threads)


def _parse(data: memoryview, source: str, use_threads: bool) -> FileTape:
    body = data[body_start(data, source):]
    if len(body) == 0:
        return FileTape(source, {}, None, {})
    fast = _compiled_parse(body, source)
    return fast if fast is not None else _parse_general(body, source, use_threads)


def _compiled_parse(body: memoryview, source: str) -> FileTape | None:
    """The compiled path, or None to read with arrow: for text it does not take, and
    also when numba cannot compile here (a platform without it, W^X memory)."""
    global _compiled_unavailable
    if _compiled_unavailable:
        return None
    try:
        from . import compiled  # here: importing numba takes 0.4 s, not worth it unless reading

        parsed = compiled.parse_canonical(body)
        if parsed is None:
            return None
        seconds, values, bounds = compiled.group_rows(parsed)
    except Exception as exc:  # noqa: BLE001 - any failure of the JIT: the arrow path is exact too
        _compiled_unavailable = True
        warnings.warn(f"the compiled tape reader is unavailable ({exc!r}); reading with arrow",
                      RuntimeWarning, stacklevel=2)
        return None
    return cut(source, parsed.symbol_names, parsed.symbol_ids, bounds, seconds, values)


_compiled_unavailable = False


def _parse_general(body: memoryview, source: str, use_threads: bool) -> FileTape:
    """Any tape text: arrow's parser, then the fast checks or, when they fail, the
    row-by-row ones that say where."""
    try:
        table = _arrow_read(pa.py_buffer(body), use_threads)
    except pa.ArrowInvalid as exc:
        message = _first_error(body, exc) if use_threads else str(exc)
        raise locate_parse_error(bytes(body), source, _parses, message) from None
    table = table.unify_dictionaries().combine_chunks()
    times = epoch_seconds(_chunk(table, "time"))
    if times.unreadable is not None:
        row = times.unreadable
        text = _chunk(table, "time")[row].as_py().decode("utf-8", "replace")
        message = f"Row #{row + 1}: {text!r} is not a time arrow can read"
        raise locate_parse_error(bytes(body), source, _parses, message)
    fast = fast_columns(table, times)
    if fast is not None:
        part = cut_file_order(source, fast.symbol_names, fast.symbol_index, fast.seconds,
                              fast.values)
        if part is not None:
            return part
    cols = _columns(table, times)
    problem = first_problem(cols)
    if problem is not None:
        raise TapeError(source, problem.row + 2, problem.column, problem.reason)
    values = {name: cols.prices[name].micros for name in PRICE_COLUMNS}
    values.update((name, cols.ints[name].values) for name in INT_COLUMNS)
    part = cut_file_order(source, cols.symbol_names, cols.symbol_index, cols.seconds, values)
    assert part is not None  # first_problem found no duplicate
    return part


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
        table = _arrow_read(pa.py_buffer(prefix))
    except pa.ArrowInvalid:
        return False
    return epoch_seconds(_chunk(table.combine_chunks(), "time")).unreadable is None


def _chunk(table: pa.Table, name: str) -> pa.Array:
    col = table.column(name)
    return col.chunk(0) if col.num_chunks else pa.nulls(0, col.type)


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


def _columns(table: pa.Table, times: Times) -> ParsedColumns:
    """Every column with its row-by-row masks, for ``checks`` (the slow path)."""
    seconds = times.seconds
    time_valid = np.ones(len(seconds), dtype=bool) if times.empty is None else ~times.empty
    index, names = _symbols(_chunk(table, "symbol"))
    order, bounds = group_by_symbol(index, len(names))
    scratch = (np.empty(len(seconds)), np.empty(len(seconds)))
    prices = {name: PriceColumn.from_floats(*_numpy(_chunk(table, name), np.float64), scratch)
              for name in PRICE_COLUMNS}
    ints = {}
    for name in INT_COLUMNS:
        values, valid = _numpy(_chunk(table, name), np.int64)
        ints[name] = IntColumn(values if valid.all() else np.where(valid, values, 0), valid)
    grouped = gather(seconds, order)
    return ParsedColumns(seconds, time_valid, index, names, order, grouped, bounds, prices, ints)


def _symbols(arr: pa.DictionaryArray) -> tuple[np.ndarray, list[bytes]]:
    index, valid = _numpy(arr.indices, np.int32)
    names = [v.as_py() for v in arr.dictionary]
    if not valid.all():
        index = np.where(valid, index, len(names))
        names.append(b"")
    return index, names


def _merge_symbol(symbol: str, parts: list[FileTape]) -> SymbolTape:
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


def _raise_duplicate(symbol: str, parts: list[FileTape], order: np.ndarray,
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
