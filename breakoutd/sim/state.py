"""The gateway's state in one value, and what handlers see of a connection.

Request handlers and the event router receive a :class:`GatewayState` and a
:class:`Client`, never the gateway: they import this module, the gateway
imports them, and nothing imports back. The gateway owns the value and
replaces in it what a restart or a new symbol renews (``engine``,
``instruments``), so a handler always sees the current one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from breakoutd.sim.clock import VirtualClock
from breakoutd.sim.contracts import Instruments
from breakoutd.sim.faults import FaultState
from breakoutd.sim.feeds import FeedHub
from breakoutd.sim.market import Market
from breakoutd.sim.matching import MatchingEngine
from breakoutd.sim.pacing import HistoryPacing
from breakoutd.sim.stats import LatencyStats


class Client(Protocol):
    """One API connection as handlers see it: who it is and how to write to it.

    :class:`~breakoutd.sim.session.ClientSession` is the one the gateway
    serves; the socket, the handshake and the rate limit stay behind it.
    """

    client_id: int | None  # None until startApi
    version: int  # the negotiated API version: the layout of what it is sent
    closed: bool
    last_received_ns: int  # monotonic ns of the request being handled
    md_written: dict[str, int]  # symbol -> monotonic ns market data was last written
    bar_written: dict[str, int]

    def send(self, fields: list[object]) -> None:
        """Queue a message."""

    def send_md(self, symbol: str, fields: list[object], bar: bool = False) -> None:
        """Queue market data about ``symbol`` (``bar``: a bar message), noted for latency."""

    def send_order_msg(self, fields: list[object]) -> None:
        """Queue an order acknowledgement (held back while the delay fault is on)."""


@dataclass(eq=False)
class GatewayState:
    """Everything a request handler may read or change."""

    account: str
    md_lines: int  # market-data lines before error 101
    clock: VirtualClock
    market: Market
    instruments: Instruments
    feeds: FeedHub
    history_pacing: HistoryPacing
    engine: MatchingEngine
    faults: FaultState
    stats: LatencyStats
    # Set by a request that changes when the replay must next run (a new bar stream).
    wake_replay: asyncio.Event = field(default_factory=asyncio.Event)
    clients: dict[int, Client] = field(default_factory=dict)  # by clientId, once started
    account_subs: set[Client] = field(default_factory=set)
    position_subs: set[Client] = field(default_factory=set)
    multi_subs: dict[tuple[Client, int], None] = field(default_factory=dict)
    exec_owner: dict[str, int] = field(default_factory=dict)  # execId -> clientId
