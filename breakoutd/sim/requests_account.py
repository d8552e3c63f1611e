"""Handlers of the account requests: positions, account values and portfolio."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from breakoutd.sim import outgoing as out

if TYPE_CHECKING:
    from breakoutd.sim.gateway import SimGateway
    from breakoutd.sim.session import ClientSession
    from breakoutd.sim.wire import FieldReader

log = logging.getLogger("breakoutd.sim")
CURRENCY = "USD"


def send_account_values(gw: SimGateway, session: ClientSession) -> None:
    """updateAccountValue (6) for every tag, then the account time (8)."""
    for tag, value in gw.engine.account_values().items():
        session.send(out.account_value(tag, value, CURRENCY, gw.account))
    session.send(out.account_time(gw.clock.now_ns()))


def send_portfolio(gw: SimGateway, session: ClientSession, symbol: str | None = None) -> None:
    """updatePortfolio (7) for every held symbol, or for one."""
    for item in gw.engine.portfolio():
        if symbol is None or item.symbol == symbol:
            session.send(out.portfolio_value(
                gw.account, item.symbol, item.qty, item.market_price, item.market_value,
                item.avg_cost, item.unrealized_pnl, item.realized_pnl))


def account_updates(gw: SimGateway, session: ClientSession, r: FieldReader) -> None:
    """reqAccountUpdates (6): values and portfolio now, then on every change."""
    r.skip()
    subscribe, account = r.flag("subscribe"), r.text("acctCode")
    if not subscribe:
        gw.account_subs.discard(session)
        return
    if account and account != gw.account:
        session.send(out.error(-1, 321, f"Error validating request:-'account' : cause - "
                               f"account {account} is not managed by this gateway"))
        return
    gw.account_subs.add(session)
    send_account_values(gw, session)
    send_portfolio(gw, session)
    session.send(out.account_download_end(gw.account))


def account_updates_multi(gw: SimGateway, session: ClientSession, r: FieldReader) -> None:
    """reqAccountUpdatesMulti (76): the account's values, then on every change."""
    r.skip()
    req_id = r.integer("reqId")
    gw.multi_subs[(session, req_id)] = None
    send_account_multi(gw, session, req_id)
    session.send(out.account_update_multi_end(req_id))


def send_account_multi(gw: SimGateway, session: ClientSession, req_id: int) -> None:
    """accountUpdateMulti (73) for every tag."""
    for tag, value in gw.engine.account_values().items():
        session.send(out.account_update_multi(req_id, gw.account, tag, value, CURRENCY))


def cancel_account_updates_multi(gw: SimGateway, session: ClientSession, r: FieldReader) -> None:
    """cancelAccountUpdatesMulti (77)."""
    r.skip()
    gw.multi_subs.pop((session, r.integer("reqId")), None)


def account_summary(gw: SimGateway, session: ClientSession, r: FieldReader) -> None:
    """reqAccountSummary (62): the requested tags once, then the end (64)."""
    r.skip()
    req_id = r.integer("reqId")
    r.text("group")
    tags = {t.strip() for t in r.text("tags").split(",") if t.strip()}
    for tag, value in gw.engine.account_values().items():
        if tag in tags or not tags:
            session.send(out.account_summary(req_id, gw.account, tag, value, CURRENCY))
    session.send(out.account_summary_end(req_id))


def cancel_account_summary(gw: SimGateway, session: ClientSession, r: FieldReader) -> None:
    """cancelAccountSummary (63): the summary is sent once, nothing to stop."""


def positions(gw: SimGateway, session: ClientSession, r: FieldReader) -> None:
    """reqPositions (61): every position held today, then on every change."""
    gw.position_subs.add(session)
    for symbol, (qty, avg_cost) in gw.engine.positions().items():
        session.send(out.position(gw.account, symbol, qty, avg_cost))
    session.send(out.position_end())


def cancel_positions(gw: SimGateway, session: ClientSession, r: FieldReader) -> None:
    """cancelPositions (64)."""
    gw.position_subs.discard(session)


def positions_multi(gw: SimGateway, session: ClientSession, r: FieldReader) -> None:
    """reqPositionsMulti (74): positions once, then the end (72)."""
    r.skip()
    req_id = r.integer("reqId")
    for symbol, (qty, avg_cost) in gw.engine.positions().items():
        session.send(out.position_multi(req_id, gw.account, symbol, qty, avg_cost))
    session.send(out.position_multi_end(req_id))


def cancel_positions_multi(gw: SimGateway, session: ClientSession, r: FieldReader) -> None:
    """cancelPositionsMulti (75): the positions are sent once, nothing to stop."""


def managed_accounts(gw: SimGateway, session: ClientSession, r: FieldReader) -> None:
    """reqManagedAccts (17)."""
    session.send(out.managed_accounts(gw.account))
