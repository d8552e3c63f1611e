"""``breakoutctl status`` and ``breakoutctl tail``: the running daemon at a glance.

``status`` reads ``var/status.json`` (docs/status.md) and prints a compact
table; it says plainly when the daemon is not running (no file, or its pid
is gone) or the file is stale (no heartbeat for three periods). Exit 0 when
running, 1 when degraded, halted, starting or stopping, 3 when not running
or stale. ``tail`` prints the events journal in readable lines, and with
``--follow`` keeps printing what is appended, across the day's rollover.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import msgspec

from breakoutd.calendar import EXCHANGE_TZ, exchange_text
from breakoutd.daemon.status_replay import decode_event

RUNNING, ATTENTION, NOT_RUNNING = 0, 1, 3
STALE_PERIODS = 3
DEFAULT_INTERVAL = 2.0
STATUS_FILE = "status.json"
_DAY_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_status_decoder = msgspec.json.Decoder(float_hook=Decimal)  # prices print as written: 190.00


def var_dir(value: str | None) -> Path:
    """The runtime directory: ``--var``, else ``$BREAKOUTD_VAR``, else ``var``."""
    return Path(value or os.environ.get("BREAKOUTD_VAR") or "var")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _when(iso: str | None, market: bool = False) -> str:
    """An ISO instant for a person, its zone named: exchange time (ET) for what happened
    on the broker's clock (``market``), else the machine's; the date when not today."""
    if not iso:
        return "-"
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    shown = moment.astimezone(EXCHANGE_TZ) if market else moment.astimezone()
    zone = "ET" if market else shown.tzname() or shown.strftime("%z")
    today = dt.datetime.now(shown.tzinfo).date()
    return (f"{shown:%H:%M:%S} {zone}" if shown.date() == today
            else f"{shown:%Y-%m-%d %H:%M:%S} {zone}")


def heartbeat_age(status: dict[str, Any], now: float) -> float | None:
    """Seconds since the file's heartbeat, or None when it has none."""
    try:
        return now - dt.datetime.fromisoformat(status["heartbeat"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def verdict(status: dict[str, Any], now: float,
            alive: Callable[[int], bool] = pid_alive) -> tuple[int, str | None]:
    """The exit code for a status, with the warning to print first (if any)."""
    pid = status.get("pid")
    state = status.get("state", "?")
    if not isinstance(pid, int) or not alive(pid):
        return NOT_RUNNING, (f"breakoutd is NOT RUNNING: pid {pid} is gone "
                             f"(last state {state}, last heartbeat {_when(status.get('heartbeat'))})")
    age = heartbeat_age(status, now)
    period = status.get("interval") or DEFAULT_INTERVAL
    if age is None or age > STALE_PERIODS * period:
        shown = "never" if age is None else f"{age:.0f}s ago"
        return NOT_RUNNING, (f"status is STALE: last heartbeat {shown} (pid {pid} still exists); "
                             f"the daemon may be hung")
    if state == "running":
        return RUNNING, None
    if state == "stopped":
        return NOT_RUNNING, "breakoutd has stopped"
    return ATTENTION, None


# --- the table -------------------------------------------------------------------------


def _num(value: Any) -> str:
    return "-" if value is None else str(value)


def _signed(value: Any) -> str:
    return "-" if value is None else (f"+{value}" if float(value) > 0 else str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))).rstrip()
            for r in [header, *rows]]


def _counts(watchers: list[dict[str, Any]]) -> str:
    """The watchers by state, as the table has them now: ``2 armed, 1 waiting, 1 done``."""
    by_state: dict[str, int] = {}
    for w in watchers:
        by_state[w.get("state", "?")] = by_state.get(w.get("state", "?"), 0) + 1
    order = ["armed", "waiting", *sorted(set(by_state) - {"armed", "waiting"})]
    return ", ".join(f"{by_state.get(k, 0)} {k}" for k in order
                     if k in by_state or k in ("armed", "waiting"))


def _head_lines(s: dict[str, Any], now: float, running: bool = True) -> list[str]:
    age = heartbeat_age(s, now)
    state = s.get("state", "?")
    why = s.get("detail") if state != "running" else _counts(s.get("watchers", []))
    if not running:  # the file is what the daemon last wrote, not what is
        state, why = ("stopped", "") if state == "stopped" else ("not running",
                                                                 f"last state {state}")
    detail = f" ({why})" if why else ""
    beat = "-" if age is None else f"{max(age, 0):.1f}s ago"
    lines = [f"breakoutd  {state.upper()}{detail}  pid {s.get('pid')}  "
             f"since {_when(s.get('started_at'))}  heartbeat {beat}"]
    b = s.get("broker", {})
    link = (f"connected {b.get('account') or '-'} at {b.get('address') or '-'} "
            f"(client {_num(b.get('client_id'))})" if b.get("connected") else "DISCONNECTED")
    if not running:
        link = (f"not connected: the daemon is not running (it last used "
                f"{b.get('account') or '-'} at {b.get('address') or '-'})")
    lines.append(f"broker     {link}  server time {_when(b.get('server_time'), market=True)}")
    if b.get("last_disconnect_at"):
        lines.append(f"           last disconnect {_when(b['last_disconnect_at'], market=True)}: "
                     f"{b.get('last_disconnect_reason')}")
    disk = s.get("disk") or {}
    if disk.get("ok") is False:
        lines.append(f"disk       FAILING: {disk.get('detail')}")
    c = s.get("config", {})
    files = c.get("files", [])
    lines.append(f"config     {c.get('result', '?')}  {len(files)} file{'s' * (len(files) != 1)}  "
                 f"hash {(c.get('hash') or '-')[:12]}  "
                 f"reloaded {_when(c.get('reloaded_at'), market=True)}")
    lines += [f"           {err}" for err in c.get("errors", [])]
    lines += [f"           not applied: {f}" for f in c.get("failed", [])]
    return lines


