"""The daemon's background threads and its event loop: one GIL, one CPU priority."""

from __future__ import annotations

import os
import sys

import pytest
from loguru import logger

from breakoutd.core import events as ev
from breakoutd.daemon.background import SWITCH_INTERVAL, short_gil_switches
from breakoutd.daemon.console import Console
from breakoutd.daemon.disk import DiskWorker

needs_sched = pytest.mark.skipif(not hasattr(os, "sched_getscheduler"),
                                 reason="POSIX scheduling only")


def priority() -> tuple[int, int]:
    """The calling thread's scheduling policy and nice value."""
    return os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)


@needs_sched
def test_the_disk_and_console_threads_keep_the_loop_s_priority() -> None:
    # A background thread below the loop's priority, holding the GIL beside a busy
    # neighbour process, stalls the loop (tests/bench/bench_background.py).
    disk = DiskWorker()
    seen: list[tuple[int, int]] = []
    disk.submit(lambda: seen.append(priority()))
    disk.wait()
    disk.close()
    console = Console(lambda message: seen.append(priority()))
    logger.remove()
    logger.add(console.sink, format="{message}")
    try:
        console(ev.DaemonState(at=1, state="running"))
        console.flush()
    finally:
        console.close()
        logger.remove()
        logger.add(sys.stderr)
    assert seen == [priority(), priority()]


def test_short_gil_switches_hold_only_within() -> None:
    before = sys.getswitchinterval()
    with short_gil_switches():
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    assert sys.getswitchinterval() == before
