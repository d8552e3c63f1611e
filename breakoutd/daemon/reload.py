"""Hot reload: watch the watchlists directory and hand changes to the daemon.

Editors save by writing a temporary file and renaming it over the original,
so the directory is watched, not the file, and only ``*.yaml``/``*.yml`` names
that are not editor temporaries count. watchfiles groups a burst of saves
into one change set (``debounce``), checked every ``step`` milliseconds; the
daemon then reads everything again and applies the plan once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import Change, awatch

DEBOUNCE_MS = 150
STEP_MS = 20


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