def _watcher_lines(watchers: list[dict[str, Any]]) -> list[str]:
    rows = []
    for w in watchers:
        dist = "-"
        if w.get("distance_cents") is not None:
            dist = f"{w['distance_cents']}c ({w['distance_pct']}%)"
        end = w.get("outcome") or "-"
        if w.get("reason"):
            end += f": {w['reason']}"
        elif not w.get("outcome") and w.get("near_miss"):
            end = f"near miss: {w['near_miss']}"
        level = _num(w.get("level"))
        if w.get("level_name"):
            level += f" {w['level_name']}"
        rows.append([w["id"], w.get("symbol", ""), w.get("session", ""), w.get("state", "?"),
                     level, _num(w.get("last_price")), dist, end])
    return [f"watchers   {len(watchers)}"] + (
        _table(["ID", "SYMBOL", "SESSION", "STATE", "LEVEL", "LAST", "TO LEVEL", "OUTCOME"], rows)
        if rows else [])


def _order_lines(orders: list[dict[str, Any]]) -> list[str]:
    rows = [[o["ref"], f"tp{o['rung']}" if o["role"] == "take_profit" else o["role"], str(o["id"]),
             o.get("action", ""), o.get("type", ""), o.get("status", ""), str(o.get("qty")),
             str(o.get("filled")), _num(o.get("limit")), _num(o.get("stop"))] for o in orders]
    return [f"orders     {len(orders)} open"] + (
        _table(["REF", "ROLE", "ID", "SIDE", "TYPE", "STATUS", "QTY", "FILLED", "LIMIT", "STOP"],
               rows) if rows else [])


def _position_lines(positions: list[dict[str, Any]], pnl: dict[str, Any]) -> list[str]:
    lines = [f"positions  {len(positions)}"]
    for p in positions:
        tps = " ".join(f"{t['price']}x{t['qty']}" for t in p.get("take_profits", [])) or "-"
        sls = " ".join(f"{t['price']}/{_num(t.get('limit'))}x{t['qty']}"
                       + (f" ({t['rule']})" if t.get("rule") not in (None, "initial") else "")
                       for t in p.get("stops", [])) or "-"
        slices = "".join(f"  slices {s['sent']}/{s['count']} sent, {s['filled']} filled"
                         + (f" (no more: {s['skipped']})" if s.get("skipped") else "")
                         for s in p.get("slices", []))
        lines.append(f"  {p['symbol']}  {p['qty']} @ {p['avg_price']}  last "
                     f"{_num(p.get('last_price'))}  unrealized {_signed(p.get('unrealized'))}  "
                     f"tp {tps}  sl {sls}{slices}")
    lines.append(f"P&L today  realized {_signed(pnl.get('realized'))}  unrealized "
                 f"{_signed(pnl.get('unrealized'))}  commissions {_num(pnl.get('commissions'))}")
    return lines


def render_status(s: dict[str, Any], now: float, running: bool = True) -> str:
    """The status file as a compact table (of a daemon no longer there, when not ``running``)."""
    lines = _head_lines(s, now, running)
    lines += _watcher_lines(s.get("watchers", []))
    lines += _order_lines(s.get("orders", []))
    lines += _position_lines(s.get("positions", []), s.get("pnl", {}))
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    """Show the daemon's status; the exit code says running (0), attention (1), not running (3)."""
    if getattr(args, "watch", False):
        from breakoutd.cli.ctl_watch import watch

        return watch(var_dir(args.var), interval=args.interval)
    path = var_dir(args.var) / STATUS_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        print(f"breakoutd is NOT RUNNING: no status file at {path}")
        return NOT_RUNNING
    except OSError as exc:  # e.g. not in the daemon's group: docs/deploy.md
        print(f"{path}: cannot read the status file: {exc.strerror or exc}")
        return NOT_RUNNING
    try:
        status = _status_decoder.decode(raw)
        if not isinstance(status, dict):
            raise msgspec.DecodeError("not a JSON object")
    except msgspec.DecodeError as exc:
        print(f"{path}: unreadable status file: {exc}")
        return NOT_RUNNING
    now = time.time()
    code, warning = verdict(status, now)
    if args.json:
        sys.stdout.write(raw.decode())
        if warning:
            print(warning, file=sys.stderr)
        return code
    if warning:
        print(warning)
    print(render_status(status, now, running=code != NOT_RUNNING))
    return code


