"""Bar-to-order latency of the daemon, measured by the simulated gateway; memory per watcher.

Run: ``python tests/bench/bench_latency.py [--watchers 10,100,500] [--runs 5,3,3]
[--triggers 100] [--speed X] [--spread-ms 500] [--topology processes|one-loop]
[--console production|sync|off] [--sim-sleeps] [--idle-poll] [--memory]``.

The market: N symbols (S000..) with a tape row for every symbol every second
(the quote changes each second, a trade in 60% of them), replayed by the sim
at the tape's pace: a row becomes known, and is sent, at its time + 1 s plus
its symbol's arrival offset. By default the N symbols' offsets spread evenly
over 500 ms (``--spread-ms``; ``Market(spread_ns=...)``), as a feed of many
symbols arrives in practice; ``--spread-ms 0`` sends each second of all N
symbols in one write, the worst case, where a trigger waits behind the
symbols ahead of it in the same read. The watchlist: one *sentinel* per
symbol (level out of reach, armed all run, so all N symbols stream
throughout) and *trigger* watchers on ``--triggers`` of the symbols (all of
them up to N=100), each firing once: fast-rule spikes at distinct seconds
(never the second that ends a minute), and one close-rule break per minute
boundary, alone at its instant. Every entry is a bracket (BUY LMT at the ask,
a take-profit and a stop far from the market).

The daemon (``breakoutd.daemon.app.Daemon`` with its production console,
``setup_console``, writing to a file; journal and state on ``--var``) runs in
one process and the sim in another, each pinned to its own core, as a real
gateway is a process of its own (``--topology one-loop`` puts the sim in the
daemon's event loop, as ``breakoutd run --sim`` does: the sim then reads an
order only after the daemon's callback and what it scheduled). Both read
CLOCK_MONOTONIC, so the sim's stamps (market data written, order read:
``SimGateway.stats``) and a probe's stamps in the daemon (when the read that
holds the trigger's data starts, when the entry order is written, when the
trigger's event comes out: see ``Probe``) lie on one time line. The daemon's
clock mirrors the sim's virtual clock. The sim's process polls its socket
rather than sleeping in epoll (``--sim-sleeps`` to let it sleep), so the
instrument's own wake-up is not counted against the daemon; the daemon
sleeps in epoll as deployed. ``--idle-poll`` is a what-if for a host tuned
for latency: idle CPUs poll instead of halting while the runs go.

The virtual clock runs at 5x up to N=100 and at 1x above (``--speed`` forces
one value). The path of one entry does not depend on it, but at 5x the
triggers and the work each leaves behind (its events, the acks and fills
that follow) come five times closer together in real time, so a trigger
more often finds the daemon still busy with the one before: 5x is the
harder test. Each N's line also gives the host's steal time during its runs
(``/proc/stat``): on a shared VM a tail measured while it is high says more
about the host than about the daemon.

Printed per N and rule: p50 / p99 / max of (entry order read by the sim - the
trigger's market data written by the sim), the median over runs and pooled;
the same up to the order that transmits the bracket (its last exit); the p50
and p99 of each hop; the slowest entries, each split into its hops; and the
correctness check: every planned trigger gave exactly one OrderIntent
(watcher, rule and instant as planned) and exactly one entry order at the
sim, nothing was rejected or expired, no bar-stream health event, and each
latency is measured from its trigger's own write (not a later one).
``--memory``: the daemon's RSS and tracemalloc total with 10 and 500 armed
watchers (one per symbol), with a second watcher on each of 500 symbols, and
the growth of Python allocations per symbol-hour of streaming.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import gc
import math
import multiprocessing as mp
import os
import platform
import random
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from breakoutd.calendar import exchange_ns  # noqa: E402
from breakoutd.collector import SurvivorFreezer  # noqa: E402
from breakoutd.core import events as ev  # noqa: E402
from breakoutd.core.bars import NS  # noqa: E402
from breakoutd.core.params import FastSchedule  # noqa: E402
from breakoutd.core.prices import format_price  # noqa: E402
from breakoutd.core.rules import fast_thresholds  # noqa: E402
from breakoutd.sim import Market, Row, SimGateway  # noqa: E402
from breakoutd.sim.market import arrival_offsets  # noqa: E402
from breakoutd.sim.stats import percentile  # noqa: E402

DAY = dt.date(2026, 3, 9)  # a Monday
START = dt.time(9, 35)  # the virtual clock waits here until the daemon is armed
PREROLL = 30  # seconds of tape before the start: every symbol has a quote
FAST_SECONDS = range(3, 59)  # seconds of a minute a spike may occupy (:59 ends the minute)
CENT = 10_000  # micro-dollars


# --- the market and the watchlist -------------------------------------------------------

@dataclass(frozen=True)
class BenchConfig:
    """One run's shape; every process rebuilds the same plan from it."""

    n: int  # symbols streaming
    seed: int = 7
    speed: float = 5.0
    sentinels: int = 1  # watchers per symbol that never fire (they keep it streaming)
    triggers: int = 100  # watchers that fire, one per symbol (at most n)
    trace_memory: bool = False
    pin: bool = True  # the sim and the daemon each on a core of its own
    profile: str = ""  # write the daemon's cProfile stats here
    console: str = "production"  # the daemon's console: production | sync | off
    quiet_seconds: int = 20  # virtual seconds streamed when there are no triggers
    spread_ms: int = 500  # symbols' seconds arrive spread over this (0: all in one write)
    topology: str = "processes"  # processes | one-loop (the sim in the daemon's event loop)
    sim_spins: bool = True  # the sim's process polls its socket instead of sleeping in epoll


