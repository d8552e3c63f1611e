"""Backtest throughput with rule: momentum and named levels vs the plain close rule.

The tape of ``bench_backtest.py`` (100 symbols, 04:00-20:00, about 2 million
rows). Three watchers per symbol in each run:
- plain: the close rule on three price levels (``bench_backtest``'s watchlist);
- variants: ``rule: momentum`` on a price level, on ``premarket_high`` and on
  ``opening_range_high``, and the same three with ``rule: retest``.
Prints the machine, then medians of several runs of rows per second, the
backtest alone (the tape read once) and including parsing, and checks that
the prefilter changes no decision of the variants' run.
Run: ``python tests/bench/bench_levels.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_backtest import build_tape, levels_for, machine, symbols, watchlist_yaml  # noqa: E402

from breakoutd.backtest import run_backtest  # noqa: E402
from breakoutd.backtest.report import json_lines  # noqa: E402
from breakoutd.config import load_watchlist_text  # noqa: E402
from breakoutd.tape import read_tape  # noqa: E402


def variants_yaml(syms: list[str], rule: str) -> str:
    out = ["breakouts:"]
    for i, s in enumerate(syms):
        out.append(f"  - symbol: {s}\n    level: {levels_for(i)[1]}\n    qty: 100\n"
                   f"    rule: {rule}")
        out.append(f"  - symbol: {s}\n    level: premarket_high\n    qty: 100\n    rule: {rule}")
        out.append(f"  - symbol: {s}\n    level: opening_range_high\n    qty: 100\n"
                   f"    rule: {rule}")
    return "\n".join(out) + "\n"


def timed(tape, watchers, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run_backtest(tape, watchers)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    syms = symbols(args.symbols)
    cache = Path(tempfile.gettempdir()) / f"breakoutd-bench-{args.symbols}.csv"
    if not cache.exists():
        build_tape(cache, syms)
    t0 = time.perf_counter()
    tape = read_tape(cache)
    parse = time.perf_counter() - t0
    rows = tape.rows
    runs = {
        "close rule, price levels": load_watchlist_text(watchlist_yaml(syms), "p.yaml").watchers,
        "momentum, named levels": load_watchlist_text(variants_yaml(syms, "momentum"),
                                                      "m.yaml").watchers,
        "retest, named levels": load_watchlist_text(variants_yaml(syms, "retest"),
                                                    "r.yaml").watchers,
    }
    print(machine())
    print(f"tape: {rows:,} rows, {len(syms)} symbols; parsing {parse:.3f} s")
    for watchers in runs.values():
        run_backtest(tape, watchers)  # warm: each symbol's bars are aggregated once
    # Interleaved, so that a neighbour's load on the shared machine hits every run alike.
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.runs):
        for name, watchers in runs.items():
            times[name].append(timed(tape, watchers, 1))
    base = times["close rule, price levels"]
    for name in runs:
        med = statistics.median(times[name])
        ratio = statistics.median(t / b for t, b in zip(times[name], base, strict=True))
        print(f"{name:<26} {rows / med:>12,.0f} rows/s backtest alone  "
              f"{rows / (med + parse):>12,.0f} rows/s incl. parsing  "
              f"(median {med:.3f} s of {args.runs}; {ratio:.2f}x the close rule's time)")
    for name in ("momentum, named levels", "retest, named levels"):
        watchers = runs[name]
        fast = list(json_lines(run_backtest(tape, watchers)))
        slow = list(json_lines(run_backtest(tape, watchers, prefilter=False)))
        assert fast == slow, f"{name}: the prefilter changed a decision"
        kinds = {k: sum(f'"kind": "{k}"' in line for line in fast) for k in
                 ("momentum", "retest", "fast")}
        print(f"{name}: prefilter off decides the same; triggers by kind {kinds}")


if __name__ == "__main__":
    main()
