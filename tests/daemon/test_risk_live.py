"""Risk limits and the kill switch live: the daemon over the simulated gateway.

The same rows feed the simulated gateway and ``breakoutd backtest``; the
day ledger decides both (strategy.md, Risk limits and the kill switch).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from pathlib import Path

from breakoutd.backtest import run_backtest
from breakoutd.config.loader import load_watchlist_text
from breakoutd.core import events as ev
from breakoutd.daemon.app import Daemon
from breakoutd.daemon.journal import read_journal
from breakoutd.ibkr.settings import BrokerSettings
from breakoutd.sim import Market, Row, SimGateway
from breakoutd.tape import tape_from_rows
from tests.daemon.daemonkit import DAY, Events, at, px, running_daemon
from tests.daemon.test_daemon_sim import ramp


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 90))  # type: ignore[arg-type]


def path(symbol: str, *legs: tuple[str, int, str]) -> list[Row]:
    """A symbol's quiet seconds: (start, seconds, price) legs back to back."""
    rows: list[Row] = []
    for start, n, price in legs:
        rows += ramp(start, n, price, symbol)
    return rows


def watcher(symbol: str, level: str, tp: str, sl: str) -> str:
    return (f"  - symbol: {symbol}\n    level: {level}\n    qty: 100\n    tp: {tp}\n"
            f"    sl: {sl}\n    fast: false\n")


def watchlist(risk: str, *watchers: str) -> str:
    return f"risk:\n{risk}breakouts:\n" + "".join(watchers)


def decisions(events: Events) -> dict[str, tuple[str, str | None]]:
    """Each watcher's outcome and reason, as the live daemon decided."""
    out: dict[str, tuple[str, str | None]] = {}
    for e in events.items:
        if isinstance(e, ev.OrderIntent):
            out[e.watcher_id] = ("entered", None)
        elif isinstance(e, ev.Rejected):
            out[e.watcher_id] = ("rejected", e.reason)
    return out


def backtest(rows: list[Row], text: str) -> dict[str, tuple[str, str | None]]:
    wl = load_watchlist_text(text, "t.yaml")
    result = run_backtest(tape_from_rows(sorted(rows, key=lambda r: (r.time, r.symbol))),
                          wl.watchers, wl.risk)
    return {r.spec.id: (r.outcome, r.reason) for r in result.results
            if r.outcome in ("entered", "rejected")}


# AAA breaks in the 09:30 minute (entered 09:31:00 at 10.03) and takes its profit at
# 09:32:30; CCC breaks in the 09:31 minute while AAA is open; BBB in the 09:33 minute,
# after AAA is flat.
AAA = [("09:29:50", 40, "9.95"), ("09:30:30", 60, "10.02"), ("09:31:30", 60, "10.10"),
       ("09:32:30", 150, "10.55")]
CCC = [("09:29:50", 70, "29.95"), ("09:31:00", 210, "30.02")]
BBB = [("09:29:50", 190, "19.95"), ("09:33:00", 90, "20.02")]
THREE = (watcher("AAA", "10.00", "10.50", "9.80"), watcher("BBB", "20.00", "20.50", "19.80"),
         watcher("CCC", "30.00", "30.50", "29.80"))


def test_max_positions_frees_its_slot_when_the_take_profit_fills_as_the_backtest_decides(
        tmp_path: Path) -> None:
    rows = path("AAA", *AAA) + path("CCC", *CCC) + path("BBB", *BBB)
    text = watchlist("  max_positions: 1\n", *THREE)

    async def body() -> None:
        async with running_daemon(rows, text, tmp_path) as r:
            e = r.events
            await r.step(280, until=lambda: "BBB@20.00" in decisions(e))
            live = decisions(e)
            assert live == {"AAA@10.00": ("entered", None),
                            "CCC@30.00": ("rejected", "risk_max_positions"),
                            "BBB@20.00": ("entered", None)}
            assert live == backtest(rows, text)
            tp = [f for f in e.of(ev.OrderFilled) if f.role == "take_profit"]
            assert tp and tp[0].at < at("09:34:00")  # AAA was flat before BBB's trigger
            ledger = r.daemon.today.ledger
            assert ledger.entries == 2 and ledger.slots == 1
            assert await r.finish() == 0

    run(body())


