"""The connection supervisor against the simulated gateway, through the real ib_async client."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest
from ib_async import IB

from breakoutd.core.events import (
    ConnectionLost,
    ConnectionUp,
    ConnectWaiting,
    Event,
    GatewayMessage,
    Reconnecting,
)
from breakoutd.errors import OperationalError, TemporaryError
from breakoutd.ibkr.connection import ConnectionSupervisor
from breakoutd.ibkr.settings import BrokerSettings, backoff_delays
from breakoutd.sim import Market, SimGateway
from tests.sim.simkit import connect, run, sim, stock, walk

SEED = 7


def market() -> Market:
    return Market(walk(31, "ABC", start="09:00:00", seconds=3600))


def expected_delays(n: int, base: float = 1.0, cap: float = 60.0) -> list[float]:
    """The first ``n`` backoff delays a supervisor seeded with SEED must use."""
    return list(itertools.islice(backoff_delays(base, cap, random.Random(SEED)), n))


class Events(list[Event]):
    """The injected ``emit``: keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.append(event)
        self._changed.set()

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self if isinstance(e, kind)]

    def codes(self) -> list[int]:
        return [e.code for e in self.of(GatewayMessage)]

    def kinds(self) -> list[str]:
        """Connection events in order (gateway messages and what an attempt waits for
        left out: ConnectWaiting starts every attempt)."""
        return [type(e).__name__ for e in self if not isinstance(e, GatewayMessage | ConnectWaiting)]

    async def wait_for(self, predicate: Callable[[Events], bool], timeout: float = 10) -> None:
        async def wait() -> None:
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    async def wait_up(self, attempt: int) -> None:
        await self.wait_for(lambda ev: any(e.attempt == attempt for e in ev.of(ConnectionUp)))


class Sleeps:
    """The injected sleep: records each delay, then returns at once or runs ``hook``."""

    def __init__(self, hook: Callable[[int, float], Awaitable[None]] | None = None) -> None:
        self.delays: list[float] = []
        self.cancelled: list[float] = []
        self.hook = hook

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        try:
            if self.hook is not None:
                await self.hook(len(self.delays), delay)
            else:
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.cancelled.append(delay)
            raise


async def forever(_n: int = 0, _delay: float = 0) -> None:
    await asyncio.Event().wait()


async def eventually(predicate: Callable[[], bool]) -> None:
    """Poll the sim's own state (it has no event for it); the test's timeout bounds it."""
    while not predicate():
        await asyncio.sleep(0.005)


def settings_from(env: Mapping[str, str], port: int) -> BrokerSettings:
    """What ``BrokerSettings.from_env`` reads from ``IB_ACCOUNT`` and ``BREAKOUTD_LIVE``."""
    return BrokerSettings(port=port, account=env.get("IB_ACCOUNT") or None,
                          live=env.get("BREAKOUTD_LIVE", "") == "1", connect_timeout=5)


def make(port: int, events: Events, sleeps: Sleeps, clock: Callable[[], int],
         env: Mapping[str, str] | None = None, **kwargs: Any) -> ConnectionSupervisor:
    settings = settings_from(env or {}, port)
    return ConnectionSupervisor(IB(), settings, emit=events, clock=clock, sleep=sleeps,
                                rng=random.Random(SEED), **kwargs)


@contextlib.asynccontextmanager
async def supervised(gw: SimGateway, sleeps: Sleeps | None = None,
                     **kwargs: Any) -> AsyncIterator[tuple[ConnectionSupervisor, Events]]:
    """A started supervisor on the sim, stopped afterwards."""
    events = Events()
    sup = make(gw.port, events, sleeps or Sleeps(), gw.now_ns, **kwargs)
    await sup.start()
    try:
        yield sup, events
    finally:
        await sup.stop()


# --- connecting and the paper guard ------------------------------------------------------


def test_connects_to_a_paper_account_and_reports_it() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            events, sleeps = Events(), Sleeps()
            sup = make(gw.port, events, sleeps, gw.now_ns)
            calls: list[bool] = []

            async def on_connected(is_reconnect: bool) -> None:
                calls.append(is_reconnect)

            sup.on_connected.append(on_connected)
            await sup.start()
            assert sup.connected and sup.account == "DU0000001"
            assert await sup.wait_connected(0)
            [up] = events.of(ConnectionUp)
            assert (up.port, up.client_id, up.account, up.attempt) == (gw.port, 1, "DU0000001", 0)
            assert up.server_version >= 157
            assert calls == [False]
            assert 2104 in events.codes()  # the farm notices of every connect are journalled
            await sup.stop()
            assert not sup.ib.isConnected() and not sup.connected
            assert sleeps.delays == []
    run(body(), 20)


