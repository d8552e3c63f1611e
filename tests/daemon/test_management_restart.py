"""kill -9 in the middle of position management, then a restart: nothing sent twice.

The daemon runs as a process against the simulated gateway (1x clock). It is
killed right after breakeven moved the broker's stop, and again right after a
time exit came due; each restart finds the stop where it was and sells the
position once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
from collections.abc import Callable
from pathlib import Path

from breakoutd.daemon.journal import read_journal
from breakoutd.sim import Market, SimGateway
from tests.daemon.daemonkit import DAY, at, px
from tests.daemon.processkit import (
    at_the_broker,
    daemon_saying,
    kill_9,
    read_until,
    reap,
    start_daemon,
)
from tests.daemon.test_daemon_resync import sim_stop
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


async def sold_off(gw: SimGateway) -> None:
    """Wait (up to 10 s) until the sim's account holds no shares."""
    for _ in range(200):
        if not any(q for q, _ in gw.engine.positions().values()):
            return
        await asyncio.sleep(0.05)


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
            await sold_off(gw)  # the sale is sent at most once, by either daemon
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
    assert sum(1 for j in journal if j["event"] == "TimeExit") == 1  # announced once


def trail_rows() -> list:  # type: ignore[type-arg]
    # Filled at 10.03 at 09:31:00; a 0.10 trail follows 10.10 and 10.20 (stop 10.00, then
    # 10.10), the market rests at 10.15 (the stop holds) and then prints 10.40 (stop 10.30).
    return (ramp("09:30:00", 50, "9.95") + ramp("09:30:50", 10, "10.02")
            + ramp("09:31:00", 4, "10.10") + ramp("09:31:04", 4, "10.20")
            + ramp("09:31:08", 10, "10.15") + ramp("09:31:18", 40, "10.40"))


async def status_with_a_position(var: Path, pid: int) -> dict:  # type: ignore[type-arg]
    """The first status file daemon ``pid`` writes with a position in it."""
    for _ in range(200):
        status = json.loads((var / "status.json").read_text())
        if status["positions"] and status["pid"] == pid:
            return status  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError("the restarted daemon's status never showed the position")


def test_kill_9_after_two_trail_moves_keeps_the_stop_and_trails_on_from_it(
    tmp_path: Path
) -> None:
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "w.yaml").write_text(MANAGED.replace(
        '    breakeven: 1\n    exit_at: "09:31:20"\n', "    trail: 0.10\n"))
    status: dict = {}  # type: ignore[type-arg]

    async def body() -> None:
        gw = SimGateway(Market(trail_rows()), port=0, start=dt.time(9, 30, 55), day=DAY)
        await gw.start()
        procs: list[asyncio.subprocess.Process] = []
        try:
            first = await daemon_saying(tmp_path, gw.port, procs, "moved to stop 10.10 ")  # the trail's second move
            await kill_9(first)
            second = await daemon_saying(tmp_path, gw.port, procs, "daemon running")
            assert gw.now_ns() < at("09:31:18")  # restarted while the market rests at 10.15
            assert sim_stop(gw).aux_price == px("10.10")  # where the first daemon put it
            status.update(await status_with_a_position(tmp_path, second.pid))
            await read_until(second, "moved to stop 10.30 ")  # trailing on after the restart
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 30) == 0
            assert sim_stop(gw).aux_price == px("10.30")
            refs = [o.order_ref for o, _ in gw.engine.open_orders(None)
                    + gw.engine.completed_orders()]
            assert refs.count(REF) == 1 and refs.count(f"{REF}:sl") == 1
        finally:
            await reap(procs)
            await gw.stop()

    asyncio.run(asyncio.wait_for(body(), 90))
    ((position,),) = [status["positions"]]
    assert [(s["price"], s["rule"]) for s in position["stops"]] == [(10.10, "trail")]  # and why
    journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
    moves = [(m["rule"], m["stop"]) for m in journal if m["event"] == "StopMoved"]
    assert moves == [("trail", 10.0), ("trail", 10.1), ("trail", 10.3)]  # never down, none twice
    assert sum(1 for j in journal if j["event"] == "OrderIntent") == 1


HOLDS = """\
breakouts:
  - {symbol: AAA, level: 10.00, qty: 100, tp: 10.80, sl: 9.80, max_hold: 30s}
  - {symbol: BBB, level: 20.00, qty: 100, tp: 20.80, sl: 19.80, max_hold: 5s}
"""


def hold_rows() -> list:  # type: ignore[type-arg]
    # Both are bought at 09:31:00 (10.03, 20.03) and held above their stops.
    out = []
    for symbol, base in (("AAA", 10), ("BBB", 20)):
        out += (ramp("09:30:00", 50, f"{base - 1}.95", symbol)
                + ramp("09:30:50", 10, f"{base}.02", symbol)
                + ramp("09:31:00", 50, f"{base}.10", symbol))
    return sorted(out, key=lambda r: (r.time, r.symbol))


