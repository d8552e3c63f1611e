"""Broker connection settings from the environment, and the paper-account guard."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from breakoutd.errors import OperationalError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4002  # IB Gateway, paper
DEFAULT_CLIENT_ID = 1
DEFAULT_CONNECT_TIMEOUT = 10.0  # seconds for each step of a connection attempt


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Where the gateway is and which account may be traded."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    client_id: int = DEFAULT_CLIENT_ID
    account: str | None = None
    live: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BrokerSettings:
        """Read ``IB_HOST``, ``IB_PORT``, ``IB_CLIENT_ID``, ``IB_ACCOUNT``, ``BREAKOUTD_LIVE``
        and ``IB_CONNECT_TIMEOUT`` (seconds for each step of a connection attempt)."""
        env = os.environ if env is None else env
        return cls(
            host=env.get("IB_HOST") or DEFAULT_HOST,
            port=_int(env, "IB_PORT", DEFAULT_PORT),
            client_id=_int(env, "IB_CLIENT_ID", DEFAULT_CLIENT_ID),
            account=env.get("IB_ACCOUNT") or None,
            live=env.get("BREAKOUTD_LIVE", "") == "1",
            connect_timeout=_seconds(env, "IB_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
        )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise OperationalError(f"{name}={text!r} is not a positive number of seconds")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise OperationalError(f"{name}={text!r} is not a whole number") from None


def is_paper_account(account: str) -> bool:
    """IBKR paper accounts start with D (DU..., DF...)."""
    return account.startswith("D")


def guard_account(managed: Sequence[str], settings: BrokerSettings) -> str:
    """The account to trade; raise OperationalError when it must not be traded."""
    if settings.account is not None and settings.account not in managed:
        raise OperationalError(
            f"IB_ACCOUNT={settings.account} is not an account of this gateway "
            f"({', '.join(managed) or 'none'})"
        )
    if settings.account is None:
        if len(managed) != 1:
            raise OperationalError(
                f"the gateway manages {len(managed)} accounts ({', '.join(managed)}); "
                "set IB_ACCOUNT to the one to trade"
            )
        account = managed[0]
    else:
        account = settings.account
    if is_paper_account(account):
        return account
    if not settings.live or settings.account != account:
        raise OperationalError(
            f"account {account} is a live account; refusing to trade it. To trade real money "
            f"set BREAKOUTD_LIVE=1 and IB_ACCOUNT={account}"
        )
    return account


def backoff_delays(base: float = 1.0, cap: float = 60.0,
                   rng: random.Random | None = None) -> Iterator[float]:
    """Reconnect delays: exponential, capped, with equal jitter (half fixed, half random)."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        ceiling = min(cap, base * 2 ** attempt)
        yield ceiling / 2 + rng.uniform(0, ceiling / 2)
        attempt = min(attempt + 1, 32)
