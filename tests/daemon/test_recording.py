"""``breakoutd run --record``: a day recorded from the daemon's market data replays as it was.

The daemon runs over the simulated gateway replaying a real tape and records
what it reads; the recording, backtested, decides what the original tape
decides over the same window.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from breakoutd.backtest import run_backtest
from breakoutd.backtest.report import json_lines
from breakoutd.config import load_watchlist_text
from breakoutd.core import events as ev
from breakoutd.daemon.app import Daemon
from breakoutd.daemon.record_only import record_symbols
from breakoutd.ibkr.settings import BrokerSettings
from breakoutd.sim import Market, Row, SimGateway
from breakoutd.tape import iter_rows, read_tape, tape_from_rows
from breakoutd.tape.recorder import TAPE_NAME
from tests.daemon.daemonkit import Events
from tests.daemon.test_daemon_vs_backtest import DAY, TAPE, WATCHLIST


@contextlib.contextmanager
def capture_logs() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    try:
        yield lines
    finally:
        logger.remove(sink)


KEYS = ("outcome", "kind", "trigger_time", "limit", "reason")


def decisions(tape, text: str) -> dict[str, dict[str, object]]:  # type: ignore[no-untyped-def]
    wl = load_watchlist_text(text, "w.yaml")
    return {r["id"]: {k: r[k] for k in KEYS}
            for r in map(json.loads, json_lines(run_backtest(tape, wl.watchers)))}


async def record(rows: list[Row], var: Path, start: dt.time, seconds: float) -> Events:
    wl = var / "watchlists"
    wl.mkdir()
    (wl / "w.yaml").write_text(WATCHLIST)
    gw = SimGateway(Market(rows), port=0, start=start, day=DAY, manual_clock=True)
    await gw.start()
    events = Events()
    stop = asyncio.Event()
    daemon = Daemon(watchlists=[wl], var=var, settings=BrokerSettings(port=gw.port),
                    clock=gw.now_ns, log_event=events, record=True)
    task = asyncio.get_running_loop().create_task(daemon.run(stop))
    try:
        await events.wait(lambda: any(isinstance(x, ev.DaemonState) and x.state == "running"
                                      for x in events.items))
        for _ in range(round(seconds * 10)):
            await gw.advance(0.1)
            await asyncio.sleep(0.003)
        stop.set()
        assert await asyncio.wait_for(task, 15) == 0
    finally:
        await gw.stop()
    return events


def test_a_recorded_run_backtests_as_the_original_tape(tmp_path: Path) -> None:
    if not TAPE.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    original = read_tape(TAPE)
    rows = [Row(*r) for r in iter_rows(original)]
    events = asyncio.run(asyncio.wait_for(record(rows, tmp_path, dt.time(10, 23, 50), 40), 90))

    path = tmp_path / "tapes" / DAY.isoformat() / TAPE_NAME
    done = events.of(ev.TapeRecorded)
    assert [(d.path, d.error) for d in done] == [(str(path), "")]
    text = gzip.decompress(path.read_bytes()).decode()
    assert text.endswith("\n") and text.splitlines()[0].startswith("time,symbol,open")
    recorded = read_tape(path)
    assert done[0].rows == recorded.rows > 20
    got = list(iter_rows(recorded))
    first, last = got[0].time, got[-1].time
    window = [r for r in iter_rows(original) if first <= r.time <= last]
    # Every second that printed was recorded with the tape's trades (the first only
    # from the instant the subscription began).
    assert [(r.time, r.open, r.high, r.low, r.close, r.volume) for r in got if r.close][1:] == [
        (r.time, r.open, r.high, r.low, r.close, r.volume) for r in window if r.close][1:]
    by_time = {r.time: r for r in window}
    quotes = [(r.time, r.bid, r.bid_size, r.ask, r.ask_size) for r in got[1:]]
    assert quotes == [(t, by_time[t].bid, by_time[t].bid_size, by_time[t].ask,
                       by_time[t].ask_size) for t, *_ in quotes]  # the quote at each second's end

    want = decisions(tape_from_rows(window), WATCHLIST)
    assert sum(1 for w in want.values() if w["outcome"] == "entered") >= 6  # a real check
    assert decisions(recorded, WATCHLIST) == want


def test_breakoutd_record_writes_the_symbols_it_knows_and_says_which_it_does_not(
        tmp_path: Path) -> None:
    if not TAPE.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    original = read_tape(TAPE)
    rows = [Row(*r) for r in iter_rows(original)]

    async def body() -> int:
        gw = SimGateway(Market(rows), port=0, start=dt.time(10, 0, 0), day=DAY,
                        manual_clock=True)
        await gw.start()
        events = Events()
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(record_symbols(
            ["SPY", "ZZZZ"], tmp_path, BrokerSettings(port=gw.port), stop, clock=gw.now_ns,
            log_event=events))
        try:
            await events.wait(lambda: bool(events.of(ev.ConnectionUp)))
            for _ in range(300):
                await gw.advance(0.1)
                await asyncio.sleep(0.003)
            stop.set()
            return await asyncio.wait_for(task, 15)
        finally:
            await gw.stop()

    with capture_logs() as lines:
        assert asyncio.run(asyncio.wait_for(body(), 60)) == 0
    assert any(line.startswith("ZZZZ: not recorded:") for line in lines)
    got = list(iter_rows(read_tape(tmp_path / "tapes" / DAY.isoformat() / TAPE_NAME)))
    assert {r.symbol for r in got} == {"SPY"} and len(got) > 20
    window = [r for r in iter_rows(original) if got[0].time <= r.time <= got[-1].time]
    assert [(r.time, r.close, r.volume) for r in got if r.close][1:] == [
        (r.time, r.close, r.volume) for r in window if r.close][1:]