# --- tail ------------------------------------------------------------------------------


class _Stamp(msgspec.Struct):
    wall: str | None = None
    at: int | None = None
    event: str | None = None


def _stamp_text(stamp: _Stamp) -> str:
    """The line's time the way the console shows it: on the broker's clock, in exchange
    time (``2026-03-09 09:30:00.123 -04:00 ET``); the wall time for a line without one."""
    if stamp.at is not None:
        return exchange_text(stamp.at)
    try:
        if stamp.wall is None:
            return "-"
        moment = dt.datetime.fromisoformat(stamp.wall)
    except ValueError:
        return stamp.wall or "-"
    offset = moment.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}" if offset else ""
    return (f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d} {offset} "
            f"{moment.tzname() or ''}").rstrip()


def format_journal_line(raw: bytes) -> str | None:
    """A journal line as one readable line (None for a blank one)."""
    if not raw.strip():
        return None
    try:
        stamp = msgspec.json.decode(raw, type=_Stamp)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return f"? {raw.decode(errors='replace')}"
    # Here, not at the top: the console's logging stack is a third of the start-up
    # of every other breakoutctl command (`check` on a large file among them).
    from breakoutd.daemon.console import describe

    event = decode_event(raw)
    text = describe(event) if event is not None else f"{stamp.event or '?'}: {raw.decode(errors='replace')}"
    return f"{_stamp_text(stamp)} {text}"


class LineReader:
    """Whole lines appended to a file; a torn last line waits until it is complete."""

    def __init__(self, path: Path, pos: int = 0) -> None:
        self.path = path
        self.pos = pos
        self._partial = b""

    def read(self) -> list[bytes]:
        """The lines completed since the last read."""
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                if size < self.pos:  # a torn tail was cut off when the journal reopened
                    self.pos = min(size, self.pos - len(self._partial))
                    self._partial = b""
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return []
        self.pos += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        return lines


def _newest_day(root: Path) -> str | None:
    days = sorted(p.name for p in root.glob("*") if _DAY_DIR.match(p.name) and p.is_dir())
    return days[-1] if days else None


def _start_day(root: Path, day: str | None) -> str | None:
    today = dt.date.today().isoformat()
    return day or (today if (root / today).is_dir() else _newest_day(root))


def _print(lines: Sequence[bytes], out: TextIO) -> None:
    for raw in lines:
        text = format_journal_line(raw)
        if text is not None:
            out.write(text + "\n")
    out.flush()


def tail(var: Path, *, day: str | None, n: int, follow: bool, out: TextIO,
         poll: float = 0.25, sleep: Callable[[float], None] = time.sleep,
         running: Callable[[], bool] = lambda: True) -> int:
    """Print the last ``n`` events; with ``follow``, then what is appended until ``running`` is false."""
    root = var / "journal"
    current = _start_day(root, day)
    path = root / current / "events.jsonl" if current else None
    if path is None or not path.exists():
        print(f"no events journal under {root}" + (f" for {day}" if day else ""), file=sys.stderr)
        if not follow:
            return 1
    reader = None
    if path is not None:
        data = path.read_bytes() if path.exists() else b""
        whole = data[:data.rfind(b"\n") + 1]
        _print(whole.split(b"\n")[:-1][-n:] if n > 0 else [], out)
        reader = LineReader(path, len(whole))
    while follow and running():
        lines = reader.read() if reader is not None else []
        _print(lines, out)
        newest = None if day else _newest_day(root)
        if newest is not None and newest != current and (root / newest / "events.jsonl").exists():
            if reader is not None:
                _print(reader.read(), out)  # what the old day still had
            current, reader = newest, LineReader(root / newest / "events.jsonl")
            continue
        if not lines:
            sleep(poll)
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    """Print the events journal readably; ``--follow`` keeps going until Ctrl-C."""
    try:
        return tail(var_dir(args.var), day=args.day, n=args.n, follow=args.follow,
                    out=sys.stdout)
    except KeyboardInterrupt:
        return 0


def _day(value: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def add_status_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``status`` and ``tail``."""
    var_help = "runtime directory (default: $BREAKOUTD_VAR or var)"
    status = commands.add_parser("status", help="show the running daemon's state at a glance")
    status.add_argument("--json", action="store_true", help="print the status file as it is")
    status.add_argument("--var", metavar="DIR", help=var_help)
    status.add_argument("-w", "--watch", action="store_true",
                        help="a live view, redrawn in place until Ctrl-C")
    status.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                        help="with --watch: seconds between redraws (default: 1)")
    status.set_defaults(run=cmd_status)
    tail_p = commands.add_parser("tail", help="print the events journal readably")
    tail_p.add_argument("--var", metavar="DIR", help=var_help)
    tail_p.add_argument("--day", type=_day, metavar="YYYY-MM-DD",
                        help="the journal's day (default: today's, or the newest)")
    tail_p.add_argument("-n", type=int, default=20, metavar="N",
                        help="how many of the last events to print first (default: 20)")
    tail_p.add_argument("-f", "--follow", action="store_true",
                        help="keep printing events as they are written")
    tail_p.set_defaults(run=cmd_tail)
