"""Tape reader throughput: rows/s reading a 2,000,000-row, 100-symbol synthetic tape.

Run: ``python tests/bench/bench_tape.py [--rows N] [--repeat 5] [--threads]``.
Prints the machine, then the median of the runs for plain CSV and gzip, by
wall clock and by this process's CPU time (steadier on a shared machine),
and checks that what was read equals what was written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pyarrow as pa  # noqa: E402

from breakoutd.tape import read_tape, synthetic_tape, write_tape  # noqa: E402

SYMBOLS = 100
ROWS_PER_SYMBOL_AT_DENSITY_1 = 27_400  # measured: synthetic_tape's default activity


def machine() -> str:
    """One line naming the CPU, cores and versions the numbers come from."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"pyarrow {pa.__version__}")


def timed_reads(path: Path, repeat: int, threads: bool) -> tuple[float, float, int]:
    """Median wall and CPU seconds of ``repeat`` reads, and the row count."""
    wall, cpu, rows = [], [], 0
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        rows = read_tape(path, use_threads=threads).rows
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", action="store_true", help="let arrow use every core")
    args = parser.parse_args()
    density = args.rows / (SYMBOLS * ROWS_PER_SYMBOL_AT_DENSITY_1)
    symbols = [f"S{k:03d}" for k in range(SYMBOLS)]
    tape = synthetic_tape(11, symbols, dt.date(2024, 3, 5), density=density)
    print(f"machine: {machine()}")
    print(f"tape: {tape.rows:,} rows, {SYMBOLS} symbols, one day 04:00-20:00")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("bench.csv", "bench.csv.gz"):
            path = Path(tmp) / name
            write_tape(path, tape)
            if read_tape(path).symbols != tape.symbols:
                raise SystemExit(f"{name}: what was read differs from what was written")
            wall, cpu, rows = timed_reads(path, args.repeat, args.threads)
            size = path.stat().st_size / 1e6
            print(f"{name:13} {size:6.1f} MB  wall {wall:6.3f} s {rows / wall:11,.0f} rows/s  "
                  f"cpu {cpu:6.3f} s {rows / cpu:11,.0f} rows/s  (median of {args.repeat}, "
                  f"threads={args.threads})")


if __name__ == "__main__":
    main()
