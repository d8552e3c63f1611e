"""Backtest throughput on a full-session synthetic tape (not collected by pytest).

100 symbols, 04:00-20:00, about 2 million rows, 3 watchers per symbol. Prints
the machine, then medians of several runs:
- tape rows per second for the whole backtest, parsing the CSV included;
- rows per second of the reader alone;
- core bar evaluations per second: every 1-second bar of a symbol fed, as
  ready-made ``Bar`` values, to fresh watcher machines of that symbol
  (``WatcherMachine.on_fast_bar``), the fast rule evaluated on each, timing
  only the core calls;
- the backtest with its prefilter off (every bar of every window through the
  machine), as a check: it must decide exactly as the prefiltered run.
Run: ``make bench`` (or ``python tests/bench/bench_backtest.py [--runs N]``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from breakoutd.backtest import run_backtest
from breakoutd.backtest.report import json_lines
from breakoutd.config import load_watchlist_text
from breakoutd.tape import read_tape, synthetic_tape, write_tape

DAY = dt.date(2026, 3, 9)


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.python_implementation()} {platform.python_version()}, {cpu}, {os.cpu_count()} cores"


def symbols(n: int) -> list[str]:
    return [f"S{i:03d}" for i in range(n)]


def levels_for(i: int) -> list[Decimal]:
    base = [Decimal("0.85"), Decimal("4.50"), Decimal("12.00"), Decimal("55.00"), Decimal("180.00")][i % 5]
    step = base / 50
    return [(base + step * k).quantize(Decimal("0.01") if base >= 1 else Decimal("0.0001")) for k in range(3)]


def watchlist_yaml(syms: list[str]) -> str:
    out = ["breakouts:"]
    for i, s in enumerate(syms):
        for lv in levels_for(i):
            out.append(f"  - symbol: {s}\n    level: {lv}\n    qty: 100")
    return "\n".join(out) + "\n"


def build_tape(path: Path, syms: list[str]) -> None:
    lv = {s: levels_for(i) for i, s in enumerate(syms)}
    tape = synthetic_tape(1, syms, DAY, levels=lv)
    write_tape(path, tape)


def core_rate(tape, watchers) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """Fast-rule evaluations per second of the core alone (bars built beforehand)."""
    from breakoutd.core.bars import NS, Bar
    from breakoutd.core.watcher import WatcherMachine

    by_symbol: dict[str, list] = {}  # type: ignore[type-arg]
    for w in watchers:
        by_symbol.setdefault(w.symbol, []).append(w)
    total, elapsed = 0, 0.0
    for sym, specs in by_symbol.items():
        st = tape.symbols[sym]
        m = st.has_trade
        cols = [st.time[m].tolist(), st.open[m].tolist(), st.high[m].tolist(),
                st.low[m].tolist(), st.close[m].tolist(), st.volume[m].tolist()]
        bars = [Bar(t, NS, o, h, lo, c, v) for t, o, h, lo, c, v in zip(*cols, strict=True)]
        above = int(st.high[m].max()) + 10_000  # a level no bar reaches: every bar is evaluated
        for spec in specs:
            machine = WatcherMachine(dataclasses.replace(spec, level=above),
                                     bars[0].start, bars[-1].end)
            t0 = time.perf_counter()
            for bar in bars:
                machine.on_fast_bar(bar)
            elapsed += time.perf_counter() - t0
            total += len(bars)
    return total, elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    syms = symbols(args.symbols)
    cache = Path(tempfile.gettempdir()) / f"breakoutd-bench-{args.symbols}.csv"
    if not cache.exists():
        t0 = time.perf_counter()
        build_tape(cache, syms)
        print(f"built {cache.name} in {time.perf_counter() - t0:.1f} s")
    wl = load_watchlist_text(watchlist_yaml(syms), "bench.yaml")
    print(machine())
    read_times, total_times = [], []
    rows = 0
    out_fast: list[str] = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        tape = read_tape(cache)
        t1 = time.perf_counter()
        result = run_backtest(tape, wl.watchers)
        t2 = time.perf_counter()
        read_times.append(t1 - t0)
        total_times.append(t2 - t0)
        rows = tape.rows
        out_fast = list(json_lines(result))
    core_evals, core_time = core_rate(tape, wl.watchers)
    evals, slow_times = 0, []
    for _ in range(max(1, args.runs // 2)):
        t0 = time.perf_counter()
        slow = run_backtest(tape, wl.watchers, prefilter=False)
        slow_times.append(time.perf_counter() - t0)
        evals = slow.evaluations
    assert list(json_lines(slow)) == out_fast, "prefilter changed a decision"
    outcomes: dict[str, int] = {}
    for r in result.results:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    read_med, total_med, slow_med = (statistics.median(x) for x in (read_times, total_times, slow_times))
    print(f"tape: {rows:,} rows, {len(syms)} symbols, {len(wl.watchers)} watchers; outcomes {outcomes}")
    print(f"reader alone:             {rows / read_med:>12,.0f} rows/s   (median {read_med:.3f} s of {args.runs})")
    print(f"backtest incl. parsing:   {rows / total_med:>12,.0f} rows/s   (median {total_med:.3f} s of {args.runs})")
    print(f"core bar evaluations:     {core_evals / core_time:>12,.0f} bars/s     ({core_evals:,} in {core_time:.3f} s)")
    print(f"backtest, prefilter off:  {evals:,} machine calls in {slow_med:.3f} s; same decisions: yes")


if __name__ == "__main__":
    main()
