"""Hot reload: watch the watchlists directory and hand changes to the daemon.

Editors save by writing a temporary file and renaming it over the original,
so the directory is watched, not the file, and only ``*.yaml``/``*.yml`` names
that are not editor temporaries count. watchfiles groups a burst of saves
into one change set (``debounce``), checked every ``step`` milliseconds; the
daemon then reads everything again and applies the plan once.

The watch must outlive any failure: :func:`watch_forever` journals what went
wrong (an error log line: ops.jsonl) and carries on, since a watch that ended
would ignore every later save without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from loguru import logger
from watchfiles import Change, awatch

DEBOUNCE_MS = 150
STEP_MS = 20
RESTART_DELAY = 1.0  # seconds before a failed watch starts again (no busy loop)


def is_watchlist_file(path: str) -> bool:
    """A watchlist name, not an editor's swap, backup or temporary file."""
    name = Path(path).name
    if name.startswith((".", "#", "~")) or name.endswith(("~", ".swp", ".tmp")):
        return False
    return name.endswith((".yaml", ".yml"))


def _filter(change: Change, path: str) -> bool:
    return is_watchlist_file(path)


async def watch_watchlists(directory: Path, on_change: Callable[[str], Awaitable[object]],
                           stop: asyncio.Event, *, debounce_ms: int = DEBOUNCE_MS,
                           step_ms: int = STEP_MS) -> None:
    """Call ``on_change(description)`` once per burst of changes until ``stop`` is set."""
    async for changes in awatch(directory, watch_filter=_filter, debounce=debounce_ms,
                                step=step_ms, stop_event=stop, recursive=False):
        names = sorted({Path(p).name for _, p in changes})
        await on_change("changed: " + ", ".join(names))


async def watch_forever(directory: Path, on_change: Callable[[str], Awaitable[object]],
                        stop: asyncio.Event, *, restart_delay: float = RESTART_DELAY,
                        debounce_ms: int = DEBOUNCE_MS, step_ms: int = STEP_MS) -> None:
    """:func:`watch_watchlists` until ``stop`` is set, whatever fails on the way.

    A failing ``on_change`` is logged and the watch goes on; a failing watch
    (or one that ended by itself) is logged and started again after ``restart_delay``.
    """
    async def guarded(description: str) -> None:
        try:
            await on_change(description)
        except Exception as exc:
            logger.opt(exception=exc).error("reloading the watchlists ({}) failed: {}",
                                            description, exc)

    while not stop.is_set():
        try:
            await watch_watchlists(directory, guarded, stop, debounce_ms=debounce_ms,
                                   step_ms=step_ms)
            if stop.is_set():
                return
            logger.error("the watch of {} ended; watching again in {:g} s", directory,
                         restart_delay)
        except Exception as exc:
            logger.opt(exception=exc).error("the watch of {} failed ({}); watching again "
                                            "in {:g} s", directory, exc, restart_delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), restart_delay)
