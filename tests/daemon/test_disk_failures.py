"""A disk that fails (ENOSPC, EIO): no order after a failed write, every waiter hears of it,
the lines wait in memory and reach the file whole once writes succeed again."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ib_async import IB
from loguru import logger

from breakoutd.core import events as ev
from breakoutd.core.params import RiskLimits
from breakoutd.core.plans import OrderPlan, PlanTemplate, Quote
from breakoutd.daemon.console import setup_console
from breakoutd.daemon.disk import RESERVE_KEY, DiskError, DiskWorker, SpaceReserve, describe_failure
from breakoutd.daemon.files import replace_atomically
from breakoutd.daemon.journal import FileOps, Journal, read_journal
from breakoutd.daemon.state import FiredEntry, StateStore
from breakoutd.daemon.trading_day import TradingDay
from breakoutd.errors import OrderRejected
from breakoutd.ibkr.router import OrderRouter
from tests.factories import spec as make_spec

DAY = dt.date(2026, 3, 9)
ENOSPC = OSError(errno.ENOSPC, "No space left on device")


class FailingOps(FileOps):
    """The journal's system calls on a disk that fails: ``left`` bytes fit, then ``error``."""

    def __init__(self, left: int = 0, error: OSError = ENOSPC) -> None:
        self.left, self.error, self.failing = left, error, True
        self.truncated: list[int] = []

    def write(self, fd: int, data: bytes) -> int:  # type: ignore[override]
        if not self.failing:
            return FileOps.write(fd, data)
        if self.left <= 0:
            raise self.error
        n = FileOps.write(fd, data[:self.left])  # a short write: the disk just filled
        self.left -= n
        return n

    def ftruncate(self, fd: int, length: int) -> None:  # type: ignore[override]
        self.truncated.append(length)
        FileOps.ftruncate(fd, length)


def state(n: int) -> ev.DaemonState:
    return ev.DaemonState(at=n, state="running", detail=f"line {n}")


def lines(j: Journal) -> list[str]:
    return [e["detail"] for e in read_journal(j.dir / "events.jsonl")]


def test_a_failed_journal_write_stands_for_every_waiter_until_the_lines_are_written(
        tmp_path: Path) -> None:
    disk = DiskWorker()
    failing = FailingOps()
    j = Journal(tmp_path, DAY, disk=disk, ops=failing)
    j.write(state(1))
    assert j.backlog == 1 and lines(j) == []
    heard = []

    def waiter() -> None:  # the router before its next order, a save, the shutdown
        try:
            disk.wait()
        except DiskError as exc:
            heard.append(describe_failure(exc))
    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert heard == ["No space left on device (ENOSPC)"] * 3
    j.write(state(2))  # later lines wait behind the first, in order
    failing.failing = False
    j.write(state(3))
    assert lines(j) == [] and j.backlog == 3
    with pytest.raises(DiskError):
        disk.wait()
    assert j.flush_backlog()
    assert lines(j) == ["line 1", "line 2", "line 3"]
    disk.wait()  # mended: orders may leave again
    j.close()
    disk.close()


def test_a_short_write_leaves_no_torn_line_in_the_file(tmp_path: Path) -> None:
    failing = FailingOps()
    failing.failing = False
    j = Journal(tmp_path, DAY, ops=failing)
    j.write(state(1))
    size = (j.dir / "events.jsonl").stat().st_size
    failing.failing, failing.left = True, 10  # ten bytes of the next line fit
    j.write(state(2))
    assert failing.truncated == [size]
    data = (j.dir / "events.jsonl").read_bytes()
    assert data.endswith(b"\n") and len(data) == size
    failing.failing = False
    assert j.flush_backlog()
    j.close()
    assert lines(j) == ["line 1", "line 2"]


def test_on_a_full_disk_the_reserve_makes_room_for_the_line_and_must_be_held_again(
        tmp_path: Path) -> None:
    disk = DiskWorker()
    reserve = SpaceReserve(tmp_path / "space.reserve", size=8192)
    reserve.hold()
    full = FailingOps()

    class FreedByTheReserve(FailingOps):
        def write(self, fd: int, data: bytes) -> int:  # type: ignore[override]
            if reserve.held:
                return full.write(fd, data)
            return FileOps.write(fd, data)
    j = Journal(tmp_path, DAY, disk=disk, reserve=reserve, ops=FreedByTheReserve())
    j.write(state(1))
    assert lines(j) == ["line 1"]  # the line of an order already sent reaches the disk
    assert not (tmp_path / "space.reserve").exists()
    with pytest.raises(DiskError):  # the disk is full: no further order
        disk.wait()
    assert j.flush_backlog()
    with pytest.raises(DiskError):  # until the reserve is held again
        disk.wait()
    disk.submit(reserve.hold, key=RESERVE_KEY)
    disk.wait()
    assert (tmp_path / "space.reserve").stat().st_size == 8192
    j.close()
    disk.close()