# AAA enters at 10.03 and falls to 9.79 at 09:31:30, where its 9.80 stop (limit 9.78) sells;
# BBB triggers at 09:34.
FALL = [("09:29:50", 40, "9.95"), ("09:30:30", 60, "10.02"), ("09:31:30", 200, "9.79")]


def test_the_daily_loss_trips_the_kill_switch_and_the_next_trigger_is_rejected(
        tmp_path: Path) -> None:
    rows = path("AAA", *FALL) + path("BBB", *BBB)
    text = watchlist("  max_daily_loss_usd: 15\n", THREE[0], THREE[1])

    async def body() -> None:
        async with running_daemon(rows, text, tmp_path) as r:
            e = r.events
            await r.step(280, until=lambda: "BBB@20.00" in decisions(e))
            halted = e.of(ev.Halted)
            assert [(h.reason, h.by) for h in halted] == [("daily_loss", "risk")]
            assert decisions(e)["BBB@20.00"] == ("rejected", "risk_halted")
            assert any(s.state == "halted" for s in e.of(ev.DaemonState))
            assert not [s for s in e.of(ev.OrderSent) if s.symbol == "BBB"]
            assert decisions(e) == backtest(rows, text)
            assert r.daemon.today.ledger.pnl <= -15_000_000
            assert await r.finish() == 0

    run(body())


def test_consecutive_losses_trip_the_kill_switch(tmp_path: Path) -> None:
    rows = path("AAA", *FALL) + path("BBB", *BBB)
    text = watchlist("  max_consecutive_losses: 1\n", THREE[0], THREE[1])

    async def body() -> None:
        async with running_daemon(rows, text, tmp_path) as r:
            e = r.events
            await r.step(280, until=lambda: "BBB@20.00" in decisions(e))
            assert [h.reason for h in e.of(ev.Halted)] == ["consecutive_losses"]
            assert decisions(e)["BBB@20.00"] == ("rejected", "risk_halted")
            assert r.daemon.today.ledger.consecutive_losses == 1
            assert decisions(e) == backtest(rows, text)
            assert await r.finish() == 0

    run(body())


# AAA (09:31:00) and BBB (09:32:00) both hold; AAA's slide to 9.88 is a loss past 10
# dollars that its 9.80 stop does not sell: the kill switch sells both.
SLIDE = [("09:29:50", 40, "9.95"), ("09:30:30", 90, "10.02"), ("09:32:00", 20, "10.10"),
         ("09:32:20", 100, "9.88")]
EARLY_BBB = [("09:29:50", 70, "19.95"), ("09:31:00", 180, "20.02")]


def test_on_halt_flatten_leaves_no_position_at_the_broker(tmp_path: Path) -> None:
    rows = path("AAA", *SLIDE) + path("BBB", *EARLY_BBB)
    text = watchlist("  max_daily_loss_usd: 10\n  on_halt: flatten\n", THREE[0], THREE[1])

    async def body() -> None:
        async with running_daemon(rows, text, tmp_path) as r:
            e = r.events
            engine = r.gw.engine
            ledger = r.daemon.today.ledger
            await r.step(220, until=lambda: len(e.of(ev.FlattenSent)) == 2 and not any(
                q for q, _ in engine.positions().values()) and not ledger.open_books())
            assert [(h.reason, h.flatten) for h in e.of(ev.Halted)] == [("daily_loss", True)]
            assert {f.symbol: f.order_type for f in e.of(ev.FlattenSent)} == {
                "AAA": "MKT", "BBB": "MKT"}
            assert all(q == 0 for q, _ in engine.positions().values())
            assert not engine.open_orders()  # exits cancelled, nothing left working
            assert not r.daemon.today.ledger.open_books()
            assert await r.finish() == 0

    run(body())


