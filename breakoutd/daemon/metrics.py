"""``breakoutd run --metrics [HOST:]PORT``: the daemon's numbers in Prometheus text format.

Every metric is a view of the event catalog, like the journal and the status
file: :meth:`DaemonMetrics.on_event` folds each event as the daemon emits
it, the day's P&L and open positions through the day ledger the daemon
decides with. The official client library (prometheus_client) serves them
from a thread of its own, so a scrape never waits on the event loop. The
endpoint binds the loopback interface unless told otherwise: the numbers say
what is traded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, start_http_server

from breakoutd.core import events as ev
from breakoutd.core.bars import NS
from breakoutd.core.ledger import DayLedger
from breakoutd.core.params import RiskLimits
from breakoutd.core.prices import MICROS_PER_DOLLAR
from breakoutd.errors import OperationalError

DEFAULT_HOST = "127.0.0.1"
DAEMON_STATES = ["starting", "running", "degraded", "paused", "halted", "stopping", "stopped"]
WATCHER_STATES = ("armed", "triggered", "entered", "rejected", "expired", "stopped")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def parse_address(text: str) -> tuple[str, int]:
    """``PORT`` or ``HOST:PORT`` (the host defaults to loopback)."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"--metrics {text!r}: expected [HOST:]PORT") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"--metrics {text!r}: the port must be 0..65535")
    return (host.strip("[]") or DEFAULT_HOST), number


class DaemonMetrics:
    """The metrics, fed the daemon's events (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.connected = Gauge("breakoutd_broker_connected",
                               "1 while connected and synchronised with the gateway", registry=r)
        self.state = Enum("breakoutd_daemon_state", "The daemon's state", states=DAEMON_STATES,
                          registry=r)
        self.watchers = Gauge("breakoutd_watchers", "Watchers of the day by state", ["state"],
                              registry=r)
        self.entries = Counter("breakoutd_entries", "Entries sent", ["kind"], registry=r)
        self.fills = Counter("breakoutd_fills", "Executions", ["role", "side"], registry=r)
        self.rejections = Counter("breakoutd_rejections", "Triggers that did not enter",
                                  ["reason"], registry=r)
        self.realized = Gauge("breakoutd_realized_pnl_usd",
                              "The day's realized P&L after commissions", registry=r)
        self.commissions = Gauge("breakoutd_commissions_usd", "The day's commissions",
                                 registry=r)
        self.positions = Gauge("breakoutd_open_positions", "Entries holding shares", registry=r)
        self.bar_health = Counter("breakoutd_bar_stream_problems", "Bar streams late or gapped",
                                  ["kind"], registry=r)
        self.bar_lag = Gauge("breakoutd_bar_lag_seconds", "The last lag or gap reported",
                             ["symbol", "kind"], registry=r)
        self.reloads = Counter("breakoutd_reloads", "Watchlist reloads by result", ["result"],
                               registry=r)
        self.round_trip = Histogram(
            "breakoutd_order_round_trip_seconds",
            "An order handed to the connection until the broker's first answer about it",
            buckets=LATENCY_BUCKETS, registry=r)
        self.bar_to_order = Histogram(
            "breakoutd_bar_to_order_seconds",
            "The trigger bar's close until the entry is on the socket",
            buckets=LATENCY_BUCKETS, registry=r)
        for state in WATCHER_STATES:
            self.watchers.labels(state).set(0)
        self._ledger = DayLedger(RiskLimits())
        self._watcher_state: dict[str, str] = {}
        self._sent: dict[int, int] = {}  # order id -> when it was sent, until answered
        self._entry_sent: dict[str, int] = {}  # order ref -> when its entry was sent
        self._trigger: dict[str, int] = {}  # order ref -> its trigger bar's close
        self._handlers: dict[type[ev.Event], Callable[[Any], None]] = {
            ev.ConnectionUp: lambda e: self.connected.set(1),
            ev.ConnectionLost: lambda e: self.connected.set(0),
            ev.DaemonState: self._daemon_state,
            ev.WatcherStarted: lambda e: self._watcher(e.watcher_id, "armed"),
            ev.FastTriggered: lambda e: self._watcher(e.watcher_id, "triggered"),
            ev.Confirmed: lambda e: self._watcher(e.watcher_id, "triggered"),
            ev.Expired: lambda e: self._watcher(e.watcher_id, "expired"),
            ev.Stopped: lambda e: self._watcher(e.watcher_id, "stopped"),
            ev.Rejected: self._rejected,
            ev.OrderIntent: self._intent,
            ev.OrderSent: self._order_sent,
            ev.OrderIdAssigned: self._answered,
            ev.OrderStatusChanged: self._answered,
            ev.OrderFilled: lambda e: self.fills.labels(e.role, e.side).inc(),
            ev.BarStreamHealth: self._bar_health,
            ev.ConfigReloaded: lambda e: self.reloads.labels(e.result).inc(),
        }

    def on_event(self, e: ev.Event) -> None:
        """Fold one event (called for every event the daemon emits)."""
        handler = self._handlers.get(type(e))
        if handler is not None:
            handler(e)
        self._ledger.apply(e)
        self.realized.set(self._ledger.realized / MICROS_PER_DOLLAR)
        self.commissions.set(self._ledger.commissions / MICROS_PER_DOLLAR)
        self.positions.set(len(self._ledger.open_books()))

    def _daemon_state(self, e: ev.DaemonState) -> None:
        if e.state in DAEMON_STATES:
            self.state.state(e.state)

    def _watcher(self, watcher_id: str, state: str) -> None:
        old = self._watcher_state.get(watcher_id)
        if old is not None:
            self.watchers.labels(old).dec()
        self._watcher_state[watcher_id] = state
        self.watchers.labels(state).inc()

    def _rejected(self, e: ev.Rejected) -> None:
        self.rejections.labels(e.reason).inc()
        self._watcher(e.watcher_id, "rejected")

    def _intent(self, e: ev.OrderIntent) -> None:
        self.entries.labels(e.kind).inc()
        self._watcher(e.watcher_id, "entered")
        self._trigger[e.order_ref] = e.trigger_at
        self._bar_to_order(e.order_ref)

    def _order_sent(self, e: ev.OrderSent) -> None:
        self._sent[e.order_id] = e.at
        if e.role == "entry":
            self._entry_sent.setdefault(e.order_ref, e.at)
            self._bar_to_order(e.order_ref)

    def _bar_to_order(self, ref: str) -> None:
        if ref in self._trigger and ref in self._entry_sent:
            sent, trigger = self._entry_sent.pop(ref), self._trigger.pop(ref)
            self.bar_to_order.observe(max(sent - trigger, 0) / NS)

    def _answered(self, e: ev.OrderIdAssigned | ev.OrderStatusChanged) -> None:
        sent = self._sent.pop(e.order_id, None)
        if sent is not None:
            self.round_trip.observe(max(e.at - sent, 0) / NS)

    def _bar_health(self, e: ev.BarStreamHealth) -> None:
        self.bar_health.labels(e.kind).inc()
        self.bar_lag.labels(e.symbol, e.kind).set(e.seconds)


class MetricsServer:
    """The HTTP endpoint: Prometheus text at any path of ``host:port``."""

    def __init__(self, metrics: DaemonMetrics, host: str = DEFAULT_HOST, port: int = 9108
                 ) -> None:
        try:
            self._server, self._thread = start_http_server(port, addr=host,
                                                           registry=metrics.registry)
        except OSError as exc:
            raise OperationalError(f"cannot serve metrics on {host}:{port}: {exc}") from exc
        self.host, self.port = self._server.server_address[:2]

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
