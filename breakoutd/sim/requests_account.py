"""Handlers of the account requests: positions, account values and portfolio."""

from __future__ import annotations

import logging

from breakoutd.sim import outgoing as out
from breakoutd.sim.state import Client, GatewayState
from breakoutd.sim.wire import FieldReader

log = logging.getLogger("breakoutd.sim")
CURRENCY = "USD"


def send_account_values(state: GatewayState, client: Client) -> None:
    """updateAccountValue (6) for every tag, then the account time (8)."""
    for tag, value in state.engine.account_values().items():
        client.send(out.account_value(tag, value, CURRENCY, state.account))
    client.send(out.account_time(state.clock.now_ns()))


def send_portfolio(state: GatewayState, client: Client, symbol: str | None = None) -> None:
    """updatePortfolio (7) for every held symbol, or for one."""
    for item in state.engine.portfolio():
        if symbol is None or item.symbol == symbol:
            client.send(out.portfolio_value(
                state.account, item.symbol, item.qty, item.market_price, item.market_value,
                item.avg_cost, item.unrealized_pnl, item.realized_pnl))


def account_updates(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqAccountUpdates (6): values and portfolio now, then on every change."""
    r.skip()
    subscribe, account = r.flag("subscribe"), r.text("acctCode")
    if not subscribe:
        state.account_subs.discard(client)
        return
    if account and account != state.account:
        client.send(out.error(-1, 321, f"Error validating request:-'account' : cause - "
                               f"account {account} is not managed by this gateway"))
        return
    state.account_subs.add(client)
    send_account_values(state, client)
    send_portfolio(state, client)
    client.send(out.account_download_end(state.account))


def account_updates_multi(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqAccountUpdatesMulti (76): the account's values, then on every change."""
    r.skip()
    req_id = r.integer("reqId")
    state.multi_subs[(client, req_id)] = None
    send_account_multi(state, client, req_id)
    client.send(out.account_update_multi_end(req_id))


def send_account_multi(state: GatewayState, client: Client, req_id: int) -> None:
    """accountUpdateMulti (73) for every tag."""
    for tag, value in state.engine.account_values().items():
        client.send(out.account_update_multi(req_id, state.account, tag, value, CURRENCY))


def cancel_account_updates_multi(state: GatewayState, client: Client, r: FieldReader) -> None:
    """cancelAccountUpdatesMulti (77)."""
    r.skip()
    state.multi_subs.pop((client, r.integer("reqId")), None)


def account_summary(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqAccountSummary (62): the requested tags once, then the end (64)."""
    r.skip()
    req_id = r.integer("reqId")
    r.text("group")
    tags = {t.strip() for t in r.text("tags").split(",") if t.strip()}
    for tag, value in state.engine.account_values().items():
        if tag in tags or not tags:
            client.send(out.account_summary(req_id, state.account, tag, value, CURRENCY))
    client.send(out.account_summary_end(req_id))


def cancel_account_summary(state: GatewayState, client: Client, r: FieldReader) -> None:
    """cancelAccountSummary (63): the summary is sent once, nothing to stop."""


def positions(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqPositions (61): every position held today, then on every change."""
    state.position_subs.add(client)
    for symbol, (qty, avg_cost) in state.engine.positions().items():
        client.send(out.position(state.account, symbol, qty, avg_cost))
    client.send(out.position_end())


def cancel_positions(state: GatewayState, client: Client, r: FieldReader) -> None:
    """cancelPositions (64)."""
    state.position_subs.discard(client)


def positions_multi(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqPositionsMulti (74): positions once, then the end (72)."""
    r.skip()
    req_id = r.integer("reqId")
    for symbol, (qty, avg_cost) in state.engine.positions().items():
        client.send(out.position_multi(req_id, state.account, symbol, qty, avg_cost))
    client.send(out.position_multi_end(req_id))


def cancel_positions_multi(state: GatewayState, client: Client, r: FieldReader) -> None:
    """cancelPositionsMulti (75): the positions are sent once, nothing to stop."""


def managed_accounts(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqManagedAccts (17)."""
    client.send(out.managed_accounts(state.account))
