"""Decision latency as the sim sees it: market data written -> order received.

For every order the sim notes when the last market data (and the last bar)
of the order's symbol was written to the client that sent it, and when the
order arrived, both on the monotonic clock. The difference is how long the
client took from data to decision to socket: the daemon's bar-to-order
latency, measured from outside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


class _Session(Protocol):
    client_id: int | None
    md_written: dict[str, int]
    bar_written: dict[str, int]


@dataclass(frozen=True, slots=True)
class OrderLatency:
    """One order's arrival and the market data that preceded it (monotonic ns)."""

    client_id: int
    order_id: int
    symbol: str
    received_ns: int
    md_written_ns: int | None
    bar_written_ns: int | None

    @property
    def md_latency_ns(self) -> int | None:
        """Order arrival minus the last market data of the symbol written to the client."""
        return None if self.md_written_ns is None else self.received_ns - self.md_written_ns

    @property
    def bar_latency_ns(self) -> int | None:
        """Order arrival minus the last bar of the symbol written to the client."""
        return None if self.bar_written_ns is None else self.received_ns - self.bar_written_ns


def percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class LatencyStats:
    """Every order's latency record, and percentiles over them."""

    def __init__(self) -> None:
        self.records: list[OrderLatency] = []

    def record_order(self, session: _Session, order_id: int, symbol: str,
                     received_ns: int) -> OrderLatency:
        """Note an order's arrival against what the sim last wrote to its client."""
        rec = OrderLatency(session.client_id or 0, order_id, symbol, received_ns,
                           session.md_written.get(symbol), session.bar_written.get(symbol))
        self.records.append(rec)
        return rec

    def latencies(self, kind: str = "bar") -> list[int]:
        """Latencies in ns, ascending: ``"bar"`` (bar to order) or ``"md"`` (any data)."""
        values = [r.bar_latency_ns if kind == "bar" else r.md_latency_ns for r in self.records]
        return sorted(v for v in values if v is not None)

    def percentiles(self, kind: str = "bar") -> dict[str, int]:
        """count, p50, p90, p99 and max of the latencies (ns); only count when empty."""
        values = self.latencies(kind)
        if not values:
            return {"count": 0}
        return {"count": len(values), "p50": percentile(values, 50),
                "p90": percentile(values, 90), "p99": percentile(values, 99), "max": values[-1]}

    def report(self) -> str:
        """Human text of both latency kinds, in milliseconds."""
        lines = [f"orders received: {len(self.records)}"]
        for kind, label in (("bar", "bar-to-order"), ("md", "data-to-order")):
            pct = self.percentiles(kind)
            if pct["count"] == 0:
                lines.append(f"{label} latency: no orders followed a {kind} of their symbol")
                continue
            parts = ", ".join(f"{k} {v / 1e6:.3f} ms" for k, v in pct.items() if k != "count")
            lines.append(f"{label} latency over {pct['count']} orders: {parts}")
        return "\n".join(lines)
