"""Write tapes as tape v1 text (tape-format.md).

Rows of all symbols are interleaved by (time, symbol); times are written in
exchange time with their offset and prices as plain decimals with at least two
decimals (``format_price``). A day has few distinct prices and seconds, so
each distinct value is formatted once in Python and arrow assembles the text.
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from breakoutd.core.bars import NS
from breakoutd.core.prices import format_price

from .checks import exchange_iso
from .model import COLUMNS, HEADER, Tape, merged_order

_WRITE_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="none")


def write_tape(path: str | os.PathLike[str], tape: Tape, *, compresslevel: int = 6) -> None:
    """Write ``tape`` to ``path`` (gzip when it ends in .gz), replacing it atomically."""
    data = format_tape(tape)
    target = os.fspath(path)
    if target.endswith(".gz"):
        data = gzip.compress(data, compresslevel=compresslevel, mtime=0)
    directory = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".tape-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def format_tape(tape: Tape) -> bytes:
    """The tape v1 text of ``tape``, header included."""
    syms = list(tape.symbols.values())
    head = (HEADER + "\n").encode()
    if tape.rows == 0:
        return head

    order, sym_index = merged_order(syms)

    def column(name: str) -> np.ndarray:
        values: np.ndarray = np.concatenate([getattr(s, name) for s in syms])[order]
        return values

    times = column("time")
    if np.any(times % NS):
        raise ValueError("tape times must be whole seconds to be written")
    sym_index = sym_index[order]
    has = {"trade": column("has_trade"), "bid": column("has_bid"), "ask": column("has_ask")}
    texts = {
        "time": _distinct_texts(times // NS, exchange_iso),
        "symbol": _string_array([s.symbol for s in syms]).take(_int_array(sym_index)),
    }
    for name in COLUMNS[2:]:
        group = "trade" if name in ("open", "high", "low", "close", "volume") else name[:3]
        values, present = column(name), has[group]
        if name in ("volume", "bid_size", "ask_size"):
            texts[name] = _int_array(values, present).cast(pa.string())
        else:
            texts[name] = _distinct_texts(values, format_price, present)
    sink = io.BytesIO()
    sink.write(head)
    pacsv.write_csv(pa.table(texts), sink, _WRITE_OPTIONS)
    return sink.getvalue()


def _distinct_texts(values: np.ndarray, fmt: Callable[[int], str],
                    present: np.ndarray | None = None) -> pa.Array:
    """Text of each value (null where not present), formatting each distinct value once."""
    distinct, inverse = np.unique(values, return_inverse=True)
    strings = _string_array([fmt(v) for v in distinct.tolist()])
    return strings.take(_int_array(inverse, present))


# Arrays are built from buffers: pa.array() imports pandas, most of a second.
def _int_array(values: np.ndarray, present: np.ndarray | None = None) -> pa.Array:
    data = pa.py_buffer(np.ascontiguousarray(values, dtype=np.int64))
    validity = None if present is None else pa.py_buffer(np.packbits(present, bitorder="little"))
    return pa.Array.from_buffers(pa.int64(), len(values), [validity, data])


def _string_array(texts: list[str]) -> pa.Array:
    encoded = [t.encode() for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(encoded),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])
