"""The request table: client message id -> handler, and the requests the sim
declines with a clear error instead of silence."""

from __future__ import annotations

import logging
from collections.abc import Callable

from breakoutd.sim import outgoing as out
from breakoutd.sim import requests_account as acct
from breakoutd.sim import requests_market as mkt
from breakoutd.sim import requests_orders as orders
from breakoutd.sim import scanner
from breakoutd.sim.state import Client, GatewayState
from breakoutd.sim.wire import FieldReader, MessageError

log = logging.getLogger("breakoutd.sim")
Handler = Callable[[GatewayState, Client, FieldReader], None]
# IB's "Error processing request" (322): what ibapi reports as 503 is its own
# "TWS is out of date", which would send a user upgrading a gateway.
UNSUPPORTED_CODE = 322


def _ignore(state: GatewayState, client: Client, r: FieldReader) -> None:
    """Requests that need no answer from the sim (e.g. setServerLogLevel)."""


def market_rule(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqMarketRule (91): US stocks tick 0.0001 below $1 and 0.01 from $1."""
    rule_id = r.integer("marketRuleId")
    client.send([93, rule_id, 2, 0, "0.0001", 1, "0.01"])


HANDLERS: dict[int, tuple[str, Handler]] = {
    1: ("reqMktData", mkt.mkt_data),
    2: ("cancelMktData", mkt.cancel_mkt_data),
    3: ("placeOrder", orders.place_order),
    4: ("cancelOrder", orders.cancel_order),
    5: ("reqOpenOrders", orders.open_orders),
    6: ("reqAccountUpdates", acct.account_updates),
    7: ("reqExecutions", orders.executions),
    8: ("reqIds", orders.next_ids),
    9: ("reqContractDetails", mkt.contract_details),
    14: ("setServerLogLevel", _ignore),
    15: ("reqAutoOpenOrders", orders.auto_open_orders),
    16: ("reqAllOpenOrders", orders.all_open_orders),
    17: ("reqManagedAccts", acct.managed_accounts),
    20: ("reqHistoricalData", mkt.historical_data),
    22: ("reqScannerSubscription", scanner.scanner_subscription),
    23: ("cancelScannerSubscription", scanner.cancel_scanner_subscription),
    24: ("reqScannerParameters", scanner.scanner_parameters),
    25: ("cancelHistoricalData", mkt.cancel_historical_data),
    49: ("reqCurrentTime", mkt.current_time),
    50: ("reqRealTimeBars", mkt.realtime_bars),
    51: ("cancelRealTimeBars", mkt.cancel_realtime_bars),
    58: ("reqGlobalCancel", orders.global_cancel),
    59: ("reqMarketDataType", mkt.market_data_type),
    61: ("reqPositions", acct.positions),
    62: ("reqAccountSummary", acct.account_summary),
    63: ("cancelAccountSummary", acct.cancel_account_summary),
    64: ("cancelPositions", acct.cancel_positions),
    74: ("reqPositionsMulti", acct.positions_multi),
    75: ("cancelPositionsMulti", acct.cancel_positions_multi),
    76: ("reqAccountUpdatesMulti", acct.account_updates_multi),
    77: ("cancelAccountUpdatesMulti", acct.cancel_account_updates_multi),
    87: ("reqHeadTimeStamp", mkt.head_timestamp),
    90: ("cancelHeadTimeStamp", _ignore),
    91: ("reqMarketRule", market_rule),
    97: ("reqTickByTickData", mkt.tick_by_tick),
    98: ("cancelTickByTickData", mkt.cancel_tick_by_tick),
    99: ("reqCompletedOrders", orders.completed_orders),
}

# Requests the sim does not serve: name and where their reqId is (None: no reqId).
UNSUPPORTED: dict[int, tuple[str, int | None]] = {
    10: ("reqMktDepth", 2), 11: ("cancelMktDepth", 2), 12: ("reqNewsBulletins", None),
    13: ("cancelNewsBulletins", None), 18: ("requestFA", None), 19: ("replaceFA", None),
    21: ("exerciseOptions", 2),
    52: ("reqFundamentalData", 2), 53: ("cancelFundamentalData", 2),
    54: ("calculateImpliedVolatility", 2), 55: ("calculateOptionPrice", 2),
    56: ("cancelCalculateImpliedVolatility", 2), 57: ("cancelCalculateOptionPrice", 2),
    65: ("verifyRequest", None), 66: ("verifyMessage", None), 67: ("queryDisplayGroups", 2),
    68: ("subscribeToGroupEvents", 2), 69: ("updateDisplayGroup", 2),
    70: ("unsubscribeFromGroupEvents", 2), 72: ("verifyAndAuthRequest", None),
    73: ("verifyAndAuthMessage", None), 78: ("reqSecDefOptParams", 1),
    79: ("reqSoftDollarTiers", 1), 80: ("reqFamilyCodes", None), 81: ("reqMatchingSymbols", 1),
    82: ("reqMktDepthExchanges", None), 83: ("reqSmartComponents", 1),
    84: ("reqNewsArticle", 1), 85: ("reqNewsProviders", None), 86: ("reqHistoricalNews", 1),
    88: ("reqHistogramData", 1), 89: ("cancelHistogramData", 1), 92: ("reqPnL", 1), 93: ("cancelPnL", 1), 94: ("reqPnLSingle", 1), 95: ("cancelPnLSingle", 1),
    96: ("reqHistoricalTicks", 1), 100: ("reqWshMetaData", 1), 101: ("cancelWshMetaData", 1),
    102: ("reqWshEventData", 1), 103: ("cancelWshEventData", 1), 104: ("reqUserInfo", 1),
}


def _req_id_at(fields: list[str], pos: int | None) -> int:
    if pos is None or pos >= len(fields):
        return -1
    try:
        return int(fields[pos])
    except ValueError:
        return -1


# Where the reqId (or orderId) of a served request is, to address error replies.
_REQ_ID_POS = {1: 2, 2: 2, 3: 1, 4: 2, 7: 2, 9: 2, 20: 1, 22: 1, 23: 2, 25: 2, 50: 2, 51: 2, 62: 2, 74: 2,
               76: 2, 87: 1, 97: 1, 98: 1}


def dispatch(state: GatewayState, client: Client, fields: list[str]) -> None:
    """Run the handler of one client message; every failure gets an error reply."""
    try:
        msg_id = int(fields[0]) if fields else -1
    except ValueError:
        msg_id = -1
    entry = HANDLERS.get(msg_id)
    if entry is None:
        _decline(client, msg_id, fields)
        return
    name, handler = entry
    try:
        handler(state, client, FieldReader(fields))
    except MessageError as exc:
        log.warning("client %s: malformed %s: %s", client.client_id, name, exc)
        client.send(out.error(_req_id_at(fields, _REQ_ID_POS.get(msg_id)), 320,
                               f"Server error when reading an API client request: {exc}"))
    except Exception as exc:  # a bug must not take the gateway down
        log.exception("client %s: %s failed", client.client_id, name)
        client.send(out.error(_req_id_at(fields, _REQ_ID_POS.get(msg_id)), 320,
                               f"Server error when processing {name}: {exc!r}"))


def _decline(client: Client, msg_id: int, fields: list[str]) -> None:
    known = UNSUPPORTED.get(msg_id)
    if known is not None:
        name, pos = known
        text = (f"Error processing request.-'sim' : cause - The simulated gateway does not "
                f"support {name} (message id {msg_id}).")
        req_id = _req_id_at(fields, pos)
    else:
        text = (f"Error processing request.-'sim' : cause - The simulated gateway does not "
                f"know message id {fields[0] if fields else '(empty message)'}.")
        req_id = -1
    log.info("client %s: %s", client.client_id, text)
    client.send(out.error(req_id, UNSUPPORTED_CODE, text))
