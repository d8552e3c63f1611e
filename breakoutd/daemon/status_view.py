"""The status file's content: the model of ``daemon/status_model.py`` as JSON.

:class:`StatusView` renders ``var/status.json`` (``docs/status.md`` has the
schema) from a :class:`StatusModel`, with live prices from the streams and the
broker's clock. The file is rewritten up to ten times a second on the event
loop, so each line is kept as JSON until what it shows changes, and the
rendering can be done in steps between which the loop runs. Writing the file
is the board's (``daemon/status.py``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import msgspec

from breakoutd.core.bars import NS
from breakoutd.core.prices import to_decimal
from breakoutd.daemon.status_model import OrderRow, Position, StatusModel, WatcherRow

STATUS_VERSION = 1
LINES_PER_STEP = 64  # the event loop runs between steps of a file's rendering
_CENT = Decimal("0.01")
_encoder = msgspec.json.Encoder(decimal_format="number")


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


class StatusView:
    """The status file's content, rendered from the model."""

    def __init__(self, model: StatusModel, *, clock: Callable[[], int], wall: Callable[[], float],
                 pid: int, last_price: Callable[[str], int | None], interval: float) -> None:
        """``clock`` is the broker's (epoch ns); ``last_price`` gives live prices in micros;
        ``interval`` is the heartbeat the file promises."""
        self.model = model
        self.interval = interval
        self._clock = clock
        self._wall = wall
        self._pid = pid
        self._last_price = last_price
        self._started_at = wall()
        self._lines = _Lines()  # see encode

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

    async def encode_in_steps(self) -> bytes:
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
            "slices": self._slices(symbol),
        }, unrealized

    def _slices(self, symbol: str) -> list[dict[str, Any]]:
        """The sliced entries in ``symbol``: slices sent of the count, shares sent and filled."""
        m = self.model
        out: list[dict[str, Any]] = []
        for row in m.slices.values():
            if row.symbol != symbol:
                continue
            filled = sum(o.filled for (r, role, _), o in m.orders.items()
                         if r == row.ref and role == "entry")
            out.append({"ref": row.ref, "count": row.count, "sent": row.sent,
                        "sent_qty": row.sent_qty, "filled": filled, "skipped": row.skipped})
        return out

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

