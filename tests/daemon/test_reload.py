"""Hot reload: a plan applied to exactly the watchers an edit touches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path

import pytest

import breakoutd.daemon.reload as reload_mod
from breakoutd.config import read_snapshot, snapshot_path
from breakoutd.core import events as ev
from breakoutd.daemon.journal import read_journal
from breakoutd.daemon.status import status_path
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


def test_a_save_that_only_changes_the_risk_limits_applies_them(tmp_path: Path) -> None:
    async def body() -> None:
        async with running_daemon(market(), BASE, tmp_path) as r:
            wl = tmp_path / "watchlists" / "test.yaml"
            runners = dict(r.daemon.runners)
            save_by_rename(wl, BASE + "risk:\n  max_positions: 1\n")
            rel = await reloaded(r, 1)
            assert (rel.result, rel.added, rel.removed, rel.changed) == ("applied", (), (), ())
            assert r.daemon.today.ledger.limits.max_positions == 1
            assert r.daemon.runners == runners  # no watcher was touched
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
            assert rel.notes == ("second removed: its entry had bought nothing and is cancelled",)
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


ADD_UNKNOWN = ADD_CCC + "  - symbol: ZZZZ\n    level: 5.00\n    qty: 10\n"  # ZZZZ: line 11


def ops_errors(var: Path) -> list[str]:
    ops = read_journal(var / "journal" / DAY.isoformat() / "ops.jsonl")
    return [o["message"] for o in ops if o["level"] == "ERROR"]


def final_config(var: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(status_path(var).read_text())["config"]  # type: ignore[no-any-return]


def test_an_unknown_symbol_is_reported_where_it_is_and_the_rest_applies(tmp_path: Path) -> None:
    async def body() -> None:
        async with running_daemon(market(), BASE, tmp_path) as r:
            wl = tmp_path / "watchlists" / "test.yaml"
            save_by_rename(wl, ADD_UNKNOWN.replace("qty: 10\n", "qty: 20\n", 1))
            rel = await reloaded(r, 1)
            assert (rel.result, rel.added, rel.changed) == ("partial", ("CCC@30.00",),
                                                           ("AAA@10.00",))
            [failed] = rel.failed
            assert failed.startswith(f"ZZZZ@5.00: {wl}:11: "), failed
            assert "does not know the symbol ZZZZ" in failed
            assert "CCC@30.00" in r.daemon.runners and "ZZZZ@5.00" not in r.daemon.runners
            assert r.daemon.runners["AAA@10.00"].spec.qty == 20
            # What is in force leaves ZZZZ out, so `breakoutctl plan` shows it still to add.
            assert r.daemon.config is not None and r.daemon.config.watcher("ZZZZ@5.00") is None
            snap = read_snapshot(snapshot_path(tmp_path))
            assert snap is not None and snap.digest == r.daemon.config.digest == rel.digest
            assert snap.watcher("ZZZZ@5.00") is None and snap.watcher("CCC@30.00") is not None
            assert r.daemon.status.model.config.failed == [failed]

            save_by_rename(wl, ADD_CCC.replace("level: 20.00", "level: 20.50"))  # ZZZZ gone
            rel = await reloaded(r, 2)
            assert (rel.result, rel.failed) == ("applied", ())
            assert (rel.added, rel.removed, rel.changed) == (
                ("BBB@20.50",), ("BBB@20.00",), ("AAA@10.00",))
            assert "BBB@20.50" in r.daemon.runners and r.daemon.runners["AAA@10.00"].spec.qty == 10
            assert await r.finish() == 0
        assert any("ZZZZ@5.00" in m and "does not know the symbol" in m
                   for m in ops_errors(tmp_path))
        assert final_config(tmp_path)["failed"] == []

    asyncio.run(asyncio.wait_for(body(), 60))


def test_start_up_arms_every_watcher_but_the_one_with_an_unknown_symbol(tmp_path: Path) -> None:
    async def body() -> None:
        async with running_daemon(market(), ADD_UNKNOWN, tmp_path) as r:
            wl = tmp_path / "watchlists" / "test.yaml"
            assert sorted(r.daemon.runners) == ["AAA@10.00", "BBB@20.00", "CCC@30.00"]
            [rel] = r.events.of(ev.ConfigReloaded)
            assert (rel.trigger, rel.result) == ("start-up", "partial")
            [failed] = rel.failed
            assert failed.startswith(f"ZZZZ@5.00: {wl}:11: ")
            assert "does not know the symbol ZZZZ" in failed
            assert r.daemon.config is not None and r.daemon.config.watcher("ZZZZ@5.00") is None
            assert await r.finish() == 0
        config = final_config(tmp_path)
        assert config["result"] == "partial" and config["failed"] == [failed]
        assert any("ZZZZ@5.00" in m for m in ops_errors(tmp_path))

    asyncio.run(asyncio.wait_for(body(), 60))


def test_a_rung_count_change_after_entry_is_refused_and_the_next_save_applies(
        tmp_path: Path) -> None:
    two, rows = one_fills_one_rests(", tp: 11.00, sl: 9.50")
    first = "AAA@10.00"

    async def body() -> None:
        async with running_daemon(rows, two, tmp_path) as r:
            e = r.events
            wl = tmp_path / "watchlists" / "test.yaml"
            await r.step(80, until=lambda: any(f.role == "entry" for f in e.of(ev.OrderFilled)))
            third = "  - {id: third, symbol: AAA, level: 12.00, qty: 10, fast: false}\n"
            laddered = two.replace("qty: 100, fast: false, tp: 11.00",
                                   "qty: 100, fast: false, tp: [11.00, 11.50]", 1)
            assert laddered != two
            save_by_rename(wl, laddered + third)
            rel = await reloaded(r, 1)
            assert (rel.result, rel.added, rel.changed) == ("partial", ("third",), ())
            [failed] = rel.failed
            assert failed.startswith(f"{first}: {wl}:2: ") and "take-profit" in failed, failed
            assert "third" in r.daemon.runners
            assert r.daemon.config is not None
            assert len(r.daemon.config.watcher(first).tp) == 1  # type: ignore[union-attr]
            assert not e.of(ev.OrderModified)

            save_by_rename(wl, two.replace("tp: 11.00", "tp: 11.20", 1) + third)
            rel = await reloaded(r, 2)
            assert (rel.result, rel.changed, rel.failed) == ("applied", (first,), ())
            [moved] = [m for m in e.of(ev.OrderModified) if m.role == "take_profit"]
            assert moved.order_ref.endswith(first) and str(moved.limit) == "11.20"
            assert await r.finish() == 0
        assert any(first in m and "take-profit" in m for m in ops_errors(tmp_path))

    asyncio.run(asyncio.wait_for(body(), 60))


def test_a_failing_reload_does_not_stop_later_saves(tmp_path: Path) -> None:
    async def body() -> None:
        async with running_daemon(market(), BASE, tmp_path) as r:
            wl = tmp_path / "watchlists" / "test.yaml"
            real, failed_once = r.daemon.reload, asyncio.Event()

            async def reload_failing_once(trigger: str) -> ev.ConfigReloaded:
                if not failed_once.is_set():
                    failed_once.set()
                    raise RuntimeError("injected reload failure")
                return await real(trigger)
            r.daemon.reload = reload_failing_once  # type: ignore[method-assign]
            save_by_rename(wl, BASE + "# first save\n")
            await asyncio.wait_for(failed_once.wait(), 10)
            save_by_rename(wl, ADD_CCC)
            rel = await reloaded(r, 1)
            assert (rel.result, rel.added) == ("applied", ("CCC@30.00",))
            assert await r.finish() == 0
        assert any("injected reload failure" in m for m in ops_errors(tmp_path))

    asyncio.run(asyncio.wait_for(body(), 60))


def test_a_failing_watch_is_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = reload_mod.watch_watchlists, []

    async def failing_first(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        calls.append(args[0])
        if len(calls) == 1:
            raise OSError("inotify watch limit reached")
        await real(*args, **kwargs)
    monkeypatch.setattr(reload_mod, "watch_watchlists", failing_first)

    async def body() -> None:
        async with running_daemon(market(), BASE, tmp_path) as r:
            wl = tmp_path / "watchlists" / "test.yaml"
            while len(calls) < 2:  # the watch is started again after its delay
                await asyncio.sleep(0.05)
            # watchfiles does not say when it watches: save until a reload answers.
            for n in range(20):
                save_by_rename(wl, ADD_CCC + f"# save {n}\n")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reloaded(r, 1), 0.5)
                    break
            rel = await reloaded(r, 1)
            assert rel.added == ("CCC@30.00",)
            assert await r.finish() == 0
        assert any("inotify watch limit reached" in m for m in ops_errors(tmp_path))

    asyncio.run(asyncio.wait_for(body(), 60))


def test_a_reload_says_what_happens_to_watchers_that_fired_today(tmp_path: Path) -> None:
    two, rows = one_fills_one_rests(", tp: 11.00, sl: 9.50")
    only_second = two.split("  - ")[0] + "  - " + two.split("  - ")[2]

    async def body() -> None:
        async with running_daemon(rows, two, tmp_path) as r:
            e = r.events
            await r.step(80, until=lambda: len(e.of(ev.OrderSent)) >= 6)
            await r.step(5)
            wl = tmp_path / "watchlists" / "test.yaml"
            save_by_rename(wl, only_second)  # the entered AAA@10.00 goes
            rel = await reloaded(r, 1)
            assert rel.removed == ("AAA@10.00",)
            assert rel.notes == (
                "AAA@10.00 removed: it entered today: its position and exits stay at the broker "
                "(`breakoutctl flatten AAA@10.00` sells what is left)",)
            save_by_rename(wl, two)  # and comes back
            rel = await reloaded(r, 2)
            assert rel.added == ("AAA@10.00",)
            assert rel.notes == (
                "AAA@10.00 added back: it entered today: its position and exits stay at the "
                "broker (`breakoutctl flatten AAA@10.00` sells what is left); nothing is bought "
                "again for it today",)
            await r.step(20)
            assert len([s for s in e.of(ev.OrderSent) if s.role == "entry"]) == 2
            assert await r.finish() == 0

    asyncio.run(asyncio.wait_for(body(), 60))
