"""One client connection: handshake, request dispatch and the outgoing queue.

Outgoing messages are queued per client and written in one batch per event
loop turn, so a burst of ticks costs one socket write. The transport never
blocks; a client that stops reading and lets more than the gateway's
``max_buffered`` bytes pile up is dropped, so it cannot hold back anyone else.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from breakoutd.sim import outgoing as out
from breakoutd.sim.versions import for_version
from breakoutd.sim.wire import (
    API_PREFIX,
    MIN_CLIENT_VERSION,
    SERVER_VERSION,
    FieldReader,
    FrameBuffer,
    FrameError,
    MessageError,
    encode,
    negotiate,
    parse_version_range,
)

log = logging.getLogger("breakoutd.sim")

MAX_BUFFERED = 64 << 20
RATE_LIMIT = 50  # messages per second a client may send (IB's limit)
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)



class SessionHost(Protocol):
    """What a connection needs of its gateway, and all it may use of it.

    The gateway is one (structurally); a session never sees the market, the
    engine or the other clients, only these.
    """

    rate_limit: int  # messages per second a client may send
    max_buffered: int  # bytes queued for a client before it is dropped
    monotonic_ns: Callable[[], int]  # real time of receipt and writes

    @property
    def account(self) -> str:
        """The managed account, sent at startApi."""

    @property
    def ack_delay_ms(self) -> float:
        """How long order acknowledgements are held back, in ms."""

    def now_ns(self) -> int:
        """The virtual clock, for the handshake's time."""

    def clock_message(self) -> out.Fields:
        """The clock notice, sent after the handshake."""

    def session_opened(self, session: ClientSession) -> None:
        """A connection was made."""

    def session_closed(self, session: ClientSession) -> None:
        """A connection went away."""

    def claim_client_id(self, session: ClientSession, client_id: int) -> bool:
        """Take a clientId; False when another live connection has it."""

    def next_order_id(self, client_id: int) -> int:
        """The nextValidId for a client."""

    def dispatch(self, session: ClientSession, fields: list[str], received_ns: int) -> None:
        """Handle one request of a started client."""


