"""The tape recorder: what the daemon receives for its symbols, as tape v1.

Quotes and trade prints arrive per symbol (:class:`breakoutd.ibkr.market_data.MarketData`
hands them over as they are read). :class:`SecondRows` folds them into the
tape's one-second rows (tape-format.md): a row for every second in which a
trade printed or the quote changed, the trades' open/high/low/close/volume,
and the quote in force at the END of the second. A second is written once it
is safely over (``GRACE`` after its end), all symbols interleaved by
``(time, symbol)``; a print for a second already written is counted and
dropped, so the file stays sorted.

:class:`DayTapeFile` appends the rows to ``<dir>/YYYY-MM-DD/tape.csv.gz``
(one file per exchange day). Each write is one gzip member holding whole
lines, so a process killed mid-write leaves at worst a torn last member;
opening the file again cuts it back to its last whole member and carries
on after the last second it holds. The result reads with
:func:`breakoutd.tape.read_tape` and replays with ``breakoutd sim`` and
``breakoutd backtest``.

A quote is stamped with the instant it arrived: a quote that arrives at
``t`` is in force from ``t``, so it belongs to the row of the second that
ends at or after ``t`` (``ceil(t) - 1s``): a decision at a whole second
before ``t`` does not see it in the backtest, one at or after does.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from breakoutd.core.bars import NS
from breakoutd.core.prices import format_price

from .checks import exchange_iso
from .model import HEADER

GRACE = 2 * NS  # a print may arrive this late for its second and still be written
TAPE_NAME = "tape.csv.gz"


@dataclass(slots=True)
class _Second:
    """One symbol's second being built."""

    open: int | None = None
    high: int = 0
    low: int = 0
    close: int = 0
    volume: int = 0
    quote_changed: bool = False

    def add(self, price: int, size: int) -> None:
        if self.open is None:
            self.open = self.high = self.low = price
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += size


@dataclass(slots=True)
class _Book:
    """A symbol's quote (carried forward) and its open seconds."""

    bid: int | None = None
    bid_size: int | None = None
    ask: int | None = None
    ask_size: int | None = None
    # The quote as of the end of each open second that changed it.
    quotes: dict[int, tuple[int | None, int | None, int | None, int | None]] | None = None


