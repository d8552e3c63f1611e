"""Tape reader throughput: rows/s reading a 2,000,000-row, 100-symbol synthetic tape.

Run: ``python tests/bench/bench_tape.py [--rows N] [--symbols K] [--repeat 5] [--threads]``.
Prints the machine; then for plain CSV and gzip the median of the runs by
this process's CPU time (the single-core figure: steadier than the wall
clock on a shared machine) and by wall clock; the CPU time of each stage of
the reader; and for the gzip file, each way to inflate it. Checks that what
was read equals what was written. The tapes are cached in the temp dir.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import os
import platform
import statistics
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from breakoutd.tape import (  # noqa: E402
    compiled,
    fast,
    read_tape,
    reader,
    source,
    split,
    synthetic_tape,
    times,
    write_tape,
)

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
    try:
        from isal import __version__ as isal_version
    except ImportError:
        isal_version = "absent"
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"pyarrow {pa.__version__}, numpy {np.__version__}, isal {isal_version}")


def cpu_median(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median CPU and wall seconds of ``repeat`` calls."""
    cpu, wall = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return statistics.median(cpu), statistics.median(wall)


def stages(path: Path) -> dict[str, float]:
    """CPU seconds of each stage of one read, as ``reader._parse`` runs them on a valid
    file: the compiled path, then (for comparison) the general one."""
    spent: dict[str, float] = {}

    def timed(name: str, run: Callable[[], object]) -> object:
        start = time.process_time()
        result = run()
        spent[name] = time.process_time() - start
        return result

    data = timed("load" if path.suffix != ".gz" else "load+gunzip", lambda: source.load(path))
    body = data[source.body_start(data, str(path)):]
    parsed = timed("compiled parse", lambda: compiled.parse_canonical(body))
    if parsed is None:
        raise SystemExit(f"{path}: the compiled reader refused a canonical file")
    seconds, values, bounds = timed("group (scatter)", lambda: compiled.group_rows(parsed))
    timed("cut", lambda: split.cut(str(path), parsed.symbol_names, parsed.symbol_ids, bounds,
                                   seconds, values))
    table = timed("general: arrow csv", lambda: reader._arrow_read(pa.py_buffer(body)))
    col = table.column("time").chunk(0)
    parsed_times = timed("general: times", lambda: times.epoch_seconds(col))
    cols = timed("general: checks", lambda: fast.fast_columns(table, parsed_times))
    if cols is None:
        raise SystemExit(f"{path}: the fast checks refused a valid file")
    timed("general: split", lambda: split.cut_file_order(
        str(path), cols.symbol_names, cols.symbol_index, cols.seconds, cols.values))
    return spent


def gunzip_ways(path: Path, repeat: int) -> dict[str, float]:
    """Median CPU seconds of each way to inflate the file."""
    raw = path.read_bytes()
    size = struct.unpack("<I", raw[-4:])[0]
    ways: dict[str, Callable[[], object]] = {
        "gzip.decompress": lambda: gzip.decompress(raw),
        "zlib.decompressobj": lambda: zlib.decompressobj(31).decompress(raw),
        "pyarrow Codec": lambda: pa.Codec("gzip").decompress(raw, decompressed_size=size),
    }
    try:
        from isal import igzip, isal_zlib
    except ImportError:
        pass
    else:
        ways["isal igzip.decompress"] = lambda: igzip.decompress(raw)
        ways["isal decompressobj (used)"] = lambda: isal_zlib.decompressobj(31).decompress(raw)
    return {name: cpu_median(run, repeat)[0] for name, run in ways.items()}


def tape_files(rows: int, count: int) -> tuple[Path, Path]:
    """The plain and gzip synthetic tapes, made once and kept in the temp dir."""
    base = Path(tempfile.gettempdir()) / f"breakoutd-bench-tape-{rows}-{count}"
    plain, zipped = base.with_suffix(".csv"), base.with_suffix(".csv.gz")
    if not (plain.exists() and zipped.exists()):
        density = rows / (count * ROWS_PER_SYMBOL_AT_DENSITY_1)
        symbols = [f"S{k:03d}" for k in range(count)]
        tape = synthetic_tape(11, symbols, dt.date(2024, 3, 5), density=density)
        write_tape(plain, tape)
        write_tape(zipped, tape)
    return plain, zipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", action="store_true", help="let arrow use every core")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    plain, zipped = tape_files(args.rows, args.symbols)
    expected = read_tape(plain).symbols
    rows = sum(len(s) for s in expected.values())
    print(f"tape: {rows:,} rows, {args.symbols} symbols, one day 04:00-20:00 "
          f"(threads={args.threads}, median of {args.repeat}, CPU time unless said)")
    for path in (plain, zipped):
        if read_tape(path).symbols != expected:
            raise SystemExit(f"{path.name}: what was read differs from what was written")
        cpu, wall = cpu_median(lambda p=path: read_tape(p, use_threads=args.threads), args.repeat)
        size = path.stat().st_size / 1e6
        print(f"{path.name.split('-')[-1]:13} {size:6.1f} MB  cpu {cpu:6.3f} s "
              f"{rows / cpu:11,.0f} rows/s   wall {wall:6.3f} s {rows / wall:11,.0f} rows/s")
        general, _ = cpu_median(lambda p=path: reader._parse_general(
            (lambda d: d[source.body_start(d, str(p)):])(source.load(p)), str(p), args.threads), args.repeat)
        print(f"  general path (arrow) cpu {general:6.3f} s {rows / general:11,.0f} rows/s")
        runs = [stages(path) for _ in range(args.repeat)]
        for name in runs[0]:
            spent = statistics.median(run[name] for run in runs)
            print(f"    {name:20} {spent:6.3f} s  {spent / rows * 1e6:5.2f} us/row")
    print("inflating the gzip file:")
    for name, spent in gunzip_ways(zipped, args.repeat).items():
        print(f"    {name:26} {spent:6.3f} s  {spent / rows * 1e6:5.2f} us/row")


if __name__ == "__main__":
    main()
