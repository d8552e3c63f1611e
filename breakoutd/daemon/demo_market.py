"""The demo market of ``breakoutd run --sim``: each watcher's breakout, scripted.

A random walk shows whatever it happens to show; a newcomer's first run must
show the strategy's whole day within two minutes: an entry by the close rule
and one by the fast rule, a take-profit, a stop-out, a ladder selling rung by
rung while its stop moves up, a sub-dollar trade and a rejection. So each
symbol's market is written from its first enabled watcher, by the watcher's
own shape:

- a ``max_chase``: the price gaps far above the level, and the entry is
  rejected (``chased``): the move is already gone;
- a ladder: a minute closes just above the level (the close rule), then the
  price climbs through every rung;
- the fast rule on: a one-second spike through the level (the fast rule),
  then a climb to the take-profit;
- the fast rule off: a minute closes above the level, then the price falls
  to the stop.

Every second has a trade and a quote whose size changes, so quotes stay
fresh; before its break a symbol trades a few ticks under its level.

With a ``scan:`` block the market also has a gapper for the scanner to find
(:func:`gapper_rows`): up 20% on the prior day's close before the open, its
pre-market high breaks at the open on several times the volume (the momentum
rule), then it climbs through the template's first take-profit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from breakoutd.calendar import day_sessions, exchange_ns, watcher_window
from breakoutd.core.bars import NS
from breakoutd.core.params import WatcherSpec
from breakoutd.core.prices import ONE_DOLLAR
from breakoutd.core.rules import fast_thresholds
from breakoutd.sim import Row

DEMO_OPEN = dt.time(9, 30)  # breaks come after the regular open
TAPE_START = dt.time(9, 0)
DENSE_UNTIL = dt.time(16, 0)  # a row each second until then, every QUIET_EVERY s after
TAPE_END = dt.time(20, 0)
QUIET_EVERY = 5
CLOSE_LEAD = 15  # seconds above the level before the close rule's bar ends
HOLD = 6  # seconds a price is held for an order to fill
VOLUME = 500
QUOTE_SIZE = 10_000  # shares on each side: the demo's entries fill at once


def tick(price: int) -> int:
    """The tick at a price: 0.01 at or above $1.00, 0.0001 below (micros)."""
    return 10_000 if price >= ONE_DOLLAR else 100


def scenario(spec: WatcherSpec) -> str:
    """What the demo market does with a watcher: gap, ladder, fast_tp or close_stop."""
    if spec.params.max_chase is not None:
        return "gap"
    if spec.is_ladder:
        return "ladder"
    if _spike_high(spec) is not None:
        return "fast_tp"
    return "close_tp" if spec.sl is None else "close_stop"


def _spike_high(spec: WatcherSpec) -> int | None:
    """The high of a second that meets the fast rule, if its ask stays below the take-profit."""
    fast = spec.params.fast
    if fast is None:
        return None
    high = _on_tick(spec.level + fast_thresholds(fast, spec.level).distance[0] + tick(spec.level))
    if spec.tp and spec.tp[0] <= high:
        return None  # a sub-dollar level: the fast rule's cents reach past its take-profit
    return high


class _Path:
    """One symbol's rows, second by second from ``start`` (epoch s)."""

    def __init__(self, symbol: str, start: int, price: int, dense_end: int) -> None:
        self.symbol = symbol
        self.t = start
        self.price = price
        self.dense_end = dense_end
        self.rows: list[Row] = []
        self.volume = VOLUME  # shares each second trades

    def hold(self, until: int, jitter: bool = False) -> None:
        """Trade at the price every second until ``until`` (epoch s, exclusive)."""
        while self.t < until:
            wiggle = tick(self.price) * (self.t % 2) if jitter else 0
            self.bar(self.price - wiggle)

    def bar(self, close: int, high: int | None = None, low: int | None = None,
            seconds: int = 1) -> None:
        """One row (and move on ``seconds``): a trade, a quote a tick either side."""
        hi = close if high is None else high
        lo = close if low is None else low
        t = tick(close)
        size = QUOTE_SIZE + 100 * (self.t % 2)  # the quote changes every second: it stays fresh
        self.rows.append(Row(self.t * NS, self.symbol, lo, hi, lo, close, self.volume,
                             close - t, size, close + t, size))
        self.t += seconds

    def walk_to(self, target: int, seconds: int) -> None:
        """Move to ``target`` in ``seconds`` even steps on the tick, then hold it."""
        start = self.price
        for i in range(1, seconds + 1):
            step = start + (target - start) * i // seconds
            self.bar(step - step % tick(step))
        self.price = target

    def quiet(self, until: int) -> None:
        """The rest of the day at the last price, sparse after the dense stretch."""
        self.hold(min(until, self.dense_end), jitter=True)
        while self.t < until:
            self.bar(self.price, seconds=QUIET_EVERY)


