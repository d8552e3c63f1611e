"""Builders for core values in tests: specs, bars and instants without YAML."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from breakoutd.calendar import exchange_ns
from breakoutd.core.bars import MINUTE, NS, Bar
from breakoutd.core.params import StrategyParams, WatcherSpec
from breakoutd.core.prices import to_micros

DAY = dt.date(2026, 3, 9)


def at(hms: str, day: dt.date = DAY) -> int:
    """Epoch ns of ``HH:MM:SS`` exchange time on ``day``."""
    return exchange_ns(day, dt.time.fromisoformat(hms))


def px(text: str | int | float) -> int:
    """Micro-dollars of a decimal price written as text."""
    return to_micros(Decimal(str(text)))


def spec(level: str = "5.00", *, wid: str | None = None, symbol: str = "TEST",
         qty: int | None = 100, tp: tuple[str, ...] = (), sl: str | None = None,
         tp_split: tuple[str, ...] = (), **params: object) -> WatcherSpec:
    """A watcher spec with strategy params overridden by keyword."""
    return WatcherSpec(
        id=wid or f"{symbol}@{level}", symbol=symbol, level=px(level),
        params=StrategyParams(**params),  # type: ignore[arg-type]
        qty=qty, tp=tuple(px(t) for t in tp), sl=px(sl) if sl is not None else None,
        tp_split=tuple(Decimal(s) for s in tp_split),
    )


def sec_bar(start: int, o: str, h: str, lo: str, c: str, v: int = 100) -> Bar:
    """A 1-second bar."""
    return Bar(start, NS, px(o), px(h), px(lo), px(c), v)


def min_bar(start: int, o: str, h: str, lo: str, c: str, v: int = 1000) -> Bar:
    """A 1-minute bar."""
    return Bar(start, MINUTE, px(o), px(h), px(lo), px(c), v)


class ManualClock:
    """A settable clock (epoch ns) for code that takes ``clock: Callable[[], int]``."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now
