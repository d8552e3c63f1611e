"""Raw ``Client`` requests, request ids and the connection's facts (ib_async 2.1.0).

The daemon's market data is requested on ib_async's ``Client`` with ids of its
own, so that :mod:`breakoutd.ibkr.feedwire` can read the answers off the
socket before ib_async builds ``Ticker`` objects from them; order ids come
from the same counter, kept above the daemon's high-water mark with
``updateReqId`` (the only way ib_async offers to raise it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ib_async import IB, Contract


def client_id(ib: IB) -> int:
    """The API client id of the connection."""
    return int(ib.client.clientId)


def server_version(ib: IB) -> int:
    """The server version the gateway agreed to (0 before a connection)."""
    return int(ib.client.serverVersion())


def new_request_id(ib: IB) -> int:
    """A fresh request id from ib_async's counter; ConnectionError when not connected."""
    client: Any = ib.client
    return int(client.getReqId())


def next_order_ids(ib: IB, count: int, above: int = 0) -> list[int]:
    """``count`` fresh order ids, each greater than ``above`` (a high-water mark).

    ib_async's counter starts at the gateway's nextValidId on every connection;
    a gateway that offers less than the daemon has used (a restart, a reset of
    the API order id sequence) must not make it use an id twice."""
    client: Any = ib.client
    client.updateReqId(above + 1)
    return [int(client.getReqId()) for _ in range(count)]


def stream_quotes(ib: IB, req_id: int, contract: Contract) -> None:
    """Streaming ``reqMktData`` (quotes and LAST prints) under ``req_id``."""
    client: Any = ib.client
    client.reqMktData(req_id, contract, "", False, False, [])


def stream_bars5(ib: IB, req_id: int, contract: Contract) -> None:
    """5-second realtime TRADES bars, regular and extended hours, under ``req_id``."""
    client: Any = ib.client
    client.reqRealTimeBars(req_id, contract, 5, "TRADES", False, [])


def cancel_quotes(ib: IB, req_id: int) -> None:
    """Cancel a :func:`stream_quotes`."""
    client: Any = ib.client
    client.cancelMktData(req_id)


def cancel_bars5(ib: IB, req_id: int) -> None:
    """Cancel a :func:`stream_bars5`."""
    client: Any = ib.client
    client.cancelRealTimeBars(req_id)


def request_current_time(ib: IB) -> None:
    """Ask for the gateway's time without a future.

    ib_async keeps one future for currentTime, so a probe through
    ``reqCurrentTimeAsync`` could steal someone else's answer."""
    client: Any = ib.client
    client.reqCurrentTime()


def connect_stage(ib: IB) -> str:
    """How far a connection attempt in progress got: what it waits for now.

    ``socket`` (the TCP connection), ``handshake`` (the socket is open, the
    gateway has not answered the API handshake) or ``sync`` (the API is ready,
    the session's start-up requests are out)."""
    client: Any = ib.client
    if client.isReady():
        return "sync"
    return "handshake" if client.conn.isConnected() else "socket"


def watch_api_errors(ib: IB, handler: Callable[[str], None]) -> None:
    """Call ``handler`` with ib_async's API errors (the gateway hung up in the handshake)."""
    ib.client.apiError += handler


def unwatch_api_errors(ib: IB, handler: Callable[[str], None]) -> None:
    """Stop :func:`watch_api_errors`."""
    ib.client.apiError -= handler


def forget_cached_quote(ib: IB, contract: Contract) -> None:
    """Empty the quote of ib_async's cached ``Ticker`` for ``contract``, if any.

    ib_async keeps one Ticker per contract across snapshots, so what an earlier
    snapshot said would pass for the next one's answer."""
    old = ib.ticker(contract)
    if old is not None:
        old.bid = old.ask = old.bidSize = old.askSize = math.nan
