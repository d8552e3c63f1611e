"""sd_notify: what systemd receives on NOTIFY_SOCKET, and the event-loop watchdog."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import pytest
from loguru import logger

from breakoutd.core import events as ev
from breakoutd.daemon.notify import SystemdNotifier
from tests.systemd.notifykit import Receiver, receiver

WATCHDOG_USEC = 50_000  # a 25 ms period keeps the real waits short


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_ready_status_reloading_stopping_reach_systemd(kind: str) -> None:
    with receiver(kind) as rx:
        n = SystemdNotifier(env={"NOTIFY_SOCKET": rx.path})
        assert n.enabled
        n.ready("running: 2 armed,\n1 waiting")
        n.status("disconnected from the gateway")
        before = time.monotonic_ns() // 1000
        n.reloading()
        after = time.monotonic_ns() // 1000
        n.reloaded("reloaded (applied): +1 -0 ~0")
        n.stopping()
        got = rx.drain()
    assert got[0] == {"READY": "1", "STATUS": "running: 2 armed, 1 waiting"}  # one line
    assert got[1] == {"STATUS": "disconnected from the gateway"}
    assert got[2]["RELOADING"] == "1"
    assert before <= int(got[2]["MONOTONIC_USEC"]) <= after  # CLOCK_MONOTONIC, in us
    assert got[3] == {"READY": "1", "STATUS": "reloaded (applied): +1 -0 ~0"}
    assert got[4]["STOPPING"] == "1"
    assert len(got) == 5


def test_outside_systemd_everything_is_a_no_op() -> None:
    n = SystemdNotifier(env={})
    assert not n.enabled and n.watchdog_usec is None
    n.ready("running")
    n.reloading()
    n.stopping()

    async def body() -> None:
        # Returns at once: nothing to ping, and the daemon must not wait on it.
        await n.watchdog(lambda: True, asyncio.Event())
    run(body())


def test_an_unsupported_socket_address_turns_it_off() -> None:
    assert not SystemdNotifier(env={"NOTIFY_SOCKET": "vsock:2:1234"}).enabled


def test_watchdog_interval_is_only_taken_when_meant_for_this_process() -> None:
    def usec(**env: str) -> int | None:
        return SystemdNotifier(env={"NOTIFY_SOCKET": "@x", **env}).watchdog_usec

    assert usec(WATCHDOG_USEC="30000000") == 30_000_000
    assert usec(WATCHDOG_USEC="30000000", WATCHDOG_PID=str(os.getpid())) == 30_000_000
    assert usec(WATCHDOG_USEC="30000000", WATCHDOG_PID=str(os.getpid() + 1)) is None
    assert usec(WATCHDOG_USEC="soon") is None
    assert usec() is None
    assert SystemdNotifier(env={"WATCHDOG_USEC": "30000000"}).watchdog_usec is None  # no socket


def test_a_vanished_socket_is_reported_once_and_never_raises() -> None:
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING", format="{message}")
    try:
        with receiver("path") as rx:
            path = rx.path
        n = SystemdNotifier(env={"NOTIFY_SOCKET": path})  # systemd went away
        assert not n.send("WATCHDOG=1")
        n.ready("running")
        n.stopping()
    finally:
        logger.remove(sink)
    assert len(warnings) == 1 and "cannot notify systemd" in warnings[0]


class Health:
    """A ``healthy()`` callback whose answer the test sets, counting the calls."""

    def __init__(self) -> None:
        self.ok = True
        self.calls = 0
        self._called = asyncio.Event()

    def __call__(self) -> bool:
        self.calls += 1
        self._called.set()
        return self.ok

    async def called(self, times: int) -> None:
        """Wait until asked ``times`` more times."""
        target = self.calls + times
        while self.calls < target:
            self._called.clear()
            await self._called.wait()


async def pings(rx: Receiver, count: int) -> None:
    for _ in range(count):
        assert await rx.next() == {"WATCHDOG": "1"}


def start_watchdog(rx: Receiver, health: Callable[[], bool]
                   ) -> tuple[asyncio.Event, asyncio.Task[None]]:
    n = SystemdNotifier(env={"NOTIFY_SOCKET": rx.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    stop = asyncio.Event()
    return stop, asyncio.get_running_loop().create_task(n.watchdog(health, stop))


def test_watchdog_pings_while_healthy_and_stops_while_not() -> None:
    async def body() -> None:
        with receiver("abstract") as rx:
            health = Health()
            stop, task = start_watchdog(rx, health)
            await pings(rx, 3)
            health.ok = False
            rx.drain()  # pings sent before it turned unhealthy
            await health.called(4)
            assert rx.drain() == []  # four periods unhealthy: not one ping
            health.ok = True
            await pings(rx, 2)  # healthy again: the pings come back
            stop.set()
            await task  # and it ends when told to
    run(body())


def test_watchdog_sends_nothing_while_the_event_loop_is_blocked() -> None:
    async def body() -> None:
        with receiver("path") as rx:
            health = Health()
            stop, task = start_watchdog(rx, health)
            await pings(rx, 2)
            seen: dict[str, object] = {}

            def block() -> None:
                # Runs on the loop: like a slow synchronous call on the hot path.
                seen["before"] = rx.drain()
                calls = health.calls
                time.sleep(6 * WATCHDOG_USEC / 2 / 1e6)  # six watchdog periods
                seen["during"] = rx.drain()
                seen["asked"] = health.calls - calls

            asyncio.get_running_loop().call_soon(block)
            await pings(rx, 1)  # the first ping after the block
            assert seen["during"] == [] and seen["asked"] == 0
            await pings(rx, 2)  # and it goes on
            stop.set()
            await task
    run(body())


def test_reload_is_bracketed_even_when_it_fails() -> None:
    async def failing() -> None:
        raise RuntimeError("disk on fire")

    async def body() -> None:
        with receiver("path") as rx:
            n = SystemdNotifier(env={"NOTIFY_SOCKET": rx.path})
            with pytest.raises(RuntimeError):
                await n.around_reload(failing())
            got = rx.drain()
            assert [("RELOADING" in m, m.get("READY")) for m in got] == [(True, None), (False, "1")]
    run(body())


def test_daemon_events_become_readiness_and_status() -> None:
    with receiver("path") as rx:
        n = SystemdNotifier(env={"NOTIFY_SOCKET": rx.path})
        n.observe(ev.DaemonState(at=1, state="starting"))
        n.observe(ev.ConnectionUp(at=2, host="127.0.0.1", port=4002, client_id=1,
                                  account="DU123", server_version=176, attempt=0))
        assert all("READY" not in m for m in rx.drain())  # not ready while starting
        n.observe(ev.DaemonState(at=3, state="running", detail="2 armed, 0 waiting"))
        assert rx.drain() == [{"READY": "1", "STATUS": "running: 2 armed, 0 waiting"}]
        # A reload the file watcher started: a status line, no READY=1 (none is awaited).
        n.observe(ev.ConfigReloaded(at=4, result="applied", trigger="changed: a.yaml",
                                    digest="d", added=("X@1.00",)))
        assert rx.drain() == [{"STATUS": "reloaded (applied): +1 -0 ~0"}]
        n.reloading()
        n.observe(ev.ConfigReloaded(at=5, result="invalid", trigger="SIGHUP", digest="d",
                                    errors=("a.yaml:3: level: not a price",)))
        got = rx.drain()
        assert got[0]["RELOADING"] == "1"
        assert got[1] == {"READY": "1", "STATUS": "reload refused, nothing changed: "
                                                  "1 problem(s) in the watchlists"}
        n.observe(ev.DaemonState(at=6, state="stopping"))
        assert rx.drain()[0]["STOPPING"] == "1"
