"""The daemon end to end against the simulated gateway, through ib_async over loopback."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from breakoutd.core import events as ev
from breakoutd.daemon.journal import read_journal
from breakoutd.sim import Row
from tests.daemon.daemonkit import DAY, at, running_daemon, trade_row

BRACKET = """\
breakouts:
  - symbol: DEMO
    level: 10.00
    qty: 100
    tp: 10.50
    sl: 9.80
"""


def ramp(start: str, n: int, price: str, symbol: str = "DEMO") -> list[Row]:
    """n quiet seconds at a price: a trade each second, a one-cent quote that keeps changing size."""
    h, m, s = map(int, start.split(":"))
    t0 = h * 3600 + m * 60 + s
    p = Decimal(price)
    out = []
    for i in range(n):
        t = t0 + i
        hms = f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"
        r = trade_row(hms, symbol, str(p), str(p), str(p), str(p), str(p - Decimal("0.01")),
                      str(p + Decimal("0.01")))
        out.append(r._replace(bid_size=100 + 100 * (i % 2)))  # the quote stays fresh
    return out


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


def test_breakout_to_filled_bracket_with_complete_journals(tmp_path: Path) -> None:
    # 09:30 minute closes at 10.02 (>= 10.00, never 6c above: no fast trigger);
    # the ask in force at 09:31:00 is 10.03; then the price runs to 10.55.
    rows = ramp("09:29:50", 40, "9.95") + ramp("09:30:30", 30, "10.02")
    rows += ramp("09:31:00", 10, "10.02") + ramp("09:31:10", 10, "10.55")

    async def body() -> None:
        async with running_daemon(rows, BRACKET, tmp_path) as r:
            e = r.events
            await r.step(100, until=lambda: any(
                x.role == "take_profit" for x in e.of(ev.OrderFilled)))
            confirmed = e.of(ev.Confirmed)
            assert [c.at for c in confirmed] == [at("09:31:00")]
            intent = e.of(ev.OrderIntent)[0]
            assert (intent.limit, intent.take_profits, intent.stop, intent.stop_limit) == (
                Decimal("10.03"), (Decimal("10.50"),), Decimal("9.80"), Decimal("9.78"))
            sent = e.of(ev.OrderSent)
            assert [(s.role, s.order_type, s.qty) for s in sent] == [
                ("entry", "LMT", 100), ("take_profit", "LMT", 100), ("stop", "STP LMT", 100)]
            fills = e.of(ev.OrderFilled)
            assert [(f.role, f.price, f.qty) for f in fills] == [
                ("entry", Decimal("10.03"), 100), ("take_profit", Decimal("10.50"), 100)]
            await e.wait(lambda: any(s.role == "stop" and s.status == "Cancelled"
                                     for s in e.of(ev.OrderStatusChanged)))
            assert await r.finish() == 0
        journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
        names = [j["event"] for j in journal]
        for name in ("WatcherStarted", "Confirmed", "OrderIntent", "OrderSent", "OrderFilled",
                     "OrderStatusChanged", "DaemonState"):
            assert name in names
        assert journal[-1]["event"] == "DaemonState" and journal[-1]["state"] == "stopped"
        assert names.index("OrderIntent") < names.index("OrderSent")

    run(body())



def test_stale_quote_waits_snapshots_and_rejects_with_the_age(tmp_path: Path) -> None:
    # The offer goes away at 09:30:30 (ask 0) and the quote then stays as it is:
    # at the 09:31:00 trigger the quote is 30 s old with no valid ask, the warmup
    # brings nothing new and the snapshot has no ask either.
    rows = ramp("09:29:50", 40, "9.95") + [
        r._replace(ask=0, ask_size=0, bid_size=100) for r in ramp("09:30:30", 40, "10.02")]

    async def body() -> None:
        async with running_daemon(rows, BRACKET, tmp_path) as r:
            e = r.events
            await r.step(100, until=lambda: bool(e.of(ev.Rejected)))
            rejected = e.of(ev.Rejected)
            assert len(rejected) == 1
            rej = rejected[0]
            assert (rej.reason, rej.kind, rej.trigger_at) == ("quote_stale", "close", at("09:31:00"))
            # The ask-less quote of the 09:30:30 row arrived at 09:30:31.
            assert rej.quote_age is not None and 29 <= rej.quote_age < 30
            assert not e.of(ev.OrderSent)
            assert await r.finish() == 0

    run(body())


def test_fast_rule_fires_first_and_the_close_rule_is_bypassed(tmp_path: Path) -> None:
    # 09:30:23 (k = 2, m = 1.25: D 14c, S 4c): high 10.14, low 10.11, close 10.13.
    spike = trade_row("09:30:23", "DEMO", "10.12", "10.14", "10.11", "10.13", "10.12", "10.14")
    rows = ramp("09:29:50", 33, "9.95") + [spike] + ramp("09:30:24", 60, "10.13")

    async def body() -> None:
        async with running_daemon(rows, BRACKET, tmp_path) as r:
            e = r.events
            await r.step(60, until=lambda: bool(e.of(ev.OrderFilled)))
            fast = e.of(ev.FastTriggered)
            assert [f.at for f in fast] == [at("09:30:24")]
            intent = e.of(ev.OrderIntent)[0]
            assert (intent.kind, intent.limit) == ("fast", Decimal("10.14"))
            await r.step(40)  # past the 09:30 minute's close: nothing more happens
            assert not e.of(ev.Confirmed) and len(e.of(ev.OrderIntent)) == 1
            assert await r.finish() == 0

    run(body())


def test_the_paper_guard_refuses_a_live_account(tmp_path: Path) -> None:
    rows = ramp("09:29:50", 20, "9.95")

    async def body() -> None:
        from breakoutd.errors import OperationalError

        try:
            async with running_daemon(rows, BRACKET, tmp_path, account="U7654321") as r:
                await r.finish()
        except OperationalError as exc:
            assert "U7654321 is a live account" in str(exc)
        else:
            raise AssertionError("a live account was accepted")
        ops = (tmp_path / "journal" / DAY.isoformat() / "events.jsonl").read_text()
        assert "OrderSent" not in ops

    run(body())


def test_a_refused_start_is_journalled_with_its_error(tmp_path: Path) -> None:
    test_the_paper_guard_refuses_a_live_account(tmp_path)
    ops = (tmp_path / "journal" / DAY.isoformat() / "ops.jsonl").read_text()
    assert "U7654321 is a live account" in ops


def test_gateway_restart_and_1101_mid_session_watchers_go_on(tmp_path: Path) -> None:
    # The break comes at 09:31 (minute closes 10.02), after a gateway restart at
    # 09:30:05 and a 1101 (data lost) at 09:30:20: both must be survived.
    rows = ramp("09:29:50", 70, "9.95") + ramp("09:31:00", 60, "10.02")

    async def body() -> None:
        async with running_daemon(rows, BRACKET, tmp_path) as r:
            e = r.events
            await r.step(15)
            r.gw.restart(keep_state=True, down_seconds=0.0)
            await e.wait(lambda: len(e.of(ev.ConnectionUp)) >= 2, timeout=20)
            assert e.of(ev.ConnectionLost) and e.of(ev.Reconnecting)
            await e.wait(lambda: any(d.reason == "reconnect" for d in e.of(ev.DataResubscribed)))
            await r.step(15)
            r.gw.send_notice(1101)
            await e.wait(lambda: any(d.reason.startswith("1101") or d.reason == "data lost"
                                     for d in e.of(ev.DataResubscribed))
                         or len(e.of(ev.DataResubscribed)) >= 2)
            await r.step(120, until=lambda: bool(e.of(ev.OrderFilled)))
            assert [c.at for c in e.of(ev.Confirmed)] == [at("09:32:00")]
            assert not e.of(ev.BarStreamHealth)  # the resubscriptions' snapshots are not prints
            assert [f.role for f in e.of(ev.OrderFilled)] == ["entry"]
            assert len(e.of(ev.WatcherStarted)) == 1  # armed once, never re-armed
            assert await r.finish() == 0

    run(body())
