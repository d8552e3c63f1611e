"""Handlers of the order requests: placeOrder decoding into a SimOrder, cancels,
and the open/completed order and execution queries."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal, InvalidOperation

from breakoutd.calendar import EXCHANGE_TZ
from breakoutd.core.bars import NS
from breakoutd.core.prices import format_price, to_micros
from breakoutd.sim import outgoing as out
from breakoutd.sim.contracts import con_id_for, read_contract
from breakoutd.sim.delivery import route
from breakoutd.sim.matching.values import SimOrder
from breakoutd.sim.requests_market import NO_SECURITY
from breakoutd.sim.state import Client, GatewayState
from breakoutd.sim.versions import (
    ADVANCED_ORDER_REJECT,
    AUTO_CANCEL_PARENT,
    DURATION,
    FA_PROFILE_DESUPPORT,
    MANUAL_ORDER_TIME,
    PEGBEST_PEGMID_OFFSETS,
    POST_TO_ATS,
)
from breakoutd.sim.wire import FieldReader, MessageError

log = logging.getLogger("breakoutd.sim")
_MICRO = Decimal("0.000001")
_UNSET_DOUBLE = 1.7976931348623157e308
# Order types whose outsideRth IB ignores on US stocks (warning 2109).
RTH_ONLY_TYPES = frozenset({"MKT", "STP"})
OUTSIDE_RTH_IGNORED = ("Order Event Warning:Attribute 'Outside Regular Trading Hours' is "
                       "ignored based on the order type and destination. PlaceOrder is now "
                       "being processed.")


def _price(value: float | None) -> int | None:
    """A wire price as micro-dollars; doubles are rounded to the micro-dollar as IB does."""
    if value is None or value >= _UNSET_DOUBLE:
        return None
    try:
        return to_micros(Decimal(repr(value)).quantize(_MICRO))
    except (InvalidOperation, ValueError) as exc:
        raise MessageError(f"price {value!r} is not a number") from exc


class _Terms:
    """The order terms read from a placeOrder, before the symbol is resolved."""

    def __init__(self, r: FieldReader, version: int) -> None:
        self.order_id = r.integer("orderId")
        self.spec = read_contract(r)
        r.skip(2)  # secIdType, secId
        self.action = r.text("action").upper()
        self.qty = r.number("totalQuantity") or 0.0
        self.order_type = r.text("orderType").upper()
        self.lmt = _price(r.number("lmtPrice"))
        self.aux = _price(r.number("auxPrice"))
        self.tif = r.text("tif").upper() or "DAY"
        self.oca_group = r.text("ocaGroup")
        self.account = r.text("account")
        r.skip(2)  # openClose, origin
        self.order_ref = r.text("orderRef")
        self.transmit = r.flag("transmit")
        self.parent_id = r.integer("parentId")
        r.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
        self.outside_rth = r.flag("outsideRth")
        r.skip()  # hidden
        if self.spec.sec_type == "BAG":
            raise MessageError("combo (BAG) orders are not supported by the sim")
        r.skip(7)  # "", discretionaryAmt, goodAfterTime, goodTillDate, faGroup .. faPercentage
        if version < FA_PROFILE_DESUPPORT:
            r.skip()  # faProfile
        r.skip(4)  # modelCode, shortSaleSlot, designatedLocation, exemptCode
        self.oca_type = r.integer("ocaType")
        self.what_if = _read_what_if(r)
        _read_tail(r, version, self.order_type, self.spec.exchange)


def _read_what_if(r: FieldReader) -> bool:
    """Walk the variable middle of a placeOrder up to its whatIf flag."""
    r.skip(17)  # rule80A .. volatilityType
    if r.text("deltaNeutralOrderType"):
        r.skip(9)
    else:
        r.skip(1)
    r.skip(6)  # continuousUpdate .. scaleSubsLevelSize
    increment = r.number("scalePriceIncrement")
    if increment is not None and 0 < increment < _UNSET_DOUBLE:
        r.skip(7)
    r.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if r.text("hedgeType"):
        r.skip()
    r.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if r.flag("deltaNeutralContract"):
        r.skip(3)
    if r.text("algoStrategy"):
        r.skip(2 * r.integer("algoParams"))
    r.skip()  # algoId
    return r.flag("whatIf")


def _read_tail(r: FieldReader, version: int, order_type: str, exchange: str) -> None:
    """Walk the fields after whatIf, which depend on the version, to the message's end.

    The sim uses none of them, but reading them all proves the layout was read
    right: a field left over or missing is an error, not a silent shift.
    """
    r.skip(4)  # orderMiscOptions, solicited, randomizeSize, randomizePrice
    if order_type in ("PEG BENCH", "PEGBENCH"):
        r.skip(5)
    if r.integer("conditions"):
        raise MessageError("conditional orders are not supported by the sim")
    r.skip(19)  # adjustedOrderType .. usePriceMgmtAlgo
    for gate in (DURATION, POST_TO_ATS, AUTO_CANCEL_PARENT, ADVANCED_ORDER_REJECT,
                 MANUAL_ORDER_TIME):
        if version >= gate:
            r.skip()
    if version >= PEGBEST_PEGMID_OFFSETS:
        _read_peg_offsets(r, order_type, exchange)
    if r.remaining:
        raise MessageError(f"{r.remaining} fields after the end of a placeOrder at API "
                           f"version {version}")


def _read_peg_offsets(r: FieldReader, order_type: str, exchange: str) -> None:
    if exchange.upper() == "IBKRATS":
        r.skip()  # minTradeQty
    mid_offsets = order_type in ("PEG MID", "PEGMID")
    if order_type in ("PEG BEST", "PEGBEST"):
        r.skip()  # minCompeteSize
        compete = r.number("competeAgainstBestOffset")
        mid_offsets = compete is not None and compete == float("inf")
    if mid_offsets:
        r.skip(2)  # midOffsetAtWhole, midOffsetAtHalf


def place_order(state: GatewayState, client: Client, r: FieldReader) -> None:
    """placeOrder (3): a new order or a modify, handed to the matching engine."""
    terms = _Terms(r, client.version)
    oid = terms.order_id
    symbol = state.instruments.resolve(terms.spec)
    if symbol is None:
        client.send_order_msg(out.error(oid, 200, NO_SECURITY))
        return
    state.stats.record_order(client, oid, symbol, client.last_received_ns)
    problem = _refusal(state, terms)
    if problem is not None:
        code, text = problem
        log.info("client %s order %d refused: %s", client.client_id, oid, text)
        client.send_order_msg(out.error(oid, code, text))
        return
    assert client.client_id is not None
    if terms.outside_rth and terms.order_type in RTH_ONLY_TYPES:
        # IB ignores the flag for these types on US stocks, says so, and goes on.
        client.send_order_msg(out.error(oid, 2109, OUTSIDE_RTH_IGNORED))
        terms.outside_rth = False
    order = SimOrder(
        client_id=client.client_id, order_id=oid, symbol=symbol, con_id=con_id_for(symbol),
        action=terms.action, total_qty=int(terms.qty), order_type=terms.order_type,
        lmt_price=terms.lmt, aux_price=terms.aux, tif=terms.tif,
        outside_rth=terms.outside_rth, order_ref=terms.order_ref, parent_id=terms.parent_id,
        transmit=terms.transmit, oca_group=terms.oca_group, oca_type=terms.oca_type,
        account=terms.account or state.account)
    log.info("client %s order %d: %s %d %s %s%s%s tif=%s%s%s%s", client.client_id, oid,
             order.action, order.total_qty, symbol, order.order_type,
             f" lmt {format_price(order.lmt_price)}" if order.lmt_price is not None else "",
             f" aux {format_price(order.aux_price)}" if order.aux_price is not None else "",
             order.tif, " outsideRth" if order.outside_rth else "",
             f" parent={order.parent_id}" if order.parent_id else "",
             f" ref={order.order_ref!r}" if order.order_ref else "")
    route(state, state.engine.place(order))


def _refusal(state: GatewayState, terms: _Terms) -> tuple[int, str] | None:
    if terms.what_if:
        return 322, ("Error processing request.-'sim' : cause - The simulated gateway does not "
                     "support what-if orders")
    if terms.account and terms.account != state.account:
        return 201, f"Order rejected - reason:account {terms.account} is not {state.account}"
    if terms.qty != int(terms.qty):
        return 10243, "Fractional-sized order cannot be placed via API."
    return None


def cancel_order(state: GatewayState, client: Client, r: FieldReader) -> None:
    """cancelOrder (4)."""
    r.skip()
    order_id = r.integer("orderId")
    assert client.client_id is not None
    log.info("client %s cancels order %d", client.client_id, order_id)
    route(state, state.engine.cancel(client.client_id, order_id))


def global_cancel(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqGlobalCancel (58): every live order of every client."""
    log.info("client %s: global cancel", client.client_id)
    route(state, state.engine.cancel_all())


