"""Tape times (ISO 8601 text with an offset) to epoch seconds, vectorised.

Almost every tape time is ``YYYY-MM-DDTHH:MM:SS±HH:MM``, 25 bytes, and a
file holds few distinct (date, offset) pairs. So the date and offset are
parsed once per distinct pair in Python, and each row's clock time comes
from three table look-ups on its raw bytes. Rows of any other shape, and
anything the fast path is unsure of, go to arrow's ISO 8601 parser: the one
the CSV reader itself uses, so both paths accept the same text.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

WIDTH = 25  # len("2013-10-07T09:30:00-04:00")
_MAX_REFERENCES = 16  # distinct (date, offset) pairs tried before the general path
_CHUNK = 1 << 14  # rows per chunk: 400 kB of records, well inside a core's cache
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_BAD = -(1 << 28)  # a look-up result that keeps the sum of three negative
# The record's fields, read in place (little-endian, so a pair of digits
# "09" is 0x3930). The fields overlap where that saves a comparison.
_RECORD = np.dtype({
    "names": ["date", "day", "hour", "colons", "minute", "second", "offset"],
    "formats": ["<u8", "<u4", "<u2", "<u4", "<u2", "<u2", "<u8"],
    "offsets": [0, 7, 11, 13, 14, 17, 17],
    "itemsize": WIDTH,
})
_COLONS_MASK = 0xFF0000FF  # bytes 13 and 16 of the record
_COLONS = ord(":") | ord(":") << 24
_OFFSET_MASK = ~np.uint64(0xFFFF)  # bytes 19..24: drop the seconds at 17..18
_PREFIX_RE = re.compile(rb"(\d{4})-(\d{2})-(\d{2})T")
_OFFSET_RE = re.compile(rb"([+-])(\d{2}):(\d{2})")


def _pair_table(limit: int, scale: int) -> np.ndarray:
    """For each 2-byte little-endian value: scale * its two digits, or _BAD."""
    table = np.full(1 << 16, _BAD, dtype=np.int32)
    for value in range(limit):
        tens, ones = divmod(value, 10)
        table[(ord("0") + tens) | (ord("0") + ones) << 8] = value * scale
    return table


# Arrow refuses hour 24 and second 60, so the fast path does too.
_HOURS, _MINUTES, _SECONDS = _pair_table(24, 3600), _pair_table(60, 60), _pair_table(60, 1)


@dataclass(frozen=True)
class Times:
    """A time column: epoch seconds (0 where empty or unreadable), and which rows are empty."""

    seconds: np.ndarray
    empty: np.ndarray | None  # None: no row is empty
    unreadable: int | None  # the first row neither path can read


def epoch_seconds(arr: pa.Array) -> Times:
    """Convert a binary column of tape times to epoch seconds."""
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=arr.offset + n + 1)
    offsets = offsets[arr.offset:]
    lengths = np.diff(offsets)
    seconds = np.zeros(n, dtype=np.int64)
    data = arr.buffers()[2]
    if n == 0 or data is None:
        return Times(seconds, None if n == 0 else np.ones(n, dtype=bool), None)
    raw = np.frombuffer(data, dtype=np.uint8)
    if arr.null_count == 0 and lengths.min() == lengths.max() == WIDTH:
        start = int(offsets[0])
        pending = _fixed_width(raw[start:start + WIDTH * n].view(_RECORD), seconds)
        if pending is None:
            return Times(seconds, None, None)
        rest = np.flatnonzero(pending)
        empty = None
    else:
        empty_rows = lengths == 0
        empty = empty_rows if empty_rows.any() else None
        rest = np.flatnonzero(~empty_rows)
    return Times(seconds, empty, _general(arr, rest, seconds))


def _fixed_width(records: np.ndarray, seconds: np.ndarray) -> np.ndarray | None:
    """Fill ``seconds`` for canonical rows; the mask of rows left (None: none)."""
    base = _base_seconds(records[:1].tobytes())
    if base is None:
        return _by_reference(records, seconds)
    # Rows sharing the first row's date and offset, a cache-sized chunk at a
    # time: each chunk's records are read from memory once for all fields.
    first = records[0]
    date, day = first["date"], first["day"]
    offset = first["offset"] & _OFFSET_MASK
    odd = []
    for lo in range(0, len(records), _CHUNK):
        chunk = records[lo:lo + _CHUNK]
        clock = _clock(chunk)
        np.add(clock, np.int64(base), out=seconds[lo:lo + _CHUNK])
        same = chunk["date"] == date
        same &= chunk["day"] == day
        same &= (chunk["offset"] & _OFFSET_MASK) == offset
        same &= (chunk["colons"] & _COLONS_MASK) == _COLONS
        same &= clock >= 0
        if not same.all():
            odd.append(np.flatnonzero(~same) + lo)
    if not odd:
        return None
    rows = np.concatenate(odd)
    subset = np.zeros(len(rows), dtype=np.int64)
    left = _by_reference(records[rows], subset)
    seconds[rows] = subset
    if left is None:
        return None
    pending = np.zeros(len(records), dtype=bool)
    pending[rows[left]] = True
    return pending


def _clock(records: np.ndarray) -> np.ndarray:
    """Seconds since midnight of each record's HH:MM:SS (negative: not a clock time)."""
    clock: np.ndarray = _HOURS[records["hour"]]
    clock += _MINUTES[records["minute"]]
    clock += _SECONDS[records["second"]]
    return clock


