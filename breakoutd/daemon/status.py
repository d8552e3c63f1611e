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
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import msgspec
from loguru import logger

from breakoutd.core import events as ev
from breakoutd.core.bars import NS
from breakoutd.core.params import WatcherSpec
from breakoutd.core.prices import to_decimal
from breakoutd.daemon.files import replace_atomically
from breakoutd.daemon.status_model import OrderRow, StatusModel, WatcherRow

STATUS_VERSION = 1
MIN_GAP = 0.1  # seconds between two writes: a burst of events makes one write
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
                 interval: float = 2.0) -> None:
        """``clock`` is the broker's (epoch ns); ``last_price`` gives live prices in micros."""
        self.path = path
        self.model = StatusModel()
        self.interval = interval
        self._clock = clock
        self._wall = wall
        self._pid = os.getpid() if pid is None else pid
        self._last_price = last_price
        self._started_at = wall()
        self._changed = asyncio.Event()
        self._rows: dict[str, tuple[tuple[Any, ...], msgspec.Raw]] = {}  # see _watcher_json
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
            if row is None:
                rows[spec.id] = WatcherRow(spec.id, spec.symbol, to_decimal(spec.level), session)
            elif row.state == "waiting":
                row.symbol, row.level, row.session = spec.symbol, to_decimal(spec.level), session
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
        return self._content([self._watcher(w) for w in self.model.watchers.values()])

    def _content(self, watchers: list[Any]) -> dict[str, Any]:
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
                "errors": list(m.config.errors),
            },
            "watchers": watchers,
            "orders": [_order(o) for o in m.orders.values() if o.is_open],
            "positions": self._positions(),
            "pnl": self._pnl(),
        }

    def encode(self) -> bytes:
        """The status file's bytes (those of :meth:`snapshot`)."""
        return _encoder.encode(self._content(self._watchers_json())) + b"\n"

    def _watchers_json(self) -> list[msgspec.Raw]:
        """Each watcher's JSON, made again only when its row or its price changed.

        The file is rewritten up to ten times a second on the event loop, and
        a watcher's line in exact decimals costs microseconds: with hundreds of
        watchers that was milliseconds in which no market data was read."""
        rows, known = {}, self._rows
        out = []
        for w in self.model.watchers.values():
            key = (w.symbol, w.level, w.session, w.state, w.outcome, w.reason, w.order_ref,
                   self._price_key(w.symbol))
            hit = known.get(w.id)
            if hit is None or hit[0] != key:
                hit = (key, msgspec.Raw(_encoder.encode(self._watcher(w))))
            rows[w.id] = hit
            out.append(hit[1])
        self._rows = rows
        return out

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
            await asyncio.to_thread(self._store, self.encode())
            await asyncio.sleep(MIN_GAP)  # events of this gap go into the next write
            await _first_of(self._changed, stop, timeout=max(self.interval - MIN_GAP, 0.0))
        await asyncio.to_thread(self._store, self.encode())

    def _store(self, data: bytes) -> None:
        # One writer at a time: the temp file's name is per process, not per call.
        with self._write_lock:
            try:
                replace_atomically(self.path, data)
            except OSError as exc:
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
        return {"id": w.id, "symbol": w.symbol, "level": w.level, "session": w.session,
                "state": w.state, "last_price": last, "distance_cents": cents,
                "distance_pct": pct, "outcome": w.outcome, "reason": w.reason,
                "order_ref": w.order_ref}

    def _positions(self) -> list[dict[str, Any]]:
        out = []
        for symbol, p in self.model.positions.items():
            if p.qty == 0 or p.avg_price is None:
                continue
            last = self.price_of(symbol)
            tps, stops = self.model.exits_of(symbol)
            out.append({
                "symbol": symbol, "qty": p.qty, "avg_price": _price(p.avg_price),
                "last_price": last,
                "unrealized": None if last is None else _money((last - p.avg_price) * p.qty),
                "take_profits": [{"id": o.id, "price": o.limit, "qty": o.qty - o.filled}
                                 for o in sorted(tps, key=lambda o: o.rung)],
                "stops": [{"id": o.id, "price": o.stop, "limit": o.limit, "qty": o.qty - o.filled}
                          for o in stops],
            })
        return out

    def _pnl(self) -> dict[str, Any]:
        m = self.model
        unrealized = Decimal(0)
        for symbol, p in m.positions.items():
            last = self.price_of(symbol)
            if p.qty and p.avg_price is not None and last is not None:
                unrealized += (last - p.avg_price) * p.qty
        commissions = Decimal(str(sum(m.commissions.values())))
        return {
            "realized": _money(m.realized - commissions),
            "unrealized": _money(unrealized),
            "commissions": _money(commissions),
            "broker_realized": _money(Decimal(str(sum(m.broker_realized.values())))),
        }


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
