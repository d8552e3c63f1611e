"""A thread that forces the journal and the state file to disk, off the event loop.

An ``fdatasync`` of the journal and the atomic replace of the state file (two
more ``fsync``) take one to several milliseconds, and the event loop must not
stand still that long right after an entry: the next symbol's data may be
waiting. The loop submits the work and goes on; whoever needs it done (the
order router, before it writes its next order) calls :meth:`DiskWorker.wait`,
which blocks until everything submitted so far has run and raises what went
wrong. The syscalls release the GIL, so the loop runs while the disk works.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from loguru import logger

WAIT_LIMIT = 5.0  # seconds: a disk slower than this is a failure, not a wait


class DiskError(OSError):
    """Something submitted to the disk could not be made durable."""


class DiskWorker:
    """Runs submitted jobs in order on one thread; a job of a key still queued is replaced."""

    def __init__(self, name: str = "disk") -> None:
        self._cond = threading.Condition()
        self._jobs: dict[Hashable, Callable[[], None]] = {}  # queued, in submission order
        self._submitted = 0
        self._done = 0
        self._failure: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None], key: Hashable | None = None) -> None:
        """Run ``job`` on the disk thread; with ``key``, it replaces a queued job of that key."""
        with self._cond:
            closed = self._closed
            if not closed:
                k: Hashable = key if key is not None else object()
                if k not in self._jobs:
                    self._submitted += 1
                self._jobs[k] = job
                self._cond.notify_all()
        if closed:
            self._run(job)  # nobody is left to do it later

    def wait(self, limit: float = WAIT_LIMIT) -> None:
        """Block until every job submitted so far has run; raise the first failure since the
        last wait (:class:`DiskError`), or when that takes longer than ``limit`` seconds."""
        # Before every order: without the lock when all is done (the counters only grow,
        # and only this thread submits, so a stale _done can only send us the long way).
        if self._done >= self._submitted and self._failure is None:
            return
        with self._cond:
            target = self._submitted
            if not self._cond.wait_for(lambda: self._done >= target, limit):
                raise DiskError(f"the disk did not finish within {limit:g} s")
            failure, self._failure = self._failure, None
        if failure is not None:
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
            self._run(job)
            with self._cond:
                self._done += 1
                self._cond.notify_all()

    def _run(self, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception as exc:  # reported to the next wait, and logged now
            logger.opt(exception=exc).error("writing to disk failed: {}", exc)
            with self._cond:
                if self._failure is None:
                    self._failure = exc
