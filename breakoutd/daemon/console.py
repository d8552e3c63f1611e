"""Console output through loguru: what an operator wants to see, or JSON for shipping.

Every event goes to the journal; the console shows the ones an operator acts
on or follows (arming, triggers, rejections, orders, fills, connection), one
line each with its time and UTC offset. ``--log-json`` writes one JSON object
per line instead, with a stable boolean ``notify`` that marks what a log
shipper should turn into a notification: fills, rejections, disconnects and
errors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

import msgspec
from loguru import logger

from breakoutd.core import events as ev

NOTIFY = (ev.OrderFilled, ev.Rejected, ev.ConnectionLost)
# ConfigReloaded(invalid) is logged as an error too, which marks it notify-worthy.
QUIET = (ev.OrderIdAssigned, ev.GatewayMessage, ev.BarStreamHealth, ev.CommissionReported)
_json = msgspec.json.Encoder(decimal_format="number")


def _fmt_price(value: object) -> str:
    return "-" if value is None else str(value)


def _intent(e: ev.OrderIntent) -> str:
    tps = ", ".join(f"{p}x{q}" for p, q in zip(e.take_profits, e.take_profit_qtys, strict=True))
    return (f"{e.watcher_id}: BUY {e.qty} {e.symbol} {e.entry} {_fmt_price(e.limit)}"
            f" | tp {tps or '-'} | stop {_fmt_price(e.stop)}/{_fmt_price(e.stop_limit)}")


def _rejected(e: ev.Rejected) -> str:
    age = f", quote age {e.quote_age:.2f}s" if e.quote_age is not None else ""
    return f"{e.watcher_id}: REJECTED {e.reason}{age} {e.detail}".rstrip()


_FORMATS: dict[type[ev.Event], Callable[[Any], str]] = {
    ev.WatcherStarted: lambda e: f"{e.watcher_id}: armed, level {e.level}",
    ev.BreakDetected: lambda e: f"{e.watcher_id}: price {e.price} is through the level",
    ev.FastTriggered: lambda e: f"{e.watcher_id}: FAST trigger (1s bar h {e.high} l {e.low} c {e.close})",
    ev.Confirmed: lambda e: f"{e.watcher_id}: breakout CONFIRMED, bar closed at {e.close}",
    ev.Rejected: _rejected,
    ev.Expired: lambda e: f"{e.watcher_id}: expired ({e.reason}) after {e.bars_evaluated} bars",
    ev.Stopped: lambda e: f"{e.watcher_id}: stopped ({e.reason})",
    ev.OrderIntent: _intent,
    ev.OrderSent: lambda e: (f"sent {e.role} #{e.order_id} {e.action} {e.qty} {e.symbol} "
                             f"{e.order_type} "
                             + (f"{e.stop}/{_fmt_price(e.limit)}" if e.stop is not None
                                else _fmt_price(e.limit))),
    ev.OrderStatusChanged: lambda e: (f"order #{e.order_id} {e.role}: {e.status} "
                                      f"{e.filled}/{e.filled + e.remaining}"
                                      + (f" ({e.detail})" if e.detail else "")),
    ev.OrderFilled: lambda e: f"FILLED {e.role} #{e.order_id}: {e.side} {e.qty} {e.symbol} @ {e.price}",
    ev.OrderModified: lambda e: (f"order #{e.order_id} {e.role} modified: {e.qty} @ "
                                 f"{_fmt_price(e.limit if e.limit is not None else e.stop)} ({e.reason})"),
    ev.CommissionReported: lambda e: f"commission {e.commission:.2f} USD on {e.exec_id}",
    ev.StopMoved: lambda e: f"stop #{e.order_id} moved to {e.stop}/{e.stop_limit} for {e.qty}",
    ev.OrderReconciled: lambda e: f"{e.watcher_id}: found at the broker ({e.status}, filled {e.filled})",
    ev.ConnectionUp: lambda e: (f"connected to {e.host}:{e.port} as client {e.client_id}, "
                                f"account {e.account}"),
    ev.ConnectionLost: lambda e: f"DISCONNECTED: {e.reason}",
    ev.Reconnecting: lambda e: f"reconnecting in {e.delay:.1f}s (attempt {e.attempt})",
    ev.DataResubscribed: lambda e: f"market data requested again ({e.reason}, {e.symbols} symbols)",
    ev.GatewayMessage: lambda e: f"gateway {e.code}: {e.message}",
    ev.BarStreamHealth: lambda e: f"{e.symbol}: bar stream {e.kind} {e.seconds:.1f}s {e.detail}",
    ev.ConfigReloaded: lambda e: (
        f"watchlists {e.result} ({e.trigger}): " + (
            f"{len(e.errors)} error(s), nothing changed" if e.result == "invalid" else
            f"+{len(e.added)} -{len(e.removed)} ~{len(e.changed)}")),
    ev.DaemonState: lambda e: f"daemon {e.state}" + (f": {e.detail}" if e.detail else ""),
}


def describe(e: ev.Event) -> str:
    """One readable line for an event."""
    fmt = _FORMATS.get(type(e))
    return fmt(e) if fmt is not None else type(e).__name__


def _level(e: ev.Event) -> str:
    if isinstance(e, ev.ConnectionLost | ev.Rejected):
        return "WARNING"
    if isinstance(e, QUIET):
        return "DEBUG"
    return "INFO"


def setup_console(json_lines: bool = False, stream: TextIO | None = None,
                  verbose: bool = False) -> Callable[[ev.Event], None]:
    """Configure loguru's single sink; return the function that logs an event."""
    out = stream or sys.stderr
    logger.remove()
    # enqueue: formatting and writing happen on loguru's thread, off the hot path
    # between a closed bar and the order on the socket.
    if json_lines:
        logger.add(_json_sink(out), level="DEBUG" if verbose else "INFO", format="{message}",
                   enqueue=True)
    else:
        logger.add(out, level="DEBUG" if verbose else "INFO", colorize=False, enqueue=True,
                   format="{time:YYYY-MM-DD HH:mm:ss.SSS Z} {level: <7} {message}")

    def log_event(e: ev.Event) -> None:
        logger.bind(event=e).log(_level(e), describe(e))

    return log_event


def _json_sink(out: TextIO) -> Callable[[Any], None]:
    def sink(message: Any) -> None:
        record = message.record
        event = record["extra"].get("event")
        body: dict[str, Any] = {
            "time": record["time"].isoformat(timespec="milliseconds"),
            "level": record["level"].name,
            "message": record["message"],
            "notify": isinstance(event, NOTIFY) or record["level"].no >= 40,
        }
        if event is not None:
            body["event"] = event
        out.write(_json.encode(body).decode() + "\n")
        out.flush()
    return sink
