"""The daemon's background threads and its event loop share one GIL.

The console's and the disk's threads run Python beside the event loop. When
market data arrives, the loop's thread wakes and must get the GIL from
whichever thread holds it; Python makes a waiting thread ask for it after the
switch interval, 5 ms by default. Around ``Daemon.run`` it is
:data:`SWITCH_INTERVAL`, so the loop has the GIL back within about that.

The background threads keep the loop's own CPU priority on purpose. A thread
of low priority (``SCHED_IDLE``, or a high nice value) that holds the GIL may
not run again for a long time while another process on the same core wants
the CPU, an IB Gateway beside the daemon for one; the loop then waits with
it. ``tests/bench/bench_background.py`` measures the loop's wake-ups by the
background thread's priority, with and without such a neighbour
(``BENCHMARKS.md``): idle threads gained a few tenths of a millisecond at
most on a quiet core and cost stalls of hundreds of milliseconds beside a
busy one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

SWITCH_INTERVAL = 0.0005  # seconds a thread waits for the GIL before asking for it


@contextmanager
def short_gil_switches() -> Iterator[None]:
    """Within: a thread waiting for the GIL asks for it after SWITCH_INTERVAL."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