@pytest.mark.parametrize("env", [{}, {"BREAKOUTD_LIVE": "1"}, {"IB_ACCOUNT": "U1234567"}],
                         ids=["no-consent", "live-without-account", "account-without-live"])
def test_a_live_account_is_refused_without_both_settings(env: dict[str, str]) -> None:
    async def body() -> None:
        async with sim(market(), account="U1234567") as gw:
            events, sleeps = Events(), Sleeps()
            sup = make(gw.port, events, sleeps, gw.now_ns, env)
            with pytest.raises(OperationalError, match="U1234567 is a live account"):
                await sup.start()
            assert not sup.ib.isConnected() and sup.account is None
            assert events.of(ConnectionUp) == [] and sleeps.delays == []  # not retried
            await sup.stop()
    run(body(), 20)


def test_a_live_account_is_accepted_with_consent_and_its_name() -> None:
    async def body() -> None:
        async with sim(market(), account="U1234567") as gw:
            env = {"BREAKOUTD_LIVE": "1", "IB_ACCOUNT": "U1234567"}
            async with supervised(gw, env=env) as (sup, events):
                assert sup.account == "U1234567"
                assert [e.account for e in events.of(ConnectionUp)] == ["U1234567"]
    run(body(), 20)


def test_an_account_the_gateway_does_not_manage_is_refused() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            events = Events()
            sup = make(gw.port, events, Sleeps(), gw.now_ns, {"IB_ACCOUNT": "DU7654321"})
            with pytest.raises(OperationalError, match="DU7654321 is not an account of this"):
                await sup.start()
            assert not sup.ib.isConnected()
    run(body(), 20)


def test_a_gateway_that_never_answers_fails_the_first_attempt_after_the_timeout() -> None:
    async def body() -> None:
        hung_up = asyncio.Event()

        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(4096):
                pass
            writer.close()
            hung_up.set()

        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        events, sleeps = Events(), Sleeps()
        sup = make(port, events, sleeps, lambda: 0)
        sup.settings = dataclasses.replace(sup.settings, connect_timeout=0.2)
        with pytest.raises(TemporaryError, match=rf"127.0.0.1:{port} .*no answer within 0.2 s"):
            await sup.start(retry_first=False)
        assert sleeps.delays == [] and not sup.ib.isConnected()
        assert [e.waiting_for for e in events.of(ConnectWaiting)] == ["socket", "handshake"]
        await sup.stop()
        await hung_up.wait()  # the client hung up
        server.close()
        await server.wait_closed()
    run(body(), 20)


# --- reconnecting ---------------------------------------------------------------------------


def test_reconnects_after_the_gateway_drops_the_connection_and_resubscribes() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            sleeps = Sleeps()
            async with supervised(gw, sleeps) as (sup, events):
                ib = sup.ib
                lost: list[str] = []
                sup.on_disconnected.append(lost.append)

                async def resubscribe(is_reconnect: bool) -> None:
                    ib.reqMktData(await stock(ib, "ABC"))

                sup.on_connected.append(resubscribe)
                gw.drop_connections()
                await events.wait_up(1)
                assert events.kinds() == ["ConnectionUp", "ConnectionLost", "Reconnecting",
                                          "ConnectionUp"]
                assert events.of(ConnectionLost)[0].reason == "socket closed"
                assert lost == ["socket closed"]
                assert sleeps.delays == [e.delay for e in events.of(Reconnecting)]
                assert sleeps.delays == expected_delays(1)
                assert sup.connected and ib.isConnected()
                await eventually(lambda: bool(list(gw.feeds.all_subs())))  # data flows again
    run(body(), 20)


def test_reconnects_after_a_gateway_restart_with_growing_capped_delays() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            async def reopen_on_the_fourth_try(n: int, _delay: float) -> None:
                assert not await sup.wait_connected(0)
                if n == 4:
                    gw.refuse_connections(0)  # back up now
                    await gw.until_listening()

            sleeps = Sleeps(reopen_on_the_fourth_try)
            async with supervised(gw, sleeps, backoff_cap=4.0) as (sup, events):
                gw.restart(keep_state=True, down_seconds=3600)
                await events.wait_up(4)
                assert sleeps.delays == expected_delays(4, cap=4.0)
                for delay, ceiling in zip(sleeps.delays, (1, 2, 4, 4), strict=True):
                    assert ceiling / 2 <= delay <= ceiling
                assert [e.attempt for e in events.of(Reconnecting)] == [1, 2, 3, 4]
                assert await sup.wait_connected(5)
    run(body(), 20)