def _by_reference(records: np.ndarray, seconds: np.ndarray) -> np.ndarray | None:
    """Fill ``seconds`` group by group of rows with one (date, offset); the rows left."""
    clock = _clock(records)
    left = clock < 0
    left |= (records["colons"] & _COLONS_MASK) != _COLONS
    todo = ~left
    date, day = records["date"], records["day"]
    offset = records["offset"] & _OFFSET_MASK
    for _ in range(_MAX_REFERENCES):
        if not todo.any():
            break
        first = int(todo.argmax())
        same = date == date[first]
        same &= day == day[first]
        same &= offset == offset[first]
        same &= todo
        todo &= ~same
        base = _base_seconds(records[first:first + 1].tobytes())
        if base is None:
            left |= same
        else:
            np.add(clock, np.int64(base), out=seconds, where=same)
    left |= todo
    return left if left.any() else None


def _base_seconds(record: bytes) -> int | None:
    """Epoch seconds of 00:00:00 on the record's date at its offset (None: not canonical)."""
    prefix, offset = _PREFIX_RE.fullmatch(record[:11]), _OFFSET_RE.fullmatch(record[19:])
    if prefix is None or offset is None:
        return None
    year, month, day = (int(g) for g in prefix.groups())
    hours, minutes = int(offset.group(2)), int(offset.group(3))
    if not 1900 <= year < 2200 or hours > 23 or minutes > 59:
        return None  # let arrow decide on the unusual
    try:
        days = dt.date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None
    shift = (hours * 60 + minutes) * 60
    return days * 86400 - (shift if offset.group(1) == b"+" else -shift)


def _general(arr: pa.Array, rows: np.ndarray, seconds: np.ndarray) -> int | None:
    """Convert ``rows`` with arrow's parser; the first unreadable row, if any."""
    if len(rows) == 0:
        return None
    import pyarrow.compute as pc  # only here: a second of import time elsewhere

    # From the buffer: pa.array() would import pandas.
    index = pa.Array.from_buffers(pa.int64(), len(rows), [None, pa.py_buffer(rows)])
    texts = arr.take(index).view(pa.string())
    try:
        parsed = pc.cast(texts, pa.timestamp("s", tz="UTC"))
    except pa.ArrowInvalid:
        return int(rows[_first_failure(texts)])
    seconds[rows] = np.asarray(parsed.cast(pa.int64()).to_numpy(zero_copy_only=False))
    return None


def _first_failure(texts: pa.Array) -> int:
    """Index of the first text arrow cannot parse (the cast of all of them failed)."""
    import pyarrow.compute as pc

    good, bad = 0, len(texts) - 1  # texts[:good] parse; texts[:bad + 1] do not
    while good < bad:
        middle = (good + bad) // 2
        try:
            pc.cast(texts.slice(0, middle + 1), pa.timestamp("s", tz="UTC"))
            good = middle + 1
        except pa.ArrowInvalid:
            bad = middle
    return bad
