"""A thread that forces the journal and the state file to disk, off the event loop.

An ``fdatasync`` of the journal and the atomic replace of the state file (two
more ``fsync``) take one to several milliseconds, and the event loop must not
stand still that long right after an entry: the next symbol's data may be
waiting. The loop submits the work and goes on; whoever needs it done (the
order router, before it writes its next order) calls :meth:`DiskWorker.wait`,
which blocks until everything submitted so far has run and raises what went
wrong. The syscalls release the GIL, so the loop runs while the disk works.

A failure stands until it is mended, and every waiter sees it: a job's failure
until a later job of the same key succeeds, a write done elsewhere (the
journal's lines, :meth:`DiskWorker.fail`) until its writer says it is written
again (:meth:`DiskWorker.mended`). So no order leaves while anything the last
one journalled or recorded is not on disk (docs/operator.md, "A full or failing
disk").

:class:`SpaceReserve` keeps a file of a few KiB in the runtime directory: when
the disk fills, releasing it leaves room for the lines of the orders already
sent, and holding it again is the test that there is room to trade once more.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Hashable
from pathlib import Path

WAIT_LIMIT = 5.0  # seconds: a disk slower than this is a failure, not a wait
RESERVE_BYTES = 8 * 1024  # room for the lines of a few entries' orders
START_ROOM = 16 * 1024  # free space a start needs beyond the reserve
RESERVE_KEY = ("reserve",)
_SLOW = ("slow",)
_UNKEYED = ("unkeyed",)


class DiskError(OSError):
    """Something submitted to the disk could not be made durable."""


def describe_failure(exc: BaseException) -> str:
    """An OSError as an operator reads it: ``No space left on device (ENOSPC)``."""
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        text = f"{exc.strerror or os.strerror(exc.errno)} ({name})"
        return f"{text}: {exc.filename}" if exc.filename else text
    cause = exc.__cause__
    if isinstance(exc, DiskError) and cause is not None:
        return describe_failure(cause)
    return str(exc) or type(exc).__name__


class DiskWorker:
    """Runs submitted jobs in order on one thread; a job of a key still queued is replaced."""

    def __init__(self, name: str = "disk") -> None:
        self._cond = threading.Condition()
        self._jobs: dict[Hashable, Callable[[], None]] = {}  # queued, in submission order
        self._submitted = 0
        self._done = 0
        self._failures: dict[Hashable, BaseException] = {}  # by key, until mended
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None], key: Hashable | None = None) -> None:
        """Run ``job`` on the disk thread; with ``key``, it replaces a queued job of that key."""
        with self._cond:
            closed = self._closed
            if not closed:
                k: Hashable = key if key is not None else (_UNKEYED, object())
                if k not in self._jobs:
                    self._submitted += 1
                self._jobs[k] = job
                self._cond.notify_all()
        if closed:
            self._run(key if key is not None else _UNKEYED, job)  # nobody is left to do it later

    def fail(self, key: Hashable, exc: BaseException) -> None:
        """A write done outside this thread failed: every wait raises until :meth:`mended`."""
        with self._cond:
            self._failures.setdefault(key, exc)

    def mended(self, key: Hashable) -> None:
        """What failed under ``key`` is written now."""
        with self._cond:
            self._failures.pop(key, None)

    def failure(self) -> BaseException | None:
        """The first failure that stands, or None."""
        if not self._failures:  # on every check of an entry: no lock when all is well
            return None
        with self._cond:
            return next(iter(self._failures.values()), None)

    def wait(self, limit: float = WAIT_LIMIT) -> None:
        """Block until every job submitted so far has run; raise :class:`DiskError` while a
        failure stands (for every waiter), or when that takes longer than ``limit`` seconds."""
        # Before every order: without the lock when all is done (the counters only grow,
        # and only this thread submits, so a stale _done can only send us the long way).
        if self._done >= self._submitted and not self._failures:
            return
        with self._cond:
            target = self._submitted
            if not self._cond.wait_for(lambda: self._done >= target, limit):
                slow = DiskError(errno.ETIMEDOUT, f"the disk did not finish within {limit:g} s")
                self._failures.setdefault(_SLOW, slow)  # until the disk catches up
            failure = next(iter(self._failures.values()), None)
        if failure is not None:
            if isinstance(failure, DiskError):
                raise failure
            raise DiskError(str(failure)) from failure

    def close(self, limit: float = WAIT_LIMIT) -> None:
        """Run what is queued, then stop the thread (later jobs run in their caller)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(limit)

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._jobs or self._closed)
                if not self._jobs:
                    return
                key = next(iter(self._jobs))
                job = self._jobs.pop(key)
            self._run(_UNKEYED if isinstance(key, tuple) and key[:1] == (_UNKEYED,) else key,
                      job)
            with self._cond:
                self._done += 1
                if self._done >= self._submitted:
                    self._failures.pop(_SLOW, None)
                self._cond.notify_all()

    def _run(self, key: Hashable, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception as exc:  # every wait raises it until a job of this key succeeds
            with self._cond:
                self._failures[key] = exc
            return
        if key in self._failures:
            with self._cond:
                self._failures.pop(key, None)


class SpaceReserve:
    """A file that holds ``size`` bytes of the filesystem for when it fills up."""

    def __init__(self, path: Path, size: int = RESERVE_BYTES) -> None:
        self.path = path
        self.size = size
        self.held = False

    def hold(self) -> None:
        """Allocate the reserve (and fsync it); OSError, and nothing left behind, if not."""
        if self.held and self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o640)
            try:
                _allocate(fd, self.size)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            self._unlink()
            raise
        self.held = True

    def release(self) -> bool:
        """Give the space back to the filesystem; True if some was held."""
        was = self.held
        self.held = False
        return self._unlink() or was

    def _unlink(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError:
            return False  # a read-only filesystem: nothing to give back
        return True


def _allocate(fd: int, size: int) -> None:
    """Blocks on disk for ``size`` bytes: fallocate, else written zeros."""
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    except AttributeError:  # pragma: no cover - a platform without posix_fallocate
        pass
    os.ftruncate(fd, 0)
    block = bytes(4096)
    left = size
    while left > 0:
        left -= os.write(fd, block[:left])
