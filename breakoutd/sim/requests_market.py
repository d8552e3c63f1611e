"""Handlers of the market-data and reference requests (client message ids)."""

from __future__ import annotations

import logging

from breakoutd.calendar import exchange_date
from breakoutd.core.bars import NS
from breakoutd.sim import outgoing as out
from breakoutd.sim.contracts import contract_details_message, read_contract
from breakoutd.sim.feeds import REALTIME_BAR_NS, Sub, in_rth, quote_snapshot
from breakoutd.sim.history import (
    HistoryError,
    history_bars,
    parse_bar_size,
    parse_duration,
    parse_end,
)
from breakoutd.sim.pacing import HistoryRequest
from breakoutd.sim.state import Client, GatewayState
from breakoutd.sim.wire import FieldReader

log = logging.getLogger("breakoutd.sim")
NO_SECURITY = "No security definition has been found for the request"
TICK_TYPES = ("Last", "AllLast", "BidAsk", "MidPoint")
# IB's texts for a request id that already streams (code 322, "Error processing request").
DUPLICATE_TICKER = "Error processing request.-'bO' : cause - Duplicate ticker id"
DUPLICATE_HISTORY = ("Error processing request.-'bX' : cause - Duplicate ticker ID for API "
                     "historical data query")


def duplicate(state: GatewayState, client: Client, req_id: int,
              text: str = DUPLICATE_TICKER) -> bool:
    """True (and error 322 sent) when ``req_id`` already streams for this client.

    IB refuses the second request and keeps the first stream, which the
    client's cancel then ends.
    """
    if not state.feeds.holds(client, req_id):
        return False
    client.send(out.error(req_id, 322, text))
    log.info("client %s: duplicate request id %d refused (322)", client.client_id, req_id)
    return True


def _resolve(state: GatewayState, client: Client, req_id: int, r: FieldReader) -> str | None:
    spec = read_contract(r)
    symbol = state.instruments.resolve(spec)
    if symbol is None:
        client.send(out.error(req_id, 200, NO_SECURITY))
        log.info("client %s: unknown contract %s (req %d)", client.client_id,
                 spec.symbol or spec.con_id, req_id)
    return symbol