def _on_tick(price: int) -> int:
    return price - price % tick(price)


def _below(level: int) -> int:
    """Where a symbol trades before its break: a few ticks (or 0.5%) under the level."""
    gap = max(4 * tick(level), level // 200)
    return _on_tick(level - gap)


def _break_at(spec: WatcherSpec, day: dt.date, not_before: int) -> int:
    """The epoch second a watcher's break starts: a minute (or bar) into its window."""
    sessions = day_sessions(day)
    start = not_before
    if sessions is not None:
        window = watcher_window(spec, sessions)
        if window is not None:
            start = max(start, window[0] // NS)
    return start


def script(spec: WatcherSpec, path: _Path, at: int) -> None:
    """Write ``spec``'s breakout into ``path``, starting near epoch second ``at``."""
    kind = scenario(spec)
    level = spec.level
    t = tick(level)
    bar = spec.params.bar_seconds
    if kind in ("fast_tp", "gap"):
        at = max(at, path.t)
        second = 2 if kind == "fast_tp" else 6  # early in a minute: k = 0
        path.hold(at + (second - at) % 60, jitter=True)
        if kind == "gap":
            fast = spec.params.fast
            distance = fast_thresholds(fast, level).distance[0] if fast is not None else 0
            jump = _on_tick(level + max(distance, spec.params.max_chase or 0) + 5 * t)
            path.bar(jump)
            path.price = jump
            path.hold(path.t + 60 + bar)  # past the close rule's bar too
            return
        high = _spike_high(spec)
        assert high is not None
        path.bar(high - t, high=high, low=high - t)
        path.price = high - t
        path.hold(path.t + HOLD)  # the entry fills at the ask
        target = (spec.tp[-1] if spec.tp else high + 10 * t) + tick(spec.tp[-1] if spec.tp else high)
        path.walk_to(target, 12)
        path.hold(path.t + HOLD)
        return
    close_at = (max(at, path.t) + CLOSE_LEAD) // bar * bar + bar  # a bar's end
    path.hold(close_at - CLOSE_LEAD, jitter=True)
    path.price = level + t  # a bar that closes just above the level, too near for the fast rule
    path.hold(close_at + HOLD)
    if kind == "close_stop" and spec.sl is not None:
        path.walk_to(_on_tick(spec.sl - t), 15)
        path.hold(path.t + HOLD)
        return
    for rung in spec.tp or (path.price + 10 * t,):
        path.walk_to(rung + tick(rung), 8)
        path.hold(path.t + HOLD)


def lead_watchers(watchers: Iterable[WatcherSpec]) -> dict[str, WatcherSpec | None]:
    """Per symbol, the watcher its market is written for (the first enabled one), or None."""
    leads: dict[str, WatcherSpec | None] = {}
    for w in watchers:
        if leads.get(w.symbol) is None:
            leads[w.symbol] = w if w.enabled else None
    return leads


def symbol_rows(symbol: str, lead: WatcherSpec | None, levels: Sequence[int], day: dt.date,
                start: int, not_before: int) -> list[Row]:
    """One symbol's day from epoch second ``start``: its lead watcher's breakout, then quiet."""
    path = _Path(symbol, start, _below(min(levels)), exchange_ns(day, DENSE_UNTIL) // NS)
    if lead is not None:
        script(lead, path, _break_at(lead, day, not_before))
    path.quiet(exchange_ns(day, TAPE_END) // NS)
    return path.rows


def demo_rows(watchers: Sequence[WatcherSpec], day: dt.date) -> list[Row]:
    """The demo market of a day for every watcher's symbol (in time order per symbol)."""
    start = exchange_ns(day, TAPE_START) // NS
    opens = exchange_ns(day, DEMO_OPEN) // NS
    rows: list[Row] = []
    for symbol, lead in lead_watchers(watchers).items():
        levels = [w.level for w in watchers if w.symbol == symbol]
        rows += symbol_rows(symbol, lead, levels, day, start, opens)
    return rows


def added_symbol_rows(watchers: Sequence[WatcherSpec], symbol: str, now_ns: int,
                      day: dt.date) -> list[Row]:
    """A market for a symbol a reload added, from the next second: its break soon after."""
    start = now_ns // NS + 1
    lead = lead_watchers(w for w in watchers if w.symbol == symbol).get(symbol)
    levels = [w.level for w in watchers if w.symbol == symbol]
    return symbol_rows(symbol, lead, levels, day, start, start + 5)


GAPPER = "GAPGO"  # not a symbol of the example watchlists
GAPPER_PRIOR_CLOSE = 10 * ONE_DOLLAR
GAPPER_PREMARKET_HIGH = 12_200_000  # 12.20, printed at 09:20: +22% on the prior close
BREAK_VOLUME = 5  # the break's shares a second, in multiples of the quiet seconds'


def _prior_day(day: dt.date) -> dt.date:
    before = day - dt.timedelta(days=1)
    while day_sessions(before) is None:
        before -= dt.timedelta(days=1)
    return before


def gapper_rows(template: WatcherSpec, day: dt.date) -> list[Row]:
    """The scanner's gapper: a prior close, a pre-market high, its break at the open.

    The break is scripted from the scan's template: its level is the pre-market
    high plus ``level_offset``, and after the momentum entry (the 09:30 minute,
    on ``BREAK_VOLUME`` times the volume) the price climbs past the first
    take-profit of ``tp_r`` (or a few ticks)."""
    prior = _prior_day(day)
    close_at = exchange_ns(prior, dt.time(15, 59)) // NS
    before = _Path(GAPPER, close_at, GAPPER_PRIOR_CLOSE, close_at + 60)
    before.hold(close_at + 60)
    path = _Path(GAPPER, exchange_ns(day, TAPE_START) // NS, 11_800_000,
                 exchange_ns(day, DENSE_UNTIL) // NS)
    path.walk_to(GAPPER_PREMARKET_HIGH, 20 * 60)  # 09:00 to 09:20
    path.walk_to(12_100_000, 60)
    opens = exchange_ns(day, DEMO_OPEN) // NS
    path.hold(opens, jitter=True)
    level = GAPPER_PREMARKET_HIGH + template.params.level_offset
    t = tick(level)
    above = _on_tick(level + 8 * t)
    path.volume = VOLUME * BREAK_VOLUME
    path.walk_to(above, 5)
    path.hold(opens + 60 + HOLD)  # the 09:30 minute closes above the level; the entry fills
    path.volume = VOLUME
    entry = above + t  # the ask the entry is priced at
    stop = level - (template.params.sl_below or 0)
    first = template.params.tp_r[0] if template.params.tp_r else None
    target = entry + int(first * (entry - stop)) if first is not None and stop > 0 else entry
    path.walk_to(_on_tick(target) + 2 * t, 12)
    path.hold(path.t + HOLD)
    path.quiet(exchange_ns(day, TAPE_END) // NS)
    return before.rows + path.rows
