"""ib_async's socket reads taken over, for :class:`breakoutd.ibkr.feedwire.FeedWire`.

ib_async's ``Client`` frames what its ``Connection`` reads in
``_onSocketHasData``, keeping a partial message in ``_data`` and counting
bytes and messages in ``_numBytesRecv`` and ``_numMsgRecv`` (its ``connectionStats``).
The feed reads the socket first: it frames the bytes itself and gives ib_async
only the messages that are not its own, so the tap keeps ib_async's buffer
and counters as ib_async would have (ib_async 2.1.0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ib_async import IB


class SocketTap:
    """The connection's reads go to ``on_data``; ``pass_on`` hands messages to ib_async."""

    def __init__(self, ib: IB, on_data: Callable[[bytes], None]) -> None:
        self._client: Any = ib.client
        self._on_data = on_data
        # ib_async's reader, called with whole messages it is to decode as if read.
        self.pass_on: Callable[[bytes], None] = self._client._onSocketHasData
        conn = self._client.conn
        conn.hasData -= self.pass_on
        conn.hasData += on_data

    def close(self) -> None:
        """Give the socket's reads back to ib_async."""
        conn = self._client.conn
        conn.hasData -= self._on_data
        conn.hasData += self.pass_on

    def api_ready(self) -> bool:
        """False during a connection's handshake, which is ib_async's alone."""
        return bool(self._client._apiReady)

    def take_pending(self, data: bytes) -> bytes:
        """``data`` after the partial message the last read left in ib_async's buffer."""
        client = self._client
        pending: bytes = client._data
        client._data = b""
        return pending + data if pending else data

    def keep_pending(self, tail: bytes, own_bytes: int, own_messages: int) -> None:
        """Leave ``tail`` (a partial message) for the next read; count the bytes and
        messages read here and not passed on, as ib_async counts its own."""
        client = self._client
        client._data = tail
        client._numBytesRecv += own_bytes
        client._numMsgRecv += own_messages
