"""`make run`'s demo: the day it shows, every time, read back from the journal."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from breakoutd.calendar import exchange_ns
from breakoutd.core import events as ev
from breakoutd.daemon.app import Daemon
from breakoutd.daemon.journal import read_journal
from breakoutd.daemon.sim_var import prepare_sim_var
from breakoutd.daemon.simmode import cover_new_symbols, start_sim_run
from breakoutd.errors import OperationalError
from breakoutd.ibkr.settings import BrokerSettings
from breakoutd.sim import SimGateway
from tests.daemon.daemonkit import DAY, Events

REPO = Path(__file__).resolve().parents[2]
TWO_MINUTES = 120  # virtual seconds from the start (09:29:50) the demo must show its day in

NEWCO = """\
breakouts:
  - symbol: NEWCO
    level: 30.00
    qty: 10
    tp: 31.00
    sl: 29.50
"""


async def _step(gw: SimGateway, seconds: float) -> None:
    for _ in range(round(seconds * 10)):
        await gw.advance(0.1)
        await asyncio.sleep(0.003)  # loopback I/O to the daemon and back


async def _demo_run(watchlists: Path, var: Path, seconds: float = TWO_MINUTES,
                    then: Any = None) -> tuple[str, Events]:
    """One `breakoutd run --sim` on the manual clock: the line saying where its files are."""
    gw, where = await start_sim_run([watchlists], var, {}, day=DAY, manual_clock=True)
    events = Events()
    stop = asyncio.Event()
    daemon = Daemon(watchlists=[watchlists], var=var, settings=BrokerSettings(port=gw.port),
                    clock=gw.now_ns, log_event=events)
    daemon.before_reload = lambda config: cover_new_symbols(gw, config)
    task = asyncio.get_running_loop().create_task(daemon.run(stop))
    try:
        await events.wait(lambda: any(isinstance(e, ev.DaemonState) and e.state == "running"
                                      for e in events.items))
        await _step(gw, seconds)
        if then is not None:
            await then(gw, daemon)
        stop.set()
        assert await asyncio.wait_for(task, 15) == 0
    finally:
        stop.set()
        await gw.stop()
    return where, events


def _journal(var: Path) -> list[dict[str, Any]]:
    return read_journal(var / "journal" / DAY.isoformat() / "events.jsonl")


def _d(value: object) -> Decimal:
    return Decimal(str(value))


def _of(journal: list[dict[str, Any]], name: str, **fields: object) -> list[dict[str, Any]]:
    return [j for j in journal if j["event"] == name
            and all(j.get(k) == v for k, v in fields.items())]


def _check_the_demo_day(journal: list[dict[str, Any]]) -> None:
    """Everything `make run` promises, within two virtual minutes of its start."""
    deadline = exchange_ns(DAY, dt.time(9, 31, 50))
    assert all(j["at"] <= deadline for j in journal
               if "NEWCO" not in (j.get("symbol"), j.get("watcher_id", "")[:5])
               and j["event"] in ("Confirmed", "FastTriggered", "Rejected", "OrderFilled"))
    intents = {j["watcher_id"]: j for j in _of(journal, "OrderIntent")}
    # An entry by the close rule (the ladder) and one by the fast rule (the bracket).
    assert [c["watcher_id"] for c in _of(journal, "Confirmed")
            if not c["watcher_id"].startswith("scan:")] == ["ACME@4.50", "PENNY@0.85"]
    assert [f["watcher_id"] for f in _of(journal, "FastTriggered")][0] == "DEMO@10.00"
    assert (intents["ACME@4.50"]["kind"], intents["DEMO@10.00"]["kind"]) == ("close", "fast")
    # In the order it happened: through the level, the fast rule, then its orders.
    names = [j["event"] for j in journal if j.get("watcher_id") == "DEMO@10.00"
             or j.get("symbol") == "DEMO"]
    assert names.index("BreakDetected") < names.index("FastTriggered") < names.index("OrderSent")
    # The bracket's take-profit.
    assert [(f["qty"], _d(f["price"])) for f in _of(journal, "OrderFilled", symbol="DEMO",
                                                     role="take_profit")] == [(100, _d("10.50"))]
    # The ladder sells rung by rung, its stop moving up to the level, then the first rung.
    rungs = _of(journal, "OrderFilled", symbol="ACME", role="take_profit")
    assert [(f["rung"], f["qty"], _d(f["price"])) for f in rungs] == [
        (1, 150, _d("4.60")), (2, 75, _d("4.75")), (3, 75, _d("4.90"))]
    moves = [m for m in _of(journal, "StopMoved") if m["qty"] > 0]
    assert [(_d(m["stop"]), m["qty"]) for m in moves] == [(_d("4.50"), 150), (_d("4.60"), 75)]
    # A sub-dollar trade, which ends at its stop.
    penny = _of(journal, "OrderFilled", symbol="PENNY")
    assert [(f["role"], f["qty"]) for f in penny] == [("entry", 2000), ("stop", 2000)]
    assert _d(penny[0]["price"]) < 1 and _d(penny[1]["price"]) < _d("0.8150")
    _check_the_scanned_gapper(journal)
    # A rejection, with its reason.
    rejected = _of(journal, "Rejected")
    assert [(r["watcher_id"], r["reason"]) for r in rejected] == [("GAPR@20.00", "chased")]
    assert "above level 20.00 + max_chase 0.10" in rejected[0]["detail"]
    assert not _of(journal, "OrderSent", symbol="GAPR")


def _check_the_scanned_gapper(journal: list[dict[str, Any]]) -> None:
    """The scanner finds the gapper; its pre-market high breaks on volume: a momentum entry."""
    (scan,) = _of(journal, "ScanResult")
    assert (scan["trigger"], scan["armed"]) == ("start-up", ["scan:GAPGO"])  # 09:25 had passed
    verdicts = {c["symbol"]: c for c in scan["candidates"]}
    assert verdicts["GAPGO"]["outcome"] == "armed"
    assert _d(verdicts["GAPGO"]["gap_pct"]) >= 20  # 12.09 or 12.10 on the prior close 10.00
    assert {verdicts[s]["reason"] for s in ("DEMO", "ACME", "GAPR")} == {"on_watchlist"}
    (level,) = _of(journal, "LevelResolved", watcher_id="scan:GAPGO")
    assert (level["name"], _d(level["raw"]), _d(level["price"])) == (
        "premarket_high", _d("12.20"), _d("12.22"))
    (confirmed,) = _of(journal, "Confirmed", watcher_id="scan:GAPGO")
    assert confirmed["kind"] == "momentum"
    assert confirmed["at"] == exchange_ns(DAY, dt.time(9, 31))
    (intent,) = _of(journal, "OrderIntent", watcher_id="scan:GAPGO")
    # 100 / (12.31 - 11.92) = 256 shares; the take-profit at 1R.
    assert (intent["kind"], intent["qty"], _d(intent["stop"])) == ("momentum", 256, _d("11.92"))
    assert [_d(p) for p in intent["take_profits"]] == [_d("12.70")]
    fills = _of(journal, "OrderFilled", symbol="GAPGO")
    assert [(f["role"], f["qty"]) for f in fills] == [("entry", 256), ("take_profit", 256)]


def _watchlists(tmp_path: Path) -> Path:
    copy = tmp_path / "watchlists"
    shutil.copytree(REPO / "watchlists", copy)
    return copy


def test_the_demo_shows_the_strategy_s_day_and_a_reloaded_symbol_trades(tmp_path: Path) -> None:
    lists, var = _watchlists(tmp_path), tmp_path / "var"

    async def add_newco(gw: SimGateway, daemon: Daemon) -> None:
        (lists / "later.yaml").write_text(NEWCO)
        reloaded = await daemon.reload("test")
        assert reloaded.added == ("NEWCO@30.00",)
        await _step(gw, 90)

    where, _ = asyncio.run(asyncio.wait_for(_demo_run(lists, var, then=add_newco), 120))
    assert where == (f"simulated day {DAY} from 09:29:50 ET on the demo market: journals, "
                     f"state and status in {var}")
    journal = _journal(var)
    _check_the_demo_day(journal)
    # The symbol the reload added has a market: it breaks out and trades.
    assert _of(journal, "WatcherStarted", watcher_id="NEWCO@30.00")
    assert [f["role"] for f in _of(journal, "OrderFilled", symbol="NEWCO")] == [
        "entry", "take_profit"]


def test_a_second_run_in_the_same_var_shows_the_demo_again(tmp_path: Path) -> None:
    lists, var = _watchlists(tmp_path), tmp_path / "var"
    asyncio.run(asyncio.wait_for(_demo_run(lists, var), 60))
    first = _journal(var)
    first_status = json.loads((var / "status.json").read_text())
    where, events = asyncio.run(asyncio.wait_for(_demo_run(lists, var), 60))
    assert where.endswith(f"(the previous run's in {var / 'previous'})")
    second = _journal(var)
    # Armed again: nothing fired yet today (the scanned gapper is a fifth).
    assert len(_of(second, "WatcherStarted")) == 4 + 1
    _check_the_demo_day(second)
    # The first run's files are kept aside, whole; status is this run's alone.
    assert _journal(var / "previous") == first
    status = json.loads((var / "status.json").read_text())
    up = events.of(ev.ConnectionUp)[0]
    assert status["broker"]["address"] == f"127.0.0.1:{up.port}"
    assert status["broker"]["address"] != first_status["broker"]["address"]
    assert not status["orders"] or all(o["order_ref"] in {i["order_ref"] for i in
                                                          _of(second, "OrderIntent")}
                                       for o in status["orders"])


def test_a_sim_run_leaves_a_daemon_s_own_var_alone(tmp_path: Path) -> None:
    var = tmp_path / "var"
    day = var / "journal" / "2026-03-09"
    day.mkdir(parents=True)
    (day / "events.jsonl").write_text(json.dumps(
        {"event": "ConnectionUp", "account": "DU7654321"}) + "\n")
    with pytest.raises(OperationalError, match="not written by --sim; give --sim a directory"):
        prepare_sim_var(var, "2026-03-10", {})
    assert (day / "events.jsonl").exists() and not (var / "previous").exists()


def test_an_older_demo_s_var_is_moved_aside_and_a_running_daemon_s_is_refused(
        tmp_path: Path) -> None:
    import socket

    var = tmp_path / "var"
    day = var / "journal" / "2026-03-09"
    day.mkdir(parents=True)  # a demo run from before runs were marked: the sim's account
    (day / "events.jsonl").write_text(json.dumps(
        {"event": "ConnectionUp", "account": "DU0000001"}) + "\n")
    (var / "status.json").write_text("{}")
    assert prepare_sim_var(var, "2026-03-10", {}) is True
    assert (var / "previous" / "journal" / "2026-03-09" / "events.jsonl").exists()
    assert not (var / "journal").exists() and not (var / "status.json").exists()
    (var / "run").mkdir()
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(var / "run" / "control.sock"))
        listening.listen()
        with pytest.raises(OperationalError, match="a daemon is running with --var"):
            prepare_sim_var(var, "2026-03-10", {})
    assert (var / "sim-run.json").exists() and (var / "previous").exists()