def test_reconnects_when_the_gateway_refuses_connections_for_a_while() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            async def reopen_on_the_second_try(n: int, _delay: float) -> None:
                if n == 2:
                    gw.refuse_connections(0)
                    await gw.until_listening()

            sleeps = Sleeps(reopen_on_the_second_try)
            async with supervised(gw, sleeps) as (sup, events):
                gw.refuse_connections(3600)
                gw.drop_connections()
                await events.wait_up(2)
                assert sleeps.delays == expected_delays(2)
                assert events.kinds() == ["ConnectionUp", "ConnectionLost", "Reconnecting",
                                          "Reconnecting", "ConnectionUp"]
    run(body(), 20)


def test_client_id_in_use_is_reported_and_retried_with_backoff() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            other = await connect(gw, client_id=1)

            async def free_the_id_on_the_second_try(n: int, _delay: float) -> None:
                if n == 2:
                    other.disconnect()
                    await eventually(lambda: 1 not in gw.clients)

            events, sleeps = Events(), Sleeps(free_the_id_on_the_second_try)
            sup = make(gw.port, events, sleeps, gw.now_ns)
            sup.settings = dataclasses.replace(sup.settings, connect_timeout=60)
            # Each refused attempt ends at once: the overall timeout is far below 60 s.
            await sup.start()
            assert events.codes().count(326) == 2
            assert sleeps.delays == expected_delays(2)
            assert [e.attempt for e in events.of(ConnectionUp)] == [2]
            await sup.stop()
    run(body(), 20)


def test_a_gateway_that_comes_back_on_a_live_account_is_not_traded() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            async with supervised(gw) as (sup, events):
                halted = asyncio.Event()
                sup.on_halted.append(lambda _exc: halted.set())
                gw.account = "U7654321"  # someone logged the gateway into a live account
                gw.drop_connections()
                await asyncio.wait_for(halted.wait(), 10)
                with pytest.raises(OperationalError, match="U7654321 is a live account"):
                    await sup.wait_connected(5)
                assert not sup.ib.isConnected()
                assert [e.attempt for e in events.of(ConnectionUp)] == [0]
    run(body(), 20)


# --- notices ----------------------------------------------------------------------------


class Reasons(list[str]):
    """An ``on_data_lost`` callback: keeps each reason and lets a test wait for one."""

    def __init__(self, sup: ConnectionSupervisor) -> None:
        super().__init__()
        self._changed = asyncio.Event()
        sup.on_data_lost.append(self._record)

    async def _record(self, reason: str) -> None:
        self.append(reason)
        self._changed.set()

    async def wait_for(self, reason: str) -> None:
        async def wait() -> None:
            while reason not in self:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), 10)


def test_1101_asks_for_resubscription_and_1102_does_not() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            async with supervised(gw) as (sup, events):
                reasons = Reasons(sup)
                gw.send_notice(1102)
                gw.send_notice(1101)  # handled in order: 1102 before it
                await reasons.wait_for("1101")
                assert reasons == ["1101"]
                assert [1102, 1101] == [c for c in events.codes() if c in (1101, 1102)]
                assert events.kinds() == ["ConnectionUp"]  # no reconnect
    run(body(), 20)


def test_a_farm_blip_asks_for_resubscription_once() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            async with supervised(gw) as (sup, events):
                reasons = Reasons(sup)
                for code in (2103, 2104, 2104, 2106, 1101):  # OK notices without a break: no-op
                    gw.send_notice(code)
                await reasons.wait_for("1101")
                assert reasons == ["farm 2103->2104", "1101"]
                assert events.kinds() == ["ConnectionUp"]
    run(body(), 20)


def test_1100_then_1102_marks_down_and_up_without_reconnecting() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            sleeps = Sleeps(forever)
            async with supervised(gw, sleeps) as (sup, events):
                [session] = gw.sessions
                reasons = Reasons(sup)
                gw.send_notice(1100)
                await events.wait_for(lambda ev: bool(ev.of(ConnectionLost)))
                assert not sup.connected and not await sup.wait_connected(0)
                assert sleeps.delays == [60.0]  # the grace for IB to restore connectivity
                gw.send_notice(1102)
                await events.wait_for(lambda ev: len(ev.of(ConnectionUp)) == 2)
                assert sup.connected and sleeps.cancelled == [60.0]
                assert events.kinds() == ["ConnectionUp", "ConnectionLost", "ConnectionUp"]
                assert events.of(ConnectionLost)[0].reason == "1100"
                assert gw.sessions == {session} and sup.ib.isConnected()
                assert reasons == []
    run(body(), 20)


