"""Background threads of the daemon give way to its event loop.

The console's and the disk's threads share the daemon's core and its GIL
with the event loop. Woken by an event, a normal thread may preempt the loop
and hold the GIL just when market data arrives. On Linux each of them runs
``SCHED_IDLE``: it gets the CPU only while the loop waits for the socket, and
the loop asks for the GIL back within :data:`SWITCH_INTERVAL`, not Python's
default 5 ms.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger

SWITCH_INTERVAL = 0.0005  # seconds a thread waits for the GIL before asking for it

_refused = threading.Event()  # said once: a sandbox refused idle scheduling


def give_way() -> None:
    """Let the calling thread run only when nothing else of the process's wants the CPU."""
    policy = getattr(os, "SCHED_IDLE", None)
    if policy is None:
        return
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError as exc:  # e.g. a seccomp filter without sched_setscheduler
        if not _refused.is_set():
            _refused.set()
            logger.warning("background threads keep normal priority ({}); the event loop "
                           "may wait for them when data arrives", exc)


@contextmanager
def short_gil_switches() -> Iterator[None]:
    """Within: a thread waiting for the GIL asks for it after SWITCH_INTERVAL."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
