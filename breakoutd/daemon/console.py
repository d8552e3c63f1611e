"""Console output through loguru: what an operator wants to see, or JSON for shipping.

Every event goes to the journal; the console shows the ones an operator acts
on or follows (arming, triggers, rejections, orders, fills, connection), one
line each. An event's line has its time on the broker's clock in exchange
time (``2026-03-09 09:30:01.250 -04:00 ET``): what happened in the market
reads as the market's clock, also on a simulated day; any other line has
the machine's time, its UTC offset and its zone's name. ``--log-json`` writes one JSON object
per line instead, with a stable boolean ``notify`` that marks what a log
shipper should turn into a notification: fills, rejections, disconnects and
errors.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import msgspec
from loguru import logger

from breakoutd.calendar import exchange_text
from breakoutd.core import events as ev
from breakoutd.core.near_miss import describe as describe_near_miss
from breakoutd.core.near_miss import from_event

NOTIFY = (ev.OrderFilled, ev.Rejected, ev.ConnectionLost)
# ConfigReloaded(invalid) is logged as an error too, which marks it notify-worthy.
QUIET = (ev.OrderIdAssigned, ev.GatewayMessage, ev.BarStreamHealth, ev.CommissionReported)
_json = msgspec.json.Encoder(decimal_format="number")


def _fmt_price(value: object) -> str:
    return "-" if value is None else str(value)


def _intent(e: ev.OrderIntent) -> str:
    tps = ", ".join(f"{p}x{q}" for p, q in zip(e.take_profits, e.take_profit_qtys, strict=True))
    return (f"{e.watcher_id}: BUY {e.qty} {e.symbol} {e.entry} {_fmt_price(e.limit)}"
            f" | tp {tps or '-'} | stop {_fmt_price(e.stop)} limit {_fmt_price(e.stop_limit)}")


def _terms(stop: object, limit: object) -> str:
    """A stop order's two prices, named; a limit order's one."""
    return (f"stop {stop} limit {_fmt_price(limit)}" if stop is not None
            else f"@ {_fmt_price(limit)}")


# Each take-profit rung's order is sized to the shares of rungs 1..n (docs/live.md), so
# the journal has the cumulative size; the console says what the rung itself sells.
_rung_sizes: dict[tuple[str, int], int] = {}  # (order_ref, rung) -> its order's size


def _sent(e: ev.OrderSent) -> str:
    qty = f"{e.qty}"
    if e.role == "take_profit" and e.rung > 0:
        _rung_sizes[(e.order_ref, e.rung)] = e.qty
        before = 0 if e.rung == 1 else _rung_sizes.get((e.order_ref, e.rung - 1))
        qty = (f"{e.qty - before}" if before is not None
               else f"{e.qty} (rungs 1-{e.rung} together)")
    rung = f" rung {e.rung}" if e.role == "take_profit" and e.rung else ""
    prices = (f"stop {e.stop} limit {_fmt_price(e.limit)}" if e.stop is not None
              else "" if e.limit is None else str(e.limit))
    return (f"sent {e.role}{rung} #{e.order_id} {e.action} {qty} {e.symbol} {e.order_type} "
            f"{prices}").rstrip()


def _rung(e: ev.OrderStatusChanged | ev.OrderFilled) -> str:
    if e.role == "entry" and e.rung:
        return f" slice {e.rung}"
    return f" rung {e.rung}" if e.role == "take_profit" and e.rung else ""


def _cumulative(e: ev.OrderStatusChanged, total: int) -> str:
    """Say why a rung's order is larger than the rung, while it is (until the OCA reduces it)."""
    if e.role == "take_profit" and e.rung > 1 and _rung_sizes.get((e.order_ref, e.rung)) == total:
        return f" (rungs 1-{e.rung})"
    return ""


def _rejected(e: ev.Rejected) -> str:
    age = f", quote age {e.quote_age:.2f}s" if e.quote_age is not None else ""
    return f"{e.watcher_id}: REJECTED {e.reason}{age} {e.detail}".rstrip()


def _connect_waiting(e: ev.ConnectWaiting) -> str:
    where = f"{e.host}:{e.port}"
    if e.waiting_for == "socket":
        return (f"connecting to the gateway at {where} as client {e.client_id} "
                f"(attempt {e.attempt}): waiting up to {e.timeout:g} s for the socket")
    if e.waiting_for == "handshake":
        return (f"the gateway at {where} accepted the connection: waiting up to {e.timeout:g} s "
                "for its API handshake")
    return (f"API session with {where} open: waiting up to {e.timeout:g} s for its orders, "
            "positions and account")


