"""The daemon's error hierarchy: what kind of failure, so the caller knows what to do.

- :class:`OperationalError`: stop and alert a person (bad settings, a live
  account without consent). Retrying will not help.
- :class:`TemporaryError`: retry with backoff (connection refused, timeout).
- :class:`OrderRejected`: the broker or a risk limit said no to one order;
  the watcher records the reason and the daemon goes on.
- :class:`breakoutd.config.ConfigError`: a watchlist that cannot be used,
  with every problem at its ``file:line``; it lives beside the loader.
"""

from __future__ import annotations


class BreakoutdError(Exception):
    """Base of every error breakoutd raises on purpose."""


class OperationalError(BreakoutdError):
    """A condition a person must fix; the daemon stops."""


class TemporaryError(BreakoutdError):
    """A condition that may pass; retry with backoff."""


class OrderRejected(BreakoutdError):
    """One order was refused; trading goes on."""
