"""breakoutctl's controls against a running daemon and the simulated gateway's orders."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import Awaitable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from breakoutd.cli.ctl import main
from breakoutd.core import events as ev
from breakoutd.daemon.journal import read_journal
from breakoutd.sim import Row
from tests.daemon.daemonkit import DAY, Run, at, px, running_daemon
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


def test_halt_flatten_sells_the_position_and_its_exits_are_gone(tmp_path: Path) -> None:
    two, rows = one_fills_one_rests(", tp: 11.00, sl: 9.50")

    async def body() -> None:
        async with running_daemon(rows, two, tmp_path) as r:
            e = r.events
            await rests(r)
            assert {f"{FIRST}:tp1", f"{FIRST}:sl"} <= set(open_refs(r))
            code, out, _ = await ctl(r, tmp_path, "halt", "--flatten")
            assert code == 0 and "1 position(s) being sold" in out, out
            await r.step(5, until=lambda: position(r, "AAA") == 0)
            assert position(r, "AAA") == 0
            assert open_refs(r) == []  # no exit, no entry left working
            done = completed(r)
            assert (done[f"{FIRST}:tp1"], done[f"{FIRST}:sl"]) == ("Cancelled", "Cancelled")
            assert (done[SECOND], done[f"{FIRST}:fx"]) == ("Cancelled", "Filled")
            [sold] = e.of(ev.FlattenSent)
            assert (sold.watcher_id, sold.qty, sold.order_type, sold.reason) == (
                "AAA@10.00", 100, "MKT", "halt")
            assert states(r)[-1] == "halted"
            assert await r.finish() == 0
        halted = [j for j in journal(tmp_path) if j["event"] == "Halted"]
        assert [(h["reason"], h["flatten"]) for h in halted] == [("operator", True)]
        assert commands(tmp_path) == [("halt", "", True, "done")]

    run(body())


def test_pause_rejects_a_trigger_leaves_the_exits_and_resume_enters(tmp_path: Path) -> None:
    _, rows = one_fills_one_rests()
    two, _ = one_fills_one_rests(", tp: 11.00, sl: 9.50")
    rows += breaks("BBB", "20.00", "19.95", "20.02", "09:32")
    rows += breaks("CCC", "30.00", "29.95", "30.02", "09:33")
    wl = two + ("  - {symbol: BBB, level: 20.00, qty: 10, fast: false}\n"
                "  - {symbol: CCC, level: 30.00, qty: 10, fast: false}\n")

    async def body() -> None:
        async with running_daemon(rows, wl, tmp_path) as r:
            e = r.events
            await rests(r)
            exits = {(o.order_ref, o.order_id, o.lmt_price, o.aux_price)
                     for o, _ in r.gw.engine.open_orders() if o.order_ref.startswith(FIRST)}
            assert len(exits) == 2
            code, out, _ = await ctl(r, tmp_path, "pause")
            assert code == 0 and out.startswith("paused"), out
            assert states(r)[-1] == "paused"
            await r.step(70, until=lambda: any(j.watcher_id == "BBB@20.00"
                                               for j in e.of(ev.Rejected)))
            [rej] = [j for j in e.of(ev.Rejected) if j.watcher_id == "BBB@20.00"]
            assert rej.reason == "paused"
            assert not [o for o, _ in r.gw.engine.open_orders() if o.symbol == "BBB"]
            # The working exits and the resting entry are left as they were.
            assert exits == {(o.order_ref, o.order_id, o.lmt_price, o.aux_price)
                             for o, _ in r.gw.engine.open_orders()
                             if o.order_ref.startswith(FIRST)}
            assert SECOND in open_refs(r) and position(r, "AAA") == 100
            code, out, _ = await ctl(r, tmp_path, "resume")
            assert code == 0 and "was paused" in out
            assert states(r)[-1] == "running"
            await r.step(70, until=lambda: any("CCC" in f.order_ref for f in e.of(ev.OrderFilled)))
            assert position(r, "CCC") == 10
            assert await r.finish() == 0
        assert commands(tmp_path) == [("pause", "", True, "done"), ("resume", "", True, "done")]

    run(body())


@pytest.mark.parametrize("target", ["AAA@10.00", "AAA"])
def test_flatten_in_regular_hours_cancels_the_exits_and_sells_at_market(
        tmp_path: Path, target: str) -> None:
    two, rows = one_fills_one_rests(", tp: 11.00, sl: 9.50")
    two = two.replace("{id: second, symbol: AAA", "{id: second, symbol: ZZZ")  # AAA only
    rows = rows + ramp("09:29:50", 120, "9.50", "ZZZ")

    async def body() -> None:
        async with running_daemon(rows, two, tmp_path) as r:
            e = r.events
            await r.step(80, until=lambda: position(r, "AAA") == 100)
            await r.step(2)
            code, out, _ = await ctl(r, tmp_path, "flatten", target)
            assert code == 0 and "selling 100 share(s) of 1 position(s)" in out, out
            await r.step(5, until=lambda: position(r, "AAA") == 0)
            assert position(r, "AAA") == 0 and open_refs(r) == []
            done = completed(r)
            assert (done[f"{FIRST}:tp1"], done[f"{FIRST}:sl"]) == ("Cancelled", "Cancelled")
            sale = [s for s in e.of(ev.OrderSent) if s.role == "flatten"]
            assert [(s.order_type, s.qty) for s in sale] == [("MKT", 100)]
            code, _, err = await ctl(r, tmp_path, "flatten", target)
            assert code == 1 and f"nothing is held for {target}" in err, err
            assert await r.finish() == 0
        assert commands(tmp_path) == [("flatten", target, True, "done"),
                                      ("flatten", target, False, "nothing")]
        assert any(j["event"] == "FlattenSent" and j["reason"] == "operator"
                   for j in journal(tmp_path))

    run(body())


def test_cancel_cancels_an_unfilled_entry_and_refuses_a_filled_one(tmp_path: Path) -> None:
    two, rows = one_fills_one_rests(", tp: 11.00, sl: 9.50")

    async def body() -> None:
        async with running_daemon(rows, two, tmp_path) as r:
            await rests(r)
            code, out, _ = await ctl(r, tmp_path, "cancel", "second")
            assert code == 0 and "second's entry is cancelled" in out, out
            done = completed(r)
            assert done[SECOND] == "Cancelled"
            assert not [x for x in open_refs(r) if x.startswith(SECOND)]  # its exits went too
            code, _, err = await ctl(r, tmp_path, "cancel", "AAA@10.00")
            assert code == 1 and "use `breakoutctl flatten AAA@10.00`" in err, err
            assert {f"{FIRST}:tp1", f"{FIRST}:sl"} == set(open_refs(r))
            assert position(r, "AAA") == 100
            assert await r.finish() == 0
        assert commands(tmp_path) == [("cancel", "second", True, "done"),
                                      ("cancel", "AAA@10.00", False, "filled")]

    run(body())


def test_stop_disarms_a_watcher_and_its_break_sends_nothing(tmp_path: Path) -> None:
    rows = breaks("BBB", "20.00", "19.95", "20.02", "09:31")
    rows += breaks("CCC", "30.00", "29.95", "30.02", "09:31")
    wl = ("breakouts:\n  - {symbol: BBB, level: 20.00, qty: 10, fast: false}\n"
          "  - {symbol: CCC, level: 30.00, qty: 10, fast: false}\n")

    async def body() -> None:
        async with running_daemon(rows, wl, tmp_path) as r:
            e = r.events
            await r.step(5)
            code, out, _ = await ctl(r, tmp_path, "stop", "BBB@20.00")
            assert code == 0 and "BBB@20.00 is stopped for today" in out, out
            assert [(s.watcher_id, s.reason) for s in e.of(ev.Stopped)] == [
                ("BBB@20.00", "operator")]
            code, _, err = await ctl(r, tmp_path, "stop", "NOPE@1.00")
            assert code == 1 and "NOPE@1.00 is not armed" in err, err
            # Both break at 09:31:00: CCC enters, the stopped BBB sends nothing.
            await r.step(80, until=lambda: position(r, "CCC") == 10)
            await r.step(3)
            assert position(r, "CCC") == 10
            assert not [s for s in e.of(ev.OrderSent) if "BBB" in s.order_ref]
            assert not [o for o, _ in r.gw.engine.open_orders() if o.symbol == "BBB"]
            assert position(r, "BBB") == 0
            assert await r.finish() == 0
        assert commands(tmp_path) == [("stop", "BBB@20.00", True, "done"),
                                      ("stop", "NOPE@1.00", False, "unknown")]

    run(body())


def test_flatten_outside_regular_hours_sells_at_the_bid_less_five_cents(tmp_path: Path) -> None:
    # Premarket: the 08:01 minute closes at 10.02 (bid 10.01); the sale is a LMT at 9.96.
    rows = ramp("08:00:00", 110, "9.95") + ramp("08:01:50", 60, "10.02")
    wl = ("breakouts:\n  - {symbol: DEMO, level: 10.00, qty: 100, tp: 11.00, sl: 9.50,"
          " fast: false, sessions: [premarket]}\n")
    first = "bo:20260309:premarket:DEMO@10.00"

    async def body() -> None:
        async with running_daemon(rows, wl, tmp_path, start="08:00:00") as r:
            e = r.events
            await r.step(140, until=lambda: position(r, "DEMO") == 100)
            await r.step(2)
            assert {f"{first}:tp1", f"{first}:sl"} == set(open_refs(r))
            code, out, _ = await ctl(r, tmp_path, "flatten", "DEMO@10.00")
            assert code == 0 and "selling 100 share(s)" in out, out
            [sale] = [o for o, _ in r.gw.engine.open_orders() if o.order_ref == f"{first}:fx"] \
                or [o for o, _ in r.gw.engine.completed_orders() if o.order_ref == f"{first}:fx"]
            assert (sale.action, sale.order_type, sale.total_qty, sale.lmt_price,
                    sale.outside_rth) == ("SELL", "LMT", 100, px("9.96"), True)
            [sent] = [s for s in e.of(ev.OrderSent) if s.role == "flatten"]
            assert (sent.order_type, sent.limit) == ("LMT", Decimal("9.96"))
            [flat] = e.of(ev.FlattenSent)
            assert (flat.order_type, flat.limit) == ("LMT", Decimal("9.96"))
            await r.step(5, until=lambda: position(r, "DEMO") == 0)
            assert position(r, "DEMO") == 0 and open_refs(r) == []
            assert await r.finish() == 0
        assert commands(tmp_path) == [("flatten", "DEMO@10.00", True, "done")]

    run(body())


def test_a_stopped_watcher_stays_stopped_after_a_restart(tmp_path: Path) -> None:
    rows = breaks("BBB", "20.00", "19.95", "20.02", "09:31")
    wl = "breakouts:\n  - {symbol: BBB, level: 20.00, qty: 10, fast: false}\n"

    async def body() -> None:
        async with running_daemon(rows, wl, tmp_path) as r:
            await r.step(2)
            code, _, _ = await ctl(r, tmp_path, "stop", "BBB@20.00")
            assert code == 0
            assert await r.finish() == 0
        async with running_daemon(rows, wl, tmp_path, start="09:30:10") as r:
            assert "BBB@20.00" not in r.daemon.runners
            await r.step(60)  # through the 09:31:00 break
            assert not r.events.of(ev.OrderSent)
            assert not r.gw.engine.open_orders() and position(r, "BBB") == 0
            assert await r.finish() == 0

    run(body())


def test_a_second_flatten_while_the_sale_rests_sells_nothing_more(tmp_path: Path) -> None:
    # After the premarket entry the bids go away and nothing trades: the sale (priced off
    # the last trade, 10.02 - 0.05) rests; a second flatten must not offer the shares again.
    quiet = [Row(at(f"08:02:{s:02d}"), "DEMO", None, None, None, None, None, 0, 0,
                 px("10.03"), 100) for s in range(10, 60)]
    rows = ramp("08:00:00", 110, "9.95") + ramp("08:01:50", 20, "10.02") + quiet
    wl = ("breakouts:\n  - {symbol: DEMO, level: 10.00, qty: 100, tp: 11.00, sl: 9.50,"
          " fast: false, sessions: [premarket]}\n")
    fx = "bo:20260309:premarket:DEMO@10.00:fx"

    async def body() -> None:
        async with running_daemon(rows, wl, tmp_path, start="08:00:00") as r:
            await r.step(140, until=lambda: position(r, "DEMO") == 100)
            await r.step(12)
            code, out, _ = await ctl(r, tmp_path, "flatten", "DEMO")
            assert code == 0, out
            assert [(o.lmt_price, o.total_qty) for o, _ in r.gw.engine.open_orders()
                    if o.order_ref == fx] == [(px("9.97"), 100)]
            code, _, err = await ctl(r, tmp_path, "flatten", "DEMO")
            assert code == 1 and "already" in err, err
            sells = [o for o, _ in r.gw.engine.open_orders() if o.action == "SELL"]
            assert [(o.order_ref, o.total_qty) for o in sells] == [(fx, 100)]
            assert len(r.events.of(ev.FlattenSent)) == 1
            assert await r.finish() == 0

    run(body())
