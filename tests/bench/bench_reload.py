"""Hot-reload latency (not collected by pytest): an atomic save that adds a watcher ->

1. that watcher shows ``armed`` in var/status.json;
2. the simulated gateway receives the market-data request for its symbol.

50 saves, each adding one watcher on a new symbol, against the daemon and the
simulated gateway in one process over loopback (the regular session is open,
so an added watcher arms at once). Also checks that a save changing nothing
makes zero requests to the sim. Prints p50 / p99 / max per measure and the
machine. Run: ``python tests/bench/bench_reload.py [--saves N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from breakoutd.core import events as ev  # noqa: E402
from breakoutd.daemon.app import Daemon  # noqa: E402
from breakoutd.ibkr.settings import BrokerSettings  # noqa: E402
from breakoutd.sim import Market, SimGateway  # noqa: E402
from tests.daemon.test_daemon_sim import ramp  # noqa: E402

DAY = dt.date(2026, 3, 9)


def symbols(n: int) -> list[str]:
    return [f"R{i:03d}" for i in range(n)]


def watchlist(syms: list[str]) -> str:
    return "breakouts:\n" + "".join(
        f"  - symbol: {s}\n    level: 50.00\n    qty: 10\n    sessions: [rth]\n" for s in syms)


def save(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def armed_in_status(path: Path, wid: str) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return any(w.get("id") == wid and w.get("state") == "armed" for w in data.get("watchers", []))


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


async def run(saves: int) -> None:
    syms = symbols(saves + 1)
    rows = [r for s in syms for r in ramp("09:30:00", 600, "40.00", s)]
    var = Path(tempfile.mkdtemp(prefix="breakoutd-bench-reload-"))
    wl = var / "watchlists" / "bench.yaml"
    wl.parent.mkdir(parents=True)
    wl.write_text(watchlist(syms[:1]))
    gw = SimGateway(Market(rows), port=0, start=dt.time(9, 31), day=DAY, md_lines=saves + 10)
    await gw.start()
    requests: list[tuple[int, str]] = []
    dispatch = gw.dispatch

    def counting(session, fields, received_ns):  # type: ignore[no-untyped-def]
        if fields and fields[0] == "1":  # reqMktData: ..., contract symbol among the fields
            requests.append((time.monotonic_ns(), next((f for f in fields if f in syms), "")))
        return dispatch(session, fields, received_ns)
    gw.dispatch = counting  # type: ignore[method-assign]
    stop = asyncio.Event()
    started = asyncio.Event()

    def log(e: ev.Event) -> None:
        if isinstance(e, ev.DaemonState) and e.state == "running":
            started.set()
    daemon = Daemon(watchlists=[wl.parent], var=var, settings=BrokerSettings(port=gw.port),
                    clock=gw.now_ns, log_event=log)
    task = asyncio.get_running_loop().create_task(daemon.run(stop))
    await asyncio.wait_for(started.wait(), 30)
    status = var / "status.json"
    to_status: list[float] = []
    to_sim: list[float] = []
    for n in range(1, saves + 1):
        wid = f"{syms[n]}@50.00"
        t0 = time.monotonic_ns()
        save(wl, watchlist(syms[: n + 1]))
        while not armed_in_status(status, wid):
            await asyncio.sleep(0.002)
        to_status.append((time.monotonic_ns() - t0) / 1e6)
        got = [t for t, s in requests if s == syms[n]]
        while not got:
            await asyncio.sleep(0.002)
            got = [t for t, s in requests if s == syms[n]]
        to_sim.append((got[0] - t0) / 1e6)
    before = len(requests)
    save(wl, watchlist(syms) + "# a comment only\n")
    await asyncio.sleep(1.0)
    assert len(requests) == before, "a save that changes nothing made requests to the sim"
    stop.set()
    await task
    await gw.stop()
    cpu = platform.processor() or platform.machine()
    print(f"machine: {platform.python_implementation()} {platform.python_version()}, {cpu}, "
          f"{os.cpu_count()} cores")
    for name, xs in (("save -> armed in status.json", to_status),
                     ("save -> market-data request at the sim", to_sim)):
        print(f"{name}: p50 {statistics.median(xs):.1f} ms, p99 {pct(xs, 0.99):.1f} ms, "
              f"max {max(xs):.1f} ms over {len(xs)} saves")
    print("no-op save: 0 requests to the sim")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--saves", type=int, default=50)
    asyncio.run(run(ap.parse_args().saves))


if __name__ == "__main__":
    main()
