"""What the tapes do not cover: warnings before a backtest's results.

A watcher whose symbol is on no tape, or whose window the tape does not
cover, ends ``expired session_end`` like one the market never broke; the
backtest says which results are only the tape's end, not the market's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from breakoutd.calendar import EXCHANGE_TZ, day_sessions, exchange_date, watcher_window
from breakoutd.core.bars import NS
from breakoutd.core.params import WatcherSpec
from breakoutd.tape import Tape

SLACK_NS = 60 * NS  # a quiet last minute is the market's, not a short tape


def _et(instant_ns: int) -> str:
    return f"{dt.datetime.fromtimestamp(instant_ns // NS, EXCHANGE_TZ):%H:%M:%S} ET"


def coverage_warnings(tape: Tape, watchers: Iterable[WatcherSpec]) -> list[str]:
    """One line per enabled watcher whose symbol or window the tapes do not cover."""
    spans = {s: (int(st.time[0]), int(st.time[-1])) for s, st in tape.symbols.items() if len(st)}
    return span_warnings(spans, watchers)


def span_warnings(spans: Mapping[str, tuple[int, int]], watchers: Iterable[WatcherSpec]
                  ) -> list[str]:
    """The warnings of :func:`coverage_warnings` from each symbol's first and last instant
    (what an index of the tapes knows without their rows)."""
    warnings = []
    for spec in sorted((w for w in watchers if w.enabled), key=lambda w: w.id):
        span = spans.get(spec.symbol)
        if span is None:
            warnings.append(f"warning: {spec.id}: no tape has {spec.symbol}; its result is "
                            f"only that nothing traded")
            continue
        first, last = span
        sessions = day_sessions(exchange_date(first))
        window = watcher_window(spec, sessions) if sessions is not None else None
        if window is None:
            continue
        start, end = window
        if first > start + SLACK_NS:
            warnings.append(f"warning: {spec.id}: the {spec.symbol} tape starts at {_et(first)}, "
                            f"after the watcher's window opens at {_et(start)}")
        if last + NS < end - SLACK_NS:
            warnings.append(f"warning: {spec.id}: the {spec.symbol} tape ends at {_et(last)}, "
                            f"before the watcher's window closes at {_et(end)}: an expiry is "
                            f"the tape's end, not the market's")
    return warnings
