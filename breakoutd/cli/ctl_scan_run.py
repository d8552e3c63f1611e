"""The broker side of ``breakoutctl scan`` (breakoutd.cli.ctl_scan), imported when it runs."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import msgspec
from ib_async import IB

from breakoutd.calendar import day_sessions, exchange_date
from breakoutd.cli.ctl_scan import render_scan
from breakoutd.core import events as ev
from breakoutd.core.scan import ScanSettings
from breakoutd.daemon.history_pacing import HistoryPacer
from breakoutd.daemon.levels_live import prior_sessions
from breakoutd.daemon.scanning import broker_scan, prior_close, run_scan
from breakoutd.daemon.status_replay import journal_events
from breakoutd.ibkr.convert import datetime_to_ns
from breakoutd.ibkr.history import minute_trade_bars
from breakoutd.ibkr.scanner import ScannedContract, Snapshot, snapshot
from breakoutd.ibkr.settings import BrokerSettings

CONNECT_TIMEOUT = 10.0


def _armed_today(var: Path, day: str) -> set[str]:
    events = journal_events(var / "journal" / day / "events.jsonl")
    return {wid.split(":", 1)[1] for e in events if isinstance(e, ev.ScanResult)
            for wid in e.armed}


async def scan_once(ib: IB, settings: ScanSettings, var: Path,
                    watched: set[str]) -> ev.ScanResult:
    """One scan on a connected client, nothing armed."""
    now = datetime_to_ns(await ib.reqCurrentTimeAsync())
    day = exchange_date(now)
    sessions = day_sessions(day)
    prior = prior_sessions(sessions, {}) if sessions is not None else None
    loop = asyncio.get_running_loop()
    pacer = HistoryPacer(loop.time, asyncio.sleep)

    async def snapshot_of(row: ScannedContract) -> Snapshot:
        return await snapshot(ib, row.contract)

    async def prior_close_of(row: ScannedContract) -> int | None:
        if prior is None:
            return None
        await pacer.turn((row.symbol, *prior.rth))
        return prior_close(await minute_trade_bars(ib, row.contract, *prior.rth))

    return await run_scan(settings, broker_scan(ib, settings), snapshot_of, prior_close_of,
                          at=lambda: now, trigger="breakoutctl",
                          armed_today=_armed_today(var, day.isoformat()), watched=watched)


async def run_scan_command(args: argparse.Namespace, settings: ScanSettings, watched: set[str]) -> int:
    broker = BrokerSettings.from_env()
    ib = IB()
    try:
        await ib.connectAsync(broker.host, broker.port, broker.client_id + args.client_offset,
                              timeout=CONNECT_TIMEOUT, readonly=True)
    except (OSError, TimeoutError) as exc:
        print(f"cannot reach the gateway at {broker.host}:{broker.port}: "
              f"{exc or type(exc).__name__}", file=sys.stderr)
        return 1
    try:
        var = Path(args.var or os.environ.get("BREAKOUTD_VAR") or "var")
        result = await scan_once(ib, settings, var, watched)
    finally:
        ib.disconnect()
    if args.json:
        print(msgspec.json.encode(result).decode())
    elif not result.error:
        print(render_scan(result, settings.top))
    if result.error:
        print(f"the scan failed: {result.error}", file=sys.stderr)
        return 1
    return 0
