"""Prometheus metrics: scraped over HTTP while the daemon trades over the sim."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from breakoutd.cli.main import build_parser
from breakoutd.core import events as ev
from breakoutd.daemon.app import Daemon
from breakoutd.daemon.metrics import DaemonMetrics, MetricsServer, parse_address
from breakoutd.errors import OperationalError
from breakoutd.ibkr.settings import BrokerSettings
from breakoutd.sim import Market, Row, SimGateway
from tests.daemon.daemonkit import DAY, Events
from tests.daemon.test_daemon_sim import BRACKET, ramp


@contextlib.asynccontextmanager
async def daemon_with_metrics(rows: list[Row], var: Path
                              ) -> AsyncIterator[tuple[SimGateway, Events, MetricsServer,
                                                       asyncio.Event, asyncio.Task[int]]]:
    """The daemon over a manual-clock sim, its events also feeding the metrics endpoint."""
    wl = var / "watchlists"
    wl.mkdir(parents=True)
    (wl / "test.yaml").write_text(BRACKET)
    gw = SimGateway(Market(rows), port=0, start=dt.time(9, 29, 50), day=DAY, manual_clock=True)
    await gw.start()
    events, metrics = Events(), DaemonMetrics()
    server = MetricsServer(metrics, port=0)

    def log_event(e: ev.Event) -> None:  # as `breakoutd run --metrics` wires it
        events(e)
        metrics.on_event(e)

    stop = asyncio.Event()
    daemon = Daemon(watchlists=[wl], var=var, settings=BrokerSettings(port=gw.port),
                    clock=gw.now_ns, log_event=log_event)
    task = asyncio.get_running_loop().create_task(daemon.run(stop))
    try:
        yield gw, events, server, stop, task
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
        server.close()
        await gw.stop()


def _samples(server: MetricsServer) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{server.host}:{server.port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def _scrape(server: MetricsServer) -> dict[str, float]:
    return await asyncio.to_thread(_samples, server)


async def _step(gw: SimGateway, seconds: float) -> None:
    for _ in range(round(seconds * 10)):
        await gw.advance(0.1)
        await asyncio.sleep(0.003)


def test_a_scrape_during_a_sim_run_sees_the_entry_the_fill_and_the_states(
        tmp_path: Path) -> None:
    rows = ramp("09:29:50", 40, "9.95") + ramp("09:30:30", 30, "10.02")
    rows += ramp("09:31:00", 10, "10.02") + ramp("09:31:10", 10, "10.55")

    async def body() -> None:
        async with daemon_with_metrics(rows, tmp_path) as (gw, events, server, stop, task):
            await events.wait(lambda: bool(events.of(ev.WatcherStarted)))
            before = await _scrape(server)
            assert before['breakoutd_daemon_state{breakoutd_daemon_state="running"}'] == 1
            assert before["breakoutd_broker_connected"] == 1
            assert before['breakoutd_watchers{state="armed"}'] == 1
            assert before.get('breakoutd_entries_total{kind="close"}', 0) == 0
            for _ in range(100):
                await _step(gw, 1)
                if any(f.role == "take_profit" for f in events.of(ev.OrderFilled)):
                    break
            after = await _scrape(server)
            stop.set()
            assert await asyncio.wait_for(task, 15) == 0
        assert after['breakoutd_watchers{state="armed"}'] == 0
        assert after['breakoutd_watchers{state="entered"}'] == 1
        assert after['breakoutd_entries_total{kind="close"}'] == 1
        assert after['breakoutd_fills_total{role="entry",side="BOT"}'] == 1
        assert after['breakoutd_fills_total{role="take_profit",side="SLD"}'] == 1
        # 100 x (10.50 - 10.03) less $1 on each of the two orders
        assert after["breakoutd_realized_pnl_usd"] == pytest.approx(45.0)
        assert after["breakoutd_open_positions"] == 0
        assert after["breakoutd_order_round_trip_seconds_count"] >= 3
        assert after["breakoutd_bar_to_order_seconds_count"] == 1

    asyncio.run(asyncio.wait_for(body(), 90))


def test_the_endpoint_binds_loopback_unless_told_otherwise() -> None:
    assert parse_address("9108") == ("127.0.0.1", 9108)
    assert parse_address("0.0.0.0:9108") == ("0.0.0.0", 9108)
    assert parse_address("[::1]:9108") == ("::1", 9108)
    args = build_parser().parse_args(["run", "--metrics", "9108"])
    assert args.metrics == ("127.0.0.1", 9108)
    assert build_parser().parse_args(["run"]).metrics is None
    with pytest.raises(ValueError, match="expected \\[HOST:\\]PORT"):
        parse_address("localhost:http")
    server = MetricsServer(DaemonMetrics(), port=0)
    try:
        assert server.host == "127.0.0.1"
        assert "breakoutd_broker_connected 0.0" in urllib.request.urlopen(
            f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode()
        with pytest.raises(OperationalError, match="cannot serve metrics"):
            MetricsServer(DaemonMetrics(), port=server.port)
    finally:
        server.close()


ROOT = Path(__file__).resolve().parents[2]


def test_the_dashboard_and_the_scrape_job_use_what_the_daemon_serves() -> None:
    import json
    import re

    import yaml

    served = {m.name for m in DaemonMetrics().registry.collect()}
    dashboard = json.loads((ROOT / "deploy" / "grafana-breakoutd.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_(total|bucket|count|sum)$", "", n)
            for e in exprs for n in re.findall(r"breakoutd_\w+", e)}
    assert used == served  # every metric on the dashboard, and nothing it does not serve
    job = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())["scrape_configs"][0]
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:9108"]
    doc = (ROOT / "docs" / "deploy.md").read_text()
    assert "deploy/prometheus.yml" in doc and "deploy/grafana-breakoutd.json" in doc
    assert all(f"`{name}" in doc for name in served)
