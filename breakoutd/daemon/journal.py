"""JSONL journals: ``var/journal/YYYY-MM-DD/{events,ops,gateway}.jsonl``.

Every line is one JSON object with the event's own fields plus ``wall`` (ISO
8601 with offset) and ``mono_ns``. A line is written with a single
``write(2)`` on an ``O_APPEND`` descriptor, so it lands whole; a line torn by
a power loss is cut off the file's end when the journal is next opened, so a
reader never sees half a line. :meth:`Journal.sync` forces the events file to
disk; the order router has it done (on the :class:`DiskWorker`'s thread, when
there is one: :meth:`Journal.sync_soon`) before it sends its next order.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from breakoutd.core.events import Event
from breakoutd.daemon.disk import DiskError, DiskWorker

STREAMS = ("events", "ops", "gateway")
_encoder = msgspec.json.Encoder(decimal_format="number")


class LocalWall:
    """Now as local ISO 8601 with microseconds and the UTC offset, as ``datetime`` writes it.

    Every journal line carries one, and ``datetime.now().astimezone()`` costs
    tens of microseconds on a cold path (the events of an entry): the text up
    to the second, with its offset, is made once per second and reused."""

    __slots__ = ("_second", "_head", "_offset", "_time_ns")

    def __init__(self, time_ns: Callable[[], int] = time.time_ns) -> None:
        self._time_ns = time_ns
        self._second = -1
        self._head = self._offset = ""

    def __call__(self) -> str:
        now = self._time_ns()
        second, micros = divmod(now // 1000, 1_000_000)
        if second != self._second:
            moment = dt.datetime.fromtimestamp(second).astimezone()
            text = moment.isoformat(timespec="seconds")  # ...T09:31:00-04:00
            self._head, self._offset = text[:19], text[19:]
            self._second = second
        return f"{self._head}.{micros:06d}{self._offset}"


_local_wall = LocalWall()


class Journal:
    """Append-only JSONL journals for one day directory."""

    def __init__(self, root: Path, day: dt.date,
                 wall: Callable[[], str] = _local_wall,
                 mono: Callable[[], int] = time.monotonic_ns,
                 disk: DiskWorker | None = None) -> None:
        self.dir = root / "journal" / day.isoformat()
        self._disk = disk
        self.dir.mkdir(parents=True, exist_ok=True)
        self._wall = wall
        self._mono = mono
        self._fds: dict[str, int] = {}
        for stream in STREAMS:
            path = self.dir / f"{stream}.jsonl"
            _cut_torn_tail(path)
            self._fds[stream] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def write(self, event: Event, stream: str = "events") -> None:
        """Append one event as one line."""
        body = _encoder.encode(event)
        stamp = _encoder.encode({"wall": self._wall(), "mono_ns": self._mono()})
        # {"wall":..,"mono_ns":..,<event fields>}: stamps first, one buffer, one write.
        os.write(self._fds[stream], stamp[:-1] + b"," + body[1:] + b"\n")

    def record(self, stream: str, **fields: Any) -> None:
        """Append a free-form record (ops errors, gateway notices)."""
        line = {"wall": self._wall(), "mono_ns": self._mono(), **fields}
        os.write(self._fds[stream], _encoder.encode(line) + b"\n")

    def sync(self) -> None:
        """Force the events journal to stable storage."""
        fd = self._fds.get("events")
        if fd is not None:  # closed: close() synced it
            os.fdatasync(fd)

    def sync_soon(self) -> None:
        """Start :meth:`sync` on the disk thread (sync at once without one)."""
        if self._disk is None:
            self.sync()
        else:
            self._disk.submit(self.sync, key=("journal", id(self)))

    def close(self) -> None:
        """Flush and close every stream."""
        if self._disk is not None:
            try:  # no sync of ours may still run on a descriptor about to close
                self._disk.wait()
            except DiskError:
                pass  # logged by the disk thread; the fsync below tries once more
        for fd in self._fds.values():
            os.fsync(fd)
            os.close(fd)
        self._fds.clear()


def _cut_torn_tail(path: Path) -> None:
    """Drop a partial last line left by a crash in the middle of a write."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        size = f.seek(0, os.SEEK_END)
        step = 4096
        pos = size
        while pos > 0:
            pos = max(0, pos - step)
            f.seek(pos)
            chunk = f.read(size - pos)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                f.truncate(pos + nl + 1)
                return
        f.truncate(0)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every whole line of a journal file, decoded."""
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            out.append(msgspec.json.decode(line))
    return out
