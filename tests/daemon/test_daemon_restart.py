"""kill -9 then a restart: nothing sent twice, and the day (halt, entries, positions, P&L) kept."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
from decimal import Decimal
from pathlib import Path

from breakoutd.daemon.journal import read_journal
from breakoutd.sim import Market, SimGateway
from tests.daemon.daemonkit import DAY, at
from tests.daemon.processkit import at_the_broker, daemon_saying, kill_9, reap
from tests.daemon.test_daemon_sim import BRACKET, ramp


def rows() -> list:  # type: ignore[type-arg]
    # 09:30 closes at 10.02 with 1 share offered at 10.03 at the end: the entry
    # (BUY 100 LMT 10.03 at 09:31:00) takes that share and rests; the market
    # trades above it until 09:31:04, then through it at 10.00 from 09:31:05.
    out = ramp("09:30:00", 50, "9.95") + ramp("09:30:50", 10, "10.02")
    out[-1] = out[-1]._replace(ask_size=1)
    out += ramp("09:31:00", 5, "10.08") + ramp("09:31:05", 60, "10.00")
    return out


def test_kill_9_after_sending_then_restart_sends_nothing_again(tmp_path: Path) -> None:
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "w.yaml").write_text(BRACKET)

    async def body() -> None:
        gw = SimGateway(Market(rows()), port=0, start=dt.time(9, 30, 55), day=DAY)
        await gw.start()
        procs: list[asyncio.subprocess.Process] = []
        try:
            first = await daemon_saying(tmp_path, gw.port, procs, "sent stop")
            await at_the_broker(gw, 3)  # the whole bracket has reached the gateway
            await kill_9(first)
            # The entry fills (09:31:05 trades through it) while no daemon runs.
            await asyncio.sleep(max(0.0, (at("09:31:06") - gw.now_ns()) / 1e9))
            second = await daemon_saying(tmp_path, gw.port, procs, "daemon running")
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 30) == 0
            orders = gw.engine.open_orders(None) + gw.engine.completed_orders()
            refs = [o.order_ref for o, _ in orders]
            assert refs.count("bo:20260309:rth:DEMO@10.00") == 1  # one entry at the broker
            assert gw.engine.positions()["DEMO"][0] == 100
        finally:
            await reap(procs)
            await gw.stop()

    asyncio.run(asyncio.wait_for(body(), 90))
    journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
    sent = [e for e in journal if e["event"] == "OrderSent"]
    assert [s["role"] for s in sent] == ["entry", "take_profit", "stop"]  # once, before the kill
    assert sum(1 for e in journal if e["event"] == "OrderIntent") == 1
    reconciled = [e for e in journal if e["event"] == "OrderReconciled"]
    assert reconciled and reconciled[0]["watcher_id"] == "DEMO@10.00"
    fills = [e for e in journal if e["event"] == "OrderFilled" and e["role"] == "entry"]
    assert sum(f["qty"] for f in fills) == 100  # 1 share before the kill, 99 while down
    assert {Decimal(str(f["price"])) for f in fills} == {Decimal("10.03")}
    assert sum(1 for e in journal if e["event"] == "WatcherStarted") == 1  # not armed again




def held_rows() -> list:  # type: ignore[type-arg]
    # AAA and BBB close the 09:30 minute above their levels and are bought at
    # 09:31:00 (10.03 and 20.03); AAA slides to 9.88 at 09:31:03, a 15-dollar
    # loss its 9.80 stop does not sell: past the 10-dollar daily limit, the kill
    # switch halts and (on_halt: hold) both positions stay. CCC's fast rule
    # fires at 09:31:21, after the restart.
    return (ramp("09:30:40", 10, "9.95", "AAA") + ramp("09:30:50", 13, "10.02", "AAA")
            + ramp("09:31:03", 80, "9.88", "AAA")
            + ramp("09:30:40", 10, "19.95", "BBB") + ramp("09:30:50", 90, "20.02", "BBB")
            + ramp("09:30:40", 40, "29.95", "CCC") + ramp("09:31:20", 60, "30.20", "CCC"))


HELD = """\
risk:
  max_daily_loss_usd: 10
breakouts:
  - {symbol: AAA, level: 10.00, qty: 100, tp: 10.50, sl: 9.80, fast: false}
  - {symbol: BBB, level: 20.00, qty: 100, tp: 20.50, sl: 19.80, fast: false}
  - {symbol: CCC, level: 30.00, qty: 100, tp: 30.50, sl: 29.80}
"""


def test_kill_9_while_halted_with_positions_then_restart_keeps_them_all(tmp_path: Path) -> None:
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "w.yaml").write_text(HELD)
    status: dict = {}  # type: ignore[type-arg]

    async def body() -> None:
        gw = SimGateway(Market(sorted(held_rows(), key=lambda r: (r.time, r.symbol))), port=0,
                        start=dt.time(9, 30, 55), day=DAY)
        await gw.start()
        procs: list[asyncio.subprocess.Process] = []
        try:
            first = await daemon_saying(tmp_path, gw.port, procs, "daemon halted")
            await kill_9(first)  # halted, two positions open, exits resting
            second = await daemon_saying(tmp_path, gw.port, procs,
                                         "CCC@30.00: REJECTED risk_halted")
            status.update(json.loads((tmp_path / "status.json").read_text()))
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 30) == 0
            assert {s: q for s, (q, _) in gw.engine.positions().items()} == {
                "AAA": 100, "BBB": 100}
            assert not [o for o, _ in gw.engine.open_orders(None) if o.order_ref.endswith(
                "CCC@30.00")]  # nothing sent for the trigger after the restart
        finally:
            await reap(procs)
            await gw.stop()

    asyncio.run(asyncio.wait_for(body(), 90))
    risk = status["risk"]
    assert (status["state"], risk["halted"], risk["entries"], risk["open"]) == (
        "halted", "daily_loss", 2, 2)
    assert {p["symbol"]: p["qty"] for p in status["positions"]} == {"AAA": 100, "BBB": 100}
    aaa = next(p for p in status["positions"] if p["symbol"] == "AAA")
    assert Decimal(str(aaa["avg_price"])) == Decimal("10.03")
    assert Decimal(str(aaa["last_price"])) == Decimal("9.88")  # marked again after the restart
    assert Decimal(str(aaa["unrealized"])) == Decimal("-15.00")
    journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
    assert [j["reason"] for j in journal if j["event"] == "Halted"] == ["daily_loss"]
    assert sum(1 for e in journal if e["event"] == "OrderIntent") == 2  # AAA and BBB, once each
    rejected = [e for e in journal if e["event"] == "Rejected"]
    assert [(r["watcher_id"], r["reason"]) for r in rejected] == [("CCC@30.00", "risk_halted")]
