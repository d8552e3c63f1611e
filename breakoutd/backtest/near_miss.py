"""The near miss of a watcher in backtest: :mod:`breakoutd.core.near_miss`'s figures with numpy.

The bars counted are those the machine evaluated without deciding: the
1-second bars ``[s, s+1)`` with ``A <= s`` and ``s+1 <= end`` and the
close-rule bars closing in ``(A, end]``, where ``end`` is the window's end,
or the instant the watcher decided: a fast trigger's bar and a close
trigger's bar are not counted (they fired), the 1-second bar ending with a
close trigger is (it went first and did not fire).
"""

from __future__ import annotations

import numpy as np

from breakoutd.backtest.series import SymbolSeries
from breakoutd.core.bars import NS
from breakoutd.core.near_miss import NearMiss
from breakoutd.core.watcher import WatcherMachine


def near_miss(machine: WatcherMachine, series: SymbolSeries | None,
              decided_at: int | None = None, kind: str | None = None) -> NearMiss:
    """The tally over the machine's window, up to ``decided_at`` (a trigger of ``kind``)."""
    level = machine.level
    if series is None:
        return NearMiss(level, None, None, 0, 0, 0, 0, 0, 0, 0)
    end = machine.disarm_at if decided_at is None else decided_at
    sec = series.seconds
    i0 = int(np.searchsorted(sec.start, machine.armed_at, side="left"))
    last_end = end - NS if kind == "fast" else end  # the firing 1-second bar is not counted
    i1 = int(np.searchsorted(sec.start, last_end - NS, side="right"))
    bars = series.bars(machine.close_bar_size)
    c0 = int(np.searchsorted(bars.end, machine.armed_at, side="right"))
    c1 = int(np.searchsorted(bars.end, end if kind is None else end - 1, side="right"))
    bars_above = int(np.count_nonzero(bars.close[c0:c1] >= level)) if c1 > c0 else 0
    if i1 <= i0:
        return NearMiss(level, None, None, 0, 0, bars_above, 0, 0, 0, 0)
    high, low, close = sec.high[i0:i1], sec.low[i0:i1], sec.close[i0:i1]
    top = int(np.argmax(high))
    touched = high >= level
    failed = [0, 0, 0]
    th = machine.thresholds
    if th is not None and touched.any():
        k = (sec.start[i0:i1][touched] // NS) % 60 // th.step
        dist, spread = np.asarray(th.distance)[k], np.asarray(th.spread)[k]
        h, lo, c = high[touched], low[touched], close[touched]
        failed = [int(np.count_nonzero(h < level + dist)), int(np.count_nonzero(c < level)),
                  int(np.count_nonzero(h - lo > spread))]
    return NearMiss(level, int(high[top]), int(sec.start[i0 + top]), i1 - i0,
                    int(np.count_nonzero(close >= level)), bars_above,
                    int(np.count_nonzero(touched)), *failed)
