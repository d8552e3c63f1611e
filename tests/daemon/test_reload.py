"""Hot reload: a plan applied to exactly the watchers an edit touches."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from breakoutd.core import events as ev
from breakoutd.daemon.journal import read_journal
from breakoutd.sim import Row
from tests.daemon.daemonkit import DAY, Run, running_daemon
from tests.daemon.test_daemon_sim import ramp

BASE = """\
breakouts:
  - symbol: AAA
    level: 10.00
    qty: 10
  - symbol: BBB
    level: 20.00
    qty: 10
"""
ADD_CCC = BASE + "  - symbol: CCC\n    level: 30.00\n    qty: 10\n"


def market() -> list:  # type: ignore[type-arg]
    return (ramp("09:29:50", 120, "9.50", "AAA") + ramp("09:29:50", 120, "19.50", "BBB")
            + ramp("09:29:50", 120, "29.50", "CCC"))


def save_by_rename(path: Path, text: str) -> None:
    """What editors do: write a temporary file beside it, then rename it over."""
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(text)
    os.replace(tmp, path)


def subscriptions(r: Run) -> dict[str, list[int]]:
    """The sim's market-data request ids per symbol: a resubscription changes them."""
    return {sym: sorted(s.req_id for s in r.gw.feeds.subs(sym, "quotes"))
            for sym in ("AAA", "BBB", "CCC")}


async def reloaded(r: Run, n: int) -> ev.ConfigReloaded:
    await r.events.wait(lambda: len(r.events.of(ev.ConfigReloaded)) >= n)
    return r.events.of(ev.ConfigReloaded)[n - 1]


def test_add_change_remove_touch_only_their_watcher(tmp_path: Path) -> None:
    async def body() -> None:
        async with running_daemon(market(), BASE, tmp_path) as r:
            wl = tmp_path / "watchlists" / "test.yaml"
            before = subscriptions(r)
            runner_a = r.daemon.runners["AAA@10.00"]
            save_by_rename(wl, ADD_CCC)
            rel = await reloaded(r, 1)
            assert (rel.result, rel.added, rel.removed, rel.changed) == (
                "applied", ("CCC@30.00",), (), ())
            assert "CCC@30.00" in r.daemon.runners  # its session is open: armed at once
            after = subscriptions(r)
            assert after["AAA"] == before["AAA"] and after["BBB"] == before["BBB"]
            assert after["CCC"]  # and only CCC was requested
            assert r.daemon.runners["AAA@10.00"] is runner_a

            save_by_rename(wl, ADD_CCC.replace("level: 20.00", "level: 20.50"))
            rel = await reloaded(r, 2)
            # The id follows the level (BBB@20.00 -> BBB@20.50): a remove and an add.
            assert (rel.added, rel.removed) == (("BBB@20.50",), ("BBB@20.00",))
            stopped = r.events.of(ev.Stopped)
            assert [(s.watcher_id, s.reason) for s in stopped] == [("BBB@20.00", "removed")]
            assert r.daemon.runners["AAA@10.00"] is runner_a

            save_by_rename(wl, ADD_CCC.replace("level: 20.00", "level: 20.50").replace(
                "  - symbol: AAA\n    level: 10.00\n    qty: 10\n",
                "  - symbol: AAA\n    level: 10.00\n    qty: 20\n"))
            rel = await reloaded(r, 3)
            assert rel.changed == ("AAA@10.00",)  # same id, new qty: re-armed
            assert r.daemon.runners["AAA@10.00"] is not runner_a
            assert r.daemon.runners["AAA@10.00"].spec.qty == 20
            assert await r.finish() == 0

    asyncio.run(asyncio.wait_for(body(), 60))


def test_an_invalid_edit_changes_nothing_and_says_where(tmp_path: Path) -> None:
    async def body() -> None:
        async with running_daemon(market(), BASE, tmp_path) as r:
            wl = tmp_path / "watchlists" / "test.yaml"
            runners = dict(r.daemon.runners)
            save_by_rename(wl, BASE.replace("level: 20.00", "levle: 20.00"))
            rel = await reloaded(r, 1)
            assert rel.result == "invalid"
            assert any(e.startswith(f"{wl}:6: ") and "levle" in e for e in rel.errors), rel.errors
            assert r.daemon.runners == runners
            assert await r.finish() == 0
        ops = read_journal(tmp_path / "journal" / DAY.isoformat() / "ops.jsonl")
        assert any("levle" in o["message"] and o["level"] == "ERROR" for o in ops)

    asyncio.run(asyncio.wait_for(body(), 60))


def test_a_burst_of_saves_applies_once_and_sighup_reloads(tmp_path: Path) -> None:
    async def body() -> None:
        async with running_daemon(market(), BASE, tmp_path) as r:
            wl = tmp_path / "watchlists" / "test.yaml"
            for n in range(5):
                save_by_rename(wl, ADD_CCC + f"# save {n}\n")
            rel = await reloaded(r, 1)
            assert rel.added == ("CCC@30.00",)
            await asyncio.sleep(0.5)  # longer than the debounce: nothing else may follow
            assert len(r.events.of(ev.ConfigReloaded)) == 1
            r.daemon.request_reload("SIGHUP")
            rel = await reloaded(r, 2)
            assert (rel.trigger, rel.result) == ("SIGHUP", "unchanged")
            assert await r.finish() == 0

    asyncio.run(asyncio.wait_for(body(), 60))