_FORMATS: dict[type[ev.Event], Callable[[Any], str]] = {
    ev.WatcherStarted: lambda e: f"{e.watcher_id}: armed, level {e.level}",
    ev.BreakDetected: lambda e: f"{e.watcher_id}: price {e.price} is through the level",
    ev.FastTriggered: lambda e: f"{e.watcher_id}: FAST trigger (1s bar h {e.high} l {e.low} c {e.close})",
    ev.Confirmed: lambda e: (f"{e.watcher_id}: breakout CONFIRMED, bar closed at {e.close}"
                             + (f" ({e.kind})" if e.kind != "close" else "")),
    ev.Rejected: _rejected,
    ev.Expired: lambda e: f"{e.watcher_id}: expired ({e.reason}) after {e.bars_evaluated} bars",
    ev.Stopped: lambda e: f"{e.watcher_id}: stopped ({e.reason})",
    ev.LevelResolved: lambda e: (f"{e.watcher_id}: level {e.name} = {e.price} "
                                 f"(print {e.raw}, offset {e.offset}; {e.source})"),
    ev.NearMiss: lambda e: (f"{e.watcher_id}: near miss {e.kind}, bar closed at {e.close}, "
                            f"volume {e.volume}"
                            + (f" vs mean {e.mean_volume}" if e.mean_volume is not None else "")),
    ev.NearMissed: lambda e: f"{e.watcher_id}: near miss: {describe_near_miss(from_event(e))}",
    ev.ScanResult: lambda e: (f"scan {e.code} ({e.trigger}): "
                              + (f"FAILED: {e.error}" if e.error else
                                 f"{len(e.candidates)} candidates, armed "
                                 + (", ".join(e.armed) or "nothing new"))),
    ev.OrderIntent: _intent,
    ev.OrderSent: lambda e: _sent(e),
    ev.OrderStatusChanged: lambda e: (f"order #{e.order_id} {e.role}{_rung(e)}: {e.status} "
                                      f"{e.filled}/{e.filled + e.remaining}"
                                      + _cumulative(e, e.filled + e.remaining)
                                      + (f" ({e.detail})" if e.detail else "")),
    ev.OrderFilled: lambda e: (f"FILLED {e.role}{_rung(e)} #{e.order_id}: {e.side} {e.qty} "
                               f"{e.symbol} @ {e.price}"),
    ev.OrderModified: lambda e: (f"order #{e.order_id} {e.role} modified: {e.qty} "
                                 f"{_terms(e.stop, e.limit)} ({e.reason})"),
    ev.CommissionReported: lambda e: f"commission {e.commission:.2f} USD on {e.exec_id}",
    ev.StopMoved: lambda e: (f"stop #{e.order_id} moved to stop {e.stop} limit {e.stop_limit} "
                             f"for {e.qty} ({e.rule})" if e.qty else
                             f"stop #{e.order_id}: the last rung sold the position, nothing "
                             f"left to protect"),
    ev.TimeExit: lambda e: f"{e.watcher_id}: time exit ({e.rule}): selling {e.symbol}",
    ev.SliceSent: lambda e: (f"{e.watcher_id}: slice {e.number}/{e.count} sent #{e.order_id}: "
                             f"BUY {e.qty} {e.symbol} "
                             + (f"LMT {e.limit}" if e.limit is not None else "MKT")),
    ev.SliceSkipped: lambda e: (f"{e.watcher_id}: slice {e.number}/{e.count} and later not "
                                f"sent ({e.reason})" + (f": {e.detail}" if e.detail else "")),
    ev.OrderReconciled: lambda e: f"{e.watcher_id}: found at the broker ({e.status}, filled {e.filled})",
    ev.ConnectionUp: lambda e: (f"connected to {e.host}:{e.port} as client {e.client_id}, "
                                f"account {e.account}"),
    ev.ConnectionLost: lambda e: f"DISCONNECTED: {e.reason}",
    ev.Reconnecting: lambda e: f"reconnecting in {e.delay:.1f}s (attempt {e.attempt})",
    ev.DataResubscribed: lambda e: f"market data requested again ({e.reason}, {e.symbols} symbols)",
    ev.GatewayMessage: lambda e: f"gateway {e.code}: {e.message}",
    ev.ConnectWaiting: lambda e: _connect_waiting(e),
    ev.BarStreamHealth: lambda e: f"{e.symbol}: bar stream {e.kind} {e.seconds:.1f}s {e.detail}",
    ev.ConfigReloaded: lambda e: (
        f"watchlists {e.result} ({e.trigger}): " + (
            f"{len(e.errors)} error(s), nothing changed" if e.result == "invalid" else
            f"+{len(e.added)} -{len(e.removed)} ~{len(e.changed)}"
            + (f", {len(e.failed)} not applied" if e.failed else ""))
        + "".join(f"; {note}" for note in e.notes)),
    ev.DaemonState: lambda e: f"daemon {e.state}" + (f": {e.detail}" if e.detail else ""),
    ev.Halted: lambda e: (f"trading HALTED ({e.reason}) by {e.by}"
                          + (", open positions are sold" if e.flatten else "")),
    ev.Paused: lambda e: f"new entries PAUSED by {e.by}",
    ev.Resumed: lambda e: f"trading RESUMED by {e.by} (was {e.was})",
    ev.OperatorCommand: lambda e: (f"operator (uid {e.uid}): {e.command}"
                                   + (f" {e.target}" if e.target else "")
                                   + (" --flatten" if e.flatten else "")
                                   + f" -> {'done' if e.ok else 'REFUSED'}: {e.message}"),
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


class Console:
    """The console's one writer: a thread of its own, fed in order by everyone.

    Building a loguru record (frame lookup, time, formatting) costs a few
    hundred microseconds on a cold path, and the events of an entry come right
    after its orders are on the socket, when the next market data may already
    be waiting. So the event loop only queues each event with its wall time;
    this thread logs it through loguru, stamped with that time. Lines logged
    anywhere else in the process (warnings, errors) join the same queue once
    loguru has formatted them, so the console keeps the order things happened
    in, and a slow stderr never blocks the event loop.
    """

    def __init__(self, write: Callable[[Any], None]) -> None:
        """``write`` puts one formatted loguru message out (on this thread)."""
        self._write = write
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._open = True
        self._thread = threading.Thread(target=self._work, name="console", daemon=True)
        self._thread.start()

    def __call__(self, e: ev.Event) -> None:
        """Log one event: queued, never blocks (written by the caller once closed)."""
        if self._open:
            self._queue.put((e, time.time()))
        else:
            _log_event(e, time.time())

    def sink(self, message: Any) -> None:
        """loguru's sink: written here when on the console's thread (or closed), else queued."""
        if self._open and threading.current_thread() is not self._thread:
            self._queue.put(message)
        else:
            self._write(message)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is written."""
        if self._thread.is_alive():
            done = threading.Event()
            self._queue.put(done)
            done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued and stop the thread; what comes later is written by its caller."""
        self._open = False
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, tuple):
                _log_event(*item)
            elif isinstance(item, threading.Event):
                item.set()
            else:
                self._write(item)


