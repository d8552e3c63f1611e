"""One attempt to connect to the gateway, and waiting for a first connection.

:class:`ConnectAttempt` runs ib_async's connect and sync once and says, as
``ConnectWaiting`` events, what it waits for as it gets there: a gateway that
accepts the socket and never answers must not look like a daemon doing
nothing. It ends early when the gateway hangs up during the handshake, and
puts why it failed in words an operator can act on. The supervisor
(``ibkr/connection.py``) decides what to do next: retry with backoff, refuse
the account, or run the session.

:func:`unless_stopped` lets a stop signal cut a first connection short, so a
signal while the gateway is down does not wait out the backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import ib_async
from loguru import logger

from breakoutd.core.events import ConnectWaiting, Event
from breakoutd.ibkr.settings import BrokerSettings
from breakoutd.ibkr.wire.requests import connect_stage, unwatch_api_errors, watch_api_errors

STAGE_POLL = 0.2  # seconds between looks at how far a connection attempt has got


async def unless_stopped(connecting: Awaitable[None], stop: asyncio.Event) -> bool:
    """Await ``connecting`` (a first connection, retried with backoff) unless ``stop``
    comes first: False then, and the attempt is cancelled. A signal while the gateway
    is down must not wait out the backoff. Errors of ``connecting`` are raised."""
    attempt = asyncio.ensure_future(connecting)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({attempt, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not attempt.done():
            attempt.cancel()
            await asyncio.wait({attempt})
    if attempt.cancelled():
        logger.info("stopped while connecting to the gateway")
        return False
    attempt.result()
    return True


class ConnectAttempt:
    """One run of ib_async's connect and sync (``attempt``: 0 for the first connection)."""

    def __init__(self, ib: ib_async.IB, settings: BrokerSettings, attempt: int, *,
                 emit: Callable[[Event], None], clock: Callable[[], int]) -> None:
        self.ib = ib
        self.settings = settings
        self.attempt = attempt
        self._emit = emit
        self._clock = clock
        self._refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._id_in_use: str | None = None
        self._listening = False  # while it runs, until it gives up on ib_async's connect

    def client_id_in_use(self, text: str) -> None:
        """The gateway said our client id is taken (326): the attempt has failed, for that."""
        if not self._listening:
            return
        self._id_in_use = text
        if not self._refused.done():
            self._refused.set_result(text)

    async def run(self) -> str | None:
        """Run ib_async's connect and sync; what went wrong, or None."""
        s, refused = self.settings, self._refused

        def on_api_error(message: str) -> None:
            if not refused.done():
                refused.set_result(message)

        # ib_async waits out the whole timeout when the gateway hangs up during the
        # handshake (326: client id in use); its apiError says so at once.
        self._listening = True
        watch_api_errors(self.ib, on_api_error)
        # raiseSyncErrors: a session whose orders and positions did not load is no session.
        connecting = asyncio.ensure_future(self.ib.connectAsync(
            s.host, s.port, clientId=s.client_id, timeout=s.connect_timeout,
            raiseSyncErrors=True))
        connecting.add_done_callback(_retrieve)
        stage = "socket"
        self._waiting(stage)
        step = min(STAGE_POLL, s.connect_timeout / 4)  # a look before any step can time out
        try:
            while not (connecting.done() or refused.done()):
                await asyncio.wait({connecting, refused}, timeout=step,
                                   return_when=asyncio.FIRST_COMPLETED)
                if not (connecting.done() or refused.done()) and self._stage() != stage:
                    stage = self._stage()
                    self._waiting(stage)
        finally:
            unwatch_api_errors(self.ib, on_api_error)
            self._listening = False
            if not connecting.done():
                connecting.cancel()
                await asyncio.wait({connecting})
        if self._id_in_use is not None:
            return self._id_in_use
        if not connecting.cancelled():
            return _connect_failure(connecting, s.connect_timeout, stage)
        return refused.result()

    def _stage(self) -> str:
        """What the attempt in progress waits for: socket, handshake or sync."""
        return connect_stage(self.ib)

    def _waiting(self, stage: str) -> None:
        s = self.settings
        self._emit(ConnectWaiting(at=self._clock(), host=s.host, port=s.port,
                                  client_id=s.client_id, attempt=self.attempt,
                                  waiting_for=stage, timeout=s.connect_timeout))


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Read the outcome of an abandoned connect so asyncio does not warn about it.
    if not future.cancelled():
        future.exception()


def _connect_failure(connecting: asyncio.Future[Any], timeout: float,
                     stage: str = "socket") -> str | None:
    """Why ib_async's connect failed, in words (``stage``: what it last waited for);
    None when it succeeded."""
    exc = connecting.exception()
    if exc is None:
        return None
    if isinstance(exc, TimeoutError) and stage == "handshake":
        return (f"the socket opened, but no answer within {timeout:g} s to the API handshake "
                "(is this the API port of IB Gateway or TWS, with API connections enabled "
                "and this host trusted?)")
    if isinstance(exc, TimeoutError) and stage == "sync":
        return (f"the API session opened but its orders, positions and account did not load "
                f"within {timeout:g} s")
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the gateway running and its API port open?)"
    if isinstance(exc, OSError):
        return str(exc) or type(exc).__name__
    # Anything else is ib_async tripping over this session; a new one may do better.
    logger.opt(exception=exc).error("unexpected error while connecting")
    return f"{type(exc).__name__}: {exc}"