async def one_run(gw: SimGateway, wl: Path, var: Path, seconds: float) -> tuple[Daemon, Events]:
    """A daemon on ``var`` for ``seconds`` of the gateway's clock, then a stop."""
    events = Events()
    stop = asyncio.Event()
    daemon = Daemon(watchlists=[wl], var=var, settings=BrokerSettings(port=gw.port),
                    clock=gw.now_ns, log_event=events)
    task = asyncio.get_running_loop().create_task(daemon.run(stop))
    await events.wait(lambda: any(isinstance(x, ev.DaemonState) and x.state in
                                  ("running", "halted") for x in events.items))
    for _ in range(round(seconds * 10)):
        await gw.advance(0.1)
        await asyncio.sleep(0.003)
    stop.set()
    assert await asyncio.wait_for(task, 15) == 0
    return daemon, events


def write_watchlist(var: Path, text: str) -> Path:
    wl = var / "watchlists"
    wl.mkdir()
    (wl / "t.yaml").write_text(text)
    return wl


async def started(rows: list[Row]) -> SimGateway:
    gw = SimGateway(Market(rows), port=0, start=dt.time(9, 29, 50), day=DAY, manual_clock=True)
    await gw.start()
    return gw


def test_a_restart_keeps_the_entries_the_p_and_l_and_the_halt(tmp_path: Path) -> None:
    rows = path("AAA", *FALL) + path("BBB", *BBB)
    wl = write_watchlist(tmp_path, watchlist("  max_daily_loss_usd: 15\n", THREE[0], THREE[1]))

    async def body() -> None:
        gw = await started(rows)
        try:
            first, _ = await one_run(gw, wl, tmp_path, 130)  # AAA stopped out: halted
            before = first.today.ledger
            assert before.halted == "daily_loss" and before.entries == 1
            second, events = await one_run(gw, wl, tmp_path, 130)  # BBB triggers at 09:34
            after = second.today.ledger
            assert (after.halted, after.entries, after.realized) == (
                "daily_loss", 1, before.realized)
            states = [s.state for s in events.of(ev.DaemonState)]
            assert "halted" in states and "running" not in states
            assert decisions(events)["BBB@20.00"] == ("rejected", "risk_halted")
            assert after.realized < 0
        finally:
            await gw.stop()
        journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
        assert [j["reason"] for j in journal if j["event"] == "Halted"] == ["daily_loss"]

    run(body())


def test_a_restart_keeps_open_positions_and_marks_them_again(tmp_path: Path) -> None:
    rows = path("AAA", *SLIDE) + path("BBB", *EARLY_BBB)
    wl = write_watchlist(tmp_path, watchlist("  max_daily_loss_usd: 10\n", THREE[0], THREE[1]))

    async def body() -> None:
        gw = await started(rows)
        try:
            first, _ = await one_run(gw, wl, tmp_path, 170)  # both held, halted at 9.88
            before = first.today.ledger
            assert before.halted == "daily_loss"
            assert sorted(b.symbol for b in before.open_books()) == ["AAA", "BBB"]
            second, events = await one_run(gw, wl, tmp_path, 10)
            after = second.today.ledger
            assert after.halted == "daily_loss" and after.entries == 2
            assert after.positions() == before.positions()  # shares and cost, per symbol
            assert after.marks.get("AAA") == px("9.88")  # its data is held again
            assert {s: q for s, (q, _) in gw.engine.positions().items()} == {
                "AAA": 100, "BBB": 100}
        finally:
            await gw.stop()

    run(body())


