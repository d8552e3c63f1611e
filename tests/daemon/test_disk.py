"""The disk thread: jobs in order, a queued state save replaced by a newer one, failures
reported to every wait until mended, nothing left undone at close."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path

import pytest

from breakoutd.core import events as ev
from breakoutd.daemon.disk import DiskError, DiskWorker
from breakoutd.daemon.journal import Journal, read_journal
from breakoutd.daemon.state import FiredEntry, StateStore

DAY = dt.date(2026, 3, 9)


def test_jobs_run_in_order_and_wait_returns_when_all_have_run() -> None:
    disk = DiskWorker()
    gate, done = threading.Event(), []
    disk.submit(lambda: (gate.wait(5), done.append(1)))
    for n in range(2, 6):
        disk.submit(lambda n=n: done.append(n))
    assert done == []
    gate.set()
    disk.wait()
    assert done == [1, 2, 3, 4, 5]
    disk.close()


def test_a_queued_job_of_the_same_key_is_replaced_by_the_newer_one() -> None:
    disk = DiskWorker()
    gate, done = threading.Event(), []
    disk.submit(lambda: gate.wait(5))  # the thread is busy: what follows stays queued
    disk.submit(lambda: done.append("state v1"), key="state")
    disk.submit(lambda: done.append("journal"), key="journal")
    disk.submit(lambda: done.append("state v2"), key="state")
    gate.set()
    disk.wait()
    assert done == ["state v2", "journal"]
    disk.close()


def test_a_failure_is_raised_by_every_wait_until_a_job_of_its_key_succeeds() -> None:
    disk = DiskWorker()

    def broken() -> None:
        raise OSError(5, "Input/output error")
    disk.submit(broken, key="state")
    for _ in range(3):  # the router before each order, the state's save, the shutdown
        with pytest.raises(DiskError, match="Input/output error"):
            disk.wait()
    disk.submit(lambda: None, key="journal")  # another key's success mends nothing
    with pytest.raises(DiskError):
        disk.wait()
    disk.submit(lambda: None, key="state")  # the disk works again
    disk.wait()
    assert disk.failure() is None
    disk.close()


def test_a_disk_that_hangs_is_a_failure_after_the_limit() -> None:
    disk = DiskWorker()
    gate = threading.Event()
    disk.submit(lambda: gate.wait(5))
    with pytest.raises(DiskError, match="did not finish within 0.05 s"):
        disk.wait(limit=0.05)
    gate.set()
    disk.close()


def test_close_runs_what_is_queued_and_later_jobs_run_in_their_caller() -> None:
    disk = DiskWorker()
    gate, done = threading.Event(), []
    disk.submit(lambda: gate.wait(5))
    disk.submit(lambda: done.append("queued"))
    gate.set()
    disk.close()
    assert done == ["queued"]
    disk.submit(lambda: done.append(threading.current_thread().name))
    assert done == ["queued", threading.current_thread().name]


def test_a_soon_save_goes_to_the_disk_thread_and_save_waits_for_it(tmp_path: Path) -> None:
    disk = DiskWorker()
    gate = threading.Event()
    store = StateStore(tmp_path, DAY, disk)

    async def body() -> None:
        disk.submit(lambda: gate.wait(5))  # a slow disk
        store.mark_fired("abc-1", FiredEntry("bo:20260309:rth:abc-1", 1, "entered"), soon=True)
        await asyncio.sleep(0)  # begun in the next loop turn, written when the disk is free
        await asyncio.sleep(0.02)
        assert not store.path.exists()
        threading.Timer(0.02, gate.set).start()
        store.mark_fired("abc-2", FiredEntry("bo:20260309:rth:abc-2", 2, "rejected", "no_quote"))
        assert sorted(StateStore(tmp_path, DAY).state.fired) == ["abc-1", "abc-2"]

    asyncio.run(body())
    disk.close()


def test_closing_the_journal_waits_for_its_sync_on_the_disk_thread(tmp_path: Path) -> None:
    disk = DiskWorker()
    journal = Journal(tmp_path, DAY, disk=disk)
    gate, order = threading.Event(), []
    disk.submit(lambda: (gate.wait(5), order.append("earlier job")))
    journal.write(ev.DaemonState(at=1, state="running"))
    journal.sync_soon()
    threading.Timer(0.02, gate.set).start()
    journal.close()
    order.append("closed")
    assert order == ["earlier job", "closed"]
    assert [e["state"] for e in read_journal(journal.dir / "events.jsonl")] == ["running"]
    disk.close()
