"""The status board fed by the real daemon trading against the simulated gateway."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from breakoutd.core import events as ev
from breakoutd.daemon.status import StatusBoard, status_path
from breakoutd.daemon.status_replay import journal_events
from tests.daemon.daemonkit import DAY, running_daemon
from tests.daemon.test_daemon_sim import BRACKET, ramp


def view(events: list[ev.Event], var: Path) -> dict[str, Any]:
    board = StatusBoard(status_path(var), clock=lambda: events[-1].at, pid=1)
    board.replay(events)
    status: dict[str, Any] = json.loads(board.encode(), parse_float=Decimal)
    return status


def test_a_bracket_trade_through_the_status_file(tmp_path: Path) -> None:
    rows = ramp("09:29:50", 40, "9.95") + ramp("09:30:30", 30, "10.02")
    rows += ramp("09:31:00", 10, "10.02") + ramp("09:31:10", 10, "10.55")
    during: dict[str, Any] = {}

    async def body() -> None:
        async with running_daemon(rows, BRACKET, tmp_path) as r:
            e = r.events
            armed = view(e.items, tmp_path)
            assert armed["state"] == "running" and armed["broker"]["connected"] is True
            assert [(w["symbol"], w["state"]) for w in armed["watchers"]] == [("DEMO", "armed")]
            await r.step(100, until=lambda: any(
                s.role == "stop" and s.status in ("PreSubmitted", "Submitted")
                for s in e.of(ev.OrderStatusChanged)) and bool(e.of(ev.OrderFilled)))
            during.update(view(e.items, tmp_path))
            await r.step(100, until=lambda: any(
                x.role == "take_profit" for x in e.of(ev.OrderFilled)))
            await e.wait(lambda: any(s.role == "stop" and s.status == "Cancelled"
                                     for s in e.of(ev.OrderStatusChanged)))
            assert await r.finish() == 0

    asyncio.run(asyncio.wait_for(body(), 60))
    [pos] = during["positions"]
    assert (pos["symbol"], pos["qty"], pos["avg_price"]) == ("DEMO", 100, Decimal("10.03"))
    assert [(t["price"], t["qty"]) for t in pos["take_profits"]] == [(Decimal("10.50"), 100)]
    assert [(t["price"], t["limit"], t["qty"]) for t in pos["stops"]] == [
        (Decimal("9.80"), Decimal("9.78"), 100)]
    assert [w["state"] for w in during["watchers"]] == ["entered"]

    after = view(journal_events(tmp_path / "journal" / DAY.isoformat() / "events.jsonl"), tmp_path)
    [watcher] = after["watchers"]
    assert (watcher["state"], watcher["outcome"], watcher["reason"]) == ("done", "entered", "closed")
    assert after["orders"] == [] and after["positions"] == []
    assert after["state"] == "stopped"
    gross = Decimal(100) * (Decimal("10.50") - Decimal("10.03"))
    assert after["pnl"]["realized"] == gross - after["pnl"]["commissions"]
