"""Ladder rungs that fill while the daemon is disconnected: picked up on reconnect as if live.

The daemon and the simulated gateway run in one event loop, through ib_async over
loopback. While the connection is down the test moves the market through a rung;
the sim fills it with no client to tell. After the reconnect the daemon must
journal the fill once, move the stop as strategy.md's Exits say, and the stop at
the sim (its order book, not only the events) must carry the new price and size.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from breakoutd.core import events as ev
from breakoutd.daemon.journal import read_journal
from breakoutd.sim import Market, Row, SimGateway
from breakoutd.sim.matching import SimOrder
from breakoutd.sim.session import ClientSession
from tests.daemon.daemonkit import DAY, Run, at, px, running_daemon
from tests.daemon.test_daemon_restart import at_the_broker, read_until, reap, start_daemon
from tests.daemon.test_daemon_sim import ramp

LADDER = """\
breakouts:
  - symbol: DEMO
    level: 10.00
    qty: 300
    tp: [10.20, 10.40, 10.60]
    sl: 9.80
"""
REF = "bo:20260309:rth:DEMO@10.00"


def ladder_rows() -> list[Row]:
    """The 09:30 minute closes at 10.02 (entry LMT 10.03 at 09:31:00, filled at once);
    then 10.05 until 09:32, 10.25 (rung 1) until 09:33, 10.30 until 09:34, 10.45
    (rung 2) after; the stop (9.80, then 10.00, then 10.20) is never reached."""
    return (ramp("09:29:50", 40, "9.95") + ramp("09:30:30", 40, "10.02")
            + ramp("09:31:10", 50, "10.05") + ramp("09:32:00", 60, "10.25")
            + ramp("09:33:00", 60, "10.30") + ramp("09:34:00", 120, "10.45"))


def sim_stop(gw: SimGateway) -> SimOrder:
    """The entry's stop as the sim's order book holds it."""
    stops = [o for o, _ in gw.engine.open_orders(None) if o.order_ref == f"{REF}:sl"]
    assert len(stops) == 1, stops
    return stops[0]


async def settle(r: Run, predicate: Callable[[], bool], timeout: float = 20) -> None:
    """Wait (real time, the virtual clock standing) until ``predicate`` holds."""
    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(0.005)  # the sim's book changes without an event to await
    await asyncio.wait_for(loop(), timeout)


async def entered(r: Run) -> None:
    """Step until the entry filled and the whole ladder rests at the sim."""
    e = r.events
    await r.step(100, until=lambda: any(f.role == "entry" for f in e.of(ev.OrderFilled))
                 and any(s.role == "stop" for s in e.of(ev.OrderSent)))
    await settle(r, lambda: any(o.order_ref == f"{REF}:sl"
                                for o, _ in r.gw.engine.open_orders(None)))
    assert [(f.role, f.qty) for f in e.of(ev.OrderFilled)] == [("entry", 300)]


async def outage(r: Run, how: str, until: str) -> None:
    """Take the connection down, move the market to ``until`` while it is down, let it return."""
    e = r.events
    lost, ups = len(e.of(ev.ConnectionLost)), len(e.of(ev.ConnectionUp))
    if how == "restart":
        r.gw.restart(keep_state=True, down_seconds=0.2)
    else:
        r.gw.refuse_connections(0.2)  # the reconnect cannot win the race with the market
        r.gw.drop_connections()
    await e.wait(lambda: len(e.of(ev.ConnectionLost)) > lost)
    await r.gw.advance_to(at(until))  # the rung fills with no client connected
    await e.wait(lambda: len(e.of(ev.ConnectionUp)) > ups, timeout=20)


def rung_fills(r: Run, rung: int) -> list[ev.OrderFilled]:
    return [f for f in r.events.of(ev.OrderFilled) if f.role == "take_profit" and f.rung == rung]


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 90))  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["drop", "restart"])
def test_a_rung_filled_during_an_outage_moves_the_stop_at_the_broker(tmp_path: Path,
                                                                       how: str) -> None:
    async def body() -> None:
        async with running_daemon(ladder_rows(), LADDER, tmp_path) as r:
            e = r.events
            seen: list[tuple[str, int, str]] = []
            assert r.daemon.router is not None
            r.daemon.router.on_fill.append(lambda entry, f: seen.append((f.role, f.rung,
                                                                         f.exec_id)))
            await entered(r)
            assert sim_stop(r.gw).aux_price == px("9.80")
            await outage(r, how, "09:32:05")
            await e.wait(lambda: bool(e.of(ev.StopMoved)))
            await settle(r, lambda: sim_stop(r.gw).aux_price == px("10.00"))
            assert [(f.qty, f.price) for f in rung_fills(r, 1)] == [(100, Decimal("10.20"))]
            moved = e.of(ev.StopMoved)
            assert [(m.stop, m.stop_limit, m.qty) for m in moved] == [
                (Decimal("10.00"), Decimal("9.98"), 200)]
            sl = sim_stop(r.gw)
            assert (sl.aux_price, sl.lmt_price, sl.total_qty) == (px("10.00"), px("9.98"), 200)
            assert [(role, rung) for role, rung, _ in seen] == [("entry", 0), ("take_profit", 1)]
            await r.step(5)  # more resyncs or quotes bring nothing twice
            assert len(rung_fills(r, 1)) == 1 and len(e.of(ev.StopMoved)) == 1
            # The day ledger counts the fill picked up after the outage, once.
            book = r.daemon.today.ledger.books[REF]
            assert (book.bought, book.sold, book.open_qty) == (300, 100, 200)
            assert book.realized == 100 * px("10.20") - book.open_cost // 2
            assert await r.finish() == 0
        journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
        filled = [j for j in journal if j["event"] == "OrderFilled" and j["role"] == "take_profit"]
        assert [(j["rung"], j["qty"]) for j in filled] == [(1, 100)]
        assert sum(1 for j in journal if j["event"] == "StopMoved") == 1

    run(body())


def test_a_campaign_of_outages_leaves_the_stop_at_rung_1_with_the_last_third(
        tmp_path: Path) -> None:
    async def body() -> None:
        async with running_daemon(ladder_rows(), LADDER, tmp_path) as r:
            e = r.events
            await entered(r)
            await outage(r, "drop", "09:31:20")  # nothing fills: the stop stays
            await outage(r, "restart", "09:32:05")  # rung 1
            await outage(r, "drop", "09:33:30")  # nothing new
            await outage(r, "drop", "09:34:05")  # rung 2
            await e.wait(lambda: len(e.of(ev.StopMoved)) >= 2)
            await settle(r, lambda: sim_stop(r.gw).aux_price == px("10.20"))
            assert [(m.stop, m.qty) for m in e.of(ev.StopMoved)] == [
                (Decimal("10.00"), 200), (Decimal("10.20"), 100)]
            sl = sim_stop(r.gw)
            assert (sl.aux_price, sl.lmt_price, sl.total_qty) == (px("10.20"), px("10.18"), 100)
            assert [len(rung_fills(r, n)) for n in (1, 2, 3)] == [1, 1, 0]
            assert r.gw.engine.positions()["DEMO"][0] == 100
            assert await r.finish() == 0

    run(body())


def drop_on_stop_modify(r: Run) -> list[int]:
    """From now on, the gateway drops the connection that sends the stop's next modify,
    unread: the modify is lost with the socket (a drop while it was on the wire)."""
    assert r.daemon.router is not None
    entry = r.daemon.router.entry(REF)
    assert entry is not None and entry.stop_id is not None
    gw, stop_id, dropped = r.gw, str(entry.stop_id), []
    original = gw.dispatch

    def dispatch(session: ClientSession, fields: list[str], received_ns: int) -> None:
        if not dropped and fields[:2] == ["3", stop_id]:  # placeOrder of the stop: a modify
            dropped.append(int(stop_id))
            gw.refuse_connections(0.2)
            session.abort()
            return
        original(session, fields, received_ns)

    gw.dispatch = dispatch  # type: ignore[method-assign]
    return dropped


@pytest.mark.parametrize("when", ["live", "outage"])
def test_a_stop_move_lost_with_the_connection_is_sent_again_after_it_returns(
        tmp_path: Path, when: str) -> None:
    # live: rung 1 fills while connected and the modify is lost in a drop;
    # outage: rung 1 fills while down and the modify sent on reconnecting is lost.
    async def body() -> None:
        async with running_daemon(ladder_rows(), LADDER, tmp_path) as r:
            e = r.events
            await entered(r)
            dropped = drop_on_stop_modify(r)
            ups = len(e.of(ev.ConnectionUp))
            if when == "live":
                await r.step(70, until=lambda: bool(dropped))
                assert dropped, "rung 1 never filled"
            else:
                await outage(r, "drop", "09:32:05")
                await e.wait(lambda: bool(dropped))
            await e.wait(lambda: len(e.of(ev.ConnectionUp)) > ups + (when == "outage"),
                         timeout=20)
            await settle(r, lambda: sim_stop(r.gw).aux_price == px("10.00"))
            sl = sim_stop(r.gw)
            assert (sl.aux_price, sl.lmt_price, sl.total_qty) == (px("10.00"), px("9.98"), 200)
            assert len(rung_fills(r, 1)) == 1
            assert [(m.stop, m.qty) for m in e.of(ev.StopMoved)] == [(Decimal("10.00"), 200)]
            assert await r.finish() == 0

    run(body())


def restart_rows() -> list[Row]:
    """At 1x: the entry fills at 09:31:00 (LMT 10.03); 10.05 until 09:31:08, 10.25
    (rung 1) until 09:31:20, then 10.45 (rung 2)."""
    return (ramp("09:30:00", 50, "9.95") + ramp("09:30:50", 10, "10.02")
            + ramp("09:31:00", 8, "10.05") + ramp("09:31:08", 12, "10.25")
            + ramp("09:31:20", 60, "10.45"))


async def kill(proc: asyncio.subprocess.Process) -> None:
    """kill -9: no clean stop, nothing flushed."""
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def until_at_the_sim(gw: SimGateway, predicate: Callable[[], bool],
                           timeout: float = 30) -> None:
    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(0.01)  # the gateway runs in this loop; nothing to await
    await asyncio.wait_for(loop(), timeout)


def rung_done(gw: SimGateway, rung: int) -> bool:
    return any(o.order_ref == f"{REF}:tp{rung}" and status == "Filled"
               for o, status in gw.engine.completed_orders())


DRAINS: list[asyncio.Future[bytes]] = []  # held, so the loop does not drop them


async def restarted(tmp_path: Path, gw: SimGateway,
                    procs: list[asyncio.subprocess.Process]) -> asyncio.subprocess.Process:
    """A new daemon on the same var dir, running; its stderr drained (a full pipe blocks it)."""
    proc = await start_daemon(tmp_path, gw.port)
    procs.append(proc)
    await read_until(proc, "daemon running")
    assert proc.stderr is not None
    DRAINS.append(asyncio.ensure_future(proc.stderr.read()))
    return proc


def test_rungs_filled_while_the_daemon_is_dead_move_the_stop_on_each_restart(
        tmp_path: Path) -> None:
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "w.yaml").write_text(LADDER)

    async def body() -> None:
        gw = SimGateway(Market(restart_rows()), port=0, start=dt.time(9, 30, 55), day=DAY)
        await gw.start()
        procs: list[asyncio.subprocess.Process] = []
        try:
            first = await start_daemon(tmp_path, gw.port)
            procs.append(first)
            await read_until(first, "sent stop")
            await at_the_broker(gw, 5)  # the entry and its four exits
            assert gw.now_ns() < at("09:31:08"), "the host was too slow for this timeline"
            await kill(first)
            await until_at_the_sim(gw, lambda: rung_done(gw, 1))  # no daemon runs
            assert sim_stop(gw).aux_price == px("9.80")
            second = await restarted(tmp_path, gw, procs)
            await until_at_the_sim(gw, lambda: sim_stop(gw).aux_price == px("10.00"), 10)
            sl = sim_stop(gw)
            assert (sl.aux_price, sl.lmt_price, sl.total_qty) == (px("10.00"), px("9.98"), 200)
            assert gw.now_ns() < at("09:31:20"), "the host was too slow for this timeline"
            await kill(second)
            await until_at_the_sim(gw, lambda: rung_done(gw, 2))
            third = await restarted(tmp_path, gw, procs)
            await until_at_the_sim(gw, lambda: sim_stop(gw).aux_price == px("10.20"), 10)
            sl = sim_stop(gw)
            assert (sl.aux_price, sl.lmt_price, sl.total_qty) == (px("10.20"), px("10.18"), 100)
            third.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(third.wait(), 30) == 0
        finally:
            await reap(procs)
            await gw.stop()

    asyncio.run(asyncio.wait_for(body(), 90))
    journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
    rungs = [j for j in journal if j["event"] == "OrderFilled" and j["role"] == "take_profit"]
    assert [(j["rung"], j["qty"]) for j in rungs] == [(1, 100), (2, 100)]  # once each
    moves = [j for j in journal if j["event"] == "StopMoved"]
    assert [(Decimal(str(m["stop"])), m["qty"]) for m in moves] == [
        (Decimal("10.00"), 200), (Decimal("10.20"), 100)]
