"""A hand-written fake of the daemon's operator actions, and a control server on a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection
from pathlib import Path
from types import TracebackType
from typing import Any

from breakoutd.core import events as ev
from breakoutd.daemon.control import ControlResult, ControlServer, refused

CLOCK_NS = 1_773_063_000 * 1_000_000_000
WATCHERS = {"AAPL@190": "AAPL", "MSFT@420": "MSFT"}


def done(code: str, message: str) -> ControlResult:
    return ControlResult(ok=True, code=code, message=message)


class FakeActions:
    """Halt, pause and the per-watcher commands on a tiny model of the daemon's state."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.halted = False
        self.paused = False
        self.open = {"AAPL@190"}  # watchers with a position
        self.stopped: set[str] = set()
        self.fail_with: Exception | None = None

    def _call(self, *call: Any) -> None:
        self.calls.append(call)
        if self.fail_with is not None:
            raise self.fail_with

    async def halt(self, flatten: bool, uid: int) -> ControlResult:
        self._call("halt", flatten, uid)
        if self.halted:
            return refused("already_halted", "breakoutd is already halted")
        self.halted = True
        return done("halted", "halted: no new entries" + (", flattening 1 position"
                                                          if flatten else ""))

    async def resume(self, uid: int) -> ControlResult:
        self._call("resume", uid)
        if not (self.halted or self.paused):
            return refused("not_halted", "breakoutd is neither halted nor paused")
        self.halted = self.paused = False
        return done("resumed", "resumed: watchers may enter again")

    async def pause(self, uid: int) -> ControlResult:
        self._call("pause", uid)
        self.paused = True
        return done("paused", "paused: watching, no new entries")

    async def flatten(self, target: str | None, all: bool, uid: int) -> ControlResult:
        self._call("flatten", target, all, uid)
        names = set(self.open) if all else {w for w in self.open
                                            if target in (w, WATCHERS.get(w))}
        if not names:
            return refused("nothing_open", f"no open position for {target or 'any watcher'}")
        self.open -= names
        return done("flattening", f"flattening {', '.join(sorted(names))}: exits cancelled, "
                                  "SELL MKT sent")

    async def cancel(self, watcher_id: str, uid: int) -> ControlResult:
        self._call("cancel", watcher_id, uid)
        if watcher_id not in WATCHERS:
            return refused("unknown_watcher", f"no watcher {watcher_id} today")
        return done("cancelled", f"{watcher_id}: unfilled entry cancelled")

    async def stop(self, watcher_id: str, uid: int) -> ControlResult:
        self._call("stop", watcher_id, uid)
        if watcher_id not in WATCHERS:
            return refused("unknown_watcher", f"no watcher {watcher_id} today")
        self.stopped.add(watcher_id)
        return done("stopped", f"{watcher_id}: disarmed for today")


class ServerThread:
    """A ControlServer on an event loop of its own, for the blocking ``breakoutctl`` client."""

    def __init__(self, path: Path, actions: FakeActions | None = None, *,
                 allowed_uids: Collection[int] | None = None) -> None:
        self.actions = actions or FakeActions()
        self.events: list[ev.Event] = []
        self.server = ControlServer(path, self.actions, self.events.append, lambda: CLOCK_NS,
                                    allowed_uids=allowed_uids)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
