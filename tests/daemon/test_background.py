"""The daemon's background threads give way to the event loop."""

from __future__ import annotations

import os
import sys
import threading

import pytest
from loguru import logger

from breakoutd.core import events as ev
from breakoutd.daemon import background
from breakoutd.daemon.background import SWITCH_INTERVAL, give_way, short_gil_switches
from breakoutd.daemon.console import Console
from breakoutd.daemon.disk import DiskWorker

needs_idle = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling only")


@needs_idle
def test_the_disk_and_console_threads_run_idle_and_the_loop_s_thread_does_not() -> None:
    disk = DiskWorker()
    seen: list[int] = []
    disk.submit(lambda: seen.append(os.sched_getscheduler(0)))
    disk.wait()
    disk.close()
    console = Console(lambda message: seen.append(os.sched_getscheduler(0)))
    logger.remove()
    logger.add(console.sink, format="{message}")
    try:
        console(ev.DaemonState(at=1, state="running"))
        console.flush()
    finally:
        console.close()
        logger.remove()
        logger.add(sys.stderr)
    assert seen == [os.SCHED_IDLE, os.SCHED_IDLE]
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the caller's thread is left alone


@needs_idle
def test_a_sandbox_that_refuses_idle_scheduling_costs_one_warning(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(background.os, "sched_setscheduler", refuse)
    monkeypatch.setattr(background, "_refused", threading.Event())
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    try:
        for _ in range(3):
            other = threading.Thread(target=give_way)
            other.start()
            other.join()
            give_way()
    finally:
        logger.remove(sink)
    assert len(warnings) == 1 and "normal priority" in warnings[0]


def test_short_gil_switches_hold_only_within() -> None:
    before = sys.getswitchinterval()
    with short_gil_switches():
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    assert sys.getswitchinterval() == before
