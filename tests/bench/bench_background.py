"""How long the event loop waits for the GIL after a wake-up, by a background thread's priority.

The daemon's console and disk threads run Python beside its event loop, in
one process, on one GIL. When data arrives the loop's thread wakes and must
get the GIL from whichever thread holds it. A background thread with a low
CPU priority lets the loop's thread run at once when it wakes, but when
another process on the same core wants the CPU, that thread may not run for
a long time while it holds the GIL: the loop then waits with it (a priority
inversion over the GIL).

Each case: one process pinned to one core, Python's switch interval as the
daemon sets it, one background thread formatting text at a given priority,
and the main thread sleeping 5 ms then waking, 400 times: printed is the
overshoot of each wake (the time past 5 ms before it runs Python again), p50
/ p99 / max. Neighbours on the same core at normal priority: none, bursts
(busy 9 ms of every 10) and busy (never sleeps). The case ``daemon``
runs the work on the daemon's own disk thread (``DiskWorker``), at the
priority the daemon gives it.

Run: ``python tests/bench/bench_background.py [--wakes 400] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from breakoutd.daemon.background import SWITCH_INTERVAL  # noqa: E402
from breakoutd.daemon.disk import DiskWorker  # noqa: E402
from breakoutd.sim.stats import percentile  # noqa: E402

NEIGHBOURS = {"none": None, "bursts": (9.0, 10.0), "busy": (10.0, 10.0)}


def lower(priority: str) -> None:
    """Set the calling thread's priority: normal, nice N or idle."""
    if priority == "idle":
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    elif priority.startswith("nice "):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), int(priority.split()[1]))


def neighbour(cpu: int, busy_ms: float, period_ms: float, stop: Any) -> None:
    os.sched_setaffinity(0, {cpu})
    while not stop.is_set():
        start = time.perf_counter()
        while time.perf_counter() - start < busy_ms / 1000:
            pass
        if period_ms > busy_ms:
            time.sleep((period_ms - busy_ms) / 1000)


def start_background(priority: str) -> None:
    """The background thread; ``daemon``: the daemon's own disk thread, as the daemon sets it."""
    if priority == "daemon":
        DiskWorker("bench").submit(format_text)
    else:
        threading.Thread(target=lambda: (lower(priority), format_text()), daemon=True).start()


def format_text() -> None:
    n = 0
    while True:  # like the console thread: Python formatting, the GIL held most of the time
        for i in range(1000):
            n += len(f"{i:6d} | {n:>12} | {'x' * (i % 7)}")
        time.sleep(0)


def one_case(cpu: int, priority: str, kind: str, wakes: int, out: Any) -> None:
    os.sched_setaffinity(0, {cpu})
    sys.setswitchinterval(SWITCH_INTERVAL)
    stop = mp.Event()
    other = None
    if NEIGHBOURS[kind]:
        other = mp.Process(target=neighbour, args=(cpu, *NEIGHBOURS[kind], stop), daemon=True)
        other.start()
    start_background(priority)
    time.sleep(0.2)
    over = []
    for _ in range(wakes):
        start = time.monotonic_ns()
        time.sleep(0.005)
        over.append(time.monotonic_ns() - start - 5_000_000)
    stop.set()
    if other:
        other.join()
    out.send(sorted(over))
    out.close()
    os._exit(0)  # the background thread never ends; the daemon's disk thread is not a daemon


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--wakes", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; medians are printed")
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[-1]
    print(f"CPython {sys.version.split()[0]}, {os.cpu_count()} cores, switch interval "
          f"{SWITCH_INTERVAL * 1e3:g} ms; all on CPU {cpu}; overshoot of a 5 ms sleep (ms), "
          f"median of {args.repeat} runs")
    for kind in NEIGHBOURS:
        for priority in ("normal", "nice 5", "nice 10", "idle", "daemon"):
            rows = []
            for _ in range(args.repeat):
                mine, theirs = mp.Pipe(duplex=False)
                proc = mp.Process(target=one_case, args=(cpu, priority, kind, args.wakes, theirs))
                proc.start()
                rows.append(mine.recv())
                proc.join()
            cols = [statistics.median(percentile(r, q) for r in rows) / 1e6 for q in (50, 99, 100)]
            print(f"neighbour {kind:6s} background {priority:7s}: p50 {cols[0]:7.3f}  "
                  f"p99 {cols[1]:7.3f}  max {cols[2]:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
