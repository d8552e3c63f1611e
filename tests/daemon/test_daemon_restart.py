"""kill -9 between sending an entry and its fill, then a restart: no second entry."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path

from breakoutd.daemon.journal import read_journal
from breakoutd.sim import Market, SimGateway
from tests.daemon.daemonkit import DAY, at
from tests.daemon.test_daemon_sim import BRACKET, ramp

ROOT = Path(__file__).resolve().parents[2]


def rows() -> list:  # type: ignore[type-arg]
    # 09:30 closes at 10.02 with 1 share offered at 10.03 at the end: the entry
    # (BUY 100 LMT 10.03 at 09:31:00) takes that share and rests; the market
    # trades above it until 09:31:04, then through it at 10.00 from 09:31:05.
    out = ramp("09:30:00", 50, "9.95") + ramp("09:30:50", 10, "10.02")
    out[-1] = out[-1]._replace(ask_size=1)
    out += ramp("09:31:00", 5, "10.08") + ramp("09:31:05", 60, "10.00")
    return out


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


async def at_the_broker(gw: SimGateway, n: int, timeout: float = 10) -> None:
    async def loop() -> None:
        while len(gw.engine.open_orders(None)) + len(gw.engine.completed_orders()) < n:
            await asyncio.sleep(0.001)  # the gateway runs in this loop; nothing to await
    await asyncio.wait_for(loop(), timeout)


def test_kill_9_after_sending_then_restart_sends_nothing_again(tmp_path: Path) -> None:
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "w.yaml").write_text(BRACKET)

    async def body() -> None:
        gw = SimGateway(Market(rows()), port=0, start=dt.time(9, 30, 55), day=DAY)
        await gw.start()
        procs: list[asyncio.subprocess.Process] = []
        try:
            first = await start_daemon(tmp_path, gw.port)
            procs.append(first)
            await read_until(first, "sent stop")
            await at_the_broker(gw, 3)  # the whole bracket has reached the gateway
            first.send_signal(signal.SIGKILL)
            await first.wait()
            # The entry fills (09:31:05 trades through it) while no daemon runs.
            await asyncio.sleep(max(0.0, (at("09:31:06") - gw.now_ns()) / 1e9))
            second = await start_daemon(tmp_path, gw.port)
            procs.append(second)
            await read_until(second, "daemon running")
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 30) == 0
            orders = gw.engine.open_orders(None) + gw.engine.completed_orders()
            refs = [o.order_ref for o, _ in orders]
            assert refs.count("bo:20260309:rth:DEMO@10.00") == 1  # one entry at the broker
            assert gw.engine.positions()["DEMO"][0] == 100
        finally:
            for proc in procs:  # a failing test must not leave a daemon running
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            await gw.stop()

    asyncio.run(asyncio.wait_for(body(), 90))
    journal = read_journal(tmp_path / "journal" / DAY.isoformat() / "events.jsonl")
    sent = [e for e in journal if e["event"] == "OrderSent"]
    assert [s["role"] for s in sent] == ["entry", "take_profit", "stop"]  # once, before the kill
    assert sum(1 for e in journal if e["event"] == "OrderIntent") == 1
    reconciled = [e for e in journal if e["event"] == "OrderReconciled"]
    assert reconciled and reconciled[0]["watcher_id"] == "DEMO@10.00"
    fills = [e for e in journal if e["event"] == "OrderFilled" and e["role"] == "entry"]
    assert sum(f["qty"] for f in fills) == 100  # 1 share before the kill, 99 while down
    assert {Decimal(str(f["price"])) for f in fills} == {Decimal("10.03")}
    assert sum(1 for e in journal if e["event"] == "WatcherStarted") == 1  # not armed again


