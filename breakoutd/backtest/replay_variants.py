"""Which close-rule bars the backtest feeds a ``momentum`` or ``retest`` watcher.

The decisions are the core machine's; this module only skips, with numpy,
the bars that cannot change them (as the close rule's prefilter does):

- momentum: the first bar in the window with ``close >= L`` and ``volume *
  n * q >= p * sum`` (the mean of the ``n <= lookback`` earlier bars of the
  day, ``volume_mult = p/q``), computed exactly in integers. The machine is
  seeded with the volumes before it.
- retest: the first bar in the window that would trigger had the watcher
  broken out, whose previous evaluated bar closed at or above L. Every bar
  that closes below L cancels a break, so that previous bar is the break or
  a bar after it: the machine is fed the two.

With ``max_bars`` every bar counts until the last one, so all are fed.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

import numpy as np

from breakoutd.backtest.series import BarSeries
from breakoutd.calendar import PREMARKET_OPEN, exchange_date, exchange_ns
from breakoutd.core.bars import NS
from breakoutd.core.params import Rule
from breakoutd.core.watcher import WatcherMachine

_SAFE = 1 << 62  # int64 products below this cannot overflow
HOUR = 3600 * NS


@lru_cache(maxsize=64)
def _fraction(mult: Decimal) -> Fraction:
    return Fraction(mult)


@lru_cache(maxsize=64)
def _day_open(hour: int) -> int:
    """04:00 of the exchange day of an instant (New York is whole hours from UTC)."""
    return exchange_ns(exchange_date(hour * HOUR), PREMARKET_OPEN)


def variant_candidates(machine: WatcherMachine, bars: BarSeries, prefilter: bool) -> list[int]:
    """Indices of ``bars`` to feed, in order; seeds the machine's volumes where needed."""
    a, z = machine.armed_at, machine.disarm_at
    c0 = int(np.searchsorted(bars.end, a, side="right"))
    c1 = int(np.searchsorted(bars.end, z, side="right"))
    p = machine.spec.params
    if p.rule is Rule.RETEST:
        return _retest(machine, bars, c0, c1, prefilter)
    day_open = _day_open(a // HOUR)
    d0 = min(int(np.searchsorted(bars.start, day_open, side="left")), c0)
    lookback = p.volume_lookback
    if p.max_bars is not None and prefilter:
        machine.seed_volumes(bars.volume[max(d0, c0 - lookback):c0].tolist())
        return list(range(c0, min(c1, c0 + p.max_bars)))
    hit = _first_momentum(bars, d0, c0, c1, machine.level, lookback, _fraction(p.volume_mult)) \
        if prefilter else None
    if hit is None:
        return list(range(d0, c1)) if not prefilter else []
    if hit < 0:  # the exact test could overflow int64: feed everything
        return list(range(d0, c1))
    machine.seed_volumes(bars.volume[max(d0, hit - lookback):hit].tolist())
    return [hit]


def _first_momentum(bars: BarSeries, d0: int, c0: int, c1: int, level: int, lookback: int,
                    mult: Fraction) -> int | None:
    """The first index in [c0, c1) that triggers momentum; None if none, -1 if unsure."""
    if c1 <= c0:
        return None
    cum = bars.cumulative_volume
    if int(cum[-1]) * max(mult.denominator, mult.numerator) * max(lookback, 1) >= _SAFE:
        return -1
    # The price test first (cheap, and few bars pass it), then the volume at those bars.
    i = np.flatnonzero(bars.close[c0:c1] >= level) + c0
    count = np.minimum(i - d0, lookback)  # earlier bars of the day, at most the lookback
    total = cum[i] - cum[i - count]
    ok = (count > 0) & (bars.volume[i] * count * mult.denominator >= mult.numerator * total)
    hits = np.flatnonzero(ok)
    return int(i[hits[0]]) if len(hits) else None


def _retest(machine: WatcherMachine, bars: BarSeries, c0: int, c1: int, prefilter: bool
            ) -> list[int]:
    max_bars = machine.spec.params.max_bars
    if not prefilter:
        return list(range(c0, c1))
    if max_bars is not None:
        return list(range(c0, min(c1, c0 + max_bars)))
    if c1 - c0 < 2:
        return []
    level = machine.level
    within = machine.spec.params.retest_within
    close = bars.close[c0:c1]
    above = close >= level
    ok = above[1:] & above[:-1] & (bars.low[c0 + 1:c1] <= level + within)
    hits = np.flatnonzero(ok)
    if not len(hits):
        return []
    i = c0 + 1 + int(hits[0])
    return [i - 1, i]