def test_a_save_that_changes_nothing_sends_nothing_to_the_broker(tmp_path: Path) -> None:
    async def body() -> None:
        async with running_daemon(market(), BASE, tmp_path) as r:
            wl = tmp_path / "watchlists" / "test.yaml"
            received: list[str] = []
            dispatch = r.gw.dispatch

            def counting(session, fields, received_ns):  # type: ignore[no-untyped-def]
                received.append(fields[0])
                return dispatch(session, fields, received_ns)
            r.gw.dispatch = counting  # type: ignore[method-assign]
            runners = dict(r.daemon.runners)
            save_by_rename(wl, BASE.replace("qty: 10\n", "qty: 10   # same value, new comment\n"))
            rel = await reloaded(r, 1)
            assert rel.result == "unchanged"
            assert received == [] and r.daemon.runners == runners
            assert await r.finish() == 0

    asyncio.run(asyncio.wait_for(body(), 60))


def one_fills_one_rests(exits: str = "") -> tuple[str, list[Row]]:
    """Two watchers on AAA trigger at 09:31:00; the 100 shares offered go to the first
    entry, the second rests unfilled (the market moves up). ``exits``: their tp and sl."""
    two = ("breakouts:\n"
           f"  - {{symbol: AAA, level: 10.00, qty: 100, fast: false{exits}}}\n"
           f"  - {{id: second, symbol: AAA, level: 9.99, qty: 100, fast: false{exits}}}\n")
    rows = ramp("09:29:50", 60, "9.95", "AAA") + ramp("09:30:50", 10, "10.02", "AAA")
    rows = [r._replace(ask_size=100) for r in rows] + ramp("09:31:00", 60, "10.10", "AAA")
    return two, rows


def test_removing_a_watcher_cancels_its_unfilled_entry(tmp_path: Path) -> None:
    two, rows = one_fills_one_rests()  # the second rests until its watcher is removed

    async def body() -> None:
        async with running_daemon(rows, two, tmp_path) as r:
            e = r.events
            await r.step(80, until=lambda: len(e.of(ev.OrderSent)) >= 2)
            await r.step(5)
            entries = {s.order_ref.rsplit(":", 1)[1]: s.order_id for s in e.of(ev.OrderSent)}
            filled = {f.order_ref.rsplit(":", 1)[1] for f in e.of(ev.OrderFilled)}
            assert filled == {"AAA@10.00"}  # the second entry rests unfilled
            save_by_rename(tmp_path / "watchlists" / "test.yaml",
                           "breakouts:\n  - {symbol: AAA, level: 10.00, qty: 100, fast: false}\n")
            rel = await reloaded(r, 1)
            assert rel.removed == ("second",)
            await e.wait(lambda: any(s.order_id == entries["second"] and s.status == "Cancelled"
                                     for s in e.of(ev.OrderStatusChanged)))
            assert await r.finish() == 0

    asyncio.run(asyncio.wait_for(body(), 60))


def test_stopping_cancels_an_unfilled_entry_and_leaves_the_filled_one_s_exits(
        tmp_path: Path) -> None:
    # The daemon is stopped (SIGTERM's path) while the second entry rests.
    two, rows = one_fills_one_rests(", tp: 11.00, sl: 9.50")

    async def body() -> None:
        async with running_daemon(rows, two, tmp_path) as r:
            e = r.events
            await r.step(80, until=lambda: len(e.of(ev.OrderSent)) >= 6)
            await r.step(5)
            filled = {f.order_ref.rsplit(":", 1)[1] for f in e.of(ev.OrderFilled)}
            assert filled == {"AAA@10.00"}  # the second entry rests unfilled
            assert await r.finish() == 0
            live = [(o.order_ref, o.action) for o, _ in r.gw.engine.open_orders()]
            cancelled = [o.order_ref for o, status in r.gw.engine.completed_orders()
                         if status == "Cancelled"]
        return live, cancelled

    live, cancelled = asyncio.run(asyncio.wait_for(body(), 60))
    first, second = "bo:20260309:rth:AAA@10.00", "bo:20260309:rth:second"
    # The filled entry's take-profit and stop stay working at the broker; the unfilled
    # entry is cancelled, and its exits with it.
    assert sorted(live) == [(f"{first}:sl", "SELL"), (f"{first}:tp1", "SELL")]
    assert sorted(cancelled) == [second, f"{second}:sl", f"{second}:tp1"]
    journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
    assert journal[-1]["event"] == "DaemonState" and journal[-1]["state"] == "stopped"
    assert any(j["event"] == "OrderStatusChanged" and j["order_ref"] == second
               and j["status"] == "Cancelled" for j in journal)
