"""``breakoutd backtest --json`` with each entered watcher's trade beside the contract's keys."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from breakoutd.backtest.engine import BacktestResult
from breakoutd.backtest.report import near_miss_record, result_record
from breakoutd.report.from_backtest import backtest_trades
from breakoutd.report.render import trade_json


def json_records(result: BacktestResult, presets: Mapping[str, str] | None = None
                 ) -> Iterator[dict[str, object]]:
    """One record per watcher, by id: the contract's keys, then ``day``, ``trade`` and
    ``near_miss``."""
    trades = {t.watcher_id: t for t in backtest_trades(result, presets)}
    for r in sorted(result.results, key=lambda r: r.spec.id):
        record = result_record(r)
        t = trades.get(r.spec.id)
        record["day"] = result.day.isoformat()
        record["trade"] = trade_json(t) if t is not None else None
        record["near_miss"] = near_miss_record(r)
        yield record


def json_lines_with_trades(result: BacktestResult, presets: Mapping[str, str] | None = None
                           ) -> Iterator[str]:
    """The records as compact JSON lines."""
    for record in json_records(result, presets):
        yield json.dumps(record, separators=(", ", ": "))
