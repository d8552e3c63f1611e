"""``breakoutd run --metrics HOST:PORT``: the daemon in Prometheus text format.

Another view of the event catalog, beside the journal, the status file and
the console: counters and histograms follow the events as the daemon emits
them (:meth:`DaemonMetrics.observe`); the day's money and positions are read
from the day ledger when scraped (the numbers the kill switch uses, not a
copy), the watchers from the status model, the engine and connection state
from the daemon. The endpoint is served by the official client library's
HTTP server on its own thread, bound to loopback unless told otherwise: it
tells anyone who can reach it what the account is doing.

Metric names are documented in docs/deploy.md ("Metrics").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from breakoutd.core import events as ev
from breakoutd.core.bars import NS

MICROS = 1_000_000
ENGINE_STATES = ("starting", "running", "degraded", "paused", "halted", "stopping", "stopped")
WATCHER_STATES = ("waiting", "armed", "triggered", "entered", "done")
# Seconds: from well under a millisecond (the send) to several seconds (a slow gateway).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)


@dataclass(slots=True)
class Snapshot:
    """What a scrape reads from the daemon at that moment."""

    engine_state: str
    connected: bool
    watchers: dict[str, int]
    realized_usd: float
    unrealized_usd: float
    commissions_usd: float
    pnl_usd: float
    open_positions: int
    entries_today: int
    halted_reason: str | None = None


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``PORT`` (loopback) as a bind address; ValueError when neither."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"not HOST:PORT or PORT: {text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return host, port


class _Live(Collector):
    """Gauges read at scrape time from the daemon's own numbers."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self._snapshot()
        state = GaugeMetricFamily("breakoutd_engine_state", "1 for the engine's state",
                                  labels=["state"])
        for name in ENGINE_STATES:
            state.add_metric([name], 1.0 if s.engine_state == name else 0.0)
        yield state
        yield GaugeMetricFamily("breakoutd_broker_connected",
                                "1 while the broker connection is up", value=float(s.connected))
        halted = GaugeMetricFamily("breakoutd_halted", "1 while the kill switch holds",
                                   labels=["reason"])
        if s.halted_reason is not None:
            halted.add_metric([s.halted_reason], 1.0)
        yield halted
        watchers = GaugeMetricFamily("breakoutd_watchers", "today's watchers by state",
                                     labels=["state"])
        for name in sorted(set(WATCHER_STATES) | set(s.watchers)):
            watchers.add_metric([name], float(s.watchers.get(name, 0)))
        yield watchers
        pnl = GaugeMetricFamily("breakoutd_pnl_usd", "today's P&L in USD (the day ledger's)",
                                labels=["part"])
        for part, value in (("realized", s.realized_usd), ("unrealized", s.unrealized_usd),
                            ("commissions", s.commissions_usd), ("total", s.pnl_usd)):
            pnl.add_metric([part], value)
        yield pnl
        yield GaugeMetricFamily("breakoutd_open_positions", "symbols with shares held",
                                value=float(s.open_positions))
        yield GaugeMetricFamily("breakoutd_entries_today", "entries sent today",
                                value=float(s.entries_today))


