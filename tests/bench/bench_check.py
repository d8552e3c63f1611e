"""``breakoutctl check`` on a 1 MB watchlist (not collected by pytest).

Two files of 1,000,000 bytes each: the documented block style (a preset,
defaults, commented breakouts with three-rung ladders) and the densest
layout, one flow mapping per line (the most values per byte). Each is checked
by the real command in a fresh process (interpreter start and imports
included, as an operator runs it), ``--runs`` times; prints the median and the
spread, and the in-process ``load_watchlists`` time alone. Correctness check:
each file loads with the expected number of watchers, and the same file with
one bad value reports exactly that one problem at its line.
Run: ``python tests/bench/bench_check.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from breakoutd.config import load_watchlists  # noqa: E402

SIZE = 1_000_000


def _symbol(i: int) -> str:
    text, i = "", i + 26 * 26
    while i:
        text, i = chr(65 + i % 26) + text, i // 26
    return text


def block_style(size: int) -> tuple[str, int]:
    """A file of ``size`` bytes in the style of the example watchlists, and its watchers."""
    head = ("presets:\n  momo:\n    sessions: [premarket, rth]\n    bar: 1 min\n    fast: true\n"
            "defaults:\n  preset: momo\nbreakouts:\n")
    parts, total, i = [head], len(head), 0
    while True:
        level = 10 + (i % 500) / 100
        part = (f"  # breakout {i}: the morning's level\n  - symbol: {_symbol(i)}\n"
                f"    level: {level:.2f}\n    qty: 300\n"
                f"    tp: [{level + 0.1:.2f}, {level + 0.25:.2f}, {level + 0.4:.2f}]\n"
                f"    tp_split: [0.5, 0.25, 0.25]\n    sl: {level - 0.1:.2f}\n")
        if total + len(part) > size:
            break
        parts.append(part)
        total += len(part)
        i += 1
    return _pad("".join(parts), size), i


def flow_style(size: int) -> tuple[str, int]:
    """A file of ``size`` bytes with one flow-mapping breakout per line."""
    parts, total, i = ["breakouts:\n"], len("breakouts:\n"), 0
    while True:
        part = f"  - {{symbol: {_symbol(i)}, level: {10 + (i % 500) / 100:.2f}, qty: 100, sl: 9.50}}\n"
        if total + len(part) > size:
            break
        parts.append(part)
        total += len(part)
        i += 1
    return _pad("".join(parts), size), i


def _pad(text: str, size: int) -> str:
    return text + "#" * (size - len(text) - 1) + "\n"


def _check(path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "breakoutd.cli.ctl", "check", str(path)],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, result.stdout


def _verify(path: Path, text: str, watchers: int) -> None:
    _, out = _check(path)
    expected = f"ok: 1 file, {watchers} watchers (0 disabled), "
    assert out.startswith(expected), out
    lines = text.splitlines(keepends=True)
    bad_line = len(lines) // 2
    at = next(n for n in range(bad_line, len(lines)) if "qty: " in lines[n])
    lines[at] = lines[at].replace("qty: ", "qty: -", 1)
    broken = path.with_name("broken.yaml")
    broken.write_text("".join(lines))
    _, out = _check(broken)
    reported = out.splitlines()
    assert len(reported) == 1 and reported[0].startswith(f"{broken}:{at + 1}: "), out


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{platform.python_implementation()} {platform.python_version()}, {cpu}, "
            f"{os.cpu_count()} cores; load avg {load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in (("block style", block_style), ("flow style", flow_style)):
            text, watchers = make(SIZE)
            path = Path(tmp) / "today.yaml"
            path.write_text(text)
            assert path.stat().st_size == SIZE
            _verify(path, text, watchers)
            walls = sorted(_check(path)[0] for _ in range(args.runs))
            loads = []
            for _ in range(args.runs):
                start = time.perf_counter()
                load_watchlists([path])
                loads.append(time.perf_counter() - start)
            print(f"{name}: {SIZE:,} bytes, {watchers:,} watchers; breakoutctl check median "
                  f"{statistics.median(walls):.3f} s (min {walls[0]:.3f}, max {walls[-1]:.3f}, "
                  f"{args.runs} runs); load_watchlists alone median {statistics.median(loads):.3f} s")
    print("correctness: each file loads with its watchers; one bad qty is one problem at its line")


if __name__ == "__main__":
    main()