@dataclass
class Plan:
    """Rows, watchlist and the triggers they must cause: watcher id -> (kind, at)."""

    rows: list[Row]
    watchlist: str
    triggers: dict[str, tuple[str, int]]
    start_ns: int
    end_ns: int
    offsets: dict[str, int]  # symbol -> when its second arrives after the second ends (ns)


def symbols(n: int) -> list[str]:
    """S000, S001, ..."""
    return [f"S{i:03d}" for i in range(n)]


def schedule(cfg: BenchConfig, start: int) -> list[tuple[str, int]]:
    """(kind, instant) of every trigger: one close break per minute, spikes in between."""
    count = min(cfg.n, cfg.triggers)
    if not count:
        return []
    minutes = max(1, math.ceil(count / (len(FAST_SECONDS) + 1)))
    closes = min(minutes, count)
    slots = [start + (60 * m + s) * NS for m in range(minutes) for s in FAST_SECONDS]
    fast = count - closes
    picked = [slots[i * len(slots) // fast] for i in range(fast)] if fast else []
    # A spike in [s, s+1) triggers at s+1; a minute's close at its end.
    out = [("fast", s + NS) for s in picked]
    out += [("close", start + 60 * (m + 1) * NS) for m in range(closes)]
    return sorted(out, key=lambda x: x[1])


def build_plan(cfg: BenchConfig, with_rows: bool = True) -> Plan:
    """The seeded market and watchlist of a run (the daemon's process needs no rows)."""
    start = exchange_ns(DAY, START)
    names = symbols(cfg.n)
    order = list(range(cfg.n))
    random.Random(cfg.seed).shuffle(order)  # the trigger symbol's place in the burst varies
    events = schedule(cfg, start)
    plan_of = {names[order[i]]: e for i, e in enumerate(events)}
    last = max((at for _, at in events), default=start + cfg.quiet_seconds * NS)
    end = last + 3 * NS
    rows: list[Row] = []
    entries = ["breakouts:"]
    for i, sym in enumerate(names):
        base = (10 + i % 50) * 1_000_000  # $10..$59: the fast rule's 1.25 regime
        level = base + 50 * CENT
        if with_rows:
            rows += symbol_rows(sym, base, level, plan_of.get(sym), start - PREROLL * NS, end,
                                random.Random(cfg.seed * 1000 + i))
        if sym in plan_of:
            entries.append(watcher_yaml(f"T-{sym}", sym, level, base))
        for j in range(cfg.sentinels):
            entries.append(watcher_yaml(f"Q{j}-{sym}", sym, base + (50 + j) * 1_000_000, base))
    triggers = {f"T-{s}": e for s, e in plan_of.items()}
    offsets = arrival_offsets(names, cfg.spread_ms * 1_000_000)
    return Plan(rows, "\n".join(entries) + "\n", triggers, start, end, offsets)


def watcher_yaml(wid: str, sym: str, level: int, base: int) -> str:
    """A bracket watcher whose exits stay far from the market."""
    return (f"  - id: {wid}\n    symbol: {sym}\n    level: {format_price(level)}\n"
            f"    qty: 100\n    tp: {format_price(level + 200 * CENT)}\n"
            f"    sl: {format_price(base - 100 * CENT)}\n")


def symbol_rows(sym: str, base: int, level: int, trigger: tuple[str, int] | None,
                first: int, end: int, rnd: random.Random) -> list[Row]:
    """A quiet walk within 20 cents of ``base``, with the trigger's spike or closing break."""
    spike_at = close_from = None
    if trigger is not None and trigger[0] == "fast":
        spike_at = trigger[1] - NS
    elif trigger is not None:
        close_from = trigger[1] - 10 * NS  # the minute's last 10 seconds trade above the level
    mid, rows = base, []
    for t in range(first, end, NS):
        mid = min(base + 20 * CENT, max(base - 20 * CENT, mid + rnd.choice((-CENT, 0, CENT))))
        size = 100 * (1 + (t // NS) % 5)  # the quote changes every second: always fresh
        if t == spike_at:
            rows.append(spike_row(sym, t, level, size))
        elif close_from is not None and close_from <= t < close_from + 10 * NS:
            p = level + 2 * CENT  # above the level, far under any fast distance
            rows.append(Row(t, sym, p, p, p, p, 500, p - CENT, size, p + CENT, size))
        elif rnd.random() < 0.6:
            lo, hi = mid - rnd.choice((0, CENT)), mid + rnd.choice((0, CENT))
            rows.append(Row(t, sym, rnd.choice((lo, hi)), hi, lo, mid, 100 * rnd.randint(1, 20),
                            mid - CENT, size, mid + CENT, size))
        else:
            rows.append(Row(t, sym, None, None, None, None, None,
                            mid - CENT, size, mid + CENT, size))
    return rows


def spike_row(sym: str, t: int, level: int, size: int) -> Row:
    """A 1-second bar that meets the fast rule exactly: high L+D, range S, close at the high."""
    th = fast_thresholds(FastSchedule(), level)
    k = th.k_of(t)
    high = level + th.distance[k]
    low = high - th.spread[k]
    return Row(t, sym, low, high, low, high, 1000, high - CENT, size, high + CENT, size)


# --- the sim's process --------------------------------------------------------------------

class SpinningSelector(selectors.DefaultSelector):  # type: ignore[misc, valid-type]
    """Never sleeps in the kernel: polls, so the sim sees an order the moment it arrives."""

    def select(self, timeout: float | None = None) -> list[Any]:
        return super().select(0)  # type: ignore[no-any-return]


def sim_main(cfg: BenchConfig, conn: Connection) -> None:
    """Serve the plan's market; run the clock on "go"; report what arrived on "report"."""
    pin(cfg, 0)
    if not cfg.sim_spins:
        asyncio.run(sim_serve(cfg, conn))
        return
    loop = asyncio.SelectorEventLoop(SpinningSelector())
    try:
        loop.run_until_complete(sim_serve(cfg, conn))
    finally:
        loop.close()


async def sim_serve(cfg: BenchConfig, conn: Connection,
                    started: asyncio.Future[int] | None = None) -> None:
    """The sim's side of a run, in whatever event loop runs it."""
    plan = build_plan(cfg)
    market = Market(plan.rows, spread_ns=cfg.spread_ms * 1_000_000)
    gw = SimGateway(market, port=0, start=START, day=DAY, manual_clock=True,
                    md_lines=2 * cfg.n + 10, rate_limit=100_000, cash=1e9)
    await gw.start()
    freezer = SurvivorFreezer()  # as serve_sim runs the sim's program
    if started is None:  # the one-loop daemon sets the policy of its process itself
        freezer.start()
    conn.send(gw.port)
    if started is not None:
        started.set_result(gw.port)
    await receive(conn)  # "go"
    gw.run_clock(cfg.speed)
    mono = time.monotonic_ns()
    conn.send((gw.now_ns(), mono, cfg.speed))
    await receive(conn)  # "report"
    records = [(r.order_id, r.symbol, r.received_ns, r.md_written_ns, r.bar_written_ns)
               for r in gw.stats.records]
    orders = [(o.order_id, o.symbol, o.parent_id, o.order_ref)
              for o, _ in gw.engine.open_orders() + gw.engine.completed_orders()]
    conn.send((records, orders))
    await receive(conn)  # "stop"
    freezer.stop()
    await gw.stop()


def one_loop_main(cfg: BenchConfig, sim_conn: Connection, var: Path, conn: Connection) -> None:
    """The sim and the daemon in one event loop, as ``breakoutd run --sim`` runs them."""
    pin(cfg, 1)

    async def main() -> None:
        started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        sim = asyncio.create_task(sim_serve(cfg, sim_conn, started))
        await run_daemon(cfg, await started, var, conn)
        await sim

    daemon_main(cfg, 0, var, conn, main)


def pin(cfg: BenchConfig, index: int) -> None:
    """Keep this process on one core, so the sim and the daemon never preempt each other."""
    cpus = sorted(os.sched_getaffinity(0))
    if cfg.pin and len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[index]})


async def receive(conn: Connection) -> Any:
    """The next message from the parent, without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


# --- the daemon's process -----------------------------------------------------------------

class MirrorClock:
    """The sim's virtual clock read in another process (both sides use CLOCK_MONOTONIC)."""

    def __init__(self, start_ns: int) -> None:
        self._virtual = start_ns
        self._mono: int | None = None
        self._speed = 1.0

    def run(self, virtual_ns: int, mono_ns: int, speed: float) -> None:
        """Follow the sim's clock, which read ``virtual_ns`` at ``mono_ns``."""
        self._virtual, self._mono, self._speed = virtual_ns, mono_ns, speed

    def __call__(self) -> int:
        if self._mono is None:
            return self._virtual
        return self._virtual + int((time.monotonic_ns() - self._mono) * self._speed)


class Collector:
    """Every event the daemon emits, passed on to its console.

    Nothing here wakes the event loop: the harness polls, so the daemon's own
    work is all that runs between a read and its entry.
    """

    def __init__(self, console: Callable[[ev.Event], None], probe: Probe) -> None:
        self.items: list[ev.Event] = []
        self.entries = 0
        self.console = console
        self._probe = probe

    def __call__(self, event: ev.Event) -> None:
        self.items.append(event)
        if isinstance(event, ev.FastTriggered | ev.Confirmed):
            self._probe.triggered(event.watcher_id)
        elif isinstance(event, ev.OrderSent) and event.role == "entry":
            self.entries += 1
        self.console(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.items if isinstance(e, kind)]

    @staticmethod
    async def until(predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()``, checked four times a second."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.25)
        return True


class Probe:
    """When the daemon read the data behind each trigger, and when it decided (monotonic ns).

    The daemon reads its market data with ``breakoutd.ibkr.feedwire.FeedWire``,
    one symbol's batch at a time. The probe wraps ``FeedWire.on_data`` (in this
    process only), the connection's socket write (the first placeOrder of a
    read is its entry) and ``DiskWorker.wait`` (the router's wait for what it
    sent before to be on disk, counted up to the entry); a trigger is stamped
    when its event reaches the console callback (right after its orders are on
    the socket) and belongs to the read in progress.
    """

    def __init__(self) -> None:
        # watcher id -> read start, parent written, trigger seen, read bytes, disk wait
        self.hops: dict[str, tuple[int, int, int, int, int]] = {}
        self._read = [0, 0, 0, 0]  # start, bytes, first order written, disk wait before it
        self._reading = False
        self._triggered: list[tuple[str, int]] = []

    def new_ib(self) -> Any:
        """An IB for the daemon, its reads and order writes timed (before its MarketData
        exists)."""
        from ib_async import IB

        from breakoutd.daemon.disk import DiskWorker
        from breakoutd.ibkr.feedwire import FeedWire

        original = FeedWire.on_data
        disk_wait = DiskWorker.wait
        probe = self
        ib = IB()
        conn = ib.client.conn
        write = conn.sendMsg

        def written(msg: bytes) -> None:
            write(msg)
            if msg[4:6] == b"3\0" and not probe._read[2]:  # the first placeOrder of the read
                probe._read[2] = time.monotonic_ns()

        def waited(worker: DiskWorker, *args: Any, **kwargs: Any) -> None:
            begun = time.monotonic_ns()
            try:
                disk_wait(worker, *args, **kwargs)
            finally:
                if probe._reading and not probe._read[2]:
                    probe._read[3] += time.monotonic_ns() - begun

        def timed(wire: FeedWire, data: bytes) -> None:
            probe._read = [time.monotonic_ns(), len(data), 0, 0]
            probe._reading = True
            try:
                original(wire, data)
            finally:
                probe.read_done()

        FeedWire.on_data = timed  # type: ignore[method-assign]
        DiskWorker.wait = waited  # type: ignore[method-assign]
        conn.sendMsg = written
        return ib

    def triggered(self, watcher_id: str) -> None:
        """A trigger's event is out (after its orders, in the current design)."""
        self._triggered.append((watcher_id, time.monotonic_ns()))
        if not self._reading:
            self._assign()

    def read_done(self) -> None:
        self._reading = False
        self._assign()

    def _assign(self) -> None:
        start, size, parent, disk = self._read
        for wid, seen in self._triggered:
            self.hops[wid] = (start, parent, seen, size, disk)
        self._triggered.clear()


def daemon_main(cfg: BenchConfig, port: int, var: Path, conn: Connection,
                main: Callable[[], Any] | None = None) -> None:
    """Run the daemon on the plan's watchlist; report when every entry is out."""
    pin(cfg, 1)
    if cfg.trace_memory:
        tracemalloc.start()
    profiler = cProfile.Profile() if cfg.profile else None
    try:
        if profiler is not None:
            profiler.enable()
        asyncio.run(main() if main is not None else run_daemon(cfg, port, var, conn))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(cfg.profile)
    except Exception as exc:  # the parent must hear about it, not wait forever
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


async def run_daemon(cfg: BenchConfig, port: int, var: Path, conn: Connection) -> None:
    """Start the daemon, say when it is armed, follow the sim's clock, report the entries."""
    from loguru import logger

    from breakoutd.daemon.app import Daemon
    from breakoutd.ibkr.settings import BrokerSettings

    plan = build_plan(cfg, with_rows=False)
    (var / "watchlists").mkdir(parents=True)
    (var / "watchlists" / "bench.yaml").write_text(plan.watchlist)
    with (var / "console.log").open("w") as console_file:
        probe = Probe()
        events = Collector(console_for(cfg.console, console_file), probe)
        clock = MirrorClock(plan.start_ns)
        ib = probe.new_ib()
        daemon = Daemon(watchlists=[var / "watchlists"], var=var, clock=clock, ib=ib,
                        settings=BrokerSettings(port=port), log_event=events)
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(daemon.run(stop))
        await events.until(lambda: daemon.state != "starting" or task.done(), 600)
        if daemon.state != "running":
            raise RuntimeError(f"the daemon is {daemon.state}, not running: {task}")
        await daemon.ib.reqCurrentTimeAsync()  # every subscription has reached the sim
        conn.send(("ready", len(daemon.runners), len(daemon.market.symbols), memory()))
        clock.run(*(await receive(conn))[1])
        expected = len(plan.triggers)
        real_limit = (plan.end_ns - plan.start_ns) / NS / cfg.speed + 60
        await events.until(lambda: (expected and events.entries >= expected)
                           or clock() > plan.end_ns + 2 * NS, real_limit)
        await daemon.ib.reqCurrentTimeAsync()  # the sim has read every order sent
        conn.send(("done", summary(events, probe), memory()))
        await receive(conn)  # "stop"
        stop.set()
        await task
        close = getattr(events.console, "close", None)
        if close is not None:
            close()  # the console's queue is drained while its file is open
        logger.remove()


def console_for(kind: str, out: TextIO) -> Callable[[ev.Event], None]:
    """The daemon's console: production (``setup_console``: events queued to its
    thread, written through loguru), ``sync`` (the same lines written by the caller), or ``off`` (what-if)."""
    from loguru import logger

    from breakoutd.daemon.console import QUIET, describe, setup_console

    if kind == "production":
        return setup_console(stream=out)
    logger.remove()
    if kind == "off":
        return lambda _event: None
    logger.add(out, level="INFO", colorize=False,
               format="{time:YYYY-MM-DD HH:mm:ss.SSS Z} {level: <7} {message}")
    return lambda e: logger.bind(event=e).log("DEBUG" if isinstance(e, QUIET) else "INFO",
                                              describe(e))


def summary(events: Collector, probe: Probe) -> dict[str, Any]:
    """What the parent checks: intents, entry orders, and anything else that ended a watcher."""
    return {
        "intents": [(e.watcher_id, e.kind, e.trigger_at, e.order_ref)
                    for e in events.of(ev.OrderIntent)],
        "rejected": [(e.watcher_id, e.reason) for e in events.of(ev.Rejected)],
        "expired": [e.watcher_id for e in events.of(ev.Expired)],
        "health": [(e.symbol, e.kind) for e in events.of(ev.BarStreamHealth)],
        "reads": probe.hops,
    }


def memory() -> dict[str, int]:
    """This process's RSS and, when tracing, Python's live allocations (bytes)."""
    gc.collect()
    out = {"rss": rss_bytes()}
    if tracemalloc.is_tracing():
        out["traced"] = tracemalloc.get_traced_memory()[0]
    return out


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


# --- one run, from the parent -------------------------------------------------------------

class Hops(NamedTuple):
    """Where one entry's latency went, in ns (and the size of the read that held its data)."""

    to_read: int  # the sim's write -> the daemon starts reading the read that holds it
    to_write: int  # start of the read -> the entry order written to the socket
    to_sim: int  # entry order written -> read by the sim
    to_event: int  # start of the read -> the trigger's event (after the bracket is written)
    read_bytes: int
    disk_wait: int  # of to_write: the router waiting for earlier sends to be on disk


@dataclass
class RunResult:
    """One run's latencies (ns) by rule, journal breakdowns, and problems found."""

    latency: dict[str, list[int]] = field(default_factory=lambda: {"fast": [], "close": []})
    bracket: dict[str, list[int]] = field(default_factory=lambda: {"fast": [], "close": []})
    breakdown: dict[str, list[Hops]] = field(
        default_factory=lambda: {"fast": [], "close": []})
    problems: list[str] = field(default_factory=list)
    armed: int = 0
    memory: dict[str, dict[str, int]] = field(default_factory=dict)
    steal: float = 0.0  # share of the machine's CPU time the hypervisor took, while streaming


def expect(conn: Connection, timeout: float, what: str) -> Any:
    """A message from a child, or a clear failure."""
    if not conn.poll(timeout):
        raise SystemExit(f"no {what} from the child process within {timeout:.0f} s")
    msg = conn.recv()
    if isinstance(msg, tuple) and msg and msg[0] == "error":
        raise SystemExit(f"the daemon process failed: {msg[1]}")
    return msg


class Steal:
    """CPU time the hypervisor gave to others since this was made (/proc/stat "steal").

    On a shared VM this is what most of a tail is made of: a latency measured
    while it is high says more about the host than about the daemon."""

    def __init__(self) -> None:
        self._start = (self._ticks(), time.monotonic())

    @staticmethod
    def _ticks() -> int:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) if len(fields) > 8 else 0

    def share(self) -> float:
        """Stolen CPU time / the machine's CPU time, since construction."""
        ticks, start = self._start
        elapsed = (time.monotonic() - start) * (os.cpu_count() or 1)
        return (self._ticks() - ticks) / os.sysconf("SC_CLK_TCK") / elapsed if elapsed else 0.0


def one_run(cfg: BenchConfig, var_root: Path, keep: bool = False) -> RunResult:
    """Start sim and daemon, replay until every entry is out, and check what arrived."""
    ctx = mp.get_context("fork")
    sim_conn, sim_child = ctx.Pipe()
    d_conn, d_child = ctx.Pipe()
    var = Path(tempfile.mkdtemp(prefix=f"latency-{cfg.n}-", dir=var_root))
    if cfg.topology == "one-loop":
        sim = dmn = ctx.Process(target=one_loop_main, args=(cfg, sim_child, var, d_child),
                                daemon=True)
        sim.start()
        expect(sim_conn, 120, "port")
    else:
        sim = ctx.Process(target=sim_main, args=(cfg, sim_child), daemon=True)
        sim.start()
        port = expect(sim_conn, 120, "port")
        dmn = ctx.Process(target=daemon_main, args=(cfg, port, var, d_child), daemon=True)
        dmn.start()
    result = RunResult()
    plan = build_plan(cfg, with_rows=False)
    try:
        _, result.armed, _, result.memory["armed"] = expect(d_conn, 900, "ready")
        sim_conn.send("go")
        clock = expect(sim_conn, 10, "clock")
        d_conn.send(("clock", clock))
        stolen = Steal()
        _, daemon_summary, result.memory["end"] = expect(
            d_conn, (plan.end_ns - plan.start_ns) / NS / cfg.speed + 120, "summary")
        result.steal = stolen.share()
        sim_conn.send("report")
        records, orders = expect(sim_conn, 30, "records")
    finally:
        for conn, proc in ((d_conn, dmn), (sim_conn, sim)):
            with contextlib.suppress(OSError):
                conn.send("stop")
            proc.join(30)
    check_outcomes(plan, daemon_summary, orders, result.problems)
    measure(plan, clock, daemon_summary, records, orders, result)
    if not keep:
        shutil.rmtree(var, ignore_errors=True)
    return result


def check_outcomes(plan: Plan, summary: dict[str, Any], orders: list[Any],
                   problems: list[str]) -> None:
    """Every planned trigger gave one intent and one entry order at the sim; nothing else."""
    intents = {wid: (kind, at) for wid, kind, at, _ in summary["intents"]}
    if len(summary["intents"]) != len(intents) or intents != plan.triggers:
        wrong = sorted((w, plan.triggers.get(w), intents.get(w))
                       for w in set(intents) | set(plan.triggers)
                       if plan.triggers.get(w) != intents.get(w))
        problems.append(f"intents differ from the plan (id, expected, got): {wrong[:5]}")
    for key in ("rejected", "expired", "health"):
        if summary[key]:
            problems.append(f"{key}: {summary[key][:5]}")
    refs = [ref for _, _, _, ref in summary["intents"]]
    parents = [ref for _, _, parent, ref in orders if parent == 0]
    if sorted(parents) != sorted(refs):
        problems.append(f"the sim holds {len(parents)} entry orders for {len(refs)} intents")


def measure(plan: Plan, clock: tuple[int, int, float], summary: dict[str, Any],
            records: list[Any], orders: list[Any], result: RunResult) -> None:
    """Each entry's latency and hops, once it is sure to be measured from its trigger's data."""
    virtual0, mono0, speed = clock
    refs = {ref: wid for wid, _, _, ref in summary["intents"]}
    entry_ref = {oid: ref for oid, _, parent, ref in orders if parent == 0}
    arrived = {oid: received for oid, _, received, _, _ in records}
    last_child: dict[int, int] = {}  # parent -> when its bracket's transmitting order arrived
    for oid, _, parent, _ in orders:
        if parent and oid in arrived:
            last_child[parent] = max(last_child.get(parent, 0), arrived[oid])
    burst = NS / speed  # real ns between two rows of a symbol
    for oid, _sym, received, md_written, bar_written in records:
        if oid not in entry_ref:
            continue  # an exit of a bracket
        wid = refs[entry_ref[oid]]
        kind, at = plan.triggers[wid]
        # when the sim's clock reached the trigger's data
        due = mono0 + (at + plan.offsets[wid.split("-", 1)[1]] - virtual0) / speed
        start, parent, seen, size, disk = summary["reads"][wid]
        if start < md_written:  # the sim stamps before it writes: this cannot be its data
            result.problems.append(f"{wid}: the sim wrote the symbol's next data before it read "
                                   f"the entry (a stall longer than a row's interval)")
            continue
        if not due <= md_written < due + burst / 2 or start - due > burst or (
                kind == "close" and bar_written != md_written):
            result.problems.append(f"{wid}: not measured from its trigger's data (the sim or "
                                   f"the daemon a whole row behind: lower --speed)")
            continue
        result.latency[kind].append(received - md_written)
        result.bracket[kind].append(last_child.get(oid, received) - md_written)
        result.breakdown[kind].append(Hops(start - md_written, parent - start,
                                           received - parent, seen - start, size, disk))


# --- reporting ------------------------------------------------------------------------------

def machine() -> str:
    """CPU, cores, Python and the current load: the numbers depend on all of them."""
    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (f"{cpu}, {os.cpu_count()} cores, {platform.python_implementation()} "
            f"{platform.python_version()}, {platform.system()} {platform.release()}; load avg {load}")


def revision() -> str:
    """The commit measured, and whether the package differs from it."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "breakoutd"], cwd=root,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(revision unknown)"
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def filesystem(path: Path) -> str:
    """The filesystem type of ``path`` (journal and state fsyncs depend on it)."""
    best, kind = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        _dev, mount, fstype = line.split()[:3]
        if str(path.resolve()).startswith(mount) and len(mount) > len(best):
            best, kind = mount, fstype
    return kind


def ms(ns: float) -> str:
    return f"{ns / 1e6:.3f}"


def stats_line(label: str, runs: list[list[int]]) -> str:
    """Median over runs of p50/p99/max, and the pooled percentiles."""
    runs = [sorted(r) for r in runs if r]
    pooled = sorted(v for r in runs for v in r)
    if not pooled:
        return f"{label}: no samples"
    med = [statistics.median(percentile(r, q) if q else r[-1] for r in runs) for q in (50, 99, 0)]
    return (f"{label}: {len(pooled):4d} entries | median of {len(runs)} runs: p50 {ms(med[0])} "
            f"p99 {ms(med[1])} max {ms(med[2])} ms | pooled: p50 {ms(percentile(pooled, 50))} "
            f"p99 {ms(percentile(pooled, 99))} max {ms(pooled[-1])} ms")


def breakdown_line(label: str, rows: list[Hops], q: float = 50) -> str:
    """Each hop's ``q``-th percentile (nearest rank; the median by default)."""
    if not rows:
        return f"{label}: no samples"
    med = Hops(*(percentile(sorted(r[i] for r in rows), q) for i in range(len(Hops._fields))))
    return (f"{label}: write -> daemon reads {ms(med.to_read)} | -> entry written "
            f"{ms(med.to_write)} (disk wait {ms(med.disk_wait)}) | -> read by the sim "
            f"{ms(med.to_sim)} (trigger event {ms(med.to_event)} after the read) ms; read "
            f"{med.read_bytes / 1024:.1f} KiB")


def slowest_line(kind: str, results: list[RunResult], count: int = 3) -> str:
    """The slowest entries of ``kind`` over all runs, each split into its hops: where a tail is."""
    pairs = sorted(((lat, hop) for r in results
                    for lat, hop in zip(r.latency[kind], r.breakdown[kind], strict=True)),
                   key=lambda pair: pair[0], reverse=True)[:count]
    told = "; ".join(f"{ms(lat)} = read {ms(hop.to_read)} + decided {ms(hop.to_write)} "
                     f"(disk wait {ms(hop.disk_wait)}) + to the sim {ms(hop.to_sim)}"
                     for lat, hop in pairs)
    return f"{kind:5s} slowest: {told or 'no samples'} ms"


def speed_for(n: int, args: argparse.Namespace) -> float:
    """``--speed``, or by default 5x up to 100 symbols and 1x above (see the module text)."""
    return args.speed if args.speed else (5.0 if n <= 100 else 1.0)


def latency_bench(n: int, runs: int, args: argparse.Namespace) -> bool:
    """Run one N several times; print its lines; True when every check passed."""
    cfg = BenchConfig(n, seed=args.seed, speed=speed_for(n, args), triggers=args.triggers,
                      pin=not args.no_pin, console=args.console, spread_ms=args.spread_ms,
                      topology=args.topology, sim_spins=not args.sim_sleeps)
    results = [one_run(replace(cfg, seed=args.seed + i, profile=str(
        args.profile / f"daemon-{n}-{i}.prof") if args.profile else ""), args.var, args.keep_var)
               for i in range(runs)]
    print(f"N={n}: {n} symbols streaming, {min(n, args.triggers)} trigger watchers + {n} sentinels "
          f"({results[0].armed} armed at the start), clock at {cfg.speed:g}x, {runs} runs; "
          f"host steal {', '.join(f'{r.steal:.1%}' for r in results)}")
    for kind in ("fast", "close"):
        print("  " + stats_line(f"{kind:5s}", [r.latency[kind] for r in results]))
    for kind in ("fast", "close"):
        print("  " + stats_line(f"{kind:5s} bracket", [r.bracket[kind] for r in results]))
    for kind in ("fast", "close"):
        hops = [b for r in results for b in r.breakdown[kind]]
        print("  " + breakdown_line(f"{kind:5s} hops p50", hops))
        print("  " + breakdown_line(f"{kind:5s} hops p99", hops, 99))
    for kind in ("fast", "close"):
        print("  " + slowest_line(kind, results))
    problems = [p for r in results for p in r.problems]
    for p in problems[:10]:
        print(f"  PROBLEM: {p}")
    return not problems


def memory_bench(args: argparse.Namespace) -> bool:
    """Daemon memory with 10 and 500 armed watchers, a second watcher per symbol, and growth."""
    shapes = {"10x1": BenchConfig(10), "500x1": BenchConfig(500),
              "500x2": BenchConfig(500, sentinels=2)}
    seen: dict[str, dict[str, int]] = {}
    for name, shape in shapes.items():
        for traced in (False, True):  # tracemalloc slows the daemon: RSS from an untraced run
            used = quiet_memory(replace(shape, trace_memory=traced, pin=not args.no_pin))
            if used is None:
                return False
            key = "traced" if traced else "rss"
            seen.setdefault(name, {})[key] = used[key]
    for key, label in (("rss", "RSS"), ("traced", "tracemalloc")):
        own = (seen["500x1"][key] - seen["10x1"][key]) / 490
        extra = (seen["500x2"][key] - seen["500x1"][key]) / 500
        print(f"memory ({label}, after {BenchConfig(0).quiet_seconds} s of streaming): "
              f"10 watchers {seen['10x1'][key] / 2**20:.1f} MiB, 500 {seen['500x1'][key] / 2**20:.1f} "
              f"MiB -> {own / 1024:.1f} KiB per watcher on a symbol of its own; a second watcher "
              f"on each of the 500 symbols: {extra / 1024:.1f} KiB each")
    return memory_growth(args)


def memory_growth(args: argparse.Namespace, symbols_n: int = 100, minutes: int = 30) -> bool:
    """Python allocations after 20 s and after ``minutes`` of streaming, per symbol-hour."""
    shape = BenchConfig(symbols_n, trace_memory=True, speed=20.0, pin=not args.no_pin)
    early = quiet_memory(shape)
    late = quiet_memory(replace(shape, quiet_seconds=60 * minutes))
    if early is None or late is None:
        return False
    hours = (60 * minutes - shape.quiet_seconds) / 3600
    per = (late["traced"] - early["traced"]) / symbols_n / hours
    print(f"memory growth (tracemalloc, {symbols_n} symbols streaming for {minutes} min at "
          f"{shape.speed:g}x): {early['traced'] / 2**20:.1f} -> {late['traced'] / 2**20:.1f} MiB, "
          f"{per / 2**20:.2f} MiB per symbol per hour")
    return True


def quiet_memory(cfg: BenchConfig) -> dict[str, int] | None:
    """The daemon's memory after streaming ``cfg.quiet_seconds`` with no trigger."""
    r = one_run(replace(cfg, triggers=0, speed=min(cfg.speed, 1.0) if cfg.n > 100 else cfg.speed),
                Path(tempfile.gettempdir()))
    # Bar-stream lag under tracemalloc's slowdown is no memory problem; anything else is.
    problems = [p for p in r.problems if not p.startswith("health:")]
    if problems or r.armed != cfg.n * cfg.sentinels:
        print(f"memory run with {cfg.n} symbols went wrong: armed {r.armed}, {problems[:3]}")
        return None
    return r.memory["end"]


@contextlib.contextmanager
def idle_polling(wanted: bool) -> Any:
    """With ``wanted``: idle CPUs poll instead of halting while the runs go (a PM QoS
    request of 0 us on /dev/cpu_dma_latency, root only; the kernel drops it on close)."""
    if not wanted:
        yield
        return
    try:
        fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
    except OSError as exc:
        raise SystemExit(f"--idle-poll needs write access to /dev/cpu_dma_latency: {exc}") from exc
    try:
        os.write(fd, (0).to_bytes(4, sys.byteorder, signed=True))
        yield
    finally:
        os.close(fd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--watchers", default="10,100,500", help="N values, comma-separated")
    ap.add_argument("--runs", default="5,3,3", help="runs per N (one value, or one per N)")
    ap.add_argument("--triggers", type=int, default=100, help="trigger watchers per run (at most N)")
    ap.add_argument("--speed", type=float, default=0.0,
                    help="virtual clock speed (x real time); default 5 up to N=100, else 1")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--var", type=Path, default=Path(tempfile.gettempdir()),
                    help="where each run's journal and state go (they are fsynced)")
    ap.add_argument("--memory", action="store_true", help="also measure memory per watcher")
    ap.add_argument("--no-pin", action="store_true", help="let the OS place the two processes")
    ap.add_argument("--spread-ms", type=int, default=500,
                    help="symbols' seconds arrive spread over this many ms (0: all in one write)")
    ap.add_argument("--topology", choices=("processes", "one-loop"), default="processes",
                    help="the sim in a process of its own, or in the daemon's event loop")
    ap.add_argument("--sim-sleeps", action="store_true",
                    help="the sim's process sleeps in epoll between messages (by default it "
                         "polls, so its own wake-up is not counted against the daemon)")
    ap.add_argument("--idle-poll", action="store_true",
                    help="what-if: idle CPUs poll instead of halting (PM QoS 0 us, root), as a "
                         "latency-tuned host would be set up (docs/deploy.md)")
    ap.add_argument("--console", choices=("production", "sync", "off"), default="production",
                    help="the daemon's console: as shipped (loguru, enqueued), written "
                         "synchronously, or none (a what-if)")
    ap.add_argument("--keep-var", action="store_true", help="keep each run's journal and state")
    ap.add_argument("--profile", type=Path, metavar="DIR",
                    help="write the daemon's cProfile stats of each run here (slows it down)")
    args = ap.parse_args()
    ns = [int(x) for x in args.watchers.split(",") if x]
    runs = [int(x) for x in args.runs.split(",")]
    runs = (runs * len(ns) if len(runs) == 1 else runs)[:len(ns)]
    print(machine())
    print(f"breakoutd {revision()}; sim and daemon in separate processes"
          f"{', each on its own core' if not args.no_pin else ''}"
          f"{'' if args.sim_sleeps else ', the sim polling its socket'}; journal and state on "
          f"{filesystem(args.var)}; daemon console: {args.console}")
    print("latency = the entry order read by the sim - the trigger's market data written by it (ms)"
          + ("; idle CPUs polling (--idle-poll)" if args.idle_poll else ""))
    with idle_polling(args.idle_poll):
        ok = all([latency_bench(n, r, args) for n, r in zip(ns, runs, strict=True)])
    if args.memory:
        ok = memory_bench(args) and ok
    print("correctness: every expected trigger produced exactly one intent and one entry order, "
          "nothing else fired, each latency is from its trigger's data" if ok
          else "correctness: FAILED (see the lines above)")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