class _Durability:
    def __init__(self, disk: DiskWorker) -> None:
        self.disk = disk

    def begin(self) -> None:
        return None

    def wait(self) -> None:
        self.disk.wait()


def _plan() -> OrderPlan:
    spec = make_spec(tp=("5.50",), sl="4.80")
    plan = PlanTemplate(spec, "bo:20260309:rth:" + spec.id).at_quote(
        Quote(1, spec.level, 100, spec.level + 10_000, 100))
    assert isinstance(plan, OrderPlan)
    return plan


def test_no_order_is_sent_after_a_failed_write_and_the_gate_rejects(tmp_path: Path) -> None:
    disk = DiskWorker()
    j = Journal(tmp_path, DAY, disk=disk, ops=FailingOps(error=OSError(errno.EIO, "I/O error")))
    j.write(state(1))
    day = TradingDay(tmp_path, DAY, RiskLimits(), disk)
    plan = _plan()
    rejection = day.check(plan)
    assert rejection is not None and rejection.reason == "risk_halted"
    assert "disk" in rejection.detail

    async def send() -> None:
        ib = IB()  # never connected: a send that got past the disk would fail differently
        router = OrderRouter(ib, account="DU1", emit=lambda e: None, clock=lambda: 1,
                             durability=_Durability(disk))
        with pytest.raises(OrderRejected, match="not on disk.*I/O error.*nothing sent"):
            router.send_now(plan, None, plan.reference_price)  # type: ignore[arg-type]
        assert router.entries() == []
    asyncio.run(send())
    j.ops = FileOps()
    assert j.flush_backlog()
    assert day.check(plan) is None
    j.close()
    disk.close()


def test_a_failed_state_save_is_kept_and_written_by_the_next_save(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import breakoutd.daemon.state as state_mod
    disk = DiskWorker()
    store = StateStore(tmp_path, DAY, disk)

    def broken(path: Path, data: bytes, durable: bool = True) -> None:
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(state_mod, "replace_atomically", broken)
    store.mark_fired("A@1.00", FiredEntry("bo:20260309:rth:A@1.00", 1, "rejected", "x"))
    with pytest.raises(DiskError, match="Read-only"):
        disk.wait()
    monkeypatch.setattr(state_mod, "replace_atomically", replace_atomically)
    store.save()
    assert StateStore(tmp_path, DAY).has_fired("A@1.00")
    disk.close()


def test_a_failed_atomic_replace_leaves_no_temp_file(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import breakoutd.daemon.files as files_mod

    def full(fd: int) -> None:
        raise ENOSPC
    monkeypatch.setattr(files_mod.os, "fsync", full)
    with pytest.raises(OSError):
        replace_atomically(tmp_path / "x.json", b"{}")
    assert list(tmp_path.iterdir()) == []


class _FullStream:
    def write(self, text: str) -> int:
        raise ENOSPC

    def flush(self) -> None:
        raise ENOSPC


@pytest.fixture
def restore_logger() -> Iterator[None]:
    yield
    logger.remove()
    logger.add(sys.stderr)


def test_a_console_on_a_full_disk_loses_its_lines_without_logging_errors(
        restore_logger: None, capsys: pytest.CaptureFixture[str]) -> None:
    console = setup_console(stream=_FullStream())  # type: ignore[arg-type]
    logger.error("the journal cannot be written")
    console(state(1))
    console.close()
    logger.warning("after the close, written by the caller")
    assert "Logging error" not in capsys.readouterr().err


def test_a_torn_last_line_is_not_read_and_is_cut_on_the_next_open(tmp_path: Path) -> None:
    j = Journal(tmp_path, DAY)
    j.write(state(1))
    j.close()
    path = j.dir / "events.jsonl"
    with path.open("ab") as f:
        f.write(b'{"event":"DaemonState","at":2,"sta')  # the power went mid-write
    assert [e["detail"] for e in read_journal(path)] == ["line 1"]
    j = Journal(tmp_path, DAY)
    j.write(state(3))
    j.close()
    assert lines(j) == ["line 1", "line 3"]


def test_the_reserve_leaves_nothing_behind_when_it_does_not_fit(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    import breakoutd.daemon.disk as disk_mod

    def full(fd: int, offset: int, size: int) -> None:
        raise ENOSPC
    monkeypatch.setattr(disk_mod.os, "posix_fallocate", full)
    reserve = SpaceReserve(tmp_path / "space.reserve")
    with pytest.raises(OSError, match="No space"):
        reserve.hold()
    assert not reserve.held and list(tmp_path.iterdir()) == []
