"""breakoutctl's controls against a running daemon and the simulated gateway's orders."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from breakoutd.cli.ctl import main
from breakoutd.core import events as ev
from breakoutd.daemon.journal import read_journal
from breakoutd.sim import Row
from tests.daemon.daemonkit import DAY, Run, running_daemon
from tests.daemon.test_daemon_sim import ramp
from tests.daemon.test_reload import one_fills_one_rests

T = TypeVar("T")
FIRST, SECOND = "bo:20260309:rth:AAA@10.00", "bo:20260309:rth:second"


@pytest.fixture(autouse=True)
def _socket_in_var(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control socket is <var>/run/control.sock: no systemd directory takes precedence."""
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.delenv("BREAKOUTD_VAR", raising=False)


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 90))  # type: ignore[arg-type]


def _call(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


async def ctl(r: Run, var: Path, *argv: str) -> tuple[int, str, str]:
    """breakoutctl in a thread (a blocking socket), the virtual clock moving meanwhile."""
    task = asyncio.ensure_future(asyncio.to_thread(_call, [*argv, "--var", str(var)]))
    while not task.done():
        await r.step(0.1)
    return task.result()


def journal(var: Path) -> list[dict[str, Any]]:
    return read_journal(var / "journal" / DAY.isoformat() / "events.jsonl")


def commands(var: Path) -> list[tuple[str, str, bool, str]]:
    """The journal's OperatorCommand events: command, target, ok, code; all with our uid."""
    found = [j for j in journal(var) if j["event"] == "OperatorCommand"]
    assert all(j["uid"] == os.getuid() for j in found), found
    return [(j["command"], j["target"], j["ok"], j["code"]) for j in found]


def states(r: Run) -> list[str]:
    return [s.state for s in r.events.of(ev.DaemonState)]


def open_refs(r: Run) -> list[str]:
    return sorted(o.order_ref for o, _ in r.gw.engine.open_orders())


def completed(r: Run) -> dict[str, str]:
    return {o.order_ref: status for o, status in r.gw.engine.completed_orders()}


def position(r: Run, symbol: str) -> int:
    return r.gw.engine.positions().get(symbol, (0, 0))[0]


def breaks(symbol: str, level: str, below: str, above: str, trigger_minute: str) -> list[Row]:
    """Quiet below ``level`` from 09:29:50; the minute before ``trigger_minute`` closes above."""
    h, m = map(int, trigger_minute.split(":"))
    t0, t1 = (9 * 60 + 29) * 60 + 50, (h * 60 + m) * 60 - 10
    hms = f"{t1 // 3600:02d}:{t1 // 60 % 60:02d}:{t1 % 60:02d}"
    return ramp("09:29:50", t1 - t0, below, symbol) + ramp(hms, 70, above, symbol)


def later(*extra: str) -> str:
    """one_fills_one_rests' two AAA watchers, plus ``extra`` watchers (flow-style lines)."""
    two, _ = one_fills_one_rests()
    return two + "".join(f"  - {{{w}, fast: false}}\n" for w in extra)


async def rests(r: Run) -> None:
    """Until AAA@10.00's entry has filled and the second's rests unfilled (09:31:00)."""
    e = r.events
    await r.step(80, until=lambda: any(f.role == "entry" for f in e.of(ev.OrderFilled))
                 and len([s for s in e.of(ev.OrderSent) if s.role == "entry"]) >= 2)
    await r.step(2)
    assert {o.order_ref for o, _ in r.gw.engine.open_orders()} >= {SECOND}
    assert position(r, "AAA") == 100


def test_halt_cancels_the_unfilled_entry_rejects_triggers_and_resume_enters(
        tmp_path: Path) -> None:
    # BBB breaks at 09:32:00 while halted; CCC at 09:33:00 after the resume.
    _, rows = one_fills_one_rests()
    rows += breaks("BBB", "20.00", "19.95", "20.02", "09:32")
    rows += breaks("CCC", "30.00", "29.95", "30.02", "09:33")
    wl = later("symbol: BBB, level: 20.00, qty: 10", "symbol: CCC, level: 30.00, qty: 10")

    async def body() -> None:
        async with running_daemon(rows, wl, tmp_path) as r:
            e = r.events
            await rests(r)
            code, out, _ = await ctl(r, tmp_path, "halt")
            assert code == 0 and "halted (operator); 1 unfilled entry cancelled" in out
            assert completed(r)[SECOND] == "Cancelled"
            assert states(r)[-1] == "halted"
            assert position(r, "AAA") == 100  # a halt without --flatten keeps the position
            await r.step(70, until=lambda: any(j.watcher_id == "BBB@20.00"
                                               for j in e.of(ev.Rejected)))
            [rej] = [j for j in e.of(ev.Rejected) if j.watcher_id == "BBB@20.00"]
            assert rej.reason == "risk_halted"
            assert not [s for s in e.of(ev.OrderSent) if "BBB" in s.order_ref]
            assert not [o for o, _ in r.gw.engine.open_orders() if o.symbol == "BBB"]
            code, out, _ = await ctl(r, tmp_path, "resume")
            assert code == 0 and "trading resumed (was halted)" in out
            assert states(r)[-1] == "running"
            await r.step(70, until=lambda: any("CCC" in f.order_ref for f in e.of(ev.OrderFilled)))
            assert position(r, "CCC") == 10
            assert await r.finish() == 0
        names = [j["event"] for j in journal(tmp_path)]
        assert "Halted" in names and "Resumed" in names
        assert commands(tmp_path) == [("halt", "", True, "done"), ("resume", "", True, "done")]

    run(body())
