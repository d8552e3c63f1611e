"""``var/status.json``: the daemon's state at a glance, rewritten as events happen.

:class:`StatusBoard` is a view of the event catalog (``docs/status.md`` has
the schema; ``daemon/status_view.py`` renders it). ``on_event`` only updates
the model and marks it changed; ``run`` writes the file when something
changed, at most every ``MIN_GAP`` seconds, and at least every ``interval``
seconds as a heartbeat, so ``breakoutctl status`` can tell a live daemon from
a stale file. Every write replaces the file atomically, so a reader never sees
half of one.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from loguru import logger

from breakoutd.core import events as ev
from breakoutd.core.params import WatcherSpec
from breakoutd.core.prices import to_decimal
from breakoutd.daemon.disk import DiskWorker
from breakoutd.daemon.files import replace_atomically
from breakoutd.daemon.status_model import StatusModel, WatcherRow
from breakoutd.daemon.status_view import StatusView

MIN_GAP = 0.1  # seconds between two writes: a burst of events makes one write


def status_path(var: Path) -> Path:
    """Where the status file of a runtime directory is."""
    return var / "status.json"


class StatusBoard:
    """The status file's model and its writer."""

    def __init__(self, path: Path, *, clock: Callable[[], int],
                 wall: Callable[[], float] = time.time, pid: int | None = None,
                 last_price: Callable[[str], int | None] = lambda s: None,
                 interval: float = 2.0, disk: DiskWorker | None = None) -> None:
        """``clock`` is the broker's (epoch ns); ``last_price`` gives live prices in micros;
        ``run`` writes on ``disk``'s thread when given, else on a worker thread."""
        self._disk = disk
        self.path = path
        self.model = StatusModel()
        self.view = StatusView(self.model, clock=clock, wall=wall, last_price=last_price,
                               pid=os.getpid() if pid is None else pid, interval=interval)
        self._changed = asyncio.Event()
        self._write_lock = threading.Lock()
        self._failing = False

    @property
    def interval(self) -> float:
        """Seconds between two heartbeat writes at most, as the file says."""
        return self.view.interval

    # --- input ---------------------------------------------------------------------------

    def on_event(self, e: ev.Event) -> None:
        """Fold an event into the model and mark the file out of date (no I/O)."""
        self.model.apply(e)
        self._changed.set()

    def set_config(self, *, files: list[str], digest: str, reloaded_at: int | None,
                   result: str, errors: list[str]) -> None:
        """The configuration in force: its files, hash, and the last reload's result."""
        cfg = self.model.config
        cfg.files, cfg.digest, cfg.reloaded_at = list(files), digest, reloaded_at
        cfg.result, cfg.errors = result, list(errors)
        self._changed.set()

    def set_watcher_specs(self, specs: Iterable[WatcherSpec], sessions: Mapping[str, str]) -> None:
        """The configured watchers; those not armed yet show as ``waiting``.

        Disabled watchers are left out; a waiting watcher no longer configured
        goes, one that has lived today stays with its outcome.
        """
        rows = self.model.watchers
        wanted = {s.id: s for s in specs if s.enabled}
        for wid in [w for w, row in rows.items() if row.state == "waiting" and w not in wanted]:
            del rows[wid]
        for spec in wanted.values():
            session = sessions.get(spec.id) or "+".join(s.value for s in spec.params.sessions)
            row = rows.get(spec.id)
            name = spec.level_name.value if spec.level_name is not None else None
            if row is None:
                rows[spec.id] = WatcherRow(spec.id, spec.symbol, to_decimal(spec.level), session,
                                           level_name=name)
            elif row.state == "waiting":
                row.symbol, row.session, row.level_name = spec.symbol, session, name
                if name is None or row.level == 0:  # a resolved named level stays resolved
                    row.level = to_decimal(spec.level)
            else:
                row.session = row.session or session
        self._changed.set()

    def replay(self, events: Iterable[ev.Event]) -> None:
        """Fold earlier events in (today's journal at start-up)."""
        for e in events:
            self.model.apply(e)
        self._changed.set()

    # --- output --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The status file's content."""
        return self.view.snapshot()

    def encode(self) -> bytes:
        """The status file's bytes: those of :meth:`snapshot`."""
        return self.view.encode()

    async def _encode_in_steps(self) -> bytes:
        """:meth:`encode`, letting the event loop run between steps of the rendering."""
        return await self.view.encode_in_steps()

    def price_of(self, symbol: str) -> Decimal | None:
        """The last price of a symbol: the live stream's, else the last one in events."""
        return self.view.price_of(symbol)

    def write(self) -> None:
        """Replace the status file with the current view, atomically."""
        self._changed.clear()
        self._store(self.encode())

    async def run(self, stop: asyncio.Event) -> None:
        """Write on change (coalesced) and every ``interval`` seconds until ``stop``; then once more."""
        while not stop.is_set():
            self._changed.clear()
            await self._store_off_loop(await self._encode_in_steps())
            await asyncio.sleep(MIN_GAP)  # events of this gap go into the next write
            await _first_of(self._changed, stop, timeout=max(self.interval - MIN_GAP, 0.0))
        await self._store_off_loop(self.encode())

    async def _store_off_loop(self, data: bytes) -> None:
        if self._disk is None:
            await asyncio.to_thread(self._store, data)
        else:  # a newer file still queued replaces an older one
            self._disk.submit(lambda: self._store(data, canary=True), key=("status", self.path))

    def _store(self, data: bytes, canary: bool = False) -> None:
        """Write the file; a failure is said once, and with ``canary`` raised to the disk
        worker: the heartbeat's write is the first to find a disk that filled or failed
        between two entries, and the daemon's disk guard halts entries until it works."""
        # One writer at a time: the temp file's name is per process, not per call.
        with self._write_lock:
            try:
                # A view: start-up rebuilds it from the journal, so no fsync
                # (whose journal commit would stall the event journal's writes).
                replace_atomically(self.path, data, durable=False)
            except OSError as exc:
                if canary:
                    raise  # the disk guard says it
                if not self._failing:  # say it once, not every two seconds
                    logger.warning("cannot write the status file {}: {}", self.path, exc)
                self._failing = True
                return
        self._failing = False


async def _first_of(a: asyncio.Event, b: asyncio.Event, timeout: float) -> None:
    """Wait until either event is set, or ``timeout`` seconds."""
    waits = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
