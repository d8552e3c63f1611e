"""systemd's notification protocol (sd_notify): readiness, status, reloads, the watchdog.

Under ``Type=notify`` systemd passes a datagram socket in ``NOTIFY_SOCKET``
(a path, or an abstract name starting with ``@``) and, with ``WatchdogSec=``,
the interval in ``WATCHDOG_USEC``. Outside systemd every call is a no-op.

The ``sdnotify`` package reads only the environment and cannot be pointed at a
socket, so this is the few lines of client it would be. Sends never block the
event loop: the socket is non-blocking and a datagram the receiver has no room
for is dropped (the next status or watchdog ping follows soon).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from loguru import logger

from breakoutd.core import events as ev
from breakoutd.core.ledger import HALT_REASONS

T = TypeVar("T")


def _address(path: str) -> str | None:
    """The socket address for ``NOTIFY_SOCKET``; None for kinds we do not speak (vsock)."""
    if path.startswith("@"):
        return "\0" + path[1:]  # Linux abstract namespace
    if path.startswith("/"):
        return path
    return None


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    """``WATCHDOG_USEC`` when it is meant for this process (``WATCHDOG_PID``, if set, is ours)."""
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec if usec > 0 else None


def one_line(text: str) -> str:
    """``text`` on one line: a newline would end the ``STATUS=`` assignment."""
    return " ".join(text.split())


class SystemdNotifier:
    """Tells systemd how the daemon is doing; does nothing when not run by systemd."""

    def __init__(self, socket_path: str | None = None, watchdog_usec: int | None = None, *,
                 env: Mapping[str, str] | None = None,
                 monotonic_ns: Callable[[], int] = time.monotonic_ns) -> None:
        """Arguments left None are read from ``env`` (default: the process environment);
        ``SystemdNotifier(env={})`` is a notifier that is off."""
        env = os.environ if env is None else env
        path = socket_path if socket_path is not None else env.get("NOTIFY_SOCKET")
        self.address = _address(path) if path else None
        if path and self.address is None:
            logger.warning("NOTIFY_SOCKET={!r} is not a unix socket; systemd is not told", path)
        self.enabled = self.address is not None
        self.watchdog_usec: int | None = None
        if self.enabled:
            self.watchdog_usec = watchdog_usec if watchdog_usec is not None else _watchdog_usec(env)
        self._monotonic_ns = monotonic_ns  # MONOTONIC_USEC must be CLOCK_MONOTONIC
        self._sock: socket.socket | None = None
        self._reloading = False
        self._failed = False

    # --- the protocol ----------------------------------------------------------------

    def send(self, *assignments: str) -> bool:
        """Send ``NAME=value`` lines as one datagram; False when it did not reach systemd."""
        if self.address is None:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        try:
            self._sock.sendto("\n".join(assignments).encode(), self.address)
        except OSError as exc:
            if not self._failed:  # say it once, not every watchdog period
                logger.warning("cannot notify systemd at {}: {}", self.address, exc)
                self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str) -> None:
        """READY=1: the broker is synced and the watchers are armed."""
        self.send("READY=1", f"STATUS={one_line(status)}")

    def status(self, text: str) -> None:
        """STATUS=: the one line ``systemctl status`` shows."""
        self.send(f"STATUS={one_line(text)}")

    def reloading(self) -> None:
        """RELOADING=1 before a reload; systemd >= 253 wants MONOTONIC_USEC with it."""
        self._reloading = True
        usec = self._monotonic_ns() // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading the watchlists")

    def reloaded(self, status: str) -> None:
        """READY=1 again: the reload is over, applied or refused."""
        self._reloading = False
        self.ready(status)

    async def around_reload(self, reload: Awaitable[T]) -> T:
        """RELOADING=1, then ``reload``; READY=1 after it even when it raised."""
        self.reloading()
        try:
            return await reload
        finally:
            if self._reloading:  # no ConfigReloaded came through observe() to end it
                self.reloaded("running (the reload failed, see the log)")

    def stopping(self) -> None:
        """STOPPING=1: the daemon is shutting down on purpose."""
        self.send("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        """Close the socket (sends after this open a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # --- the watchdog ----------------------------------------------------------------

    async def watchdog(self, healthy: Callable[[], bool], stop: asyncio.Event) -> None:
        """Every half ``WATCHDOG_USEC``, WATCHDOG=1 if ``healthy()``, until ``stop`` is set.

        It runs on the event loop on purpose: a blocked or starved loop sends
        nothing, and systemd restarts the daemon after ``WatchdogSec=``.
        """
        if self.watchdog_usec is None:
            return
        period = self.watchdog_usec / 2 / 1_000_000
        while not stop.is_set():
            if healthy():
                self.send("WATCHDOG=1")
            try:
                await asyncio.wait_for(stop.wait(), period)
            except TimeoutError:
                pass

    # --- the daemon's events ---------------------------------------------------------

    def observe(self, event: ev.Event) -> None:
        """Follow the daemon's events: READY=1 when running, STOPPING=1, STATUS= lines."""
        if not self.enabled:
            return
        if isinstance(event, ev.DaemonState):
            self._on_state(event)
        elif isinstance(event, ev.ConfigReloaded):
            text = _reload_status(event)
            if self._reloading:
                self.reloaded(text)
            else:  # a watched file changed: no RELOADING=1 was sent, none to end
                self.status(text)
        elif isinstance(event, ev.ConnectionLost):
            self.status(f"disconnected from the gateway: {event.reason}")
        elif isinstance(event, ev.Reconnecting):
            self.status(f"reconnecting to the gateway (attempt {event.attempt})")
        elif isinstance(event, ev.ConnectionUp):
            self.status(f"connected to {event.host}:{event.port}, account {event.account}")

    def _on_state(self, event: ev.DaemonState) -> None:
        text = f"{event.state}: {event.detail}" if event.detail else event.state
        if event.state in TRADING_STATES or (event.state == "halted"
                                             and event.detail in HALT_REASONS):
            self.ready(text)  # up: trading, or holding its fire (a refused account is not)
        elif event.state == "stopping":
            self.stopping()
        else:
            self.status(text)


TRADING_STATES = frozenset({"running", "degraded", "paused"})


def _reload_status(event: ev.ConfigReloaded) -> str:
    if event.result == "invalid":
        return f"reload refused, nothing changed: {len(event.errors)} problem(s) in the watchlists"
    return (f"reloaded ({event.result}): +{len(event.added)} -{len(event.removed)} "
            f"~{len(event.changed)}" + (f", {len(event.failed)} not applied" if event.failed else ""))