def _send_open_orders(state: GatewayState, client: Client, client_id: int | None) -> None:
    for order, status in state.engine.open_orders(client_id):
        client.send(out.open_order(order, status))
        ev = state.engine.order_status(order.client_id, order.order_id)
        if ev is not None:
            client.send(out.order_status(ev))
    client.send(out.open_order_end())


def open_orders(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqOpenOrders (5): this client's live orders."""
    _send_open_orders(state, client, client.client_id)


def all_open_orders(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqAllOpenOrders (16): every client's live orders."""
    _send_open_orders(state, client, None)


def auto_open_orders(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqAutoOpenOrders (15): binds manual TWS orders, of which the sim has none."""
    r.skip()
    log.info("client %s: auto open orders %s (no manual orders in the sim)",
             client.client_id, "on" if r.flag("autoBind") else "off")


def completed_orders(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqCompletedOrders (99): today's filled, cancelled and inactive orders."""
    last_exec: dict[tuple[int, int], int] = {}
    for ex, _ in state.engine.executions():
        last_exec[(ex.client_id, ex.order_id)] = ex.time_ns
    now = state.clock.now_ns()
    for order, status in state.engine.completed_orders():
        ev = state.engine.order_status(order.client_id, order.order_id)
        filled = ev.filled if ev is not None else 0
        done = last_exec.get((order.client_id, order.order_id), now)
        client.send(out.completed_order(order, status, filled, done))
    client.send(out.completed_orders_end())


def executions(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqExecutions (7): today's executions of the account matching the filter."""
    r.skip()
    req_id = r.integer("reqId")
    client_id, account, since = r.integer("clientId"), r.text("acctCode"), r.text("time")
    symbol, _sec_type, _exchange, side = r.text("symbol"), r.text("secType"), r.text(
        "exchange"), r.text("side")
    # IB delivers only the executions since midnight: the day's, also after a restart.
    since_ns = max(_filter_time(since), _midnight(state.clock.now_ns()))
    for ex, commission in state.engine.executions():
        if client_id and ex.client_id != client_id:
            continue
        if (account and ex.account != account) or (symbol and ex.symbol != symbol.upper()):
            continue
        if side and ex.side != {"BUY": "BOT", "SELL": "SLD"}.get(side.upper(), side.upper()):
            continue
        if ex.time_ns < since_ns:
            continue
        client.send(out.exec_details(req_id, ex))
        client.send(out.commission_report(commission.exec_id, commission.commission,
                                           commission.currency, commission.realized_pnl))
    client.send(out.exec_details_end(req_id))


def _midnight(instant_ns: int) -> int:
    """The start of the exchange day of an instant."""
    local = dt.datetime.fromtimestamp(instant_ns // NS, EXCHANGE_TZ)
    return int(local.replace(hour=0, minute=0, second=0).timestamp()) * NS


def _filter_time(text: str) -> int:
    """An execution filter time ``yyyymmdd hh:mm:ss`` (exchange time) as epoch ns."""
    text = text.strip()
    if not text:
        return 0
    try:
        parts = text.replace("-", " ").split()
        local = dt.datetime.strptime(parts[0] + parts[1], "%Y%m%d%H:%M:%S")
    except (ValueError, IndexError) as exc:
        raise MessageError(f"execution filter time {text!r} is not yyyymmdd hh:mm:ss") from exc
    return int(local.replace(tzinfo=EXCHANGE_TZ).timestamp()) * NS


def next_ids(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqIds (8) -> nextValidId."""
    assert client.client_id is not None
    client.send(out.next_valid_id(state.engine.next_valid_id(client.client_id)))
