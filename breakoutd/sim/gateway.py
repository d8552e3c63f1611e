"""The simulated IB Gateway: server, replay loop, engine events and faults.

One asyncio loop runs everything: client sessions, the replay of the tape on
the virtual clock, and the matching engine. Each replay step applies the rows
that have become known, in time order; each row goes to the market-data
subscribers and then to the engine (its prints, then its quote), and the
engine's events go to the clients that own the orders.

The gateway sits at the top of the sim: it holds its state in one
:class:`~breakoutd.sim.state.GatewayState`, which it hands to the request
handlers (:mod:`breakoutd.sim.requests`) and the event router; sessions see
it only as a :class:`~breakoutd.sim.session.SessionHost`. Nothing below
imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable

from breakoutd.core.bars import NS
from breakoutd.sim import outgoing as out
from breakoutd.sim.clock import CLOCK_NOTICE, VirtualClock, clock_notice
from breakoutd.sim.contracts import Instruments
from breakoutd.sim.delivery import route
from breakoutd.sim.faults import NOTICES, FaultSpec, FaultState
from breakoutd.sim.feeds import FeedHub
from breakoutd.sim.hours import (
    SESSION_TEXT,
    SessionOf,
    next_session_edge,
    session_name,
    start_instant,
)
from breakoutd.sim.market import Market, Row
from breakoutd.sim.matching import EngineEvent, MatchingEngine
from breakoutd.sim.pacing import HistoryPacing
from breakoutd.sim.requests import dispatch
from breakoutd.sim.session import MAX_BUFFERED, RATE_LIMIT, ClientSession
from breakoutd.sim.state import Client, GatewayState
from breakoutd.sim.stats import LatencyStats

log = logging.getLogger("breakoutd.sim")


class SimGateway:
    """A simulated IB Gateway serving a market to ib_async clients over TCP."""

    def __init__(self, market: Market, host: str = "127.0.0.1", port: int = 0,
                 account: str = "DU0000001", speed: float = 1.0,
                 start: dt.datetime | dt.time | None = None, day: dt.date | None = None,
                 manual_clock: bool = False, cash: float = 1_000_000, md_lines: int = 100,
                 rate_limit: int = RATE_LIMIT, faults: Iterable[FaultSpec] = (),
                 max_buffered: int = MAX_BUFFERED, quiet_bars: bool = True) -> None:
        """``quiet_bars``: send, as IB does, a volume-0 bar at the last price for a
        5-second (realtime) or historical interval without trades."""
        self.host = host
        self._requested_port = port
        self.rate_limit = rate_limit
        self.max_buffered = max_buffered
        # Real time of receipt and writes (rate limit, latency stats); tests may pin it.
        self.monotonic_ns: Callable[[], int] = time.monotonic_ns
        self._cash = cash
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self._speed = None if manual_clock else speed
        self._processing_ns: int | None = None
        # Frozen until start(), so virtual time begins at ``start`` when clients can connect.
        clock = VirtualClock(start_instant(market, start, day), speed, manual=True)
        self._clock = clock  # engine_now's: the engine reads it before the state exists
        self.state = GatewayState(
            account=account, md_lines=md_lines, clock=clock, market=market,
            instruments=Instruments(market.symbols), feeds=FeedHub(market, quiet_bars=quiet_bars),
            history_pacing=HistoryPacing(), engine=self._new_engine(account),
            faults=FaultState(), stats=LatencyStats())
        # Every connection, also before its handshake (state.clients has the started ones).
        self.sessions: set[ClientSession] = set()
        self._scheduled = sorted((f for f in faults), key=lambda f: f.at_ns or 0)
        self._server: asyncio.Server | None = None
        self._port = 0
        self._replay: asyncio.Task[None] | None = None
        self._reopen: asyncio.Task[None] | None = None
        self.preroll_rows = market.preroll(self.clock.now_ns())
        self._session = session_name(self.clock.now_ns())

    def _new_engine(self, account: str) -> MatchingEngine:
        return MatchingEngine(clock=self.engine_now, sessions=SessionOf(), account=account,
                              cash=self._cash)

    # --- the state, as tests and the daemon's sim mode read it ------------------

    @property
    def market(self) -> Market:
        """The replayed market."""
        return self.state.market

    @property
    def clock(self) -> VirtualClock:
        """The virtual clock."""
        return self.state.clock

    @property
    def engine(self) -> MatchingEngine:
        """The matching engine (a new one after ``restart(keep_state=False)``)."""
        return self.state.engine

    @property
    def feeds(self) -> FeedHub:
        """The market-data subscriptions."""
        return self.state.feeds

    @property
    def faults(self) -> FaultState:
        """What the injected faults have set, and which have fired."""
        return self.state.faults

    @property
    def stats(self) -> LatencyStats:
        """Bar-to-order latency records."""
        return self.state.stats

    @property
    def clients(self) -> dict[int, Client]:
        """The started connections by clientId."""
        return self.state.clients

    @property
    def account(self) -> str:
        """The account the gateway manages."""
        return self.state.account

    @account.setter
    def account(self, account: str) -> None:
        # A test logs the gateway into another account; clients learn it on reconnecting.
        self.state.account = account

    @property
    def ack_delay_ms(self) -> float:
        """How long order acknowledgements are held back (the delay fault), in ms."""
        return self.state.faults.ack_delay_ms

    # --- lifecycle ----------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self._port

    def now_ns(self) -> int:
        """The virtual clock (epoch ns)."""
        return self.clock.now_ns()

    def engine_now(self) -> int:
        """The engine's clock: the instant being replayed, else the virtual clock."""
        return self._processing_ns if self._processing_ns is not None else self._clock.now_ns()

    async def start(self) -> None:
        """Start listening and, unless the clock is manual, replaying."""
        await self._listen()
        self._seed_engine_quotes()
        for fault in [f for f in self._scheduled if f.at_ns is None]:
            self._scheduled.remove(fault)
            self.apply_fault(fault)
        log.info("simulated gateway listening on %s:%d, account %s, %d symbols, virtual time %s "
                 "(speed %s)", self.host, self.port, self.account, len(self.market.symbols),
                 out.ib_time(self.clock.now_ns()), self._speed or "manual")
        if self._speed is not None:
            self.run_clock(self._speed)

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        port = self._port or self._requested_port
        self._server = await loop.create_server(lambda: ClientSession(self), self.host, port)
        self._port = self._server.sockets[0].getsockname()[1]
        self.faults.refusing = False

    def _seed_engine_quotes(self) -> None:
        # The preroll set each symbol's quote; the engine needs it to match orders.
        now = self.clock.now_ns()
        for state in self.market.states.values():
            if state.bid is not None or state.ask is not None:
                self.engine.on_quote(state.symbol, now, state.bid, state.bid_size, state.ask,
                                     state.ask_size)

    async def stop(self) -> None:
        """Stop replaying, close every connection and the listener."""
        for task in (self._replay, self._reopen):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._replay = self._reopen = None
        await self._close_listener()
        self.drop_connections()
        log.info("simulated gateway stopped")

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def until_listening(self) -> None:
        """Wait until connections are accepted again (after refuse/restart)."""
        if self._reopen is not None:
            await asyncio.shield(self._reopen)

    def add_symbol(self, rows: list[Row]) -> None:
        """Serve a symbol the market did not have, from these rows on (see Market.add_symbol)."""
        self.market.add_symbol(rows)
        self.state.instruments = Instruments(self.market.symbols)
        self.wake()

    # --- sessions -------------------------------------------------------------

    def session_opened(self, session: ClientSession) -> None:
        """A client connected (not yet through the handshake)."""
        self.sessions.add(session)
        log.info("connection from %s", session.peer)

    def session_closed(self, session: ClientSession) -> None:
        """A client went away: free its clientId and drop its subscriptions."""
        self.sessions.discard(session)
        state = self.state
        if session.client_id is not None and state.clients.get(session.client_id) is session:
            del state.clients[session.client_id]
        dropped = state.feeds.drop_session(session)
        state.account_subs.discard(session)
        state.position_subs.discard(session)
        for key in [k for k in state.multi_subs if k[0] is session]:
            del state.multi_subs[key]
        log.info("client %s disconnected (%s)%s", session.client_id, session.peer,
                 f", {dropped} subscriptions dropped" if dropped else "")

    def claim_client_id(self, session: ClientSession, client_id: int) -> bool:
        """Register a client id for a session; False when another live session has it."""
        holder = self.state.clients.get(client_id)
        if holder is not None and holder is not session and not holder.closed:
            return False
        self.state.clients[client_id] = session
        return True

    def next_order_id(self, client_id: int) -> int:
        """The nextValidId for a client."""
        return self.engine.next_valid_id(client_id)

    def dispatch(self, session: ClientSession, fields: list[str], received_ns: int) -> None:
        """Handle one request of a ready client."""
        session.last_received_ns = received_ns
        dispatch(self.state, session, fields)

    def wake(self) -> None:
        """Make the replay loop recompute when it must next run."""
        self.state.wake_replay.set()

    # --- replay -----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            now = self.clock.now_ns()
            try:
                self.step(now)
            except Exception:  # a bug must not freeze the market for everyone
                log.exception("replay step at %s failed", out.ib_time(now))
            delay = self.clock.real_seconds_until(self._next_wake(now))
            wake = self.state.wake_replay
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(delay, 1.0))

    def _next_wake(self, now: int) -> int:
        candidates = [now + 60 * NS, next_session_edge(now)]
        for value in (self.market.next_due(), self.feeds.next_wake(now),
                      self._scheduled[0].at_ns if self._scheduled else None):
            if value is not None:
                candidates.append(value)
        return min(candidates)

    def run_clock(self, speed: float) -> None:
        """Run the virtual clock at ``speed`` from where it is, and replay as it goes."""
        self.clock.run(speed)
        if self._replay is None:
            self._replay = asyncio.get_running_loop().create_task(self._run(), name="sim-replay")
        else:
            self.wake()
        log.info("virtual clock running at %gx from %s", speed, out.ib_time(self.clock.now_ns()))
        self._announce_clock()

    async def pause_clock(self) -> None:
        """Stop the virtual clock where it is (it becomes manual)."""
        if self._replay is not None:
            self._replay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replay
            self._replay = None
        self.clock.pause()
        self.step(self.clock.now_ns())
        log.info("virtual clock paused at %s", out.ib_time(self.clock.now_ns()))
        self._announce_clock()

    def clock_message(self) -> out.Fields:
        """The clock notice (:data:`~breakoutd.sim.clock.CLOCK_NOTICE`) as of now."""
        return out.error(-1, CLOCK_NOTICE, clock_notice(self.clock.now_ns(), self.clock.rate))

    def _announce_clock(self) -> None:
        """Tell every client the clock's new rate, so a daemon's clock keeps in step."""
        for session in list(self.sessions):
            if session.ready:
                session.send(self.clock_message())

    async def advance(self, seconds: float) -> None:
        """Manual clock: move virtual time forward and replay what became known."""
        await self.advance_to(self.clock.now_ns() + int(seconds * NS))

    async def advance_to(self, instant_ns: int) -> None:
        """Manual clock: replay up to ``instant_ns``, second by second of the tape."""
        while True:
            due = self._next_wake(self.clock.now_ns())
            if due > instant_ns:
                break
            self.clock.set(due)
            self.step(due)
        self.clock.set(instant_ns)
        self.step(instant_ns)
        await asyncio.sleep(0)

    def step(self, now: int) -> None:
        """Apply everything known by ``now``: rows, bar closes, session edges, faults."""
        rows = self.market.take_due(now)
        for row in rows:
            self._processing_ns = row.time + NS
            self._replay_row(row)
        self._processing_ns = None
        self.feeds.flush(now)
        self.emit(self.engine.advance())
        self._note_session(now)
        while self._scheduled and (self._scheduled[0].at_ns or 0) <= now:
            self.apply_fault(self._scheduled.pop(0))
        if rows and self.market.exhausted:
            log.info("end of tape at %s; the market stays quiet", out.ib_time(now))

    def _note_session(self, now: int) -> None:
        session = session_name(now)
        if session != self._session:
            self._session = session
            log.info("%s at %s", SESSION_TEXT.get(session, "market closed"), out.ib_time(now))

    def _replay_row(self, row: Row) -> None:
        state = self.state  # the hot path: one lookup per row, not one per part
        change = state.market.apply(row)
        state.feeds.on_row(row, change)
        events = state.engine.on_row(row.time, row.symbol, row.open, row.high, row.low, row.close,
                                     row.volume, row.bid, row.bid_size, row.ask, row.ask_size)
        if events:
            route(state, events)

    def emit(self, events: list[EngineEvent]) -> None:
        """Send engine events to the clients that should see them."""
        if events:
            route(self.state, events)

    # --- faults -------------------------------------------------------------------

    def apply_fault(self, fault: FaultSpec) -> None:
        """Inject a parsed fault now."""
        log.warning("fault: %s", fault.text or fault.kind)
        self.faults.fired.append(fault.text or fault.kind)
        kind, arg = fault.kind, fault.arg
        if kind == "drop":
            self.drop_connections()
        elif kind == "refuse":
            self.refuse_connections(float(arg))
        elif kind == "restart":
            self.restart(keep_state=arg != "clean")
        elif kind == "notice":
            self.send_notice(int(float(arg)))
        elif kind == "reject":
            self.reject_next_order(int(float(arg)) if arg else 201)
        elif kind == "delay":
            self.delay_acks(float(arg))
        elif kind == "duplicate":
            self.duplicate_order_status(arg != "off")
        elif kind == "stall":
            self.stop_market_data(arg)
        elif kind == "resume":
            self.resume_market_data(arg)

    def drop_connections(self) -> None:
        """Drop every client connection at once."""
        for session in list(self.sessions):
            session.abort()

    def refuse_connections(self, seconds: float) -> None:
        """Stop accepting connections for ``seconds`` real seconds."""
        self._go_down(seconds, keep_state=True, restart=False)

    def restart(self, keep_state: bool = True, down_seconds: float = 0.0) -> None:
        """Restart: drop clients and subscriptions; keep orders and account unless told."""
        self._go_down(down_seconds, keep_state=keep_state, restart=True)

    def _go_down(self, seconds: float, keep_state: bool, restart: bool) -> None:
        self.faults.refusing = True
        if self._server is not None:
            self._server.close()
            self._server = None
        if restart:
            self.drop_connections()
            self.feeds.drop_all()
            if not keep_state:
                self.state.engine = self._new_engine(self.account)
                self._seed_engine_quotes()
            else:
                self.engine.restore(self.engine.snapshot())
        previous = self._reopen
        self._reopen = asyncio.get_running_loop().create_task(self._reopen_after(seconds, previous))

    async def _reopen_after(self, seconds: float, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            previous.cancel()
        await asyncio.sleep(seconds)
        await self._listen()
        log.info("accepting connections again on port %d", self.port)

    def send_notice(self, code: int) -> None:
        """Send an IB system notice to every client, with its effect on market data."""
        if code in (1100, 2103):
            self.feeds.paused = True
        elif code in (1102, 2104):
            self.feeds.paused = False
        elif code == 1101:
            self.feeds.paused = False
            self.feeds.drop_all()
        text = NOTICES.get(code, f"Notice {code}")
        for session in list(self.sessions):
            if session.ready:
                session.send(out.error(-1, code, text))

    def reject_next_order(self, code: int = 201, message: str = "simulated rejection") -> None:
        """The next new order is rejected."""
        self.engine.reject_next(code, message)

    def delay_acks(self, ms: float) -> None:
        """Delay order acknowledgements by ``ms`` milliseconds; 0 sends the held ones now."""
        self.faults.ack_delay_ms = ms
        if ms <= 0:
            for session in list(self.sessions):
                session.release_delayed()

    def duplicate_order_status(self, on: bool = True) -> None:
        """Send every orderStatus twice while on."""
        self.faults.duplicate_status = on

    def stop_market_data(self, symbol: str) -> None:
        """Stop sending market data for a symbol (the market itself goes on)."""
        self.feeds.stalled.add(symbol.upper())

    def resume_market_data(self, symbol: str) -> None:
        """Send market data for a symbol again."""
        self.feeds.stalled.discard(symbol.upper())

