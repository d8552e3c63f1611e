"""``breakoutd backtest --jobs 2`` against one process on a multi-day workload (not collected).

The workload: every recorded tape beside the checkout of the symbols with
real prices (../shared/data/tapes and ../shared/data/holdout: SPY, BAC, AIG
and IBM over five days; the holdout's shifted and blanked variants are left
out) and a watchlist of many watchers on those symbols: price levels across each symbol's range with take-profits and
stops, ladders, named levels (premarket_high, opening_range_high,
prior_high), the momentum and retest rules and trailed stops. Each run is
the real command in a new process (interpreter start, imports, watchlist
load and output included), stdout to a file; one process and ``--jobs N``
alternate so a neighbour's load hits both alike. With ``--jobs 2`` each round
also runs a control: two independent one-process commands at once, each on
half the watchers, the most any split in two gets from this machine (two
virtual cores rarely give two cores' work). Prints the machine, each run,
the medians, the median of the per-round ratios, and checks that both wrote
the same bytes.

Run: ``make bench`` (or ``python tests/bench/bench_jobs.py [--runs N] [--watchers N] [--risk]``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_backtest import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".." / "shared" / "data"
TAPES = DATA / "tapes"
# Each symbol's range over the recorded days, in cents, and its price step.
RANGES = {"SPY": (16500, 16900, 1), "BAC": (1360, 1420, 1), "AIG": (4740, 4990, 1),
          "IBM": (17850, 18600, 1)}
STEPS = {"SPY": 0.05, "IBM": 0.05}  # dollars; the others 0.02


def tape_files() -> list[Path]:
    """The recorded tapes of RANGES' symbols, in both folders."""
    return sorted(p for folder in (DATA / "tapes", DATA / "holdout")
                  for p in folder.glob("*.csv.gz") if p.name.split("_")[0] in RANGES)


