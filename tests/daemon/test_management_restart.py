"""kill -9 in the middle of position management, then a restart: nothing sent twice.

The daemon runs as a process against the simulated gateway (1x clock). It is
killed right after breakeven moved the broker's stop, and again right after a
time exit came due; each restart finds the stop where it was and sells the
position once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from collections.abc import Callable
from pathlib import Path

from breakoutd.daemon.journal import read_journal
from breakoutd.sim import Market, SimGateway
from tests.daemon.daemonkit import DAY, px
from tests.daemon.processkit import daemon_saying, kill_9, read_until, reap
from tests.daemon.test_daemon_sim import ramp

REF = "bo:20260309:rth:DEMO@10.00"
MANAGED = """\
breakouts:
  - symbol: DEMO
    level: 10.00
    qty: 100
    tp: 10.80
    sl: 9.80
    breakeven: 1
    exit_at: "09:31:20"
"""


def rows() -> list:  # type: ignore[type-arg]
    # The 09:30 minute closes at 10.02: BUY 100 LMT 10.03 at 09:31:00 fills (R 0.23);
    # 10.30 from 09:31:04 is past 1R (10.26): the stop goes to 10.03. At 09:31:20
    # the position is sold at the bid (10.29).
    return (ramp("09:30:00", 50, "9.95") + ramp("09:30:50", 10, "10.02")
            + ramp("09:31:00", 4, "10.10") + ramp("09:31:04", 80, "10.30"))


def test_kill_9_after_a_stop_move_and_after_a_time_exit_sends_nothing_twice(
    tmp_path: Path
) -> None:
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "w.yaml").write_text(MANAGED)

    async def body() -> None:
        gw = SimGateway(Market(rows()), port=0, start=dt.time(9, 30, 55), day=DAY)
        await gw.start()
        procs: list[asyncio.subprocess.Process] = []

        def stop_at_sim() -> list[int]:
            return [o.aux_price for o, _ in gw.engine.open_orders(None)
                    if o.order_ref == f"{REF}:sl"]
        try:
            first = await daemon_saying(tmp_path, gw.port, procs, "(breakeven)")
            await kill_9(first)
            second = await daemon_saying(tmp_path, gw.port, procs, "daemon running")
            assert stop_at_sim() == [px("10.03")]  # where the first daemon put it
            await read_until(second, "time exit (exit_at)")
            await kill_9(second)
            third = await daemon_saying(tmp_path, gw.port, procs, "daemon running")
            for _ in range(200):  # the sale is sent at most once, by either daemon
                if gw.engine.positions().get("DEMO", (0,))[0] == 0:
                    break
                await asyncio.sleep(0.05)
            third.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(third.wait(), 30) == 0
            orders = gw.engine.open_orders(None) + gw.engine.completed_orders()
            refs = [o.order_ref for o, _ in orders]
            assert refs.count(f"{REF}:fx") == 1  # one sale, never two
            assert refs.count(REF) == 1
            assert gw.engine.positions().get("DEMO", (0,))[0] == 0
            assert not [o for o, _ in gw.engine.open_orders(None)
                        if o.order_ref.startswith(REF)]  # no exit left working
        finally:
            await reap(procs)
            await gw.stop()

    asyncio.run(asyncio.wait_for(body(), 90))
    journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
    moves = [j for j in journal if j["event"] == "StopMoved"]
    assert [(m["rule"], m["stop"]) for m in moves] == [("breakeven", 10.03)]  # not again
    assert sum(1 for j in journal if j["event"] == "OrderIntent") == 1
    assert [j["reason"] for j in journal if j["event"] == "FlattenSent"] == ["time_exit"]


SLICED = """\
breakouts:
  - symbol: DEMO
    level: 10.00
    qty: 100
    tp: 10.80
    sl: 9.80
    breakeven: 1
    slices: {count: 3, every: 10}
"""


def sliced_rows() -> list:  # type: ignore[type-arg]
    # BUY 34 LMT 10.03 at 09:31:00 fills (R 0.23); 10.30 from 09:31:00 is past 1R: the
    # stop goes to 10.03. Slices 2 (09:31:10) and 3 (09:31:20) buy 33 each at 10.31;
    # the R of the average fill is never reached again, so the stop stays at 10.03.
    return ramp("09:30:00", 50, "9.95") + ramp("09:30:50", 10, "10.02") + ramp(
        "09:31:00", 80, "10.30")


def test_kill_9_in_the_middle_of_a_sliced_entry_sends_no_slice_twice(tmp_path: Path) -> None:
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "w.yaml").write_text(SLICED)

    async def body() -> None:
        gw = SimGateway(Market(sliced_rows()), port=0, start=dt.time(9, 30, 55), day=DAY)
        await gw.start()
        procs: list[asyncio.subprocess.Process] = []

        def stop_at_sim() -> list[tuple[int, int]]:
            return [(o.aux_price, o.total_qty) for o, _ in gw.engine.open_orders(None)
                    if o.order_ref == f"{REF}:sl"]

        async def until(predicate: Callable[[], bool]) -> None:
            for _ in range(400):
                if predicate():
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("timed out")
        try:
            first = await daemon_saying(tmp_path, gw.port, procs, "slice 2/3 sent")
            await kill_9(first)
            second = await daemon_saying(tmp_path, gw.port, procs, "daemon running")
            # Where the first daemon put it, and sized to what the broker has filled.
            await until(lambda: stop_at_sim() == [(px("10.03"), 67)])
            await read_until(second, "slice 3/3 sent")
            await kill_9(second)
            third = await daemon_saying(tmp_path, gw.port, procs, "daemon running")
            await until(lambda: stop_at_sim() == [(px("10.03"), 100)])
            third.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(third.wait(), 30) == 0
            orders = gw.engine.open_orders(None) + gw.engine.completed_orders()
            refs = sorted(o.order_ref for o, _ in orders if o.order_ref.startswith(REF))
            assert refs == sorted([f"{REF}:s1", f"{REF}:s2", f"{REF}:s3", f"{REF}:tp1",
                                   f"{REF}:sl"])  # no slice sent twice, nor the bracket
            assert gw.engine.positions()["DEMO"][0] == 100
            assert stop_at_sim() == [(px("10.03"), 100)]  # the stop where it was
        finally:
            await reap(procs)
            await gw.stop()

    asyncio.run(asyncio.wait_for(body(), 120))
    journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
    assert [j["number"] for j in journal if j["event"] == "SliceSent"] == [1, 2, 3]
    assert not [j for j in journal if j["event"] == "SliceSkipped"]
    moves = [j for j in journal if j["event"] == "StopMoved"]
    assert [(m["rule"], m["stop"]) for m in moves] == [("breakeven", 10.03)]  # not again
    assert sum(1 for j in journal if j["event"] == "OrderIntent") == 1