def contract_details(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqContractDetails (9) -> contractDetails (10) and its end (52)."""
    r.skip()  # version
    req_id = r.integer("reqId")
    symbol = _resolve(state, client, req_id, r)
    if symbol is None:
        return
    now = state.clock.now_ns()
    symbol_state = state.market.states[symbol]
    client.send(contract_details_message(req_id, symbol, exchange_date(now),
                                          symbol_state.last or symbol_state.ask or 0))
    client.send(out.contract_details_end(req_id))


def mkt_data(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqMktData (1): a snapshot, or a stream of ticks while subscribed."""
    r.skip()  # version
    req_id = r.integer("reqId")
    symbol = _resolve(state, client, req_id, r)
    if symbol is None:
        return
    if r.flag("deltaNeutral"):
        r.skip(3)
    r.text("genericTickList")
    snapshot = r.flag("snapshot")
    symbol_state = state.market.states[symbol]
    if snapshot or r.flag("regulatorySnapshot"):
        for msg in quote_snapshot(req_id, symbol_state):
            client.send_md(symbol, msg)
        client.send(out.tick_snapshot_end(req_id))
        return
    if duplicate(state, client, req_id) or not _line_available(state, client, req_id):
        return
    state.feeds.add(Sub(client, req_id, symbol, "quotes"))
    log.info("client %s: streaming quotes for %s (req %d)", client.client_id, symbol, req_id)
    if not state.feeds.paused and symbol not in state.feeds.stalled:
        for msg in quote_snapshot(req_id, symbol_state):
            client.send_md(symbol, msg)


def _line_available(state: GatewayState, client: Client, req_id: int) -> bool:
    if state.feeds.lines_in_use() < state.md_lines:
        return True
    client.send(out.error(req_id, 101, f"Max number of tickers has been reached "
                           f"({state.md_lines} market data lines)."))
    log.info("client %s: market data line limit (%d) reached", client.client_id, state.md_lines)
    return False


def cancel_mkt_data(state: GatewayState, client: Client, r: FieldReader) -> None:
    """cancelMktData (2)."""
    r.skip()
    _cancel(state, client, r.integer("reqId"), "quotes")


def _cancel(state: GatewayState, client: Client, req_id: int, kind: str) -> None:
    if state.feeds.cancel(client, req_id, kind):
        log.info("client %s: cancelled %s (req %d)", client.client_id, kind, req_id)
    else:
        client.send(out.error(req_id, 300, f"Can't find EId with tickerId:{req_id}"))


def realtime_bars(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqRealTimeBars (50): 5-second TRADES bars as they close."""
    r.skip()  # version
    req_id = r.integer("reqId")
    symbol = _resolve(state, client, req_id, r)
    if symbol is None:
        return
    bar_size, what, use_rth = r.integer("barSize"), r.text("whatToShow"), r.flag("useRTH")
    if bar_size != 5 or what.upper() != "TRADES":
        client.send(out.error(req_id, 420, f"Invalid Real-time Query: the sim serves 5-second "
                               f"TRADES bars only (got {bar_size} s {what})"))
        return
    if duplicate(state, client, req_id):
        return
    now = state.clock.now_ns()
    state.feeds.add(Sub(client, req_id, symbol, "rtbars", use_rth=use_rth,
                     next_bucket=now - now % REALTIME_BAR_NS))
    state.wake_replay.set()
    log.info("client %s: realtime bars for %s (req %d)", client.client_id, symbol, req_id)


def cancel_realtime_bars(state: GatewayState, client: Client, r: FieldReader) -> None:
    """cancelRealTimeBars (51)."""
    r.skip()
    _cancel(state, client, r.integer("reqId"), "rtbars")


def historical_data(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqHistoricalData (20): bars from the tape, optionally kept up to date."""
    req_id = r.integer("reqId")
    symbol = _resolve(state, client, req_id, r)
    if symbol is None:
        return
    r.skip()  # includeExpired
    end_text, size_text, duration_text = r.text("endDateTime"), r.text("barSize"), r.text("duration")
    use_rth, what, format_date = r.flag("useRTH"), r.text("whatToShow"), r.integer("formatDate", 1)
    keep = r.flag("keepUpToDate")
    if duplicate(state, client, req_id, DUPLICATE_HISTORY):
        return
    now = state.clock.now_ns()
    try:
        if what.upper() != "TRADES":
            raise HistoryError(f"whatToShow={what} is not served by the sim (TRADES only)")
        if keep and end_text:
            raise HistoryError("keepUpToDate needs an empty end date/time")
        size = parse_bar_size(size_text)
        end = parse_end(end_text, now)
        start = end - parse_duration(duration_text)
    except HistoryError as exc:
        client.send(out.error(req_id, 162, f"Historical Market Data Service error message:{exc}"))
        return
    request = HistoryRequest(symbol, end_text, duration_text, size_text, what.upper(), use_rth)
    refusal = state.history_pacing.refusal(request, size, now)
    if refusal is not None:
        client.send(out.error(req_id, 162, refusal))
        log.info("client %s: history for %s refused: %s", client.client_id, symbol, refusal)
        return
    bars = history_bars(state.market, symbol, start, end, size, use_rth, state.feeds.quiet_bars)
    client.send_md(symbol, out.historical_data(req_id, out.ib_time(start), out.ib_time(end),
                                                bars, format_date), bar=True)
    log.info("client %s: %d bars of %s for %s%s (req %d)", client.client_id, len(bars),
             size_text, symbol, ", kept up to date" if keep else "", req_id)
    if keep:
        if size >= 86_400 * NS:
            client.send(out.error(req_id, 162, "Historical Market Data Service error message:"
                                   "keepUpToDate is served for intraday bars only"))
            return
        state.feeds.add(Sub(client, req_id, symbol, "bars", use_rth=use_rth, size_ns=size,
                         format_date=format_date))


QUOTE_SHOWS = ("BID", "ASK", "MIDPOINT", "BID_ASK")


def head_timestamp(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqHeadTimeStamp (87): the earliest data of the tape, as IB's head timestamp.

    TRADES gives the first trade (in regular hours with useRTH), the quote
    kinds the first quote; formatDate 2 answers epoch seconds, 1 exchange time.
    """
    req_id = r.integer("reqId")
    symbol = _resolve(state, client, req_id, r)
    if symbol is None:
        return
    r.skip()  # includeExpired
    use_rth, what, format_date = r.flag("useRTH"), r.text("whatToShow").upper(), r.integer(
        "formatDate", 1)
    now = state.clock.now_ns()
    if what == "TRADES":
        bars = state.market.bars_between(symbol, 0, now)
        starts = [b.start for b in bars if not use_rth or in_rth(b.start)]
        first = starts[0] if starts else None
    elif what in QUOTE_SHOWS:
        first = state.market.states[symbol].first_quote
        first = first if first is not None and first < now else None
    else:
        client.send(out.error(req_id, 321, f"Error validating request.-'bX' : cause - "
                               f"whatToShow={what} is not one of TRADES, {', '.join(QUOTE_SHOWS)}"))
        return
    if first is None:
        client.send(out.error(req_id, 162, "Historical Market Data Service error message:"
                               "HMDS query returned no data"))
        return
    client.send([88, req_id, str(first // NS) if format_date == 2 else out.ib_time(first)])


def cancel_historical_data(state: GatewayState, client: Client, r: FieldReader) -> None:
    """cancelHistoricalData (25): ends keepUpToDate updates."""
    r.skip()
    req_id = r.integer("reqId")
    if state.feeds.cancel(client, req_id, "bars"):
        log.info("client %s: cancelled bars (req %d)", client.client_id, req_id)


def tick_by_tick(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqTickByTickData (97): every print, or every quote change."""
    req_id = r.integer("reqId")
    symbol = _resolve(state, client, req_id, r)
    if symbol is None:
        return
    tick_type = r.text("tickType")
    if tick_type not in TICK_TYPES:
        client.send(out.error(req_id, 10189, f"Failed to request tick-by-tick data: "
                               f"tick type {tick_type!r} is not one of {', '.join(TICK_TYPES)}"))
        return
    if duplicate(state, client, req_id) or not _line_available(state, client, req_id):
        return
    state.feeds.add(Sub(client, req_id, symbol, "ticks", tick_type=tick_type))
    symbol_state = state.market.states[symbol]
    if tick_type == "BidAsk" and symbol_state.bid is not None and symbol_state.ask is not None:
        client.send_md(symbol, out.tick_by_tick_bid_ask(
            req_id, state.clock.now_ns() // NS, symbol_state.bid, symbol_state.ask,
            symbol_state.bid_size, symbol_state.ask_size))
    log.info("client %s: tick-by-tick %s for %s (req %d)", client.client_id, tick_type,
             symbol, req_id)


def cancel_tick_by_tick(state: GatewayState, client: Client, r: FieldReader) -> None:
    """cancelTickByTickData (98)."""
    _cancel(state, client, r.integer("reqId"), "ticks")


def current_time(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqCurrentTime (49): the virtual clock."""
    client.send(out.current_time(state.clock.now_ns()))


def market_data_type(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqMarketDataType (59): the sim's data is always live (type 1)."""
    r.skip()
    kind = r.integer("marketDataType")
    if kind != 1:
        log.info("client %s asked for market data type %d; the sim serves live data",
                 client.client_id, kind)