def test_kill_9_after_the_fill_sells_at_the_fill_plus_max_hold_once(tmp_path: Path) -> None:
    # Killed after both fills; restarted at 09:31:07: BBB's 5 s hold has ended (sold at
    # once), AAA's 30 s hold has not (sold at 09:31:30, its fill plus 30 s, not the
    # restart plus 30 s).
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "w.yaml").write_text(HOLDS)
    refs = {s: f"bo:20260309:rth:{s}@{p}" for s, p in (("AAA", "10.00"), ("BBB", "20.00"))}

    async def body() -> None:
        gw = SimGateway(Market(hold_rows()), port=0, start=dt.time(9, 30, 55), day=DAY)
        await gw.start()
        procs: list[asyncio.subprocess.Process] = []
        try:
            first = await start_daemon(tmp_path, gw.port)
            procs.append(first)
            for _ in refs:
                await read_until(first, "FILLED entry")
            await kill_9(first)
            assert gw.now_ns() < at("09:31:05")  # killed within BBB's hold
            await asyncio.sleep(max(0.0, (at("09:31:07") - gw.now_ns()) / 1e9))
            second = await daemon_saying(tmp_path, gw.port, procs, "time exit (max_hold): selling BBB")
            await read_until(second, "time exit (max_hold): selling AAA")
            await sold_off(gw)
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 30) == 0
            orders = gw.engine.open_orders(None) + gw.engine.completed_orders()
            sent = [o.order_ref for o, _ in orders]
            for ref in refs.values():
                assert (sent.count(ref), sent.count(f"{ref}:fx")) == (1, 1)  # nothing twice
            assert not any(q for q, _ in gw.engine.positions().values())
            assert not [o for o, _ in gw.engine.open_orders(None) if o.order_ref.startswith("bo:")]
        finally:
            await reap(procs)
            await gw.stop()

    asyncio.run(asyncio.wait_for(body(), 90))
    journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
    restart = next(j["at"] for j in journal if j["event"] == "OrderReconciled")
    fill_at = {j["symbol"]: j["at"] for j in journal
               if j["event"] == "OrderFilled" and j["role"] == "entry"}
    due = {j["symbol"]: j for j in journal if j["event"] == "TimeExit"}
    assert sum(1 for j in journal if j["event"] == "TimeExit") == 2  # one each, never again
    assert due["BBB"]["due_at"] == fill_at["BBB"] + 5 * 10**9 < restart  # ended while down
    assert due["AAA"]["due_at"] == fill_at["AAA"] + 30 * 10**9
    assert restart < due["AAA"]["due_at"] <= due["AAA"]["at"] < restart + 30 * 10**9
    sales = [(j["order_ref"], j["reason"]) for j in journal if j["event"] == "FlattenSent"]
    assert sorted(sales) == sorted((ref, "time_exit") for ref in refs.values())


def test_a_fill_the_daemon_never_heard_of_counts_max_hold_from_its_execution(
    tmp_path: Path
) -> None:
    # The gateway holds its order messages back: the daemon is killed after the entry
    # filled at the broker (09:31:00) but before it heard so. The restarted daemon
    # journals the fill as of its execution and sells at 09:31:10, not restart + 10 s.
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "w.yaml").write_text(MANAGED.replace(
        '    breakeven: 1\n    exit_at: "09:31:20"\n', "    max_hold: 10s\n"))

    async def body() -> None:
        gw = SimGateway(Market(rows()), port=0, start=dt.time(9, 30, 55), day=DAY)
        await gw.start()
        procs: list[asyncio.subprocess.Process] = []
        try:
            first = await daemon_saying(tmp_path, gw.port, procs, "daemon running")
            gw.delay_acks(60_000)
            await read_until(first, "sent stop")
            await at_the_broker(gw, 3)
            while gw.engine.positions().get("DEMO", (0,))[0] < 100:
                await asyncio.sleep(0.001)  # the gateway runs in this loop
            await kill_9(first)
            gw.delay_acks(0)
            second = await daemon_saying(tmp_path, gw.port, procs, "time exit (max_hold)")
            await sold_off(gw)
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 30) == 0
            refs = [o.order_ref for o, _ in gw.engine.open_orders(None)
                    + gw.engine.completed_orders()]
            assert (refs.count(REF), refs.count(f"{REF}:fx")) == (1, 1)
            assert gw.engine.positions().get("DEMO", (0,))[0] == 0
        finally:
            await reap(procs)
            await gw.stop()

    asyncio.run(asyncio.wait_for(body(), 90))
    journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
    restart = next(j["at"] for j in journal if j["event"] == "OrderReconciled")
    (fill,) = [j for j in journal if j["event"] == "OrderFilled" and j["role"] == "entry"]
    assert fill["at"] == at("09:31:00") < restart  # the broker's execution time
    (due,) = [j for j in journal if j["event"] == "TimeExit"]
    assert (due["rule"], due["due_at"]) == ("max_hold", at("09:31:10"))
    assert due["at"] < restart + 10 * 10**9
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