def _log_event(e: ev.Event, wall: float) -> None:
    def stamp(record: Any) -> None:  # the time the event happened, not when it was written
        record["time"] = type(record["time"]).fromtimestamp(wall).astimezone()
    logger.bind(event=e, market=exchange_text(e.at)).patch(stamp).log(_level(e), describe(e))


def _text_format(record: Any) -> str:
    """An event's line has its market time (ET); any other line the machine's, zone named."""
    if "market" in record["extra"]:
        return "{extra[market]} {level: <7} {message}\n{exception}"
    return "{time:YYYY-MM-DD HH:mm:ss.SSS Z zz} {level: <7} {message}\n{exception}"


class _LibraryLines(logging.Handler):
    """ib_async's own log lines, as debug lines of the console.

    Its "API connection failed: ConnectionRefusedError(...)" and "Make sure API
    port on TWS/IBG is open" say, unasked on stderr, what the connection
    supervisor already says in one line with what to do; with ``-v`` they show."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.opt(depth=0).debug("{}: {}", record.name, record.getMessage())


def fold_library_logging(names: tuple[str, ...] = ("ib_async",)) -> None:
    """Route the libraries' standard logging into the console at debug level."""
    for name in names:
        lib = logging.getLogger(name)
        lib.handlers = [_LibraryLines()]
        lib.propagate = False


def setup_console(json_lines: bool = False, stream: TextIO | None = None,
                  verbose: bool = False) -> Console:
    """Configure loguru's single sink; return the console that logs events."""
    out = stream or sys.stderr
    fold_library_logging()
    logger.remove()
    console = Console(_json_writer(out) if json_lines else _text_writer(out))
    # diagnose off: a traceback's local variables can hold secrets (an account, a token).
    logger.add(console.sink, level="DEBUG" if verbose else "INFO", colorize=False,
               format="{message}" if json_lines else _text_format, diagnose=False)
    return console


def _text_writer(out: TextIO) -> Callable[[Any], None]:
    @_never_raises
    def write(message: Any) -> None:
        out.write(message)
        out.flush()
    return write


def _never_raises(write: Callable[[Any], None]) -> Callable[[Any], None]:
    """A console that cannot be written (stderr on a full disk, a closed pipe) loses the
    line; it must not raise, or loguru prints a "Logging error" dump for every line."""
    def safe(message: Any) -> None:
        try:
            write(message)
        except (OSError, ValueError):  # ValueError: the stream was closed
            pass
    return safe


def _json_writer(out: TextIO) -> Callable[[Any], None]:
    @_never_raises
    def write(message: Any) -> None:
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
    return write
