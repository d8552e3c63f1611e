"""JSONL journals: ``var/journal/YYYY-MM-DD/{events,ops,gateway}.jsonl``.

Every line is one JSON object with the event's own fields plus ``wall`` (ISO
8601 with offset) and ``mono_ns``. A line is written with a single
``write(2)`` on an ``O_APPEND`` descriptor, so it lands whole; a line torn by
a power loss is cut off the file's end when the journal is next opened, so a
reader never sees half a line. :meth:`Journal.sync` forces the events file to
disk; the order router has it done (on the :class:`DiskWorker`'s thread, when
there is one: :meth:`Journal.sync_soon`) before it sends its next order.

A write never raises: the journal is written from the order's hot path and
from every log call. A line that cannot be written (a full disk, an I/O error,
a read-only filesystem) is kept in memory, with every later one, in order, and
the failure is told to the disk worker, so no order leaves until
:meth:`Journal.flush_backlog` has written them (the daemon's disk guard tries
every second). A short write is cut back at once, so no torn line stays in the
file. On the first ``ENOSPC`` the space reserve is released and the line tried
once more: the lines of orders already sent still reach the disk.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from breakoutd.core.events import Event
from breakoutd.daemon.disk import RESERVE_KEY, DiskError, DiskWorker, SpaceReserve

STREAMS = ("events", "ops", "gateway")
MAX_BACKLOG = 100_000  # lines kept in memory while the disk fails (then dropped, and counted)
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


class FileOps:
    """The system calls a journal makes: a seam where tests make the disk fail."""

    write = staticmethod(os.write)
    fdatasync = staticmethod(os.fdatasync)
    fsync = staticmethod(os.fsync)
    ftruncate = staticmethod(os.ftruncate)


class Journal:
    """Append-only JSONL journals for one day directory."""

    def __init__(self, root: Path, day: dt.date,
                 wall: Callable[[], str] = _local_wall,
                 mono: Callable[[], int] = time.monotonic_ns,
                 disk: DiskWorker | None = None, reserve: SpaceReserve | None = None,
                 ops: FileOps | None = None) -> None:
        self.dir = root / "journal" / day.isoformat()
        self._disk = disk
        self._reserve = reserve
        self.ops = ops or FileOps()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._wall = wall
        self._mono = mono
        self._fds: dict[str, int] = {}
        self._sizes: dict[str, int] = {}  # where each file's last whole line ends
        self._backlog: list[tuple[str, bytes]] = []  # lines not written yet, in order
        self._dropped = 0
        self._lock = threading.Lock()  # the ops stream is written from any thread
        self._write_key = ("journal-write", id(self))
        self.failure: OSError | None = None  # the write that failed, until the backlog is out
        for stream in STREAMS:
            path = self.dir / f"{stream}.jsonl"
            _cut_torn_tail(path)
            self._fds[stream] = fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._sizes[stream] = os.fstat(fd).st_size

    def write(self, event: Event, stream: str = "events") -> None:
        """Append one event as one line."""
        body = _encoder.encode(event)
        stamp = _encoder.encode({"wall": self._wall(), "mono_ns": self._mono()})
        # {"wall":..,"mono_ns":..,<event fields>}: stamps first, one buffer, one write.
        self._append(stream, stamp[:-1] + b"," + body[1:] + b"\n")

    def record(self, stream: str, **fields: Any) -> None:
        """Append a free-form record (ops errors, gateway notices)."""
        line = {"wall": self._wall(), "mono_ns": self._mono(), **fields}
        self._append(stream, _encoder.encode(line) + b"\n")

    @property
    def backlog(self) -> int:
        """Lines waiting in memory for the disk."""
        return len(self._backlog)

    def _append(self, stream: str, line: bytes) -> None:
        with self._lock:
            if stream not in self._fds:
                return  # closed
            if not self._backlog and self._put(stream, line):
                return
            if len(self._backlog) < MAX_BACKLOG:
                self._backlog.append((stream, line))
            else:
                self._dropped += 1

    def _put(self, stream: str, line: bytes) -> bool:
        """Write one line whole, or nothing of it; False (and the failure told) if not."""
        try:
            self._write_whole(stream, line)
            return True
        except OSError as exc:
            first = exc
        if first.errno == errno.ENOSPC and self._reserve is not None and self._reserve.release():
            if self._disk is not None:  # holding it again is the test of room to trade
                self._disk.fail(RESERVE_KEY, first)
            try:
                self._write_whole(stream, line)
            except OSError:
                pass
            else:
                self._failed(first)  # written, but the disk is full: no more entries
                return True
        self._failed(first)
        return False

    def _write_whole(self, stream: str, line: bytes) -> None:
        fd, start = self._fds[stream], self._sizes[stream]
        done = 0
        try:
            done = self.ops.write(fd, line)
            while done < len(line):  # a short write (the disk filled): the rest, or fail
                done += self.ops.write(fd, line[done:])
        except OSError:
            if done:
                try:  # no torn line stays in the file: cut it back to the last whole one
                    self.ops.ftruncate(fd, start)
                except OSError:
                    pass  # cut when the journal is next opened
            raise
        self._sizes[stream] = start + len(line)

    def _failed(self, exc: OSError) -> None:
        if self.failure is None:
            self.failure = exc
        if self._disk is not None:
            self._disk.fail(self._write_key, exc)

    def flush_backlog(self) -> bool:
        """Write the lines kept while the disk failed; True when none is left."""
        with self._lock:
            while self._backlog:
                stream, line = self._backlog[0]
                if stream not in self._fds:
                    self._backlog.clear()
                    break
                if not self._put(stream, line):
                    return False
                self._backlog.pop(0)
            if self._dropped and "ops" in self._fds:
                note = {"wall": self._wall(), "mono_ns": self._mono(), "level": "ERROR",
                        "message": f"{self._dropped} journal line(s) were lost: the disk "
                                   f"failed for longer than {MAX_BACKLOG} lines"}
                if not self._put("ops", _encoder.encode(note) + b"\n"):
                    return False
                self._dropped = 0
            self.failure = None
        if self._disk is not None:
            self._disk.mended(self._write_key)
        return True

    def sync(self) -> None:
        """Force the events journal to stable storage."""
        fd = self._fds.get("events")
        if fd is not None:  # closed: close() synced it
            self.ops.fdatasync(fd)

    def sync_soon(self) -> None:
        """Start :meth:`sync` on the disk thread (sync at once without one)."""
        if self._disk is None:
            self.sync()
        else:
            self._disk.submit(self.sync, key=("journal", id(self)))

    def close(self) -> None:
        """Flush and close every stream (also on a failing disk: what cannot be written is lost)."""
        if self._disk is not None:
            try:  # no sync of ours may still run on a descriptor about to close
                self._disk.wait()
            except DiskError:
                pass  # the daemon has said so; the fsync below tries once more
        self.flush_backlog()
        with self._lock:
            for fd in self._fds.values():
                try:
                    self.ops.fsync(fd)
                except OSError:
                    pass  # a failing disk: nothing more can be done for these lines
                os.close(fd)
            self._fds.clear()
        if self._disk is not None:  # the next day's journal answers for itself
            self._disk.mended(self._write_key)
            self._disk.mended(("journal", id(self)))


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
    data = path.read_bytes()
    whole = data[:data.rfind(b"\n") + 1]  # a torn last line is not a line yet
    for line in whole.splitlines():
        if line.strip():
            out.append(msgspec.json.decode(line))
    return out