class SecondRows:
    """Quotes and prints folded into tape rows, released once their second is over."""

    def __init__(self) -> None:
        self._seconds: dict[tuple[int, str], _Second] = {}
        self._books: dict[str, _Book] = {}
        self.written_through = 0  # seconds before this (ns) are written: later prints drop
        self.late = 0  # prints that came after their second was written

    def quote(self, symbol: str, at: int, bid: int | None, bid_size: int | None,
              ask: int | None, ask_size: int | None) -> None:
        """The symbol's quote changed at instant ``at`` (ns)."""
        second = -(-at // NS) * NS - NS  # the second that ends at or after ``at``
        if second < self.written_through:
            second = self.written_through  # its row is written: the change shows next
        book = self._books.setdefault(symbol, _Book())
        if book.quotes is None:
            book.quotes = {}
        book.quotes[second] = (bid, bid_size, ask, ask_size)
        self._seconds.setdefault((second, symbol), _Second()).quote_changed = True

    def prints(self, symbol: str, second: int, prints: list[tuple[int, int]]) -> None:
        """Trade prints (price, size) of the second starting at ``second`` (ns)."""
        if not prints:
            return
        if second < self.written_through:
            self.late += len(prints)
            return
        row = self._seconds.setdefault((second, symbol), _Second())
        for price, size in prints:
            row.add(price, size)

    def due(self, now: int) -> list[str]:
        """The lines of every second over by ``now`` (less the grace), in tape order."""
        return self._release(now - GRACE - NS)

    def drain(self) -> list[str]:
        """Every line still held (at the end of a recording)."""
        if not self._seconds:
            return []
        return self._release(max(second for second, _ in self._seconds))

    def _release(self, last: int) -> list[str]:
        """Lines of the seconds up to and including ``last``."""
        ready = sorted(key for key in self._seconds if key[0] <= last)
        lines = [self._line(second, symbol, self._seconds.pop((second, symbol)))
                 for second, symbol in ready]
        self.written_through = max(self.written_through, last - last % NS + NS)
        return lines

    def _line(self, second: int, symbol: str, row: _Second) -> str:
        book = self._books.setdefault(symbol, _Book())
        quotes = book.quotes or {}
        for at in sorted(s for s in quotes if s <= second):  # this second's quote and older
            book.bid, book.bid_size, book.ask, book.ask_size = quotes.pop(at)
        trade = ("", "", "", "", "") if row.open is None else (
            format_price(row.open), format_price(row.high), format_price(row.low),
            format_price(row.close), str(row.volume))
        quote = (_price(book.bid), _int(book.bid_size), _price(book.ask), _int(book.ask_size))
        return ",".join((exchange_iso(second // NS), symbol, *trade, *quote))


def _price(micros: int | None) -> str:
    return "" if micros is None else format_price(micros)


def _int(value: int | None) -> str:
    return "" if value is None else str(value)


class DayTapeFile:
    """Whole lines appended to one day's gzip tape, one gzip member per write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self.last_time: str | None = None  # the last line's time text, after a reopen
        path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired = self._open_existing()

    def _open_existing(self) -> int:
        """Cut a torn last member away; returns the bytes cut (0 when whole or new)."""
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        good, text = _whole_members(data)
        if good < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(good)
        lines = [line for line in text.decode().splitlines() if line and line != HEADER]
        self.rows = len(lines)
        self.last_time = lines[-1].split(",", 1)[0] if lines else None
        if good == 0:
            self.path.unlink()
        return len(data) - good

    def append(self, lines: list[str]) -> None:
        """Write ``lines`` (header first when the file is new) as one whole member."""
        if not lines:
            return
        head = [] if self.path.exists() else [HEADER]
        text = "\n".join(head + lines) + "\n"
        member = gzip.compress(text.encode(), compresslevel=6, mtime=0)
        with open(self.path, "ab") as handle:
            handle.write(member)
            handle.flush()
        self.rows += len(lines)
        self.last_time = lines[-1].split(",", 1)[0]

    def sync(self) -> None:
        """Make what was written durable (at the day's end and at a stop)."""
        if self.path.exists():
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _whole_members(data: bytes) -> tuple[int, bytes]:
    """The length of the leading whole gzip members of ``data`` and their text."""
    good, out, pos = 0, io.BytesIO(), 0
    while pos < len(data):
        d = zlib.decompressobj(wbits=31)
        try:
            text = d.decompress(data[pos:])
        except zlib.error:
            break
        if not d.eof:
            break  # the member ends before its trailer: torn
        used = len(data) - pos - len(d.unused_data)
        body = text.decode(errors="replace")
        if body and not body.endswith("\n"):
            break
        out.write(text)
        pos += used
        good = pos
    return good, out.getvalue()


class TapeRecorder:
    """Rows from what arrives, appended to each exchange day's file under ``root``."""

    def __init__(self, root: Path, clock: Callable[[], int],
                 on_closed: Callable[[DayTapeFile], None] | None = None) -> None:
        self.root = root
        self._clock = clock
        self._on_closed = on_closed
        self._rows = SecondRows()
        self._files: dict[dt.date, DayTapeFile] = {}

    def on_quote(self, symbol: str, bid: int | None, bid_size: int | None, ask: int | None,
                 ask_size: int | None) -> None:
        self._rows.quote(symbol, self._clock(), bid, bid_size, ask, ask_size)

    def on_prints(self, symbol: str, prints: list[tuple[int, int]], second: int | None) -> None:
        if second is None:
            now = self._clock()
            second = now - now % NS
        self._rows.prints(symbol, second, prints)

    @property
    def late(self) -> int:
        """Prints dropped because their second had been written."""
        return self._rows.late

    def flush(self) -> int:
        """Write the seconds that are over; returns how many rows were written."""
        return self._write(self._rows.due(self._clock()))

    def close(self) -> int:
        """Write everything still held and make it durable."""
        n = self._write(self._rows.drain())
        for day in list(self._files):
            self._close_day(day)
        return n

    def _close_day(self, day: dt.date) -> None:
        f = self._files.pop(day)
        f.sync()
        if self._on_closed is not None:
            self._on_closed(f)

    def file_for(self, day: dt.date) -> DayTapeFile:
        """The day's file, opened (and repaired) on first use."""
        f = self._files.get(day)
        if f is None:
            for old_day in list(self._files):  # a new day: the old one is done
                self._close_day(old_day)
            f = self._files[day] = DayTapeFile(self.root / day.isoformat() / TAPE_NAME)
        return f

    def _write(self, lines: list[str]) -> int:
        by_day: dict[dt.date, list[str]] = {}
        for line in lines:
            day = dt.date.fromisoformat(line[:10])
            by_day.setdefault(day, []).append(line)
        for day, day_lines in sorted(by_day.items()):
            f = self.file_for(day)
            if f.last_time is not None:  # after a restart: only what comes after the file
                last = dt.datetime.fromisoformat(f.last_time)
                day_lines = [x for x in day_lines
                             if dt.datetime.fromisoformat(x.split(",", 1)[0]) > last]
            f.append(day_lines)
        return len(lines)

    @property
    def rows(self) -> int:
        """Rows in the current day's file."""
        return sum(f.rows for f in self._files.values())