class DaemonMetrics:
    """The registry: event counters and histograms, and the live gauges."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.entries = Counter("breakoutd_entries", "entries sent", ["kind"], registry=r)
        self.fills = Counter("breakoutd_fills", "executions", ["role"], registry=r)
        self.filled_shares = Counter("breakoutd_filled_shares", "shares executed", ["role"],
                                     registry=r)
        self.rejections = Counter("breakoutd_rejections", "triggers rejected", ["reason"],
                                  registry=r)
        self.reloads = Counter("breakoutd_reloads", "watchlist reloads", ["result"], registry=r)
        self.stream_health = Counter("breakoutd_bar_stream_health",
                                     "bar stream problems (gap, lag, late_print)", ["kind"],
                                     registry=r)
        self.bar_lag = Histogram("breakoutd_bar_lag_seconds",
                                 "how late a reported late bar or print was", registry=r,
                                 buckets=(0.5, 1, 2, 5, 10, 30, 60, 300))
        self.disconnects = Counter("breakoutd_disconnects", "broker connections lost",
                                   registry=r)
        self.halts = Counter("breakoutd_halts", "kill-switch trips and operator halts",
                             ["reason"], registry=r)
        self.bar_to_order = Histogram(
            "breakoutd_bar_to_order_seconds",
            "from the end of the trigger bar to the entry on the socket", registry=r,
            buckets=LATENCY_BUCKETS)
        self.round_trip = Histogram(
            "breakoutd_order_round_trip_seconds",
            "from an order on the socket to the broker's first status for it", registry=r,
            buckets=LATENCY_BUCKETS)
        r.register(_Live(snapshot))
        self._triggers: dict[str, int] = {}  # watcher id -> the trigger bar's end
        self._trigger_of_ref: dict[str, int] = {}  # the same, by the entry's orderRef
        self._sent: dict[int, int] = {}  # order id -> when it was sent

    def observe(self, e: ev.Event) -> None:
        """Count one event of the catalog."""
        count = _COUNTS.get(type(e))
        if count is not None:
            count(self, e)

    def _trigger(self, e: ev.FastTriggered | ev.Confirmed) -> None:
        self._triggers[e.watcher_id] = e.at

    def _intent(self, e: ev.OrderIntent) -> None:
        self.entries.labels(e.kind).inc()
        trigger = self._triggers.pop(e.watcher_id, None)
        if trigger is not None:
            self._trigger_of_ref[e.order_ref] = trigger

    def _sent_order(self, e: ev.OrderSent) -> None:
        self._sent[e.order_id] = e.at
        trigger = self._trigger_of_ref.pop(e.order_ref, None) if e.role == "entry" else None
        if trigger is not None:
            self.bar_to_order.observe(max(0, e.at - trigger) / NS)

    def _status(self, e: ev.OrderStatusChanged) -> None:
        sent = self._sent.pop(e.order_id, None)
        if sent is not None:
            self.round_trip.observe(max(0, e.at - sent) / NS)

    def _filled(self, e: ev.OrderFilled) -> None:
        self.fills.labels(e.role).inc()
        self.filled_shares.labels(e.role).inc(e.qty)

    def _rejected(self, e: ev.Rejected) -> None:
        self.rejections.labels(e.reason).inc()
        self._triggers.pop(e.watcher_id, None)

    def _health(self, e: ev.BarStreamHealth) -> None:
        self.stream_health.labels(e.kind).inc()
        if e.kind in ("lag", "late_print"):
            self.bar_lag.observe(e.seconds)


_COUNTS: dict[type[ev.Event], Callable[[DaemonMetrics, Any], None]] = {
    ev.FastTriggered: DaemonMetrics._trigger,
    ev.Confirmed: DaemonMetrics._trigger,
    ev.OrderIntent: DaemonMetrics._intent,
    ev.OrderSent: DaemonMetrics._sent_order,
    ev.OrderStatusChanged: DaemonMetrics._status,
    ev.OrderFilled: DaemonMetrics._filled,
    ev.Rejected: DaemonMetrics._rejected,
    ev.BarStreamHealth: DaemonMetrics._health,
    ev.ConfigReloaded: lambda m, e: m.reloads.labels(e.result).inc(),
    ev.ConnectionLost: lambda m, e: m.disconnects.inc(),
    ev.Halted: lambda m, e: m.halts.labels(e.reason).inc(),
}


class MetricsServer:
    """The HTTP endpoint on its own thread; ``port`` is the bound one (0 picks a free port)."""

    def __init__(self, metrics: DaemonMetrics, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, addr=host,
                                                       registry=metrics.registry)
        self.host = host
        self.port = int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def on_loop(loop: asyncio.AbstractEventLoop, read: Callable[[], Snapshot],
            timeout: float = 2.0) -> Callable[[], Snapshot]:
    """``read`` run on the daemon's event loop for a scrape on the server's thread: the
    ledger and the status model are only ever touched by the loop."""
    def snapshot() -> Snapshot:
        done: concurrent.futures.Future[Snapshot] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(read())
            except Exception as exc:  # reported to the scraper as a failed scrape
                done.set_exception(exc)
        loop.call_soon_threadsafe(run)
        return done.result(timeout)
    return snapshot


def usd(micros: int) -> float:
    """Micro-dollars as the float USD Prometheus carries."""
    return micros / MICROS
