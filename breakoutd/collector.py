"""How the long-running processes (the daemon, the simulated gateway) use Python's collector.

A collection stops the event loop while it walks every object of the
generations it collects. The objects a trading day accumulates (orders and
their event hubs in ib_async, the sim's tape) survive every collection, yet
each older-generation pass walked them again: on these machines a
generation-1 pass took 1.5 to 3 ms and a full one 15 to 45 ms, long enough to
hold a breakout's data back. :class:`SurvivorFreezer` moves what survives each
automatic collection into the permanent generation (``gc.freeze``, a constant
time list splice), so a pass only walks objects created since the previous
one. Cyclic garbage among frozen objects waits for :meth:`SurvivorFreezer.sweep`,
which the daemon runs once a day at its 03:30 re-plan, when no session is open.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class SurvivorFreezer:
    """Freezes the survivors of every automatic collection (see the module text).

    The collector is the process's: so is this policy. Each user (a daemon, a
    sim) starts it and stops it; it is in force while anyone uses it."""

    _users = 0

    def __init__(self) -> None:
        self._active = False

    def start(self) -> None:
        """Collect and freeze what exists now; from now on, freeze after each collection."""
        cls = type(self)
        if not self._active:
            self._active = True
            if cls._users == 0:
                gc.callbacks.append(_freeze_after)
            cls._users += 1
        self.sweep()

    def sweep(self) -> None:
        """Collect everything once, frozen objects included, and freeze the survivors
        (nothing while this user has not started the policy)."""
        if not self._active:
            return
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def stop(self) -> None:
        """This user is done; the last one puts the collector back as it was."""
        cls = type(self)
        if not self._active:
            return
        self._active = False
        cls._users -= 1
        if cls._users == 0:
            gc.callbacks.remove(_freeze_after)
            gc.unfreeze()


def _freeze_after(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop":
        gc.freeze()


@contextmanager
def collection_paused() -> Iterator[None]:
    """No automatic collection while a large, acyclic structure is being built.

    Reading a watchlist creates a few objects per value and keeps nearly all of
    them until it is done; every collection in between walks them all again for
    nothing (a quarter of reading a 1 MB file). Collection resumes as before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
