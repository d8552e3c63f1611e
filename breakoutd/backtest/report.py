"""Backtest output: one JSON object per watcher, or a readable table."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence

from breakoutd.backtest.engine import BacktestResult, WatcherResult
from breakoutd.calendar import EXCHANGE_TZ
from breakoutd.core.bars import NS
from breakoutd.core.near_miss import describe
from breakoutd.core.prices import MICROS_PER_CENT, MICROS_PER_DOLLAR, format_price, to_float


def iso_time(instant_ns: int) -> str:
    """ISO 8601 in exchange time with its UTC offset."""
    stamp = dt.datetime.fromtimestamp(instant_ns // NS, EXCHANGE_TZ)
    return stamp.replace(microsecond=(instant_ns % NS) // 1000).isoformat()


def result_record(r: WatcherResult) -> dict[str, object]:
    """The ``--json`` record: exactly the keys the backtest contract names."""
    return {
        "id": r.spec.id,
        "symbol": r.spec.symbol,
        "level": to_float(r.spec.level) if r.spec.level else None,  # None: no_level
        "outcome": r.outcome,
        "kind": r.kind,
        "trigger_time": iso_time(r.trigger_at) if r.trigger_at is not None else None,
        "limit": to_float(r.limit) if r.limit is not None else None,
        "reason": r.reason,
    }


def near_miss_record(r: WatcherResult) -> dict[str, object] | None:
    """The ``near_miss`` key: why a watcher that did not enter did not (null when it did)."""
    nm = r.near_miss
    if r.outcome == "entered" or nm is None:
        return None
    short = nm.short_by
    return {
        "closest": to_float(nm.closest) if nm.closest is not None else None,
        "closest_time": iso_time(nm.closest_at) if nm.closest_at is not None else None,
        "short_cents": short / MICROS_PER_CENT if short is not None else None,
        "short_pct": nm.short_pct,
        "seconds": nm.seconds, "seconds_closed_above": nm.seconds_closed_above,
        "bars_closed_above": nm.bars_closed_above, "touched": nm.touched,
        "failed_distance": nm.failed_distance, "failed_close": nm.failed_close,
        "failed_spread": nm.failed_spread, "most_failed": nm.most_failed,
        "detail": r.detail,
        "why": why(r),
    }


def why(r: WatcherResult) -> str:
    """One line: a rejection's numbers, or how close an expired watcher came."""
    if r.outcome == "entered":
        return ""
    if r.outcome == "rejected":
        return r.detail or r.reason or ""
    nm = r.near_miss
    when = _hhmmss(nm.closest_at) if nm is not None else ""
    return describe(nm, r.reason, r.detail, when)


def json_lines(result: BacktestResult) -> Iterator[str]:
    """One compact JSON object per watcher, sorted by id."""
    for r in sorted(result.results, key=lambda r: r.spec.id):
        yield json.dumps(result_record(r), separators=(", ", ": "))


def _usd(micros: int) -> str:
    sign = "-" if micros < 0 else ""
    return f"{sign}{abs(micros) / MICROS_PER_DOLLAR:,.2f}"


def _hhmmss(instant_ns: int | None) -> str:
    return iso_time(instant_ns)[11:19] if instant_ns is not None else "-"


def _level(r: WatcherResult) -> str:
    """The level, with the name it was resolved from (``5.33 premarket_high``)."""
    if r.spec.level_name is None:
        return format_price(r.spec.level)
    return f"{format_price(r.spec.level) if r.spec.level else '-'} {r.spec.level_name}"


def _row(r: WatcherResult) -> list[str]:
    f = r.fills
    entry = format_price(f.entry_price) if f else "-"
    exits = " ".join(f"{e.kind}@{format_price(e.price)}x{e.qty}" for e in f.exits) if f else ""
    if f and f.open_qty:
        exits = (exits + f" open {f.open_qty}@{format_price(f.mark)}").strip()
    if f and f.stop_moves:  # where the managed stop ended and which rule put it there
        last = f.stop_moves[-1]
        exits = f"{exits} (stop {format_price(last.price)} {last.rule})".strip()
    return [
        r.spec.id, r.spec.symbol, _level(r), r.outcome, r.kind or "-",
        _hhmmss(r.trigger_at), entry, str(f.qty) if f else "-", exits or "-",
        _usd(f.pnl) if f else "-", r.reason or "", why(r),
    ]


def _counts(results: list[WatcherResult]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no watchers"


def total_line(results: Sequence[BacktestResult]) -> str:
    """The line under the day tables of a backtest over several days."""
    every = [r for result in results for r in result.results]
    total = sum(r.fills.pnl for r in every if r.fills is not None)
    return (f"total over {len(results)} days ({results[0].day} to {results[-1].day}): "
            f"{len(every)} watcher-days ({_counts(every)}); P&L {_usd(total)} USD gross")


def table(result: BacktestResult) -> str:
    """A readable table of every watcher with simulated fills and P&L, and a total."""
    head = ["id", "symbol", "level", "outcome", "kind", "trigger", "entry", "qty", "exits",
            "pnl", "reason", "why"]
    rows = [_row(r) for r in sorted(result.results, key=lambda r: r.spec.id)]
    total = sum(r.fills.pnl for r in result.results if r.fills is not None)
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=False)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in [head, *rows]]
    summary = _counts(list(result.results))
    lines.append("")
    lines.append(f"{result.day}: {len(result.results)} watchers ({summary}); "
                 f"P&L {_usd(total)} USD gross, fills as modelled in docs/backtest.md")
    return "\n".join(lines)
