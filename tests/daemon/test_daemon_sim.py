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

