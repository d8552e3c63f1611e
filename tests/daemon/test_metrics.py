"""``breakoutd run --metrics``: Prometheus text a scraper reads during a sim run."""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from breakoutd.cli.main import build_parser
from breakoutd.core import events as ev
from breakoutd.daemon.app import Daemon
from breakoutd.daemon.metrics import parse_address
from breakoutd.ibkr.settings import BrokerSettings
from breakoutd.sim import Market, SimGateway
from tests.daemon.daemonkit import DAY, Events
from tests.daemon.test_daemon_sim import BRACKET, ramp


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_scrape_sees_the_entry_the_fill_and_the_state_change(tmp_path: Path) -> None:
    # DEMO closes the 09:30 minute at 10.02: BUY 100 LMT 10.03 at 09:31:00, filled.
    rows = ramp("09:29:50", 40, "9.95") + ramp("09:30:30", 90, "10.02")
    wl = tmp_path / "watchlists"
    wl.mkdir()
    (wl / "w.yaml").write_text(BRACKET)

    async def body() -> tuple[dict, dict, dict, dict]:  # type: ignore[type-arg]
        gw = SimGateway(Market(rows), port=0, start=dt.time(9, 29, 55), day=DAY,
                        manual_clock=True)
        await gw.start()
        events = Events()
        stop = asyncio.Event()
        daemon = Daemon(watchlists=[wl], var=tmp_path, settings=BrokerSettings(port=gw.port),
                        clock=gw.now_ns, log_event=events, metrics=("127.0.0.1", 0))
        task = asyncio.get_running_loop().create_task(daemon.run(stop))
        try:
            await events.wait(lambda: bool(events.of(ev.DaemonState)) and
                              events.of(ev.DaemonState)[-1].state == "running")
            assert daemon.metrics_server is not None
            assert daemon.metrics_server.host == "127.0.0.1"
            port = daemon.metrics_server.port
            armed = await asyncio.to_thread(scrape, port)
            for _ in range(700):
                await gw.advance(0.1)
                await asyncio.sleep(0.003)
                if any(f.role == "entry" for f in events.of(ev.OrderFilled)):
                    break
            await events.wait(lambda: bool(events.of(ev.OrderStatusChanged)))
            traded = await asyncio.to_thread(scrape, port)
            ledger = daemon.today.ledger  # the clock has not moved: the same numbers
            money = {"unrealized": ledger.unrealized, "total": ledger.pnl,
                     "commissions": ledger.commissions}
            await daemon.controls.pause(uid=0)
            paused = await asyncio.to_thread(scrape, port)
            stop.set()
            assert await asyncio.wait_for(task, 15) == 0
        finally:
            await gw.stop()
        return armed, traded, paused, money

    armed, traded, paused, money = asyncio.run(asyncio.wait_for(body(), 90))
    state = "breakoutd_engine_state"
    assert armed[(state, (("state", "running"),))] == 1
    assert armed[("breakoutd_watchers", (("state", "armed"),))] == 1
    assert armed[("breakoutd_broker_connected", ())] == 1
    assert ("breakoutd_entries_total", (("kind", "close"),)) not in armed
    assert traded[("breakoutd_entries_total", (("kind", "close"),))] == 1
    assert traded[("breakoutd_fills_total", (("role", "entry"),))] >= 1
    assert traded[("breakoutd_filled_shares_total", (("role", "entry"),))] == 100
    assert traded[("breakoutd_entries_today", ())] == 1
    assert traded[("breakoutd_open_positions", ())] == 1
    assert traded[("breakoutd_bar_to_order_seconds_count", ())] == 1
    assert traded[("breakoutd_order_round_trip_seconds_count", ())] >= 1
    for part, micros in money.items():  # the day ledger's numbers, not a copy
        assert traded[("breakoutd_pnl_usd", (("part", part),))] == micros / 1e6
    assert money["commissions"] > 0
    assert paused[(state, (("state", "paused"),))] == 1
    assert paused[(state, (("state", "running"),))] == 0


def test_the_endpoint_binds_loopback_unless_told_otherwise() -> None:
    assert parse_address("9108") == ("127.0.0.1", 9108)
    assert parse_address(":9108") == ("127.0.0.1", 9108)
    assert parse_address("0.0.0.0:9108") == ("0.0.0.0", 9108)
    args = build_parser().parse_args(["run", "--metrics", "9108"])
    assert args.metrics == ("127.0.0.1", 9108)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--metrics", "localhost:http"])


def test_the_dashboard_and_the_docs_name_only_metrics_the_daemon_serves() -> None:
    import json
    import re

    root = Path(__file__).resolve().parents[2]
    served = {"breakoutd_engine_state", "breakoutd_broker_connected", "breakoutd_halted",
              "breakoutd_watchers", "breakoutd_pnl_usd", "breakoutd_open_positions",
              "breakoutd_entries_today"}
    from breakoutd.daemon.metrics import DaemonMetrics, Snapshot

    metrics = DaemonMetrics(lambda: Snapshot("running", True, {}, 0, 0, 0, 0, 0, 0))
    for family in metrics.registry.collect():
        served.add(family.name + ("_total" if family.type == "counter" else ""))
    dashboard = json.loads((root / "systemd" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_(bucket|count|sum)$", "", m) for e in exprs
            for m in re.findall(r"breakoutd_[a-z_]+", e)}
    assert used and used <= served
    documented = set(re.findall(r"`(breakoutd_[a-z_]+)", (root / "docs" / "deploy.md").read_text()))
    assert served <= documented
