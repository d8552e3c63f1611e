"""Named levels in backtest: resolved from the tapes given (strategy.md, Levels from the market).

The day's own tape serves ``premarket_high`` and ``opening_range_high``; the
previous trading day's tape (``--prior-tape``) serves ``prior_high`` and
``prior_close``. A range with no print in the tapes is ``no_level``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from breakoutd.backtest.series import SymbolSeries
from breakoutd.calendar import DaySessions, day_sessions
from breakoutd.core import events as ev
from breakoutd.core.levels import LevelRange, level_range, with_offset
from breakoutd.core.params import LevelName, WatcherSpec
from breakoutd.core.prices import to_decimal
from breakoutd.tape import Tape


def previous_trading_day(day: dt.date) -> dt.date:
    """The last trading day strictly before ``day``."""
    prev = day - dt.timedelta(days=1)
    while day_sessions(prev) is None:
        prev -= dt.timedelta(days=1)
    return prev


def _source(tape: Tape | None, symbol: str) -> str:
    names = [Path(s).name for s in tape.sources] if tape is not None else []
    return "tape " + ", ".join(names) if names else f"tape of {symbol}"


class TapeLevels:
    """Resolves named levels for one backtest day, each range once per symbol."""

    def __init__(self, sessions: DaySessions, today: dict[str, SymbolSeries], tape: Tape,
                 prior: Tape | None) -> None:
        self._sessions = sessions
        self._today = today
        self._tape = tape
        self._prior_tape = prior
        self._prior = {s: SymbolSeries(t) for s, t in prior.symbols.items()} if prior else {}
        prev = day_sessions(previous_trading_day(sessions.day))
        self._prior_rth = prev.rth if prev is not None else None
        self._cache: dict[tuple[str, LevelRange], int | None] = {}

    def range_of(self, spec: WatcherSpec) -> LevelRange | None:
        """The prints the spec's named level is made of, on this day."""
        assert spec.level_name is not None
        s = self._sessions
        return level_range(spec.level_name, spec.params.opening_range, s.premarket[0], s.rth,
                           self._prior_rth)

    def resolve(self, spec: WatcherSpec) -> tuple[LevelRange, ev.LevelResolved] | None:
        """The range and the LevelResolved event, or None when no print covers it."""
        rng = self.range_of(spec)
        if rng is None:
            return None
        key = (spec.symbol, rng)
        if key not in self._cache:
            book = self._prior if rng.prior else self._today
            self._cache[key] = _prints(book.get(spec.symbol), rng)
        raw = self._cache[key]
        if raw is None:
            return None
        level = with_offset(raw, spec.params.level_offset)
        if level is None:
            return None
        tape = self._prior_tape if rng.prior else self._tape
        event = ev.LevelResolved(
            at=rng.known_at, watcher_id=spec.id, symbol=spec.symbol,
            name=str(spec.level_name), price=to_decimal(level), raw=to_decimal(raw),
            offset=to_decimal(spec.params.level_offset), range_start=rng.start,
            range_end=rng.end, source=_source(tape, spec.symbol))
        return rng, event


def _prints(series: SymbolSeries | None, rng: LevelRange) -> int | None:
    """The highest print in the range, or its last one for ``prior_close`` (numpy)."""
    if series is None:
        return None
    sec = series.seconds
    i0 = int(np.searchsorted(sec.start, rng.start, side="left"))
    i1 = int(np.searchsorted(sec.start, rng.end, side="left"))
    if i1 <= i0:
        return None
    if rng.name is LevelName.PRIOR_CLOSE:
        return int(sec.close[i1 - 1])
    return int(sec.high[i0:i1].max())
