"""The daemon's life as systemd sees it: READY=1 after sync and arming, reloads, stopping.

The daemon runs against the simulated gateway (manual clock) over loopback;
its events go through :meth:`SystemdNotifier.observe` as ``breakoutd run``
wires them, and after every event the test reads what reached the socket, so
each datagram is pinned to the event that caused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from breakoutd.core import events as ev
from breakoutd.daemon.app import Daemon
from breakoutd.daemon.notify import SystemdNotifier
from breakoutd.ibkr.settings import BrokerSettings
from breakoutd.sim import Market, SimGateway
from tests.daemon.daemonkit import DAY
from tests.daemon.test_daemon_sim import ramp
from tests.systemd.notifykit import Message, Receiver, receiver

WATCHLIST = """\
breakouts:
  - symbol: DEMO
    level: 10.00
    qty: 100
"""


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


@dataclass
class Seen:
    """Every event, with the datagrams systemd received because of it."""

    rx: Receiver
    notifier: SystemdNotifier
    log: list[tuple[ev.Event, list[Message]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, event: ev.Event) -> None:
        # The daemon has passed the event to its notifier before it logs it.
        sent = [m for m in self.rx.drain() if "WATCHDOG" not in m]
        self.log.append((event, sent))
        self.changed.set()

    def states(self) -> list[str]:
        return [e.state for e, _ in self.log if isinstance(e, ev.DaemonState)]

    async def wait_state(self, *states: str) -> None:
        while not set(states) & set(self.states()):
            self.changed.clear()
            await self.changed.wait()

    def caused(self, key: str) -> list[ev.Event]:
        """The events that made the daemon send ``key``."""
        return [e for e, sent in self.log if any(key in m for m in sent)]


@contextlib.asynccontextmanager
async def daemon_under_systemd(var: Path, **sim_kwargs: object
                               ) -> AsyncIterator[tuple[Daemon, Seen, asyncio.Event,
                                                        asyncio.Task[int]]]:
    wl = var / "watchlists"
    wl.mkdir(parents=True)
    (wl / "demo.yaml").write_text(WATCHLIST)
    # 09:30:10: the regular session is open, so the watcher is armed at start-up.
    gw = SimGateway(Market(ramp("09:29:50", 120, "9.95")), port=0, start=dt.time(9, 30, 10),
                    day=DAY, manual_clock=True, **sim_kwargs)  # type: ignore[arg-type]
    await gw.start()
    with receiver("path") as rx:
        seen = Seen(rx, SystemdNotifier(env={"NOTIFY_SOCKET": rx.path, "WATCHDOG_USEC": "50000"}))
        daemon = Daemon(watchlists=[wl], var=var, settings=BrokerSettings(port=gw.port),
                        clock=gw.now_ns, log_event=seen, notifier=seen.notifier)
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(daemon.run(stop))
        try:
            yield daemon, seen, stop, task
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
            await gw.stop()


def test_ready_only_once_synced_and_armed_then_reload_and_stop(tmp_path: Path) -> None:
    async def body() -> None:
        async with daemon_under_systemd(tmp_path) as (daemon, seen, stop, task):
            await seen.wait_state("running", "stopped", "halted")
            ready = seen.caused("READY")
            assert [(type(e).__name__, getattr(e, "state", "")) for e in ready] == [
                ("DaemonState", "running")]
            before = [type(e).__name__ for e, _ in seen.log[:[e for e, _ in seen.log].index(ready[0])]]
            assert "ConnectionUp" in before and "WatcherStarted" in before
            assert seen.log[-1][1][0]["STATUS"] == "running: 1 armed, 0 waiting"

            # The event loop is healthy: the daemon's watchdog pings.
            assert daemon.healthy()
            assert await seen.rx.next() == {"WATCHDOG": "1"}

            # SIGHUP: RELOADING=1 around the reload, READY=1 when it is done.
            result = await daemon.reload("SIGHUP")
            assert result.result == "unchanged"
            event, sent = seen.log[-1]  # RELOADING=1 went out before the reload began
            assert isinstance(event, ev.ConfigReloaded)
            assert sent[0]["RELOADING"] == "1" and int(sent[0]["MONOTONIC_USEC"]) > 0
            assert sent[1:] == [{"READY": "1", "STATUS": "reloaded (unchanged): +0 -0 ~0"}]

            stop.set()
            assert await task == 0
            stopping = seen.caused("STOPPING")
            assert [getattr(e, "state", "") for e in stopping] == ["stopping"]
            assert len(seen.caused("READY")) == 2  # start-up and the reload, nothing after

    run(body())


def test_a_refused_account_is_never_reported_ready(tmp_path: Path) -> None:
    async def body() -> None:
        async with daemon_under_systemd(tmp_path, account="U7654321") as (_, seen, _stop, task):
            await asyncio.wait({task})
            assert task.exception() is not None  # the paper guard: exit code 2 in `run`
            assert seen.caused("READY") == []
            assert [getattr(e, "state", "") for e in seen.caused("STOPPING")] == ["stopping"]

    run(body())
