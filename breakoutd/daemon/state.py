"""The state store: what fired today, kept across restarts (single-fire).

``var/state/YYYY-MM-DD.json`` records, per watcher id, the order reference of
its entry attempt and its outcome, and the broker order-id high-water mark.
A watcher is recorded as fired as soon as its entry is sent (or rejected); a
crash between the send and the record cannot lead to a second entry, since
at start-up the daemon reconciles the record with the broker's open orders,
completed orders and executions by ``orderRef``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import msgspec

from breakoutd.daemon.disk import DiskError, DiskWorker
from breakoutd.daemon.files import replace_atomically


class FiredEntry(msgspec.Struct, frozen=True):
    """One watcher's entry attempt today."""

    order_ref: str
    at: int
    outcome: str  # "entered" or "rejected"
    reason: str | None = None
    kind: str = "close"  # the rule that triggered: close | fast


class DayState(msgspec.Struct):
    """Everything the daemon must remember about one trading day."""

    day: str
    fired: dict[str, FiredEntry] = msgspec.field(default_factory=dict)
    order_id_high_water: int = 0


class StateStore:
    """Loads and atomically saves the state of one trading day.

    With a :class:`DiskWorker`, the file is written on its thread: :meth:`save`
    waits for it, :meth:`begin_save` and :meth:`save_soon` do not."""

    def __init__(self, root: Path, day: dt.date, disk: DiskWorker | None = None) -> None:
        self.path = root / "state" / f"{day.isoformat()}.json"
        self.state = self._load(day)
        self._disk = disk
        self._save_pending = False

    def _load(self, day: dt.date) -> DayState:
        if not self.path.exists():
            return DayState(day=day.isoformat())
        return msgspec.json.decode(self.path.read_bytes(), type=DayState)

    def has_fired(self, watcher_id: str) -> bool:
        """True once an entry attempt for the watcher was recorded today."""
        return watcher_id in self.state.fired

    def mark_fired(self, watcher_id: str, entry: FiredEntry, *, soon: bool = False) -> None:
        """Record a watcher's entry attempt and its outcome, durably (or the disk halts entries).

        ``soon``: on disk in the next turn of the event loop (after an entry: the
        broker holds its orderRef, which start-up reconciles by)."""
        self.state.fired[watcher_id] = entry
        if soon:
            self.save_soon()
            return
        try:
            self.save()
        except DiskError:
            # Kept here and written by the next save that works; meanwhile the daemon's
            # disk guard halts new entries (a caller on the hot path cannot do better).
            pass

    def save_soon(self) -> None:
        """Begin a save in the next turn of the event loop (save at once when no loop runs)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save()
            return
        if not self._save_pending:
            self._save_pending = True
            loop.call_soon(self._begin_if_pending)

    def _begin_if_pending(self) -> None:
        if self._save_pending:
            self.begin_save()

    @property
    def order_id_high_water(self) -> int:
        """The highest broker order id used today."""
        return self.state.order_id_high_water

    def note_order_id(self, order_id: int) -> None:
        """Raise the order-id high-water mark (persisted with the next save)."""
        self.state.order_id_high_water = max(self.state.order_id_high_water, order_id)

    def begin_save(self) -> None:
        """Start writing the state as it is now (on the disk thread; at once without one)."""
        self._save_pending = False
        data = msgspec.json.encode(self.state)
        path = self.path
        if self._disk is None:
            replace_atomically(path, data)
        else:  # a newer save still queued replaces an older one
            self._disk.submit(lambda: replace_atomically(path, data), key=("state", path))

    def flush(self) -> None:
        """Save now if a :meth:`save_soon` is still waiting for its loop turn."""
        if self._save_pending:
            self.save()
        elif self._disk is not None:
            self._disk.wait()

    def save(self) -> None:
        """Write the state file atomically; on disk when this returns (DiskError if not)."""
        self.begin_save()
        if self._disk is not None:
            self._disk.wait()