def test_a_position_whose_watcher_is_done_keeps_a_live_price_and_p_and_l(tmp_path: Path) -> None:
    rows = path("AAA", ("09:29:50", 40, "9.95"), ("09:30:30", 60, "10.02"),
                ("09:31:30", 60, "10.10"), ("09:32:30", 30, "10.20"))
    text = watchlist("  max_positions: 5\n", watcher("AAA", "10.00", "11.00", "9.80"))

    async def body() -> None:
        async with running_daemon(rows, text, tmp_path) as r:
            e = r.events
            await r.step(165, until=lambda: r.daemon.today.ledger.marks.get("AAA") == 10_200_000
                         and r.daemon.status.price_of("AAA") == Decimal("10.20"))
            assert "AAA@10.00" not in r.daemon.runners  # the watcher is done
            assert r.daemon.held.symbols == ["AAA"]
            assert r.daemon.status.price_of("AAA") == Decimal("10.20")
            ledger = r.daemon.today.ledger
            assert ledger.unrealized == (10_200_000 - 10_030_000) * 100
            assert any(f.role == "entry" for f in e.of(ev.OrderFilled))
            assert await r.finish() == 0

    run(body())


def test_a_trigger_while_the_gateway_is_down_is_rejected_degraded(tmp_path: Path) -> None:
    # The 09:30 minute closes at 10.02; the gateway goes away at 09:30:58, so the bar
    # is closed by the clock while the daemon has no connection (its quote, 10 s fresh
    # by this preset, is still good).
    rows = path("AAA", ("09:29:50", 40, "9.95"), ("09:30:30", 90, "10.02"))
    text = watchlist("  max_positions: 5\n", watcher("AAA", "10.00", "10.50", "9.80")
                     + "    quote_age: 10\n")

    async def body() -> None:
        async with running_daemon(rows, text, tmp_path) as r:
            e = r.events
            await r.step(68)  # 09:30:58
            r.gw.restart(keep_state=True, down_seconds=2.0)
            await e.wait(lambda: bool(e.of(ev.ConnectionLost)))
            await r.step(6, until=lambda: bool(e.of(ev.Rejected)))
            assert [(x.reason, x.detail) for x in e.of(ev.Rejected)] == [
                ("degraded", "no broker connection")]
            assert not e.of(ev.OrderSent)
            assert "degraded" in [s.state for s in e.of(ev.DaemonState)]
            await e.wait(lambda: len(e.of(ev.ConnectionUp)) >= 2, timeout=20)
            await e.wait(lambda: e.of(ev.DaemonState)[-1].state == "running", timeout=10)
            assert await r.finish() == 0

    run(body())


def test_an_entry_the_broker_rejects_frees_its_slot_for_the_next_watcher(tmp_path: Path) -> None:
    # The max_positions day above, with AAA's entry refused by the gateway (error
    # 201): its slot frees when the entry is done, so CCC enters where the backtest
    # (whose entries all fill) rejects it, and BBB then finds CCC holding the slot.
    rows = path("AAA", *AAA) + path("CCC", *CCC) + path("BBB", *BBB)
    text = watchlist("  max_positions: 1\n", *THREE)

    async def body() -> None:
        async with running_daemon(rows, text, tmp_path) as r:
            e = r.events
            r.gw.reject_next_order(201, "not allowed today")
            await r.step(280, until=lambda: "BBB@20.00" in decisions(e))
            assert decisions(e) == {"AAA@10.00": ("entered", None),
                                    "CCC@30.00": ("entered", None),
                                    "BBB@20.00": ("rejected", "risk_max_positions")}
            refused = [s for s in e.of(ev.OrderStatusChanged) if s.role == "entry"
                       and s.order_ref.endswith("AAA@10.00")]
            assert refused and refused[-1].status == "Inactive"
            assert not [f for f in e.of(ev.OrderFilled) if f.symbol == "AAA"]
            assert {s: q for s, (q, _) in r.gw.engine.positions().items() if q} == {"CCC": 100}
            ledger = r.daemon.today.ledger
            assert (ledger.entries, ledger.slots) == (2, 1)  # sent twice, one held
            assert await r.finish() == 0

    run(body())
