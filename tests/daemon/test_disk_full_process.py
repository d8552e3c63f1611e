"""The real daemon process with its var on a small tmpfs that fills up mid-day.

Every entry at the broker has its ``OrderSent`` lines, no torn line is left,
the triggers after the disk filled are not sent, SIGTERM exits 0 and cancels
the unfilled entry; a start on the full disk (or on a tiny one) refuses with
one line. Needs root to mount a tmpfs: skipped, with the reason, otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from breakoutd.sim import Market, SimGateway
from tests.daemon.daemonkit import DAY, at
from tests.daemon.processkit import at_the_broker, read_until, reap
from tests.daemon.test_daemon_sim import ramp
from tests.daemon.test_reload import one_fills_one_rests

ROOT = Path(__file__).resolve().parents[2]
FIRST, SECOND = "bo:20260309:rth:AAA@10.00", "bo:20260309:rth:second"


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path``; unmounted whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                              str(path)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem has no byte left."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        # The running daemon gives its space reserve back when its write fails, so
        # what it frees meanwhile is filled too, until a write finds no byte at all.
        for _ in range(20):
            for chunk in (65536, 4096, 512, 1):
                block = b"x" * chunk
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, block)
            try:
                os.write(fd, b"x")
            except OSError as full:
                assert full.errno == errno.ENOSPC
                return filler
    finally:
        os.close(fd)
    raise AssertionError(f"{directory} never filled")


def daemon(var: Path, wl: Path) -> list[str]:
    return [sys.executable, "-m", "breakoutd.cli.main", "run", "--watchlists", str(wl),
            "--var", str(var)]


async def start(var: Path, wl: Path, port: int) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k not in ("RUNTIME_DIRECTORY", "BREAKOUTD_VAR")}
    env.update(IB_PORT=str(port), IB_CLIENT_ID="5")
    return await asyncio.create_subprocess_exec(
        *daemon(var, wl), cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL)


def whole_lines(path: Path) -> list[dict]:  # type: ignore[type-arg]
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path.name} ends in a torn line"
    return [msgspec.json.decode(line) for line in data.splitlines()]


def test_a_disk_that_fills_mid_day_sends_nothing_unjournalled_and_stops_cleanly(
        tmp_path: Path) -> None:
    two, rows = one_fills_one_rests(", tp: 11.00, sl: 9.50")
    rows += ramp("09:30:50", 20, "19.95", "BBB") + ramp("09:31:10", 40, "20.20", "BBB")
    rows += ramp("09:30:50", 26, "29.95", "CCC") + ramp("09:31:16", 40, "30.20", "CCC")
    wl_text = two + ("  - {symbol: BBB, level: 20.00, qty: 10, tp: 21.00, sl: 19.50}\n"
                     "  - {symbol: CCC, level: 30.00, qty: 10, tp: 31.00, sl: 29.50}\n")
    wl = tmp_path / "wl"
    wl.mkdir()
    (wl / "w.yaml").write_text(wl_text)
    stderr: list[str] = []

    with small_tmpfs(tmp_path / "var", "64k") as var:
        async def body() -> None:
            gw = SimGateway(Market(sorted(rows, key=lambda r: (r.time, r.symbol))), port=0,
                            start=dt.time(9, 30, 52), day=DAY)
            await gw.start()
            procs: list[asyncio.subprocess.Process] = []
            try:
                first = await start(var, wl, gw.port)
                procs.append(first)
                await read_until(first, "daemon running")
                await at_the_broker(gw, 6, timeout=30)  # both AAA brackets
                filler = fill(var)
                stderr.append(await read_until(first, "cannot be written"))
                await asyncio.sleep(max(0.0, (at("09:31:19") - gw.now_ns()) / 1e9))
                first.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(first.wait(), 30) == 0
                assert first.stderr is not None
                stderr.append((await first.stderr.read()).decode())
                broker = gw.engine.open_orders(None) + gw.engine.completed_orders()
                refs = {o.order_ref for o, _ in broker}
                assert not {r for r in refs if "BBB" in r or "CCC" in r}  # not sent
                done = {o.order_ref: s for o, s in gw.engine.completed_orders()
                        if o.action == "BUY"}
                assert done.get(SECOND) == "Cancelled"  # the unfilled entry, at the stop
                exits = [o for o, _ in gw.engine.open_orders(None) if o.action == "SELL"]
                # The position keeps its exits at the broker.
                assert {o.order_ref for o in exits} == {f"{FIRST}:tp1", f"{FIRST}:sl"}
                assert gw.engine.positions()["AAA"][0] == 100
                ids = {o.order_id for o, _ in broker}
                # Start-up on the full disk refuses with one line.
                again = await start(var, wl, gw.port)
                procs.append(again)
                out = (await asyncio.wait_for(again.stderr.read(), 30)).decode()  # type: ignore[union-attr]
                assert await again.wait() == 2
                assert out.count("\n") == 1 and out.startswith("breakoutd: cannot start: "), out
                assert "No space left on device (ENOSPC)" in out
                # Room again: the daemon starts, and the day's journal reads whole.
                filler.unlink()
                third = await start(var, wl, gw.port)
                procs.append(third)
                await read_until(third, "daemon running")
                third.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(third.wait(), 30) == 0
                events = whole_lines(var / "journal" / DAY.isoformat() / "events.jsonl")
                sent = {e["order_id"] for e in events if e["event"] == "OrderSent"}
                assert ids <= sent, "an order at the broker has no OrderSent line"
            finally:
                await reap(procs)
                await gw.stop()

        asyncio.run(asyncio.wait_for(body(), 120))
        for stream in ("events", "ops", "gateway"):
            whole_lines(var / "journal" / DAY.isoformat() / f"{stream}.jsonl")
        assert not [p for p in var.rglob("*.tmp")]
    text = "".join(stderr)
    assert "Logging error" not in text and "Traceback" not in text, text
    assert "No space left on device (ENOSPC)" in text and "free space" in text


def test_start_up_on_a_tiny_filesystem_refuses_with_one_line(tmp_path: Path) -> None:
    wl = tmp_path / "wl"
    wl.mkdir()
    (wl / "w.yaml").write_text("breakouts:\n  - {symbol: AAA, level: 10.00, qty: 10}\n")
    with small_tmpfs(tmp_path / "var", "16k") as var:
        env = dict(os.environ, IB_PORT="9", IB_CLIENT_ID="5")
        done = subprocess.run(daemon(var, wl), cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("breakoutd: cannot start: ")
        assert "cannot hold the journal" in done.stderr and "KiB" in done.stderr
