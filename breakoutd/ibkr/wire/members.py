"""Every ib_async member the fence uses beyond the ``IB`` facade, and why.

The contract test (tests/ibkr/test_wire_contract.py) checks that each exists
on the installed ib_async; docs/live.md explains them to the operator. A new
use of ib_async's internals is added here, in the fence, and nowhere else.
"""

from __future__ import annotations

from typing import NamedTuple


class Member(NamedTuple):
    """One member: on which ib_async object, its name, what the fence does with it."""

    owner: str  # "Client", "Connection", "Wrapper", "IB", "OrderStatus", "Ticker"
    name: str
    why: str


_FEED = "market data is framed off the socket before ib_async decodes it (feedwire)"

USED: tuple[Member, ...] = (
    Member("Client", "conn", "its Connection, whose reads the feed takes over"),
    Member("Connection", "hasData", "the socket-read event the feed subscribes to instead of "
           "ib_async"),
    Member("Client", "_onSocketHasData", "ib_async's reader, given the messages that are not the "
           "feed's; " + _FEED),
    Member("Client", "_data", "the partial message a read ends with, kept for the next read"),
    Member("Client", "_apiReady", "the handshake is left to ib_async until the API is ready"),
    Member("Client", "_numBytesRecv", "counts the bytes the feed read, as ib_async counts its own"),
    Member("Client", "_numMsgRecv", "counts the messages the feed read"),
    Member("Client", "getReqId", "request ids for the feed's own market data requests, and "
           "order ids"),
    Member("Client", "updateReqId", "keeps order ids above the daemon's high-water mark (a "
           "gateway offering a lower nextValidId never makes it reuse one)"),
    Member("Client", "reqMktData", "the streaming quote line, under the feed's own request id"),
    Member("Client", "cancelMktData", "cancels it"),
    Member("Client", "reqRealTimeBars", "5-second bars, under the feed's own request id"),
    Member("Client", "cancelRealTimeBars", "cancels them"),
    Member("Client", "reqCurrentTime", "the silence probe, without taking someone else's "
           "reqCurrentTimeAsync answer"),
    Member("Client", "apiError", "a gateway hanging up in the handshake (326) is known at once"),
    Member("Client", "clientId", "the connection's client id, part of every order's key"),
    Member("Client", "serverVersion", "order templates are learnt per server version"),
    Member("Client", "isConnected", "a raw message is not written to a closed socket"),
    Member("Client", "isReady", "a connection attempt says it waits for the session's data once "
           "the API handshake is done"),
    Member("Connection", "isConnected", "a connection attempt says it waits for the API "
           "handshake once the socket is open (a gateway that never answers is named)"),
    Member("Client", "placeOrder", "writes a bracket's orders back to back, and serialises probe "
           "orders for the templates"),
    Member("Client", "sendMsg", "writes template-built orders through ib_async's throttle; "
           "replaced for a moment to capture a probe order's message"),
    Member("Wrapper", "trades", "the connection's orders: a new order is registered there, the "
           "router reads refs and terms there"),
    Member("Wrapper", "fills", "the connection's fills, read for the refs already traded"),
    Member("Wrapper", "orderKey", "the key of an order in trades"),
    Member("Wrapper", "defaultTimezone", "the time of a registered order's first log entry"),
    Member("Wrapper", "clientId", "the client id a registered order carries"),
    Member("IB", "newOrderEvent", "emitted for a registered order, as IB.placeOrder does"),
    Member("IB", "ticker", "ib_async's cached Ticker of a contract, emptied before a snapshot"),
    Member("OrderStatus", "status", "written back to the gateway's last status over ib_async's "
           "verdict on an error that did not end the order"),
    Member("Ticker", "bid", "emptied before a snapshot (with ask, bidSize, askSize)"),
    Member("Ticker", "ask", "emptied before a snapshot"),
    Member("Ticker", "bidSize", "emptied before a snapshot"),
    Member("Ticker", "askSize", "emptied before a snapshot"),
)
