"""An independent, slow, obviously-correct reading of strategy.md for tests.

It shares no code with breakoutd: the stdlib csv module, Decimal prices and a
plain loop over every second, written straight from the rules' text. The
backtest must agree with it on real tapes.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import gzip
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")


def load_rows(path: Path) -> list[dict[str, object]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:  # type: ignore[operator]
        rows = []
        for r in csv.DictReader(f):
            t = dt.datetime.fromisoformat(r["time"]).astimezone(NY)
            row: dict[str, object] = {"t": t}
            for k in ("open", "high", "low", "close", "ask"):
                row[k] = Decimal(r[k]) if r[k] else None
            rows.append(row)
        return rows


def _half_up(x: Decimal) -> Decimal:
    return x.quantize(Decimal(1), rounding=ROUND_HALF_UP)


def _m(level: Decimal) -> Decimal:
    return Decimal(1) if level < 4 else Decimal("1.1") if level < 7 else Decimal("1.25")


class Reference:
    """A tape's 1-second and 1-minute bars, in evaluation order, for many watchers."""

    def __init__(self, rows: list[dict[str, object]]) -> None:
        self.rows = rows
        minute_close: dict[dt.datetime, Decimal] = {}
        events: list[tuple[dt.datetime, int, dict[str, object] | Decimal]] = []
        for r in rows:
            t = r["t"]
            assert isinstance(t, dt.datetime)
            if r["close"] is not None:
                minute_close[t.replace(second=0)] = r["close"]  # type: ignore[assignment]
                events.append((t + dt.timedelta(seconds=1), 0, r))
        for start, close in minute_close.items():
            events.append((start + dt.timedelta(minutes=1), 1, close))
        events.sort(key=lambda e: (e[0], e[1]))
        self.events = events
        self.row_ends = [r["t"] + dt.timedelta(seconds=1) for r in rows]  # type: ignore[operator]

    def outcome(self, level: Decimal, a: dt.datetime, z: dt.datetime,
                max_bars: int | None = None, fast: bool = True,
                max_chase: Decimal | None = None) -> dict[str, object]:
        """Outcome, kind, trigger time and limit of a default-preset watcher armed over [a, z]."""
        m = _m(level)
        evaluated = 0
        for end, order, payload in self.events:
            if order == 0:
                assert isinstance(payload, dict)
                if not fast or not (a <= payload["t"] and end <= z):  # type: ignore[operator]
                    continue
                k = payload["t"].second // 10  # type: ignore[attr-defined]
                d = _half_up((15 - 2 * Decimal(k)) * m) / 100
                s = _half_up((4 - Decimal("0.6") * k) * m) / 100
                hi, lo, c = payload["high"], payload["low"], payload["close"]
                if hi >= level + d and c >= level and hi - lo <= s:  # type: ignore[operator]
                    return self._entry("fast", end, level, max_chase)
            else:
                if not a < end <= z:
                    continue
                if payload >= level:  # type: ignore[operator]
                    return self._entry("close", end, level, max_chase)
                evaluated += 1
                if max_bars is not None and evaluated >= max_bars:
                    return {"outcome": "expired", "kind": None, "trigger_time": None,
                            "limit": None, "reason": "max_bars"}
        return {"outcome": "expired", "kind": None, "trigger_time": None, "limit": None,
                "reason": "session_end"}

    def _entry(self, kind: str, at: dt.datetime, level: Decimal,
               max_chase: Decimal | None) -> dict[str, object]:
        i = bisect.bisect_right(self.row_ends, at) - 1
        ask = self.rows[i]["ask"] if i >= 0 else None
        if ask is None or ask <= 0:  # type: ignore[operator]
            return {"outcome": "rejected", "kind": kind, "trigger_time": at.isoformat(),
                    "limit": None, "reason": "no_quote"}
        # The quote must confirm the break: not below the level, not past level + max_chase.
        reason = None
        if ask < level:  # type: ignore[operator]
            reason = "quote_below_level"
        elif max_chase is not None and ask > level + max_chase:  # type: ignore[operator]
            reason = "chased"
        if reason is not None:
            return {"outcome": "rejected", "kind": kind, "trigger_time": at.isoformat(),
                    "limit": None, "reason": reason}
        tick = Decimal("0.01") if ask >= 1 else Decimal("0.0001")  # type: ignore[operator]
        limit = (ask / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP) * tick  # type: ignore[operator]
        return {"outcome": "entered", "kind": kind, "trigger_time": at.isoformat(),
                "limit": float(limit), "reason": None}