def test_1100_not_restored_in_time_forces_a_reconnect() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            async def wait_for_the_old_session_to_go(n: int, _delay: float) -> None:
                if n == 2:
                    await eventually(lambda: not gw.clients)

            sleeps = Sleeps(wait_for_the_old_session_to_go)
            async with supervised(gw, sleeps, connectivity_grace=30) as (sup, events):
                lost: list[str] = []
                sup.on_disconnected.append(lost.append)
                gw.send_notice(1100)
                await events.wait_up(1)
                assert sleeps.delays == [30, *expected_delays(1)]
                assert events.kinds() == ["ConnectionUp", "ConnectionLost", "Reconnecting",
                                          "ConnectionUp"]
                assert lost == ["1100 not restored within 30 s"]
    run(body(), 20)


# --- silence ------------------------------------------------------------------------------


class Proxy:
    """A loopback TCP proxy whose current connections can be made silent."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.muted: set[asyncio.StreamWriter] = set()
        self.clients: list[asyncio.StreamWriter] = []
        self.handlers: set[asyncio.Task[Any]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def mute(self) -> None:
        """From now on, nothing the gateway sends on the open connections gets through."""
        self.muted.update(self.clients)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.clients.append(writer)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        try:
            await asyncio.gather(self._pipe(reader, up_writer, None),
                                 self._pipe(up_reader, writer, writer))
        finally:
            for w in (writer, up_writer):
                w.close()
            self.handlers.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    client: asyncio.StreamWriter | None) -> None:
        while data := await reader.read(65536):
            if client not in self.muted:
                writer.write(data)
        writer.close()

    async def close(self) -> None:
        self.server.close()
        for task in list(self.handlers):
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)


def test_a_silent_gateway_is_probed_then_dropped_and_reconnected() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            proxy = Proxy(gw.port)
            port = await proxy.start()

            async def wait_for_the_old_session_to_go(_n: int, _delay: float) -> None:
                await eventually(lambda: not gw.clients)

            events, sleeps = Events(), Sleeps(wait_for_the_old_session_to_go)
            sup = make(port, events, sleeps, gw.now_ns, silence_timeout=0.05, probe_timeout=0.3)
            await sup.start()
            assert await sup.wait_connected(0)
            proxy.mute()
            await events.wait_up(1)
            assert events.of(ConnectionLost)[0].reason == "silence"
            assert events.kinds()[:4] == ["ConnectionUp", "ConnectionLost", "Reconnecting",
                                          "ConnectionUp"]
            await sup.stop()
            await proxy.close()
    run(body(), 20)


# --- stopping -----------------------------------------------------------------------------


def test_stop_leaves_no_task_running_while_waiting_for_1100_to_clear() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            before = asyncio.all_tasks()
            sleeps = Sleeps(forever)
            events = Events()
            sup = make(gw.port, events, sleeps, gw.now_ns)
            await sup.start()
            gw.send_notice(1100)
            await events.wait_for(lambda ev: bool(ev.of(ConnectionLost)))
            assert asyncio.all_tasks() - before  # the watchdog, the supervisor, the grace
            await sup.stop()
            assert asyncio.all_tasks() - before == set()
            assert sleeps.cancelled == [60.0] and not sup.ib.isConnected()
    run(body(), 20)


def test_stop_during_reconnect_backoff_cancels_the_loop() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            sleeps = Sleeps(forever)
            events = Events()
            sup = make(gw.port, events, sleeps, gw.now_ns)
            await sup.start()
            gw.refuse_connections(3600)
            gw.drop_connections()
            await events.wait_for(lambda ev: bool(ev.of(Reconnecting)))
            await sup.stop()
            assert sleeps.cancelled == expected_delays(1)
            assert [t.get_name() for t in asyncio.all_tasks()
                    if t.get_name().startswith("conn-")] == []
            gw.refuse_connections(0)
    run(body(), 20)


def test_stop_before_the_first_connection_ends_start() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            gw.refuse_connections(3600)
            sleeps = Sleeps(forever)
            events = Events()
            sup = make(gw.port, events, sleeps, gw.now_ns)
            starting = asyncio.create_task(sup.start())
            await events.wait_for(lambda ev: bool(ev.of(Reconnecting)))
            await sup.stop()
            with pytest.raises(TemporaryError, match="stopped before the first connection"):
                await starting
            assert sleeps.cancelled == expected_delays(1)
            gw.refuse_connections(0)
    run(body(), 20)
