"""``var/status.json``: the daemon's state at a glance, rewritten as events happen.

:class:`StatusBoard` is a view of the event catalog (``docs/status.md`` has
the schema). ``on_event`` only updates the model and marks it changed; ``run``
writes the file when something changed, at most every ``MIN_GAP`` seconds,
and at least every ``interval`` seconds as a heartbeat, so ``breakoutctl
status`` can tell a live daemon from a stale file. Every write replaces the
file atomically, so a reader never sees half of one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import msgspec
from loguru import logger

from breakoutd.core import events as ev
from breakoutd.core.bars import NS
from breakoutd.core.params import WatcherSpec
from breakoutd.core.prices import to_decimal
from breakoutd.daemon.disk import DiskWorker
from breakoutd.daemon.files import replace_atomically
from breakoutd.daemon.status_model import OrderRow, Position, StatusModel, WatcherRow

STATUS_VERSION = 1
MIN_GAP = 0.1  # seconds between two writes: a burst of events makes one write
LINES_PER_STEP = 64  # the event loop runs between steps of a file's rendering
_CENT = Decimal("0.01")
_encoder = msgspec.json.Encoder(decimal_format="number")


def status_path(var: Path) -> Path:
    """Where the status file of a runtime directory is."""
    return var / "status.json"


def wall_iso(seconds: float) -> str:
    """A wall-clock instant as local ISO 8601 with its UTC offset."""
    return dt.datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="milliseconds")


def ns_iso(instant: int | None) -> str | None:
    """An epoch-ns instant as local ISO 8601 with its UTC offset."""
    if instant is None:
        return None
    moment = dt.datetime.fromtimestamp(instant // NS).astimezone()
    return moment.replace(microsecond=instant % NS // 1000).isoformat(timespec="milliseconds")


def _plain(value: Decimal) -> Decimal:
    """A decimal without exponent or trailing zeros, so JSON shows ``50`` not ``5E+1``."""
    return Decimal(format(value.normalize(), "f"))


def _money(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _price(value: Decimal | None) -> Decimal | None:
    """A price for the file: exact, at most micro-dollars, at least cents."""
    if value is None:
        return None
    return to_decimal(int((value * 1_000_000).to_integral_value(ROUND_HALF_UP)))


class StatusBoard:
    """The status file's model and its writer."""

    def __init__(self, path: Path, *, clock: Callable[[], int],
                 wall: Callable[[], float] = time.time, pid: int | None = None,
                 last_price: Callable[[str], int | None] = lambda s: None,
                 interval: float = 2.0, disk: DiskWorker | None = None) -> None:
        """``clock`` is the broker's (epoch ns); ``last_price`` gives live prices in micros;
        ``run`` writes on ``disk``'s thread when given, else on a worker thread."""
        self._disk = disk
        self.path = path
        self.model = StatusModel()
        self.interval = interval
        self._clock = clock
        self._wall = wall
        self._pid = os.getpid() if pid is None else pid
        self._last_price = last_price
        self._started_at = wall()
        self._changed = asyncio.Event()
        self._lines = _Lines()  # see encode
        self._write_lock = threading.Lock()
        self._failing = False

    # --- input ---------------------------------------------------------------------------

    def on_event(self, e: ev.Event) -> None:
        """Fold an event into the model and mark the file out of date (no I/O)."""
        self.model.apply(e)
        self._changed.set()

    def set_config(self, *, files: list[str], digest: str, reloaded_at: int | None,
                   result: str, errors: list[str]) -> None:
        """The configuration in force: its files, hash, and the last reload's result."""
        cfg = self.model.config
        cfg.files, cfg.digest, cfg.reloaded_at = list(files), digest, reloaded_at
        cfg.result, cfg.errors = result, list(errors)
        self._changed.set()

    def set_watcher_specs(self, specs: Iterable[WatcherSpec], sessions: Mapping[str, str]) -> None:
        """The configured watchers; those not armed yet show as ``waiting``.

        Disabled watchers are left out; a waiting watcher no longer configured
        goes, one that has lived today stays with its outcome.
        """
        rows = self.model.watchers
        wanted = {s.id: s for s in specs if s.enabled}
        for wid in [w for w, row in rows.items() if row.state == "waiting" and w not in wanted]:
            del rows[wid]
        for spec in wanted.values():
            session = sessions.get(spec.id) or "+".join(s.value for s in spec.params.sessions)
            row = rows.get(spec.id)
            name = spec.level_name.value if spec.level_name is not None else None
            if row is None:
                rows[spec.id] = WatcherRow(spec.id, spec.symbol, to_decimal(spec.level), session,
                                           level_name=name)
            elif row.state == "waiting":
                row.symbol, row.session, row.level_name = spec.symbol, session, name
                if name is None or row.level == 0:  # a resolved named level stays resolved
                    row.level = to_decimal(spec.level)
            else:
                row.session = row.session or session
        self._changed.set()

    def replay(self, events: Iterable[ev.Event]) -> None:
        """Fold earlier events in (today's journal at start-up)."""
        for e in events:
            self.model.apply(e)
        self._changed.set()

    # --- output --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The status file's content."""
        m = self.model
        positions = [self._position(symbol, p, exits)
                     for exits in (m.working_exits(),)
                     for symbol, p in m.positions.items() if p.qty and p.avg_price is not None]
        return self._content([self._watcher(w) for w in m.watchers.values()],
                             [_order(o) for o in m.orders.values() if o.is_open],
                             [row for row, _ in positions], [u for _, u in positions])

    def encode(self) -> bytes:
        """The status file's bytes: those of :meth:`snapshot`."""
        for data in self._render():
            if data is not None:
                return data
        raise AssertionError("the rendering ends with the file")  # pragma: no cover

    async def _encode_in_steps(self) -> bytes:
        """:meth:`encode`, letting the event loop run every ``LINES_PER_STEP`` lines."""
        for data in self._render():
            if data is not None:
                return data
            await asyncio.sleep(0)
        raise AssertionError("the rendering ends with the file")  # pragma: no cover

    def _render(self) -> Iterator[bytes | None]:
        """The file's bytes as the last item, after a None every ``LINES_PER_STEP`` lines.

        The file is rewritten up to ten times a second on the event loop, and a
        line in exact decimals costs microseconds: with hundreds of watchers,
        orders and positions that was milliseconds in which no market data was
        read. So each line is kept as JSON until what it shows changes, and the
        daemon's writer lets the loop run between steps (lines of one file may
        then be a few milliseconds apart; each line is consistent)."""
        lines, m = self._lines, self.model
        watchers, orders, positions, unrealized = [], [], [], []
        for n, w in enumerate(list(m.watchers.values()), 1):
            watchers.append(lines.line(
                w.id, (w.symbol, w.level, w.session, w.state, w.outcome, w.reason,
                       w.order_ref, self._price_key(w.symbol)),
                self._watcher_line, w)[0])
            if n % LINES_PER_STEP == 0:
                yield None
        for n, o in enumerate([o for o in m.orders.values() if o.is_open], 1):
            orders.append(lines.line(("order", o.ref, o.role, o.rung, o.id), _order_key(o),
                                     _order_line, o)[0])
            if n % LINES_PER_STEP == 0:
                yield None
        exits = m.working_exits()
        held = [(s, p) for s, p in m.positions.items() if p.qty and p.avg_price is not None]
        for n, (symbol, p) in enumerate(held, 1):
            raw, u = lines.line(("position", symbol),
                                (p.qty, p.cost, self._price_key(symbol),
                                 _exits_key(exits.get(symbol)), _slices_key(m, symbol)),
                                self._position, symbol, p, exits)
            positions.append(raw)
            unrealized.append(u)
            if n % LINES_PER_STEP == 0:
                yield None
        lines.sweep()
        yield _encoder.encode(self._content(watchers, orders, positions, unrealized)) + b"\n"

    def _content(self, watchers: list[Any], orders: list[Any], positions: list[Any],
                 unrealized: list[Decimal | None]) -> dict[str, Any]:
        m = self.model
        return {
            "version": STATUS_VERSION,
            "state": m.state,
            "detail": m.detail,
            "pid": self._pid,
            "started_at": wall_iso(self._started_at),
            "heartbeat": wall_iso(self._wall()),
            "interval": self.interval,
            "broker": self._broker(),
            "config": {
                "files": list(m.config.files), "hash": m.config.digest,
                "reloaded_at": ns_iso(m.config.reloaded_at), "result": m.config.result,
                "errors": list(m.config.errors), "failed": list(m.config.failed),
            },
            "watchers": watchers,
            "orders": orders,
            "positions": positions,
            "pnl": self._pnl(unrealized),
            "risk": self._risk(),
            "disk": {"ok": m.disk_problem is None, "detail": m.disk_problem},
        }

    def _risk(self) -> dict[str, Any]:
        """The day ledger's counts and halt, as the kill switch sees them."""
        ledger = self.model.ledger
        return {"halted": ledger.halted, "paused": ledger.paused, "entries": ledger.entries,
                "open": ledger.slots, "notional": _money(to_decimal(ledger.notional)),
                "consecutive_losses": ledger.consecutive_losses}

    def _price_key(self, symbol: str) -> int | Decimal | None:
        """What :meth:`price_of` depends on, without making a Decimal of it."""
        live = self._last_price(symbol) if symbol else None
        return live if live is not None else self.model.prices.get(symbol)

    def write(self) -> None:
        """Replace the status file with the current view, atomically."""
        self._changed.clear()
        self._store(self.encode())

    async def run(self, stop: asyncio.Event) -> None:
        """Write on change (coalesced) and every ``interval`` seconds until ``stop``; then once more."""
        while not stop.is_set():
            self._changed.clear()
            await self._store_off_loop(await self._encode_in_steps())
            await asyncio.sleep(MIN_GAP)  # events of this gap go into the next write
            await _first_of(self._changed, stop, timeout=max(self.interval - MIN_GAP, 0.0))
        await self._store_off_loop(self.encode())

    async def _store_off_loop(self, data: bytes) -> None:
        if self._disk is None:
            await asyncio.to_thread(self._store, data)
        else:  # a newer file still queued replaces an older one
            self._disk.submit(lambda: self._store(data, canary=True), key=("status", self.path))

    def _store(self, data: bytes, canary: bool = False) -> None:
        """Write the file; a failure is said once, and with ``canary`` raised to the disk
        worker: the heartbeat's write is the first to find a disk that filled or failed
        between two entries, and the daemon's disk guard halts entries until it works."""
        # One writer at a time: the temp file's name is per process, not per call.
        with self._write_lock:
            try:
                # A view: start-up rebuilds it from the journal, so no fsync
                # (whose journal commit would stall the event journal's writes).
                replace_atomically(self.path, data, durable=False)
            except OSError as exc:
                if canary:
                    raise  # the disk guard says it
                if not self._failing:  # say it once, not every two seconds
                    logger.warning("cannot write the status file {}: {}", self.path, exc)
                self._failing = True
                return
        self._failing = False

    # --- sections ------------------------------------------------------------------------

    def _broker(self) -> dict[str, Any]:
        link = self.model.link
        return {
            "connected": link.connected, "account": link.account, "address": link.address,
            "client_id": link.client_id, "server_time": ns_iso(self._clock()),
            "connected_at": ns_iso(link.connected_at),
            "last_disconnect_at": ns_iso(link.disconnect_at),
            "last_disconnect_reason": link.disconnect_reason,
        }

    def price_of(self, symbol: str) -> Decimal | None:
        """The last price of a symbol: the live stream's, else the last one in events."""
        live = self._last_price(symbol) if symbol else None
        return to_decimal(live) if live is not None else self.model.prices.get(symbol)

    def _watcher(self, w: WatcherRow) -> dict[str, Any]:
        last = self.price_of(w.symbol)
        cents = pct = None
        if last is not None and last > 0 and w.level > 0:
            cents = _plain((w.level - last) * 100)
            pct = ((w.level - last) / last * 100).quantize(_CENT, rounding=ROUND_HALF_UP)
        return {"id": w.id, "symbol": w.symbol, "level": w.level if w.level > 0 else None,
                "session": w.session, "state": w.state, "last_price": last,
                "distance_cents": cents, "distance_pct": pct, "outcome": w.outcome,
                "reason": w.reason, "order_ref": w.order_ref, "level_name": w.level_name,
                "near_miss": w.near_miss}

    def _watcher_line(self, w: WatcherRow) -> tuple[dict[str, Any], None]:
        return self._watcher(w), None

    def _position(self, symbol: str, p: Position,
                  exits: dict[str, tuple[list[OrderRow], list[OrderRow]]]
                  ) -> tuple[dict[str, Any], Decimal | None]:
        """A held symbol's line, and its unrealized P&L before rounding (None without a price)."""
        assert p.avg_price is not None
        last = self.price_of(symbol)
        tps, stops = exits.get(symbol, ([], []))
        unrealized = None if last is None else (last - p.avg_price) * p.qty
        return {
            "symbol": symbol, "qty": p.qty, "avg_price": _price(p.avg_price),
            "last_price": last,
            "unrealized": None if unrealized is None else _money(unrealized),
            "take_profits": [{"id": o.id, "price": o.limit, "qty": o.qty - o.filled}
                             for o in sorted(tps, key=lambda o: o.rung)],
            "stops": [{"id": o.id, "price": o.stop, "limit": o.limit, "qty": o.qty - o.filled,
                       "rule": o.rule} for o in stops],
            "slices": self.model.slices_of(symbol),
        }, unrealized

    def _pnl(self, unrealized: list[Decimal | None]) -> dict[str, Any]:
        m = self.model
        commissions = to_decimal(m.ledger.commissions)
        return {
            "realized": _money(to_decimal(m.ledger.realized)),
            "unrealized": _money(sum((u for u in unrealized if u is not None), Decimal(0))),
            "commissions": _money(commissions),
            "broker_realized": _money(Decimal(str(sum(m.broker_realized.values())))),
        }


