"""The nightly restart and order ids: the daemon never uses an order id twice.

After a gateway restart the daemon reconnects and ib_async's id counter starts
again at the gateway's nextValidId. IB keeps the sequence over a restart, but
an operator may reset it (TWS: Reset API order ID sequence), so the test's
gateway offers 1 after its restart, the worst case; the daemon's own
high-water mark (in the day's state) keeps every new id above what it used.
"""

from __future__ import annotations

from pathlib import Path

from breakoutd.core import events as ev
from tests.daemon.daemonkit import at, running_daemon
from tests.daemon.test_risk_live import path, run, watcher, watchlist

# AAA breaks in the 09:30 minute (entered 09:31:00) and takes its profit at 09:32:30:
# none of its orders is open at the gateway's restart (09:33:20), so ib_async's reading
# of the open orders cannot lift its counter; BBB breaks in the 09:33 minute (entered
# 09:34:00, after the restart).
ROWS = (path("AAA", ("09:29:50", 40, "9.95"), ("09:30:30", 60, "10.02"), ("09:31:30", 60, "10.10"),
             ("09:32:30", 150, "10.55"))
        + path("BBB", ("09:29:50", 190, "19.95"), ("09:33:00", 90, "20.02")))
TEXT = watchlist("  max_positions: 2\n", watcher("AAA", "10.00", "10.50", "9.80"),
                 watcher("BBB", "20.00", "20.50", "19.80"))


def test_after_the_gateways_restart_no_order_id_is_used_again(tmp_path: Path) -> None:
    async def body() -> None:
        async with running_daemon(ROWS, TEXT, tmp_path) as r:
            e = r.events
            await r.step(200, until=lambda: any(f.role == "take_profit"
                                                for f in e.of(ev.OrderFilled)))
            before = [s.order_id for s in e.of(ev.OrderSent)]
            assert {s.symbol for s in e.of(ev.OrderSent)} == {"AAA"}
            await r.step(60, until=lambda: r.gw.now_ns() >= at("09:33:20"))
            assert r.gw.engine.open_orders(None) == []  # AAA is flat, its stop cancelled
            r.gw.next_order_id = lambda client_id: 1  # type: ignore[method-assign]
            r.gw.restart(keep_state=True, down_seconds=0.0)
            await e.wait(lambda: len(e.of(ev.ConnectionUp)) >= 2, timeout=20)
            await r.step(60, until=lambda: any(s.symbol == "BBB" for s in e.of(ev.OrderSent)))
            sent = [s.order_id for s in e.of(ev.OrderSent)]
            after = [s.order_id for s in e.of(ev.OrderSent) if s.symbol == "BBB"]
            assert len(after) == 3 and min(after) > max(before)
            assert len(set(sent)) == len(sent)
            assert r.daemon.today.order_id_high_water == max(sent)
            assert await r.finish() == 0

    run(body())
