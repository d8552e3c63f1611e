"""The connection supervisor: connect, guard the account, and stay connected.

Connects ib_async to the gateway with a timeout (one attempt at a time, each
a ``ConnectAttempt`` of ``ibkr/connecting.py``) and refuses an account that
must not be traded (``guard_account``: paper only, unless the operator
consented). Then it keeps the session alive: it reconnects with capped,
jittered exponential backoff when the socket closes, when IB reports lost
connectivity (1100) that does not come back, or when the gateway falls silent,
and asks the data side to resubscribe after 1101 and after a market-data or
HMDS farm blip (2103 -> 2104, 2105 -> 2106). Every error or notice from the
gateway becomes a ``GatewayMessage`` event.

Time: events are stamped with the injected broker ``clock``; the waits of the
protocol (backoff delays, the grace after 1100) go through the injected
``sleep``. Silence is measured on the event loop's monotonic clock
(``loop.time()``): it is about the socket, not the market, and a replayed or
paused broker clock must not make a healthy connection look silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

import ib_async
from loguru import logger

from breakoutd.core.events import ConnectionLost, ConnectionUp, Event, GatewayMessage, Reconnecting
from breakoutd.errors import OperationalError, TemporaryError
from breakoutd.ibkr.connecting import ConnectAttempt
from breakoutd.ibkr.connecting import unless_stopped as unless_stopped  # the daemon waits with it
from breakoutd.ibkr.settings import BrokerSettings, backoff_delays, guard_account
from breakoutd.ibkr.wire.requests import request_current_time, server_version

CLIENT_ID_IN_USE = 326
CONNECTIVITY_LOST = 1100
RESTORED_DATA_LOST = 1101
RESTORED_DATA_KEPT = 1102
FARM_BROKEN_BY_OK = {2104: 2103, 2106: 2105}  # "farm OK" notice -> its "farm broken" notice

Sleep = Callable[[float], Awaitable[Any]]


class ConnectionSupervisor:
    """Owns the ib_async connection: first connect, paper guard, reconnects, notices."""

    def __init__(self, ib: ib_async.IB, settings: BrokerSettings, *,
                 emit: Callable[[Event], None], clock: Callable[[], int],
                 sleep: Sleep = asyncio.sleep, rng: random.Random | None = None,
                 silence_timeout: float = 30.0, backoff_base: float = 1.0,
                 backoff_cap: float = 60.0, probe_timeout: float = 5.0,
                 connectivity_grace: float = 60.0) -> None:
        self.ib = ib
        self.settings = settings
        self._emit = emit
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._silence_timeout = silence_timeout
        self._probe_timeout = probe_timeout
        self._grace = connectivity_grace
        self._backoff = (backoff_base, backoff_cap)
        self.account: str | None = None
        self.connected = False
        self.halted: OperationalError | None = None
        self.on_connected: list[Callable[[bool], Awaitable[None]]] = []
        self.on_data_lost: list[Callable[[str], Awaitable[None]]] = []
        self.on_disconnected: list[Callable[[str], None]] = []
        self.on_halted: list[Callable[[OperationalError], None]] = []
        # An API session is up (socket open, synced) whatever 1100 says; `connected`
        # is that and IB's own connectivity.
        self._session = False
        self._generation = 0  # counts sessions: work queued for an older one is dropped
        self._attempt = 0
        self._up = asyncio.Event()
        self._work: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue()
        self._farms_down: set[int] = set()
        self._connecting: ConnectAttempt | None = None  # the attempt a 326 would end
        self._last_heard = 0.0
        self._probing = False
        self._heard = asyncio.Event()
        self._stopping = False
        self._attached = False
        self._start_task: asyncio.Task[None] | None = None
        self._supervise_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._grace_task: asyncio.Task[None] | None = None

    # --- life cycle -------------------------------------------------------------------

    async def start(self, retry_first: bool = True) -> None:
        """Connect (retrying with backoff unless ``retry_first`` is False), then supervise.

        Returns once connected and synchronised. Raises OperationalError when the
        account must not be traded (never retried), TemporaryError when the first
        attempt fails and ``retry_first`` is False or ``stop()`` came first.
        """
        self._stopping = False
        self._attach()
        connecting = asyncio.create_task(self._connect_with_backoff(first=True, retry=retry_first),
                                         name="conn-start")
        self._start_task = connecting
        try:
            await asyncio.wait({connecting})
        finally:
            if not connecting.done():  # start() itself was cancelled
                connecting.cancel()
                await asyncio.wait({connecting})
            self._start_task = None
        if connecting.cancelled():
            self._detach()
            raise TemporaryError("stopped before the first connection to the gateway")
        if connecting.exception() is not None:
            self._detach()
            connecting.result()
        self._supervise_task = asyncio.create_task(self._supervise(), name="conn-supervise")
        self._watch_task = asyncio.create_task(self._watch_silence(), name="conn-silence")

    async def stop(self) -> None:
        """Disconnect; cancel the reconnect loop, the silence watchdog and the 1100 grace."""
        self._stopping = True
        tasks = [t for t in (self._start_task, self._supervise_task, self._watch_task,
                             self._grace_task) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._supervise_task = self._watch_task = self._grace_task = None
        self._detach()
        self._session = self.connected = False
        self._up.clear()
        self.ib.disconnect()

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """True once connected (False after ``timeout`` s); raises if the supervisor halted."""
        if self.halted is None and not self.connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), timeout)
        if self.halted is not None:
            raise self.halted
        return self.connected

    def _attach(self) -> None:
        if self._attached:
            return
        self._attached = True
        self.ib.errorEvent += self._on_error
        self.ib.disconnectedEvent += self._on_socket_closed
        self.ib.updateEvent += self._on_data

    def _detach(self) -> None:
        self._attached = False
        self.ib.errorEvent -= self._on_error
        self.ib.disconnectedEvent -= self._on_socket_closed
        self.ib.updateEvent -= self._on_data

    # --- connecting -------------------------------------------------------------------

    async def _connect_with_backoff(self, first: bool, retry: bool) -> None:
        delays = backoff_delays(*self._backoff, rng=self._rng)
        attempt = 0 if first else 1
        while True:
            if attempt:
                delay = next(delays)
                self._emit(Reconnecting(at=self._clock(), attempt=attempt, delay=delay))
                await self._sleep(delay)
            try:
                await self._connect_once(attempt)
                return
            except TemporaryError as exc:
                if not retry:
                    raise
                logger.warning("{}; retrying with backoff", exc)
            attempt += 1

    async def _connect_once(self, attempt: int) -> None:
        s = self.settings
        where = f"{s.host}:{s.port} as client {s.client_id}"
        self._connecting = ConnectAttempt(self.ib, s, attempt, emit=self._emit, clock=self._clock)
        try:
            failure = await self._connecting.run()
        finally:
            self._connecting = None
        if failure is not None:
            self.ib.disconnect()
            raise TemporaryError(f"cannot connect to the gateway at {where}: {failure}")
        try:
            account = guard_account(self.ib.managedAccounts(), s)
        except OperationalError:
            self.ib.disconnect()  # never leave a session open on an account we refuse
            raise
        self._session_up(account, attempt)  # ConnectionUp says it on the console
        for callback in list(self.on_connected):
            await self._call(callback, attempt > 0)

    def _session_up(self, account: str, attempt: int) -> None:
        self.account = account
        self._session = self.connected = True
        self._generation += 1
        self._attempt = attempt
        self._farms_down.clear()
        self._last_heard = asyncio.get_running_loop().time()
        self._up.set()
        self._emit_up()

    def _emit_up(self) -> None:
        s = self.settings
        self._emit(ConnectionUp(at=self._clock(), host=s.host, port=s.port,
                                client_id=s.client_id, account=self.account or "",
                                server_version=server_version(self.ib),
                                attempt=self._attempt))

    async def _call(self, callback: Callable[[Any], Awaitable[None]], arg: object) -> None:
        try:
            await callback(arg)
        except Exception:
            # One failing subscriber must not stop the others or the supervisor.
            logger.exception("connection callback {!r} failed", callback)

    # --- losing the session -----------------------------------------------------------

    def _on_socket_closed(self) -> None:
        self._session_lost("socket closed")

    def _session_lost(self, reason: str) -> None:
        if not self._session:
            return  # our own disconnect, a failed attempt, or already handled
        self._session = False
        was_connected, self.connected = self.connected, False
        self._up.clear()
        self._cancel_grace()
        if was_connected:  # after 1100 the loss was already announced
            self._emit(ConnectionLost(at=self._clock(), reason=reason))
        for callback in list(self.on_disconnected):
            try:
                callback(reason)
            except Exception:
                logger.exception("disconnect callback {!r} failed", callback)
        self.ib.disconnect()  # a no-op when the socket is already closed
        if not self._stopping:
            self._work.put_nowait(("reconnect", reason, self._generation))

    def _halt(self, exc: OperationalError) -> None:
        self.halted = exc
        logger.error("not reconnecting: {}", exc)
        self._up.set()  # wake wait_connected() so it raises
        for callback in list(self.on_halted):
            try:
                callback(exc)
            except Exception:
                logger.exception("halt callback {!r} failed", callback)

    async def _supervise(self) -> None:
        while True:
            kind, reason, generation = await self._work.get()
            if kind == "reconnect":
                if self._session or self.halted is not None:
                    continue
                try:
                    await self._connect_with_backoff(first=False, retry=True)
                except OperationalError as exc:
                    self._halt(exc)
            elif generation == self._generation and self._session:
                for callback in list(self.on_data_lost):
                    await self._call(callback, reason)

    # --- gateway messages -------------------------------------------------------------

    def _on_error(self, req_id: int, code: int, message: str, _contract: object) -> None:
        self._emit(GatewayMessage(at=self._clock(), code=code, message=message, req_id=req_id))
        if code == CLIENT_ID_IN_USE:
            self._client_id_in_use(message)
        elif code == CONNECTIVITY_LOST:
            self._connectivity_lost()
        elif code in (RESTORED_DATA_LOST, RESTORED_DATA_KEPT):
            self._connectivity_restored(code)
        elif code in FARM_BROKEN_BY_OK.values():
            self._farms_down.add(code)
        elif code in FARM_BROKEN_BY_OK and FARM_BROKEN_BY_OK[code] in self._farms_down:
            self._farms_down.discard(FARM_BROKEN_BY_OK[code])
            self._data_lost(f"farm {FARM_BROKEN_BY_OK[code]}->{code}")

    def _client_id_in_use(self, message: str) -> None:
        s = self.settings
        text = (f"client id {s.client_id} is already in use at the gateway (IB {CLIENT_ID_IN_USE}:"
                f" {message}); another API client holds IB_CLIENT_ID={s.client_id}")
        logger.error(text)
        if self._connecting is not None:  # a connect attempt: it has failed
            self._connecting.client_id_in_use(text)

    def _connectivity_lost(self) -> None:
        if not self.connected:
            return
        self.connected = False
        self._up.clear()
        self._emit(ConnectionLost(at=self._clock(), reason=str(CONNECTIVITY_LOST)))
        logger.warning("IB reports connectivity lost (1100); waiting {} s for it to return",
                       self._grace)
        self._grace_task = asyncio.create_task(self._await_restore(), name="conn-1100-grace")

    async def _await_restore(self) -> None:
        await self._sleep(self._grace)
        self._grace_task = None
        self._session_lost(f"1100 not restored within {self._grace:g} s")

    def _cancel_grace(self) -> None:
        if self._grace_task is not None:
            self._grace_task.cancel()
            self._grace_task = None

    def _connectivity_restored(self, code: int) -> None:
        self._cancel_grace()
        if self._session and not self.connected:
            self.connected = True
            self._up.set()
            self._emit_up()
            logger.info("IB reports connectivity restored ({})", code)
        if code == RESTORED_DATA_LOST:
            self._farms_down.clear()  # everything is requested again anyway
            self._data_lost(str(code))

    def _data_lost(self, reason: str) -> None:
        # Resubscribing is async; the supervise task runs it, in order, after any reconnect.
        self._work.put_nowait(("data_lost", reason, self._generation))

    # --- silence ----------------------------------------------------------------------

    def _on_data(self) -> None:
        self._last_heard = asyncio.get_running_loop().time()
        if self._probing:
            self._heard.set()

    async def _watch_silence(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            quiet = loop.time() - self._last_heard
            if not self._session:
                await asyncio.sleep(self._silence_timeout)
            elif quiet < self._silence_timeout:
                await asyncio.sleep(self._silence_timeout - quiet)
            else:
                generation = self._generation
                if not await self._probe() and generation == self._generation:
                    self._session_lost("silence")

    async def _probe(self) -> bool:
        """Ask for the time; True when anything at all arrives within the probe timeout."""
        self._heard.clear()
        self._probing = True
        try:
            request_current_time(self.ib)  # not reqCurrentTimeAsync: see there
            await asyncio.wait_for(self._heard.wait(), self._probe_timeout)
            return True
        except TimeoutError:
            return False
        except ConnectionError:  # ib_async's socket is gone though we missed its end
            self._session_lost("socket closed")
            return True
        finally:
            self._probing = False

