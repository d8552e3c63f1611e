"""IB's market scanner and snapshot quotes, as plain values for the scan (breakoutd.core.scan).

One scan is one ``reqScannerSubscription`` answered by ``scannerData`` up to
``scannerDataEnd`` (ib_async's ``reqScannerDataAsync``, which cancels the
subscription after the end). The scanner says only which contracts, in which
order; the prices, volume and quote of each come from a snapshot of its
market data (``reqMktData`` with ``snapshot``). The filters IB applies
itself (``abovePrice``, ``belowPrice``, ``aboveVolume``) are sent along, so
the broker returns fewer rows the daemon then has to look at.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from ib_async import IB, Contract, ScannerSubscription

from breakoutd.core.prices import to_float
from breakoutd.errors import TemporaryError
from breakoutd.ibkr.convert import price_to_micros, size_to_int
from breakoutd.ibkr.wire.requests import forget_cached_quote

SCAN_TIMEOUT = 20.0  # seconds for the scanner's answer (an unknown code is answered by an error)
SNAPSHOT_TIMEOUT = 5.0


class ScannedContract(NamedTuple):
    """One row of the scanner's answer."""

    rank: int
    symbol: str
    contract: Contract


class Snapshot(NamedTuple):
    """A snapshot of one contract's market data (micros; None: not sent)."""

    last: int | None
    volume: int | None
    bid: int | None
    ask: int | None


def subscription(code: str, rows: int, above_price: int | None, below_price: int | None,
                 above_volume: int | None) -> ScannerSubscription:
    """US stocks by ``code``; prices in micros, the volume in shares."""
    sub = ScannerSubscription(instrument="STK", locationCode="STK.US.MAJOR", scanCode=code,
                              numberOfRows=rows)
    if above_price is not None:
        sub.abovePrice = to_float(above_price)
    if below_price is not None:
        sub.belowPrice = to_float(below_price)
    if above_volume is not None:
        sub.aboveVolume = above_volume
    return sub


async def scanned_contracts(ib: IB, sub: ScannerSubscription) -> list[ScannedContract]:
    """The scanner's rows, ranked; TemporaryError when the broker refuses or does not answer."""
    errors: list[str] = []

    def on_error(req_id: int, code: int, message: str, *_: object) -> None:
        if code == 162 or code == 165 or "scan" in message.lower():
            errors.append(f"error {code}: {message}")

    ib.errorEvent += on_error
    try:
        rows = await asyncio.wait_for(ib.reqScannerDataAsync(sub), SCAN_TIMEOUT)
    except TimeoutError:
        why = errors[-1] if errors else f"no answer within {SCAN_TIMEOUT:g} s"
        raise TemporaryError(f"the scanner ({sub.scanCode}) did not answer: {why}") from None
    finally:
        ib.errorEvent -= on_error
    if errors and not rows:
        raise TemporaryError(f"the scanner ({sub.scanCode}) refused: {errors[-1]}")
    return [ScannedContract(d.rank, d.contractDetails.contract.symbol, d.contractDetails.contract)
            for d in rows if d.contractDetails.contract is not None]


async def snapshot(ib: IB, contract: Contract) -> Snapshot:
    """One snapshot of the contract's last print, day volume and quote."""
    forget_cached_quote(ib, contract)  # an earlier snapshot's quote is not this one's
    try:
        tickers = await asyncio.wait_for(ib.reqTickersAsync(contract), SNAPSHOT_TIMEOUT)
    except TimeoutError:
        return Snapshot(None, None, None, None)
    if not tickers:
        return Snapshot(None, None, None, None)
    t = tickers[0]
    return Snapshot(price_to_micros(t.last), size_to_int(t.volume), price_to_micros(t.bid),
                    price_to_micros(t.ask))