def _variant(n: int, symbol: str, cents: int) -> str:
    """One breakout of the n-th kind at a price level (``cents``)."""
    price = cents / 100
    step = STEPS.get(symbol, 0.02)
    kind = n % 6
    if kind == 0:
        return f"level: {price:.2f}, qty: 100, tp: {price + 4 * step:.2f}, sl: {price - 2 * step:.2f}"
    if kind == 1:
        return (f"level: {price:.2f}, qty: 300, tp: [{price + step:.2f}, {price + 2 * step:.2f}, "
                f"{price + 3 * step:.2f}], sl: {price - step:.2f}")
    if kind == 2:
        return f"level: {price:.2f}, qty: 100, rule: momentum, sl: {price - 2 * step:.2f}"
    if kind == 3:
        return (f"level: {price:.2f}, qty: 100, rule: retest, tp: {price + 3 * step:.2f}, "
                f"sl: {price - 2 * step:.2f}")
    if kind == 4:
        return (f"level: {price:.2f}, qty: 100, sl: {price - 2 * step:.2f}, breakeven: 1, "
                f"trail: {step:.2f}")
    named = ("premarket_high", "opening_range_high", "prior_high")[n // 6 % 3]
    return f"level: {named}, level_offset: {(n % 7) / 100:.2f}, qty: 100"


# --risk: limits that bind (the day ledger then replays every day across its symbols)
RISK = "risk:\n  max_positions: 20\n  max_entries_per_day: 400\n"


def watchlist_yaml(per_symbol: int, risk: bool = False) -> str:
    out = [RISK.rstrip("\n")] if risk else []
    out.append("breakouts:")
    for symbol, (lo, hi, step) in RANGES.items():
        levels = list(range(lo, hi, step))
        for n in range(per_symbol):
            cents = levels[n * 7919 % len(levels)]  # spread over the range, every kind everywhere
            out.append(f"  - {{id: {symbol.lower()}-{n}, symbol: {symbol}, "
                       f"{_variant(n, symbol, cents)}}}")
    return "\n".join(out) + "\n"


def cpu_stalled_us() -> int | None:
    """Microseconds some task waited for a CPU (Linux PSI): the neighbours' load."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(line.rsplit("total=", 1)[1])


def children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _argv(watchlist: Path) -> list[str]:
    return [sys.executable, "-m", "breakoutd.cli.main", "backtest",
            *(a for f in tape_files() for a in ("--tape", str(f))), "--watchlist", str(watchlist)]


def halves_yaml(per_symbol: int) -> tuple[str, str]:
    """The watchlist's breakouts cut in two for the control run: alternate runs of six,
    so each half has every kind (``_variant``) alike. (Without risk limits: they couple
    the halves, which a control cannot split.)"""
    head, *rows = watchlist_yaml(per_symbol).splitlines(keepends=True)
    a = "".join(r for k, r in enumerate(rows) if k // 6 % 2 == 0)
    b = "".join(r for k, r in enumerate(rows) if k // 6 % 2 == 1)
    return head + a, head + b


def run_halves(halves: Sequence[Path], out: Path) -> float:
    """Wall seconds of two independent one-process commands at once, each on half the
    watchers: the most any split of this work in two can get from this machine, with
    nothing shared and nothing merged (each still starts, loads and prints on its own)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    with out.open("wb") as f:
        procs = [subprocess.Popen(_argv(h), stdout=f, stderr=subprocess.DEVNULL, cwd=ROOT,
                                  env=env) for h in halves]
        codes = [p.wait() for p in procs]
    if any(codes):
        raise RuntimeError(f"a half's backtest failed: exit codes {codes}")
    return time.perf_counter() - started


def run_once(watchlist: Path, jobs: int, out: Path) -> tuple[float, float, float | None]:
    """Wall seconds, CPU seconds of the command (its workers, children of the forkserver,
    are not counted), the share of the wall time some task on the host waited for a CPU."""
    argv = _argv(watchlist)
    if jobs > 1:
        argv += ["--jobs", str(jobs)]
    cpu, stalled = children_cpu(), cpu_stalled_us()
    started = time.perf_counter()
    with out.open("wb") as f:
        subprocess.run(argv, stdout=f, stderr=subprocess.DEVNULL, check=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - started
    after = cpu_stalled_us()
    pressure = (after - stalled) / 1e6 / wall if after is not None and stalled is not None \
        else None
    return wall, children_cpu() - cpu, pressure


def _pct(share: float | None) -> str:
    return f"{100 * share:.0f}%" if share is not None else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--watchers", type=int, default=2000, help="per symbol")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--risk", action="store_true",
                        help="with risk limits that bind (no control: they couple the halves)")
    args = parser.parse_args()
    if not TAPES.is_dir():
        print(f"skipped: no recorded tapes at {TAPES}")
        return
    files = tape_files()
    days = sorted({p.name.split("_")[1][:8] for p in files})
    symbols = sorted({p.name.split("_")[0] for p in files})
    print(machine(), f"load average {os.getloadavg()[0]:.1f}")
    print(f"{len(files)} symbol-days of recorded tapes ({len(days)} days, {len(symbols)} "
          f"symbols), {args.watchers * len(RANGES)} watchers: "
          f"{args.watchers * len(files)} watcher-days; {args.runs} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        wl = Path(tmp) / "many.yaml"
        wl.write_text(watchlist_yaml(args.watchers, args.risk))
        halves = [Path(tmp) / "half-a.yaml", Path(tmp) / "half-b.yaml"]
        for path, text in zip(halves, halves_yaml(args.watchers), strict=True):
            path.write_text(text)
        one_out, many_out = Path(tmp) / "one.txt", Path(tmp) / "many.txt"
        run_once(wl, 1, one_out)  # warm: numba's cache, the page cache
        one, many, split = [], [], []
        for _ in range(args.runs):
            a, a_cpu, a_psi = run_once(wl, 1, one_out)
            b, b_cpu, b_psi = run_once(wl, args.jobs, many_out)
            c = run_halves(halves, Path(tmp) / "halves.txt") \
                if args.jobs == 2 and not args.risk else None
            one.append(a)
            many.append(b)
            control = ""
            if c is not None:
                split.append(c)
                control = f"; two halves at once {c:.2f} s: {a / c:.2f}x"
            print(f"  one process {a:.2f} s ({a_cpu:.2f} s CPU, host CPU wait {_pct(a_psi)}), "
                  f"--jobs {args.jobs} {b:.2f} s (host CPU wait {_pct(b_psi)}): {a / b:.2f}x"
                  + control)
        same = one_out.read_bytes() == many_out.read_bytes()
        lines = one_out.read_text().count("\n")
        phases = backtest_alone(wl, args.jobs, args.runs)
    ratios = [a / b for a, b in zip(one, many, strict=True)]
    print(f"one process: median {statistics.median(one):.2f} s")
    print(f"--jobs {args.jobs}: median {statistics.median(many):.2f} s")
    print(f"speed-up: {statistics.median(one) / statistics.median(many):.2f}x of the medians, "
          f"median per-round ratio {statistics.median(ratios):.2f}x")
    if split:
        ceiling = [a / c for a, c in zip(one, split, strict=True)]
        print(f"control, two independent processes on half the watchers each: median "
              f"{statistics.median(split):.2f} s, {statistics.median(ceiling):.2f}x median per "
              f"round: --jobs {args.jobs} gets {statistics.median(r / c for r, c in zip(ratios, ceiling, strict=True)):.0%} "
              f"of it")
    print(f"correctness: outputs identical: {same} ({lines} lines)")
    a, b = (statistics.median(x) for x in zip(*phases, strict=True))
    print(f"the backtest alone, in this process (watchlist loaded, nothing printed; the "
          f"workers' start included): one process {a:.2f} s, --jobs {args.jobs} {b:.2f} s: "
          f"{a / b:.2f}x (median per-round ratio "
          f"{statistics.median(x / y for x, y in phases):.2f}x)")


def backtest_alone(watchlist: Path, jobs: int, runs: int) -> list[tuple[float, float]]:
    """The scalable part: reading the tapes and the backtest, one process against a
    fresh ``--jobs`` runner, the same watchlist loaded once."""
    from breakoutd.backtest.days import read_days, run_backtest_days
    from breakoutd.backtest.workers import ProcessRunner, run_backtest_jobs
    from breakoutd.config import load_watchlists

    wl = load_watchlists([watchlist])
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        alone = run_backtest_days(read_days(tape_files()), wl.watchers, wl.risk)
        a = time.perf_counter() - started
        started = time.perf_counter()
        runner = ProcessRunner(jobs)
        try:
            split = run_backtest_jobs(runner, tape_files(), wl.watchers, wl.risk)
        finally:
            runner.close()
        b = time.perf_counter() - started
        assert split == alone, "the split backtest decided otherwise"
        print(f"  backtest alone: one process {a:.2f} s, --jobs {jobs} {b:.2f} s: {a / b:.2f}x")
        out.append((a, b))
    return out


if __name__ == "__main__":
    main()
