"""kill -9 with an entered named-level watcher, then a restart: its exits keep the resolved level.

The daemon runs as a process against the simulated gateway (1x clock). The level
(``premarket_high``) is resolved from the sim's history before the entry; after
the restart the watcher is not armed again, so the level the exits and status
use is the one the journal's ``LevelResolved`` recorded, not the configured 0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from pathlib import Path

from breakoutd.daemon.journal import read_journal
from breakoutd.sim import Market, SimGateway
from tests.daemon.daemonkit import DAY, at, px
from tests.daemon.processkit import at_the_broker, daemon_saying, kill_9, read_until, reap
from tests.daemon.test_daemon_sim import ramp
from tests.daemon.test_management_restart import status_with_a_position

REF = "bo:20260309:rth:DEMO@premarket_high"
NAMED = """\
breakouts:
  - symbol: DEMO
    level: premarket_high
    sessions: [rth]
    fast: false
    qty: 100
    sl_below: 0.20
    tp_r: [1, 2]
    breakeven: 1.5
"""


def rows() -> list:  # type: ignore[type-arg]
    # The pre-market prints 10.00: L = 10.00, the stop 9.80. The 09:30 minute closes
    # at 10.02: BUY 100 LMT 10.03 at 09:31:00 fills (R 0.23; rungs 10.26 and 10.49).
    # After the restart 10.30 sells rung 1 (the ladder's stop goes to L), and 10.40
    # is past 1.5R (10.375): breakeven takes the stop to the fill, 10.03.
    return (ramp("09:29:00", 60, "10.00") + ramp("09:30:00", 50, "9.95")
            + ramp("09:30:50", 10, "10.02") + ramp("09:31:00", 12, "10.10")
            + ramp("09:31:12", 6, "10.30") + ramp("09:31:18", 40, "10.40"))


def test_kill_9_after_a_named_level_entry_keeps_the_resolved_level(tmp_path: Path) -> None:
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "w.yaml").write_text(NAMED)
    status: dict = {}  # type: ignore[type-arg]

    async def body() -> None:
        gw = SimGateway(Market(rows()), port=0, start=dt.time(9, 30, 50), day=DAY)
        await gw.start()
        procs: list[asyncio.subprocess.Process] = []

        def sim_stops() -> list[tuple[int, int]]:
            return [(o.aux_price, o.total_qty) for o, _ in gw.engine.open_orders(None)
                    if o.order_ref == f"{REF}:sl"]
        try:
            first = await daemon_saying(tmp_path, gw.port, procs, "level premarket_high = 10.00")
            await read_until(first, "FILLED entry")
            await at_the_broker(gw, 4)  # the entry and its three exits
            await kill_9(first)
            second = await daemon_saying(tmp_path, gw.port, procs, "daemon running")
            assert gw.now_ns() < at("09:31:12")  # before rung 1 sells
            status.update(await status_with_a_position(tmp_path, second.pid))
            await read_until(second, "(breakeven)")
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 30) == 0
            assert sim_stops() == [(px("10.03"), 50)]
            refs = [o.order_ref for o, _ in gw.engine.open_orders(None)
                    + gw.engine.completed_orders()]
            assert refs.count(REF) == 1
        finally:
            await reap(procs)
            await gw.stop()

    asyncio.run(asyncio.wait_for(body(), 90))
    (row,) = status["watchers"]
    assert (row["level"], row["level_name"], row["state"]) == (10.00, "premarket_high", "entered")
    journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
    assert [j["price"] for j in journal if j["event"] == "LevelResolved"] == [10.00]  # once
    moves = [(m["rule"], m["stop"]) for m in journal if m["event"] == "StopMoved"]
    assert moves == [("ladder", 10.00), ("breakeven", 10.03)]  # L after rung 1, then the fill
    sent = [(j["role"], j["stop"] or j["limit"]) for j in journal if j["event"] == "OrderSent"]
    assert sent == [("entry", 10.03), ("take_profit", 10.26), ("take_profit", 10.49),
                    ("stop", 9.80)]
