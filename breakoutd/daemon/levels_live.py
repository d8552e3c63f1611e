"""Named levels and momentum's volume history, live, from the broker's historical trades.

A watcher with a named level is armed at ``max(A, known at)``; at that
instant its range's 1-minute trade bars are asked of the broker (outside
regular hours, since a pre-market range needs it), the level is resolved
with the core's :func:`~breakoutd.core.levels.level_from_bars`, and the
watcher starts on the resolved level. A ``rule: momentum`` watcher gets the
day's bars from 04:00 up to its A the same way, for its mean volume. Every
request goes through the :class:`HistoryPacer`, and one range of one symbol
is asked once a day (watchers on the same symbol and range share it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

from breakoutd.calendar import DaySessions, day_sessions
from breakoutd.core import events as ev
from breakoutd.core.bars import MINUTE, Bar, BarAggregator
from breakoutd.core.levels import LevelRange, level_from_bars, level_range, with_offset
from breakoutd.core.params import WatcherSpec
from breakoutd.core.prices import to_decimal
from breakoutd.daemon.history_pacing import HistoryPacer

Fetch = Callable[[str, int, int], Awaitable[list[Bar]]]  # symbol, start ns, end ns
SOURCE = "broker historical TRADES, 1 min bars, outside regular hours"


class LiveLevels:
    """One trading day's historical trade bars, asked within the pacing limits."""

    def __init__(self, fetch: Fetch, pacer: HistoryPacer) -> None:
        self._fetch = fetch
        self._pacer = pacer
        self._cache: dict[tuple[str, int, int], asyncio.Future[list[Bar]]] = {}

    def forget(self) -> None:
        """A new day: nothing asked yesterday is reused."""
        for task in self._cache.values():
            task.cancel()
        self._cache.clear()

    async def bars(self, symbol: str, start: int, end: int) -> list[Bar]:
        """1-minute trade bars of ``[start, end)``, asked once per symbol and range.

        Watchers asking for the same range at the same time share one request."""
        key = (symbol, start, end)
        task = self._cache.get(key)
        if task is None or (task.done() and task.exception() is not None):
            task = self._cache[key] = asyncio.ensure_future(self._ask(key))
        return await asyncio.shield(task)

    async def _ask(self, key: tuple[str, int, int]) -> list[Bar]:
        await self._pacer.turn(key)
        return await self._fetch(*key)

    @staticmethod
    def range_of(spec: WatcherSpec, sessions: DaySessions,
                 prior: DaySessions | None) -> LevelRange | None:
        """The prints ``spec``'s named level is made of on the sessions' day."""
        assert spec.level_name is not None
        return level_range(spec.level_name, spec.params.opening_range, sessions.premarket[0],
                           sessions.rth, prior.rth if prior is not None else None)

    async def resolve(self, spec: WatcherSpec, rng: LevelRange) -> ev.LevelResolved | None:
        """The LevelResolved of ``spec`` on ``rng``, or None when no print is in it."""
        raw = level_from_bars(rng, await self.bars(spec.symbol, rng.start, rng.end))
        level = with_offset(raw, spec.params.level_offset) if raw is not None else None
        if raw is None or level is None:
            return None
        return ev.LevelResolved(
            at=rng.known_at, watcher_id=spec.id, symbol=spec.symbol, name=str(spec.level_name),
            price=to_decimal(level), raw=to_decimal(raw),
            offset=to_decimal(spec.params.level_offset), range_start=rng.start,
            range_end=rng.end, source=SOURCE)

    async def volumes_before(self, spec: WatcherSpec, sessions: DaySessions, armed_at: int,
                             bar_size: int) -> list[int]:
        """Volumes of the day's close-rule bars from 04:00 that closed by ``armed_at``."""
        start = sessions.premarket[0]
        if armed_at <= start:
            return []
        minutes = await self.bars(spec.symbol, start, armed_at - armed_at % MINUTE)
        return [b.volume for b in aggregate(minutes, bar_size) if b.end <= armed_at]


def aggregate(minutes: list[Bar], size: int) -> list[Bar]:
    """Bars of ``size`` from 1-minute bars (the last one may still be open)."""
    if size == MINUTE:
        return minutes
    agg = BarAggregator(size)
    out = [closed for b in minutes if (closed := agg.add(b)) is not None]
    last = agg.close_until(1 << 62)
    return out + ([last] if last is not None else [])


def prior_sessions(sessions: DaySessions, known: dict[object, DaySessions | None]
                   ) -> DaySessions | None:
    """The sessions of the trading day before ``sessions.day`` (the contract's, else the calendar's)."""
    day = sessions.day - dt.timedelta(days=1)
    for _ in range(10):  # the longest market closure is far shorter
        found = known.get(day) or day_sessions(day)
        if found is not None:
            return found
        day -= dt.timedelta(days=1)
    return None
