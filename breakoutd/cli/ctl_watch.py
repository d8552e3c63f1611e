"""``breakoutctl status --watch``: the status file as a live view, refreshed in place.

An operator keeps it open all day beside the gateway: the same facts as
``breakoutctl status`` (its header lines, watchers, orders, positions, P&L),
laid out by ``rich`` in tables that redraw where they are instead of
scrolling. The view reads ``status.json`` again every ``interval`` seconds and
says plainly when the daemon is not running, the file is stale or missing;
Ctrl-C ends it (exit 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from breakoutd.cli import ctl_status as cs

STATE_STYLE = {"running": "bold green", "degraded": "bold yellow", "halted": "bold red",
               "paused": "bold yellow", "stopped": "bold red", "not running": "bold red"}


def _read(path: Path) -> dict[str, Any] | str:
    """The status, or why there is none to show."""
    try:
        status = cs._status_decoder.decode(path.read_bytes())
    except FileNotFoundError:
        return f"breakoutd is NOT RUNNING: no status file at {path}"
    except OSError as exc:
        return f"{path}: cannot read the status file: {exc.strerror or exc}"
    except msgspec.DecodeError as exc:
        return f"{path}: unreadable status file: {exc}"
    return status if isinstance(status, dict) else f"{path}: unreadable status file"


def _table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left", expand=True, show_edge=False,
                  header_style="bold")
    for name in header:
        table.add_column(name)
    for row in rows:
        table.add_row(*row)
    return table


def _watchers(status: dict[str, Any]) -> Table:
    rows = []
    for w in status.get("watchers", []):
        dist = "-"
        if w.get("distance_cents") is not None:
            dist = f"{w['distance_cents']}c ({w['distance_pct']}%)"
        end = (w.get("outcome") or "-") + (f": {w['reason']}" if w.get("reason") else "")
        rows.append([w["id"], w.get("session", ""), w.get("state", "?"), cs._num(w.get("level")),
                     cs._num(w.get("last_price")), dist, end])
    return _table(f"watchers ({cs._counts(status.get('watchers', []))})",
                  ["ID", "SESSION", "STATE", "LEVEL", "LAST", "TO LEVEL", "OUTCOME"], rows)


def _orders(status: dict[str, Any]) -> Table:
    rows = [[o["ref"], f"tp{o['rung']}" if o["role"] == "take_profit" else o["role"],
             str(o["id"]), o.get("action", ""), o.get("type", ""), o.get("status", ""),
             str(o.get("qty")), str(o.get("filled")), cs._num(o.get("limit")),
             cs._num(o.get("stop"))] for o in status.get("orders", [])]
    return _table(f"orders ({len(rows)} open)", ["REF", "ROLE", "ID", "SIDE", "TYPE", "STATUS",
                                                 "QTY", "FILLED", "LIMIT", "STOP"], rows)


def _positions(status: dict[str, Any]) -> Table:
    rows = []
    for p in status.get("positions", []):
        tps = " ".join(f"{t['price']}x{t['qty']}" for t in p.get("take_profits", [])) or "-"
        sls = " ".join(f"{t['price']}/{cs._num(t.get('limit'))}x{t['qty']}"
                       for t in p.get("stops", [])) or "-"
        rows.append([p["symbol"], str(p["qty"]), str(p["avg_price"]),
                     cs._num(p.get("last_price")), cs._signed(p.get("unrealized")), tps, sls])
    pnl = status.get("pnl", {})
    title = (f"positions ({len(rows)})  P&L today: realized {cs._signed(pnl.get('realized'))}, "
             f"unrealized {cs._signed(pnl.get('unrealized'))}, commissions "
             f"{cs._num(pnl.get('commissions'))}")
    return _table(title, ["SYMBOL", "QTY", "AVG", "LAST", "UNREALIZED", "TP", "SL"], rows)


def render_view(status: dict[str, Any] | str, now: float,
                alive: Callable[[int], bool] = cs.pid_alive) -> Group:
    """One frame of the live view."""
    if isinstance(status, str):
        return Group(Text(status, style="bold red"))
    code, warning = cs.verdict(status, now, alive)
    running = code != cs.NOT_RUNNING
    head = cs._head_lines(status, now, running)
    state = head[0].split()[1].lower() if len(head[0].split()) > 1 else ""
    first = Text(head[0], style=STATE_STYLE.get(state, "bold"))
    parts: list[Any] = [Text(warning, style="bold red")] if warning else []
    parts += [first, *(Text(line) for line in head[1:]), _watchers(status), _orders(status),
              _positions(status)]
    return Group(*parts)


def watch(var: Path, *, interval: float = 1.0, console: Console | None = None,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
          running: Callable[[], bool] = lambda: True) -> int:
    """Redraw the view every ``interval`` seconds until Ctrl-C (or ``running`` is false)."""
    path = var / cs.STATUS_FILE
    out = console or Console()
    try:
        with Live(render_view(_read(path), clock()), console=out, auto_refresh=False,
                  screen=False, transient=False) as live:
            while running():
                sleep(interval)
                live.update(render_view(_read(path), clock()), refresh=True)
    except KeyboardInterrupt:
        pass
    return 0
