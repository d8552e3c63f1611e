"""Where a report's trades come from: the daemon's journals, a backtest's ``--json``, presets."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from breakoutd.config.fields import Problems
from breakoutd.config.loader import _read_text, _shape, watchlist_files
from breakoutd.config.params_check import Layered
from breakoutd.core.params import WatcherSpec
from breakoutd.daemon.status_replay import journal_events
from breakoutd.report.trades import Trade, TradeFill, fold_trades


class ReportError(ValueError):
    """The report cannot be built from this input."""


Marks = Callable[[str], Mapping[str, int]]


def journal_trades(root: Path, first: dt.date | None, last: dt.date | None,
                   presets: Mapping[str, str] | None = None,
                   marks: Marks | None = None) -> list[Trade]:
    """The trades of every day directory ``root/YYYY-MM-DD/events.jsonl`` in [first, last].

    The journal holds no prices of the shares still held; ``marks(day)`` gives
    them (the day's tape's last trade per symbol), else they count at cost."""
    if not root.is_dir():
        raise ReportError(f"{root}: no such journal directory")
    trades: list[Trade] = []
    days = 0
    for d in sorted(root.iterdir()):
        try:
            day = dt.date.fromisoformat(d.name)
        except ValueError:
            continue
        if (first and day < first) or (last and day > last):
            continue
        days += 1
        trades.extend(fold_trades(d.name, journal_events(d / "events.jsonl"),
                                  marks(d.name) if marks else None, presets))
    if not days:
        raise ReportError(f"{root}: no journal day in the range asked")
    return trades


def preset_names(paths: Sequence[str | Path], specs: Sequence[WatcherSpec]) -> dict[str, str]:
    """Each watcher's preset name as its watchlist writes it (``-`` for none).

    The watchlists were loaded already, so their problems were reported then."""
    problems = Problems()
    by_place: dict[tuple[str, int], str] = {}
    for file in watchlist_files(paths, problems):
        text = _read_text(file, problems)
        if text is None:
            continue
        shape = _shape(text, file, problems)
        for section in shape.breakouts:
            chosen = Layered([shape.defaults, section]).value("preset")
            by_place[(file, section.at.line or 0)] = str(chosen) if chosen else "-"
    return {s.id: by_place.get((s.source.file, s.source.line), "-") if s.source else "-"
            for s in specs}


def backtest_json_trades(path: Path) -> list[Trade]:
    """The trades of a ``breakoutd backtest --json`` output (its ``trade`` keys)."""
    trades = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            t = record.get("trade")
            if t is not None:
                trades.append(trade_from_json(t))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ReportError(f"{path}:{n}: not a backtest --json trade record ({exc})") from exc
    return sorted(trades, key=lambda t: (t.entry_at, t.watcher_id))


def trade_from_json(t: dict) -> Trade:  # type: ignore[type-arg]
    """A trade written by :func:`breakoutd.report.render.trade_json`."""
    return Trade(
        day=t["day"], watcher_id=t["watcher"], symbol=t["symbol"], kind=t["kind"],
        preset=t["preset"], order_ref=t["order_ref"], level=t["level_micros"],
        trigger_at=t["trigger_ns"], entry_at=t["entry_ns"], entry_price=t["entry_micros"],
        shares=t["shares"], exit_at=t["exit_ns"], exit_price=t["exit_micros"],
        stop=t["stop_micros"], pnl=t["pnl_micros"], commissions=t["commissions_micros"],
        open_qty=t["open_qty"],
        fills=tuple(TradeFill(f["at_ns"], f["side"], f["role"], f["rung"], f["qty"],
                              f["price_micros"], f.get("reason", "")) for f in t["fills"]),
        stops=tuple((s["at_ns"], s["stop_micros"]) for s in t["stop_moves"]))
