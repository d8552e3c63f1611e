"""Find the line that made the fast CSV parser give up (error path only).

pyarrow rejects a whole file without saying which line is wrong. This module
re-reads the text line by line, with the same acceptance rules field by field,
so the error names ``path:line: column``. It is slow (pure Python) and only
runs after a failure.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import numpy as np

from .model import COLUMNS, TapeError

_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d*)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?")
_NUMBER_RE = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
_INT_RE = re.compile(r"\s*-?\d+\s*")  # arrow's int64 parser refuses a "+"
_INT64_MAX = 2**63 - 1
_ROW_RE = re.compile(r"\bRow #(\d+)")
_PRICE_FIELDS = frozenset({"open", "high", "low", "close", "bid", "ask"})
_INT_FIELDS = frozenset({"volume", "bid_size", "ask_size"})

LineParser = Callable[[bytes], bool]


def time_problem(text: str) -> str | None:
    """Why a time field is unreadable, or None when it is a valid instant."""
    match = _TIME_RE.fullmatch(text)
    if not match:
        return f"{text!r} is not an ISO 8601 time like 2013-10-07T09:30:00-04:00"
    if match.group(7) is not None:
        return f"{text!r} has fractional seconds; rows start on whole seconds"
    if match.group(8) is None:
        return f"{text!r} has no UTC offset (write it like 2013-10-07T09:30:00-04:00)"
    year, month, day, hour, minute = (int(match.group(k)) for k in range(1, 6))
    try:
        dt.datetime(year, month, day, hour, minute, int(match.group(6) or 0))
    except ValueError as exc:
        return f"{text!r} is not a valid time: {exc}"
    return None


def field_problem(column: str, text: str) -> str | None:
    """Why one field's text cannot be read, or None (empty is always readable)."""
    if column == "symbol" or text == "":
        return None
    if column == "time":
        return time_problem(text)
    if column in _PRICE_FIELDS and not _NUMBER_RE.fullmatch(text):
        return f"{text!r} is not a number"
    if column in _INT_FIELDS:
        if not _INT_RE.fullmatch(text):
            return f"{text!r} is not a whole number"
        if abs(int(text)) > _INT64_MAX:
            return f"{text!r} is too large"
    return None


def line_problem(raw: bytes) -> tuple[str, str] | None:
    """(column, reason) for a data line that cannot be read, else None."""
    try:
        text = raw.decode("utf-8").removesuffix("\r")
    except UnicodeDecodeError:
        return "row", "is not UTF-8 text"
    if text == "":
        return "row", "blank line"
    fields = text.split(",")
    if len(fields) != len(COLUMNS):
        return "row", f"has {len(fields)} fields, expected {len(COLUMNS)} ({','.join(COLUMNS)})"
    for column, value in zip(COLUMNS, fields, strict=True):
        reason = field_problem(column, value)
        if reason is not None:
            return column, reason
    return None


def locate_parse_error(body: bytes, path: str, parses: LineParser,
                       parser_message: str) -> TapeError:
    """The TapeError for the first unreadable line of ``body`` (the text after the header).

    Arrow's message usually names the data row ("Row #N"); otherwise every
    line is checked, and ``parses(prefix)``, which tells whether the fast
    parser accepts a prefix of whole lines, bisects when no line has a
    field-level reason.
    """
    hinted = _hinted_line(body, parser_message)
    if hinted is not None:
        number, raw = hinted
        reason = line_problem(raw) or ("row", f"unreadable: {parser_message}")
        return TapeError(path, number, *reason)
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    for number, raw in enumerate(lines, start=2):
        found = line_problem(raw)
        if found is not None:
            return TapeError(path, number, *found)
    bad = _bisect_first_bad(lines, parses)
    return TapeError(path, bad + 2, "row", f"unreadable: {parser_message}")


def _hinted_line(body: bytes, parser_message: str) -> tuple[int, bytes] | None:
    """(file line number, text) of the data row arrow's message names, if any."""
    match = _ROW_RE.search(parser_message)
    if match is None:
        return None
    row = int(match.group(1))  # 1-based, counting data lines only
    ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n"))
    if not 1 <= row <= len(ends) + 1:
        return None
    start = 0 if row == 1 else int(ends[row - 2]) + 1
    end = int(ends[row - 1]) if row - 1 < len(ends) else len(body)
    return row + 1, body[start:end]


def _bisect_first_bad(lines: list[bytes], parses: LineParser) -> int:
    # Invariant: the first `good` lines parse, the first `bad + 1` do not.
    good, bad = 0, len(lines) - 1
    while good < bad:
        middle = (good + bad) // 2
        if parses(b"\n".join(lines[: middle + 1]) + b"\n"):
            good = middle + 1
        else:
            bad = middle
    return bad
