"""The daemon as a process (``breakoutd run``) against a simulated gateway on loopback.

For what only a real process shows: kill -9 and a restart, the exit code,
what it says on stderr. Each test keeps the processes it started in a list
and reaps them in a ``finally``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from breakoutd.sim import SimGateway

ROOT = Path(__file__).resolve().parents[2]


async def start_daemon(var: Path, port: int) -> asyncio.subprocess.Process:
    env = dict(os.environ, IB_PORT=str(port), IB_CLIENT_ID="3")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "breakoutd.cli.main", "run", "--watchlists", str(var / "wl"),
        "--var", str(var), cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL)


async def read_until(proc: asyncio.subprocess.Process, needle: str, timeout: float = 30) -> str:
    assert proc.stderr is not None
    seen = []

    async def loop() -> str:
        while True:
            line = (await proc.stderr.readline()).decode()  # type: ignore[union-attr]
            if not line:
                raise AssertionError(f"daemon ended before {needle!r}:\n{''.join(seen)}")
            seen.append(line)
            if needle in line:
                return line
    return await asyncio.wait_for(loop(), timeout)


async def daemon_saying(var: Path, port: int, procs: list[asyncio.subprocess.Process],
                        needle: str) -> asyncio.subprocess.Process:
    """A daemon started on ``var`` (kept in ``procs`` to reap), once it has said ``needle``."""
    proc = await start_daemon(var, port)
    procs.append(proc)
    await read_until(proc, needle)
    return proc


async def kill_9(proc: asyncio.subprocess.Process) -> None:
    """kill -9: no clean stop, nothing flushed."""
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def reap(procs: list[asyncio.subprocess.Process]) -> None:
    """Kill what still runs: a failing test must not leave a daemon behind."""
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def at_the_broker(gw: SimGateway, n: int, timeout: float = 10) -> None:
    async def loop() -> None:
        while len(gw.engine.open_orders(None)) + len(gw.engine.completed_orders()) < n:
            await asyncio.sleep(0.001)  # the gateway runs in this loop; nothing to await
    await asyncio.wait_for(loop(), timeout)