class _Lines:
    """Lines of the status file as JSON, kept while the key they were made from holds."""

    def __init__(self) -> None:
        self._known: dict[Any, tuple[Any, msgspec.Raw, Any]] = {}
        self._used: dict[Any, tuple[Any, msgspec.Raw, Any]] = {}

    def line(self, row: Any, key: Any, render: Callable[..., tuple[Any, Any]], *args: Any
             ) -> tuple[msgspec.Raw, Any]:
        """The JSON of ``row`` and what came with it: ``render(*args)`` if ``key`` moved."""
        hit = self._known.get(row)
        if hit is None or hit[0] != key:
            value, extra = render(*args)
            hit = (key, msgspec.Raw(_encoder.encode(value)), extra)
        self._used[row] = hit
        return hit[1], hit[2]

    def sweep(self) -> None:
        """Forget the lines of rows that were not asked for since the last sweep."""
        self._known, self._used = self._used, {}


def _order_line(o: OrderRow) -> tuple[dict[str, Any], None]:
    return _order(o), None


def _order_key(o: OrderRow) -> tuple[Any, ...]:
    return (o.symbol, o.action, o.type, o.status, o.qty, o.status_filled, o.fill_qty,
            o.fill_value, o.limit, o.stop)


def _exits_key(exits: tuple[list[OrderRow], list[OrderRow]] | None) -> tuple[Any, ...]:
    if exits is None:
        return ()
    return tuple((o.id, o.rung, o.role, o.limit, o.stop, o.qty, o.filled)
                 for group in exits for o in group)


def _slices_key(m: Any, symbol: str) -> tuple[Any, ...]:
    """What a position's slices line shows changes with (nothing for an unsliced one)."""
    if not m.slices:
        return ()
    return tuple((row.ref, row.sent, row.sent_qty, row.skipped) for row in m.slices.values()
                 if row.symbol == symbol)


def _order(o: OrderRow) -> dict[str, Any]:
    avg = o.avg_fill_price
    return {"ref": o.ref, "role": o.role, "rung": o.rung, "id": o.id, "symbol": o.symbol,
            "action": o.action, "type": o.type, "status": o.status, "qty": o.qty,
            "filled": o.filled, "limit": o.limit, "stop": o.stop,
            "avg_fill_price": None if avg is None else _price(avg)}


async def _first_of(a: asyncio.Event, b: asyncio.Event, timeout: float) -> None:
    """Wait until either event is set, or ``timeout`` seconds."""
    waits = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