class ClientSession(asyncio.Protocol):
    """The sim's side of one API connection."""

    def __init__(self, host: SessionHost) -> None:
        self.host = host
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.client_id: int | None = None
        # The API version negotiated in the handshake: the layout of every message.
        self.version = SERVER_VERSION
        self.ready = False
        self.closed = False
        self._stage = "prefix"
        self._buffer = FrameBuffer()
        self._out: list[bytes] = []
        self._flush_pending = False
        self._pending_md: dict[str, bool] = {}
        self._delayed: deque[tuple[float, bytes]] = deque()
        self._recent: deque[int] = deque()
        self.last_received_ns = 0
        # monotonic ns at which market data / a bar of each symbol was last written
        self.md_written: dict[str, int] = {}
        self.bar_written: dict[str, int] = {}

    # --- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register the new connection with the gateway."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.host.session_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection and whatever was queued for it."""
        self.closed = True
        self.transport = None
        self._out.clear()
        self.host.session_closed(self)

    def data_received(self, data: bytes) -> None:
        """Frame the bytes and handle each complete message."""
        received_ns = self.host.monotonic_ns()
        try:
            self._buffer.feed_raw(data)
            if self._stage == "prefix" and not self._take_prefix():
                return
            for fields in self._buffer.frames():
                if self.closed:
                    return
                self._on_message(fields, received_ns)
        except FrameError as exc:
            log.warning("client %s sent garbage (%s); closing its connection", self.peer, exc)
            self.abort()

    # --- receiving --------------------------------------------------------

    def _take_prefix(self) -> bool:
        taken = self._buffer.take_prefix(API_PREFIX)
        if taken is None:
            return False
        if not taken:
            log.warning("connection from %s does not speak the TWS API; closing", self.peer)
            self.abort()
            return False
        self._stage = "version"
        return True

    def _on_message(self, fields: list[str], received_ns: int) -> None:
        if self._stage == "version":
            self._handshake(fields)
        elif self._stage == "start":
            self._start_api(fields)
        elif self._within_rate(received_ns, fields):
            self.host.dispatch(self, fields, received_ns)

    def _handshake(self, fields: list[str]) -> None:
        try:
            low, high = parse_version_range(fields)
        except MessageError as exc:
            log.warning("client %s: bad handshake (%s); closing", self.peer, exc)
            self.abort()
            return
        version = negotiate(low, high)
        if version is None:
            log.warning("client %s offers API versions %d..%d, which the sim cannot serve "
                        "(%d..%d); closing", self.peer, low, high, MIN_CLIENT_VERSION,
                        SERVER_VERSION)
            self.abort()
            return
        self.version = version
        now = self.host.now_ns()
        self.send_now([version, out.ib_time(now)])
        log.info("client %s offers API versions %d..%d: serving %d", self.peer, low, high,
                 version)
        self._stage = "start"

    def _start_api(self, fields: list[str]) -> None:
        reader = FieldReader(fields)
        try:
            if fields[0] != "71":
                raise MessageError(f"expected startApi (71), got message {fields[0]}")
            reader.skip()  # version
            client_id = reader.integer("clientId")
        except (MessageError, IndexError) as exc:
            log.warning("client %s: %s; closing", self.peer, exc)
            self.abort()
            return
        if not self.host.claim_client_id(self, client_id):
            log.warning("client %s: clientId %d is already in use; refusing", self.peer, client_id)
            self.send(out.error(-1, 326, "Unable to connect as the client id is already in "
                                "use. Retry with a unique client id."))
            self.close_after_flush()
            return
        self.client_id = client_id
        self._stage = "ready"
        self.ready = True
        self.send(out.managed_accounts(self.host.account))
        self.send(out.next_valid_id(self.host.next_order_id(client_id)))
        for code, text in FARM_NOTICES:
            self.send(out.error(-1, code, text))
        self.send(self.host.clock_message())  # after the handshake, like every notice
        log.info("client %d connected from %s", client_id, self.peer)

    def _within_rate(self, received_ns: int, fields: list[str]) -> bool:
        recent = self._recent
        while recent and received_ns - recent[0] >= 1_000_000_000:
            recent.popleft()
        if len(recent) >= self.host.rate_limit:
            self.send(out.error(-1, 100, f"Max rate of messages per second has been exceeded:"
                                f"max={self.host.rate_limit} rec={len(recent) + 1} (message "
                                f"{fields[0] if fields else '?'} ignored)"))
            return False
        recent.append(received_ns)
        return True

    # --- sending ----------------------------------------------------------

    def send(self, fields: list[object]) -> None:
        """Queue a message; it is written at the end of this loop turn."""
        if self.closed:
            return
        if self.version < SERVER_VERSION:
            fields = for_version(fields, self.version)
        self._out.append(encode(fields))
        self._schedule_flush()

    def send_md(self, symbol: str, fields: list[object], bar: bool = False) -> None:
        """Queue market data and note, for latency stats, when it is written."""
        if self.closed:
            return
        self._out.append(encode(fields))
        self._pending_md[symbol] = bar or self._pending_md.get(symbol, False)
        self._schedule_flush()

    def send_order_msg(self, fields: list[object]) -> None:
        """Queue an order acknowledgement, held back while acks are delayed."""
        delay_ms = self.host.ack_delay_ms
        if delay_ms <= 0 and not self._delayed:
            self.send(fields)
            return
        if self.version < SERVER_VERSION:
            fields = for_version(fields, self.version)
        loop = asyncio.get_running_loop()
        due = loop.time() + max(delay_ms, 0) / 1000
        self._delayed.append((due, encode(fields)))
        loop.call_at(due, self._release_delayed)

    def _release_delayed(self, everything: bool = False) -> None:
        now = asyncio.get_running_loop().time()
        while self._delayed and (everything or self._delayed[0][0] <= now):
            if not self.closed:
                self._out.append(self._delayed.popleft()[1])
            else:
                self._delayed.popleft()
        self._schedule_flush()

    def release_delayed(self) -> None:
        """Send every held-back acknowledgement now (the delay fault ended)."""
        self._release_delayed(everything=True)

    def send_now(self, fields: list[object]) -> None:
        """Write a message immediately (the handshake reply)."""
        if self.transport is not None:
            self.transport.write(encode(fields))

    def _schedule_flush(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write everything queued in one go."""
        self._flush_pending = False
        if self.transport is None or not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        now = self.host.monotonic_ns()  # before the write: latencies include its syscall
        self.transport.write(data)
        if self._pending_md:
            for symbol, bar in self._pending_md.items():
                self.md_written[symbol] = now
                if bar:
                    self.bar_written[symbol] = now
            self._pending_md.clear()
        if self.transport.get_write_buffer_size() > self.host.max_buffered:
            log.warning("client %s is not reading (%d bytes queued); dropping it",
                        self.client_id, self.transport.get_write_buffer_size())
            self.abort()

    def close_after_flush(self) -> None:
        """Close once what is queued has been written."""
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection at once."""
        if self.transport is not None:
            self.transport.abort()
