"""The disk guard: no entry while the journal or the state file cannot be written.

Every order the daemon sends must have its lines durably in the journal
(docs/operator.md, "A full or failing disk"). The disk worker keeps every
failure until it is mended (:mod:`breakoutd.daemon.disk`), so the router's
wait before a send already refuses; the guard makes it a state an operator
sees: on the first failure it logs one ops line, halts trading with
``Halted(reason="disk", by="disk")`` (the ledger then rejects triggers
``risk_halted``; working orders and the exits held at the broker stay), and
every second it tries the disk again: the lines kept in memory, the space
reserve, the journal's sync and the state file. When all of that works it
emits ``Resumed(by="disk")``; ``breakoutctl resume`` tries at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from loguru import logger

from breakoutd.core import events as ev
from breakoutd.core.ledger import DISK_HALT
from breakoutd.daemon.disk import RESERVE_KEY, DiskError, describe_failure

if TYPE_CHECKING:
    from breakoutd.daemon.app import Daemon

PROBE_EVERY = 1.0  # seconds between two tries of a failing disk


class DiskGuard:
    """Halts new entries while the disk fails, resumes when it writes again."""

    def __init__(self, daemon: Daemon, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._d = daemon
        self._mono = monotonic
        self.problem: str | None = None  # what failed, while it stands
        self.probe_every = PROBE_EVERY
        self._next_probe = 0.0
        self._probing: asyncio.Task[bool] | None = None

    def action(self) -> str:
        """What the operator should do."""
        return (f"free space on the filesystem of {self._d.var} (or mend the disk); trading "
                f"resumes by itself once writes succeed, or at `breakoutctl resume`")

    def detail(self) -> str:
        """Why entries are halted and what to do: the ops line, the status detail."""
        return (f"the journal or the state file cannot be written ({self.problem}): no new "
                f"entries; working orders and exits stay at the broker; {self.action()}")

    def check(self) -> None:
        """On every main-loop tick: halt on a failure, try the disk again, resume."""
        d = self._d
        failure = d.disk.failure()
        if failure is not None:
            self._halt(describe_failure(failure))
            now = self._mono()
            if now >= self._next_probe and (self._probing is None or self._probing.done()):
                self._next_probe = now + self.probe_every
                self._probing = asyncio.get_running_loop().create_task(self.probe())
        elif self.problem is not None or d.today.ledger.halted == DISK_HALT:
            self.mended("disk")

    def _halt(self, problem: str) -> None:
        d = self._d
        if self.problem is None:
            self.problem = problem
            logger.error(self.detail())  # the one ops line of this failure
        if d.today.ledger.halted is None:
            d.emit(ev.Halted(at=d.clock(), reason=DISK_HALT, detail=self.detail(), by="disk"))
            d.refresh_state()

    async def probe(self) -> bool:
        """Write what waits, hold the reserve, sync and save: True when all of it worked."""
        d = self._d
        if d.journal is not None and not d.journal.flush_backlog():
            return False
        d.disk.submit(d.reserve.hold, key=RESERVE_KEY)
        if d.journal is not None:
            d.journal.sync_soon()
        d.store.begin_save()
        try:
            await asyncio.to_thread(d.disk.wait)
        except DiskError:
            return False
        return d.disk.failure() is None

    def mended(self, by: str) -> None:
        """The disk works again: a halt of the disk's own is lifted (``by``: disk | uid N)."""
        d = self._d
        if self.problem is not None:
            self.problem = None
            logger.warning("the journal and the state file are written again")
        if d.today.ledger.halted == DISK_HALT:
            d.emit(ev.Resumed(at=d.clock(), by=by, was="halted"))
            d.refresh_state()
