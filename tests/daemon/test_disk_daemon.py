"""The daemon over the sim when its journal or state file stops reaching the disk mid-day:
the next trigger is not sent, status says why and what to do, the exits stay at the
broker, and trading resumes once writes work (by itself, or at `breakoutctl resume`)."""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

import breakoutd.daemon.state as state_mod
from breakoutd.core import events as ev
from breakoutd.daemon.files import replace_atomically
from breakoutd.daemon.journal import FileOps
from tests.daemon.daemonkit import Run, running_daemon
from tests.daemon.test_controls_live import (
    FIRST,
    SECOND,
    breaks,
    ctl,
    journal,
    open_refs,
    position,
    rests,
    run,
    states,
)
from tests.daemon.test_reload import one_fills_one_rests


@pytest.fixture(autouse=True)
def _socket_in_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.delenv("BREAKOUTD_VAR", raising=False)


class FullDisk(FileOps):
    """The journal's disk once it has filled (or failed): every write raises."""

    def __init__(self, error: OSError) -> None:
        self.error = error

    def write(self, fd: int, data: bytes) -> int:  # type: ignore[override]
        raise self.error


def rows_and_watchlist() -> tuple[list[Any], str]:
    """AAA@10.00 fills and `second` rests at 09:31; BBB breaks at 09:32, CCC at 09:33."""
    two, rows = one_fills_one_rests(", tp: 11.00, sl: 9.50")
    rows += breaks("BBB", "20.00", "19.95", "20.02", "09:32")
    rows += breaks("CCC", "30.00", "29.95", "30.02", "09:33")
    wl = two + ("  - {symbol: BBB, level: 20.00, qty: 10, fast: false}\n"
                "  - {symbol: CCC, level: 30.00, qty: 10, fast: false}\n")
    return rows, wl


def exits_at_broker(r: Run) -> set[tuple[Any, ...]]:
    return {(o.order_ref, o.order_id, o.lmt_price, o.aux_price)
            for o, _ in r.gw.engine.open_orders() if o.order_ref.startswith(FIRST)}


async def status_file(r: Run, var: Path, until: Any) -> dict[str, Any]:
    """The status file once ``until(status)`` holds (the board writes it within 0.1 s)."""
    for _ in range(100):
        path = var / "status.json"
        if path.exists():
            status = json.loads(path.read_text())
            if until(status):
                return status
        await r.step(0.1)
    raise AssertionError(f"status never matched: {path.read_text()}")


def test_a_journal_that_fails_mid_day_rejects_the_next_trigger_keeps_the_exits_and_resumes(
        tmp_path: Path) -> None:
    rows, wl = rows_and_watchlist()

    async def body() -> None:
        async with running_daemon(rows, wl, tmp_path) as r:
            e = r.events
            await rests(r)
            exits = exits_at_broker(r)
            assert len(exits) == 2
            assert r.daemon.journal is not None
            r.daemon.journal.ops = FullDisk(OSError(errno.ENOSPC, "No space left on device"))
            r.daemon.request_reload("SIGHUP")  # its ConfigReloaded is the first line that fails
            await e.wait(lambda: bool(e.of(ev.Halted)))  # at the main loop's next tick
            [halt] = e.of(ev.Halted)
            assert (halt.reason, halt.by) == ("disk", "disk")
            assert states(r)[-1] == "halted"
            status = await status_file(r, tmp_path, lambda s: s["state"] == "halted")
            assert status["risk"]["halted"] == "disk" and status["disk"]["ok"] is False
            detail = status["disk"]["detail"]
            assert "No space left on device (ENOSPC)" in detail and "free space" in detail
            assert status["detail"] == "disk: No space left on device (ENOSPC)"
            await r.step(70, until=lambda: any(j.watcher_id == "BBB@20.00"
                                               for j in e.of(ev.Rejected)))
            [rej] = [j for j in e.of(ev.Rejected) if j.watcher_id == "BBB@20.00"]
            assert rej.reason == "risk_halted" and "disk" in rej.detail
            assert not [s for s in e.of(ev.OrderSent) if "BBB" in s.order_ref]
            assert not [o for o, _ in r.gw.engine.open_orders() if o.symbol == "BBB"]
            # What is at the broker stays: the exits and the resting entry.
            assert exits_at_broker(r) == exits
            assert SECOND in open_refs(r) and position(r, "AAA") == 100
            r.daemon.journal.ops = FileOps()  # space was freed
            await e.wait(lambda: bool(e.of(ev.Resumed)))  # the guard tries every second
            [resumed] = e.of(ev.Resumed)
            assert (resumed.by, resumed.was) == ("disk", "halted")
            assert states(r)[-1] == "running"
            status = await status_file(r, tmp_path, lambda s: s["state"] == "running")
            assert status["disk"] == {"ok": True, "detail": None}
            await r.step(70, until=lambda: any("CCC" in f.order_ref for f in e.of(ev.OrderFilled)))
            assert position(r, "CCC") == 10
            assert await r.finish() == 0
        names = [j["event"] for j in journal(tmp_path)]  # the lines kept in memory are written
        assert {"Halted", "Resumed"} <= set(names)
        assert [j["watcher_id"] for j in journal(tmp_path) if j["event"] == "Rejected"] \
            == ["BBB@20.00"]
        ops = (tmp_path / "journal" / "2026-03-09" / "ops.jsonl").read_text()
        assert ops.count("cannot be written (No space left on device (ENOSPC))") == 1

    run(body())


def test_a_state_file_that_cannot_be_saved_halts_and_resume_waits_for_the_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows, wl = rows_and_watchlist()

    def read_only(path: Path, data: bytes, durable: bool = True) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    async def body() -> None:
        async with running_daemon(rows, wl, tmp_path) as r:
            e = r.events
            await rests(r)
            r.daemon.guard.probe_every = math.inf  # only the operator's resume tries again
            monkeypatch.setattr(state_mod, "replace_atomically", read_only)  # a remount
            r.daemon.store.save_soon()
            await e.wait(lambda: bool(e.of(ev.Halted)))  # at the main loop's next tick
            assert e.of(ev.Halted)[0].reason == "disk"
            code, _, err = await ctl(r, tmp_path, "resume")
            assert code != 0 and "still cannot be written (Read-only file system (EROFS)" in err
            assert states(r)[-1] == "halted"
            await r.step(70, until=lambda: any(j.watcher_id == "BBB@20.00"
                                               for j in e.of(ev.Rejected)))
            assert not [o for o, _ in r.gw.engine.open_orders() if o.symbol == "BBB"]
            monkeypatch.setattr(state_mod, "replace_atomically", replace_atomically)
            code, out, _ = await ctl(r, tmp_path, "resume")
            assert code == 0 and "trading resumed (was halted: disk)" in out, out
            assert [x.by for x in e.of(ev.Resumed)] == [f"uid {os.getuid()}"]
            assert states(r)[-1] == "running"
            await r.step(70, until=lambda: any("CCC" in f.order_ref for f in e.of(ev.OrderFilled)))
            assert position(r, "CCC") == 10
            assert await r.finish() == 0

    run(body())
