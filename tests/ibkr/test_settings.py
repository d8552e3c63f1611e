"""Connection settings from the environment and the paper-account guard."""

from __future__ import annotations

import random

import pytest

from breakoutd.errors import OperationalError
from breakoutd.ibkr.settings import BrokerSettings, backoff_delays, guard_account


def test_defaults_and_environment() -> None:
    assert BrokerSettings.from_env({}) == BrokerSettings("127.0.0.1", 4002, 1, None, False)
    s = BrokerSettings.from_env({"IB_HOST": "gw", "IB_PORT": "4001", "IB_CLIENT_ID": "7",
                                 "IB_ACCOUNT": "U1", "BREAKOUTD_LIVE": "1"})
    assert (s.host, s.port, s.client_id, s.account, s.live) == ("gw", 4001, 7, "U1", True)


def test_a_bad_number_says_which_variable() -> None:
    with pytest.raises(OperationalError, match="IB_PORT='x' is not a whole number"):
        BrokerSettings.from_env({"IB_PORT": "x"})


def test_the_connect_timeout_comes_from_the_environment() -> None:
    assert BrokerSettings.from_env({}).connect_timeout == 10.0
    assert BrokerSettings.from_env({"IB_CONNECT_TIMEOUT": "2.5"}).connect_timeout == 2.5
    for bad in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(OperationalError, match="IB_CONNECT_TIMEOUT=.* positive number of seconds"):
            BrokerSettings.from_env({"IB_CONNECT_TIMEOUT": bad})


def test_paper_accounts_trade_live_ones_need_both_settings() -> None:
    assert guard_account(["DU123"], BrokerSettings()) == "DU123"
    with pytest.raises(OperationalError, match="live account"):
        guard_account(["U123"], BrokerSettings())
    with pytest.raises(OperationalError, match="live account"):
        guard_account(["U123"], BrokerSettings(live=True))
    assert guard_account(["U123"], BrokerSettings(live=True, account="U123")) == "U123"
    with pytest.raises(OperationalError, match="not an account of this gateway"):
        guard_account(["DU1"], BrokerSettings(account="DU2"))
    with pytest.raises(OperationalError, match="set IB_ACCOUNT"):
        guard_account(["DU1", "DU2"], BrokerSettings())


def test_backoff_grows_to_the_cap_with_jitter() -> None:
    delays = backoff_delays(1.0, 8.0, random.Random(1))
    got = [next(delays) for _ in range(7)]
    ceilings = [1, 2, 4, 8, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(got, ceilings, strict=True))
    assert len(set(got)) == len(got)  # jittered, not a fixed ladder
