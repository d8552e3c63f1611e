"""The sim's instruments: contract lookup, conIds and contract details.

Every symbol of the market is a US stock routed SMART, in USD. Its conId
is derived from the symbol so it is the same on every run, and a few
well-known tickers keep their real IB conIds so logs look familiar.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass

from breakoutd.calendar import IB_TIME_ZONE_ID, liquid_hours_text, trading_hours_text
from breakoutd.core.prices import tick_size
from breakoutd.sim.wire import FieldReader, price_text

_KNOWN_CON_IDS = {"SPY": 756733, "BAC": 10098, "AIG": 2116, "IBM": 8314, "QQQ": 320227571}
_ETFS = {"SPY", "QQQ", "IWM", "DIA"}
_VENUES = {"", "SMART", "NYSE", "ARCA", "ISLAND", "NASDAQ", "AMEX", "BATS", "IEX", "NYSEARCA"}
ORDER_TYPES = "LMT,MKT,STP,STP LMT,DAY,GTC,IOC,OPG"
HOURS_DAYS_AHEAD = 7


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """The 12 contract fields every request carries, as the client sent them."""

    con_id: int
    symbol: str
    sec_type: str
    last_trade: str
    strike: str
    right: str
    multiplier: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str


def read_contract(reader: FieldReader) -> ContractSpec:
    """Read the 12 contract fields at the reader's position."""
    return ContractSpec(
        con_id=reader.integer("conId"), symbol=reader.text("symbol"), sec_type=reader.text("secType"),
        last_trade=reader.text("lastTradeDate"), strike=reader.text("strike"),
        right=reader.text("right"), multiplier=reader.text("multiplier"),
        exchange=reader.text("exchange"), primary_exchange=reader.text("primaryExchange"),
        currency=reader.text("currency"), local_symbol=reader.text("localSymbol"),
        trading_class=reader.text("tradingClass"))


def con_id_for(symbol: str) -> int:
    """The stable conId of a symbol."""
    known = _KNOWN_CON_IDS.get(symbol)
    if known is not None:
        return known
    return 100_000_000 + zlib.crc32(symbol.encode()) % 900_000_000


def primary_exchange_for(symbol: str) -> str:
    """The listing exchange shown for a symbol."""
    return "ARCA" if symbol in _ETFS else "NYSE"


class Instruments:
    """The symbols the sim knows, and matching of client contracts to them."""

    def __init__(self, symbols: list[str]) -> None:
        self.symbols = sorted(symbols)
        self.by_con_id = {con_id_for(s): s for s in self.symbols}

    def resolve(self, spec: ContractSpec) -> str | None:
        """The symbol a client contract means, or None (IB error 200)."""
        if spec.con_id:
            symbol = self.by_con_id.get(spec.con_id)
            if symbol is None or (spec.symbol and spec.symbol.upper() != symbol):
                return None
        else:
            symbol = (spec.symbol or spec.local_symbol).upper()
            if symbol not in self.by_con_id.values():
                return None
        if spec.sec_type not in ("", "STK") or spec.currency not in ("", "USD"):
            return None
        if spec.exchange.upper() not in _VENUES:
            return None
        return symbol


def contract_fields(symbol: str, exchange: str = "SMART") -> list[object]:
    """conId..tradingClass as openOrder, execDetails and position carry them."""
    return [con_id_for(symbol), symbol, "STK", "", 0.0, "", "", exchange, "USD", symbol, symbol]


def contract_details_message(req_id: int, symbol: str, day: dt.date, last_price: int) -> list[object]:
    """Fields of contractDetails (10) at server version 178."""
    days = [day + dt.timedelta(days=i) for i in range(HOURS_DAYS_AHEAD)]
    tick = tick_size(last_price) if last_price else tick_size(1_000_000)
    primary = primary_exchange_for(symbol)
    return [
        10, req_id, symbol, "STK", "", 0.0, "", "SMART", "USD", symbol,
        "NMS", symbol, con_id_for(symbol), price_text(tick),
        "", ORDER_TYPES, f"SMART,{primary},ARCA,ISLAND,BATS,IEX", 1, 0,
        f"{symbol} (simulated)", primary, "", "", "", "",
        IB_TIME_ZONE_ID, trading_hours_text(days), liquid_hours_text(days),
        "", "", 0,  # evRule, evMultiplier, no secIds
        1, "", "", "26", "", "ETF" if symbol in _ETFS else "COMMON",
        "1", "1", "100",  # minSize, sizeIncrement, suggestedSizeIncrement
    ]
