"""Server-to-client messages at server version 178, as field lists
(versions.py rewrites those whose layout differs for a client at 157..177).

Field orders mirror ib_async 2.1.0's ``decoder.py`` one for one; fields the
sim has no value for are sent empty, which the client parses as its default.
Prices arrive here as integer micro-dollars and leave as exact decimals.
"""

from __future__ import annotations

import datetime as dt

from breakoutd.calendar import EXCHANGE_TZ, IB_TIME_ZONE_ID
from breakoutd.core.bars import NS, Bar
from breakoutd.sim.contracts import contract_fields, primary_exchange_for
from breakoutd.sim.market import AggBar
from breakoutd.sim.matching.values import ExecutionEvent, OrderStatusEvent, SimOrder
from breakoutd.sim.wire import price_text

Fields = list[object]
UNSET_DOUBLE_TEXT = "1.7976931348623157E308"

# Tick types (IB's tick_types page).
BID_SIZE, BID, ASK, ASK_SIZE, LAST, LAST_SIZE, VOLUME = 0, 1, 2, 3, 4, 5, 8
LAST_TIMESTAMP = 45


def ib_time(instant_ns: int) -> str:
    """``YYYYmmdd HH:MM:SS US/Eastern``, the form ib_async parses with its zone."""
    local = dt.datetime.fromtimestamp(instant_ns // NS, EXCHANGE_TZ)
    return f"{local:%Y%m%d %H:%M:%S} {IB_TIME_ZONE_ID}"


def error(req_id: int, code: int, message: str) -> Fields:
    """error (4); the advancedOrderRejectJson field is required at v178."""
    return [4, 2, req_id, code, message, ""]


def managed_accounts(accounts: str) -> Fields:
    """managedAccounts (15)."""
    return [15, 1, accounts]


def next_valid_id(order_id: int) -> Fields:
    """nextValidId (9)."""
    return [9, 1, order_id]


def current_time(instant_ns: int) -> Fields:
    """currentTime (49): epoch seconds."""
    return [49, 1, instant_ns // NS]


def tick_price(req_id: int, tick_type: int, price: int, size: int) -> Fields:
    """tickPrice (1) with its size."""
    return [1, 6, req_id, tick_type, price_text(price), size, 0]


def tick_size(req_id: int, tick_type: int, size: int) -> Fields:
    """tickSize (2)."""
    return [2, 6, req_id, tick_type, size]


def tick_string(req_id: int, tick_type: int, value: str) -> Fields:
    """tickString (46)."""
    return [46, 6, req_id, tick_type, value]


def tick_snapshot_end(req_id: int) -> Fields:
    """tickSnapshotEnd (57)."""
    return [57, 1, req_id]


def market_data_type(req_id: int, kind: int = 1) -> Fields:
    """marketDataType (58): 1 is live."""
    return [58, 1, req_id, kind]


def realtime_bar(req_id: int, agg: AggBar) -> Fields:
    """realtimeBar (50): a 5-second bar."""
    bar = agg.bar
    return [50, 3, req_id, bar.start // NS, price_text(bar.open), price_text(bar.high),
            price_text(bar.low), price_text(bar.close), bar.volume, price_text(agg.wap),
            agg.bar_count]


def bar_date(bar: Bar, format_date: int) -> str:
    """A historical bar's date: epoch seconds (2), exchange text (1), or a day."""
    if bar.size >= 86_400 * NS:
        return f"{dt.datetime.fromtimestamp(bar.start // NS, EXCHANGE_TZ):%Y%m%d}"
    if format_date == 2:
        return str(bar.start // NS)
    return ib_time(bar.start)


def historical_data(req_id: int, start: str, end: str, bars: list[AggBar],
                    format_date: int) -> Fields:
    """historicalData (17)."""
    out: Fields = [17, req_id, start, end, len(bars)]
    for bar, wap, count in bars:
        out += [bar_date(bar, format_date), price_text(bar.open), price_text(bar.high),
                price_text(bar.low), price_text(bar.close), bar.volume, price_text(wap), count]
    return out


def historical_update(req_id: int, agg: AggBar, format_date: int) -> Fields:
    """historicalDataUpdate (90): note close comes before high and low."""
    bar = agg.bar
    return [90, req_id, agg.bar_count, bar_date(bar, format_date), price_text(bar.open),
            price_text(bar.close), price_text(bar.high), price_text(bar.low),
            price_text(agg.wap), bar.volume]


def tick_by_tick_last(req_id: int, kind: int, time_s: int, price: int, size: int,
                      exchange: str) -> Fields:
    """tickByTick (99) of a print: kind 1 Last, 2 AllLast."""
    return [99, req_id, kind, time_s, price_text(price), size, 0, exchange, ""]


def tick_by_tick_bid_ask(req_id: int, time_s: int, bid: int | None, ask: int | None,
                         bid_size: int, ask_size: int) -> Fields:
    """tickByTick (99) of a quote (kind 3)."""
    return [99, req_id, 3, time_s, price_text(bid) if bid else "0", price_text(ask) if ask else "0",
            bid_size, ask_size, 0]


def tick_by_tick_midpoint(req_id: int, time_s: int, mid: int) -> Fields:
    """tickByTick (99) of a midpoint (kind 4)."""
    return [99, req_id, 4, time_s, price_text(mid)]


def contract_details_end(req_id: int) -> Fields:
    """contractDetailsEnd (52)."""
    return [52, 1, req_id]


def open_order_end() -> Fields:
    """openOrderEnd (53)."""
    return [53, 1]


def account_download_end(account: str) -> Fields:
    """accountDownloadEnd (54)."""
    return [54, 1, account]


def exec_details_end(req_id: int) -> Fields:
    """execDetailsEnd (55)."""
    return [55, 1, req_id]


def position(account: str, symbol: str, qty: int, avg_cost: int) -> Fields:
    """position (61)."""
    return [61, 3, account, *contract_fields(symbol, primary_exchange_for(symbol)), qty,
            price_text(avg_cost)]


def position_end() -> Fields:
    """positionEnd (62)."""
    return [62, 1]


def position_multi(req_id: int, account: str, symbol: str, qty: int, avg_cost: int) -> Fields:
    """positionMulti (71)."""
    return [71, 1, req_id, account, *contract_fields(symbol, primary_exchange_for(symbol)), qty,
            price_text(avg_cost), ""]


def position_multi_end(req_id: int) -> Fields:
    """positionMultiEnd (72)."""
    return [72, 1, req_id]


def account_value(tag: str, value: str, currency: str, account: str) -> Fields:
    """updateAccountValue (6)."""
    return [6, 2, tag, value, currency, account]


def portfolio_value(account: str, symbol: str, qty: int, market_price: int, market_value: int,
                    avg_cost: int, unrealized: int, realized: int) -> Fields:
    """updatePortfolio (7)."""
    return [7, 8, *contract_fields(symbol, primary_exchange_for(symbol)), qty,
            price_text(market_price), price_text(market_value), price_text(avg_cost),
            price_text(unrealized), price_text(realized), account]


def account_time(instant_ns: int) -> Fields:
    """updateAccountTime (8): HH:MM exchange time."""
    return [8, 1, f"{dt.datetime.fromtimestamp(instant_ns // NS, EXCHANGE_TZ):%H:%M}"]


def account_update_multi(req_id: int, account: str, tag: str, value: str, currency: str) -> Fields:
    """accountUpdateMulti (73)."""
    return [73, 1, req_id, account, "", tag, value, currency]


def account_update_multi_end(req_id: int) -> Fields:
    """accountUpdateMultiEnd (74)."""
    return [74, 1, req_id]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> Fields:
    """accountSummary (63)."""
    return [63, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> Fields:
    """accountSummaryEnd (64)."""
    return [64, 1, req_id]


def order_status(ev: OrderStatusEvent) -> Fields:
    """orderStatus (3): no version field at v178."""
    return [3, ev.order_id, ev.status, ev.filled, ev.remaining, price_text(ev.avg_fill_price),
            ev.perm_id, ev.parent_id, price_text(ev.last_fill_price), ev.client_id,
            ev.why_held, ""]


def _order_terms(order: SimOrder) -> Fields:
    return [order.action, order.total_qty, order.order_type, price_text(order.lmt_price),
            price_text(order.aux_price), order.tif, order.oca_group, order.account, "O", 0,
            order.order_ref]


def open_order(order: SimOrder, status: str) -> Fields:
    """openOrder (5) of an order in state ``status``."""
    return [
        5, order.order_id, *contract_fields(order.symbol), *_order_terms(order),
        order.client_id, order.perm_id, order.outside_rth, 0, "", "", "", "", "", "",
        # modelCode .. deltaNeutralAuxPrice (29 fields; ocaType 20th, parentId 24th)
        "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
        order.oca_type, "", "", "", order.parent_id, "", "", "", "", "",
        # continuousUpdate .. comboLegsDescrip, then the three empty lists
        "", "", "", "", "", "", "", 0, 0, 0,
        "", "", "",  # scale sizes and increment
        "",  # hedgeType
        "", "", "", "", 0,  # optOutSmartRouting .. notHeld, no delta-neutral contract
        "",  # algoStrategy
        0, 0, status, "", "", "", "", "", "", "", "", "", "", "", "", "", "", 0, 0,
        0,  # no conditions
        "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
        "", "", "",  # duration, postToAts, autoCancelParent
        "", "", "", "", "",  # minTradeQty .. midOffsetAtHalf
    ]


def completed_order(order: SimOrder, status: str, filled: int, completed_ns: int) -> Fields:
    """completedOrder (101) of a finished order."""
    return [
        101, *contract_fields(order.symbol), *_order_terms(order), order.perm_id,
        order.outside_rth, 0, "", "", "", "", "",
        # modelCode .. deltaNeutralAuxPrice (23 fields; ocaType 18th)
        "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
        order.oca_type, "", "", "", "", "",
        "", "", "", "", "", 0, 0, 0,  # continuousUpdate .. comboLegsDescrip, empty lists
        "", "", "",  # scale
        "",  # hedgeType
        "", "", "", 0,  # clearingAccount, clearingIntent, notHeld, no dnc
        "",  # algoStrategy
        0, status, 0, 0,
        0,  # no conditions
        "", "", "", "", "", "", filled, "", "", "", "", "", "", ib_time(completed_ns), status,
        "", "", "", "", "",
    ]


def completed_orders_end() -> Fields:
    """completedOrdersEnd (102)."""
    return [102]


def exec_details(req_id: int, ev: ExecutionEvent) -> Fields:
    """execDetails (11): no version field at v178; pendingPriceRevision last."""
    venue = primary_exchange_for(ev.symbol)
    return [11, req_id, ev.order_id, *contract_fields(ev.symbol, venue), ev.exec_id,
            ib_time(ev.time_ns), ev.account, venue, ev.side, ev.shares, price_text(ev.price),
            ev.perm_id, ev.client_id, 0, ev.cum_qty, price_text(ev.avg_price), ev.order_ref,
            "", "", "", 1, 0]


def commission_report(exec_id: str, commission: float, currency: str,
                      realized_pnl: float | None) -> Fields:
    """commissionReport (59); an opening fill's realized P&L is IB's unset double."""
    realized = UNSET_DOUBLE_TEXT if realized_pnl is None else repr(float(realized_pnl))
    return [59, 1, exec_id, repr(float(commission)), currency, realized, "", ""]
