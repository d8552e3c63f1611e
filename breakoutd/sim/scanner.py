"""The market scanner, served from the tapes as known at the virtual instant.

reqScannerParameters (24) answers an XML of the scan codes the sim serves;
reqScannerSubscription (22) ranks the sim's symbols by the data so far and
answers one scannerData (20), which ib_async ends with scannerDataEnd;
cancelScannerSubscription (23) ends it. The codes:

- ``TOP_PERC_GAIN``: the last print over the reference (the last print of an
  earlier day on the tapes, else the day's first print), highest first;
- ``MOST_ACTIVE``: shares traded today so far, most first;
- ``HOT_BY_VOLUME``: shares in the last 5 minutes over the day's mean per
  5 minutes so far, highest first.

``abovePrice`` / ``belowPrice`` (the last print) and ``aboveVolume`` (today's
shares) are honoured; ``numberOfRows`` caps the answer (50 when unset). An
unknown code is answered as IB does, with error 162, and no data.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from breakoutd.calendar import exchange_date, exchange_ns
from breakoutd.core.bars import NS
from breakoutd.sim import outgoing as out
from breakoutd.sim.contracts import con_id_for
from breakoutd.sim.state import Client, GatewayState
from breakoutd.sim.wire import FieldReader

CODES = ("TOP_PERC_GAIN", "HOT_BY_VOLUME", "MOST_ACTIVE")
MAX_ROWS = 50
HOT_WINDOW = 300 * NS
_PARAMETERS_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<ScanParameterResponse>\n'
    "<InstrumentList><Instrument><type>STK</type><name>US Stocks</name></Instrument>"
    "</InstrumentList>\n<LocationTree><Location><locationCode>STK.US.MAJOR</locationCode>"
    "<displayName>US Stocks</displayName></Location></LocationTree>\n<ScanTypeList>"
    + "".join(f"<ScanType><scanCode>{c}</scanCode><instruments>STK</instruments></ScanType>"
              for c in CODES)
    + "</ScanTypeList>\n</ScanParameterResponse>\n"
)


class Candidate(NamedTuple):
    """One symbol's numbers at the virtual instant."""

    symbol: str
    last: int  # micros
    reference: int  # micros
    volume: int
    hot: float


def scanner_parameters(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqScannerParameters (24)."""
    client.send([19, 1, _PARAMETERS_XML])


def _optional(r: FieldReader, what: str) -> float | None:
    value = r.number(what)
    return None if value is None or value >= 1e300 else value


def scanner_subscription(state: GatewayState, client: Client, r: FieldReader) -> None:
    """reqScannerSubscription (22): one ranked answer from the data so far."""
    req_id = r.integer("reqId")
    rows = r.integer("numberOfRows", -1)
    r.skip(2)  # instrument, locationCode
    code = r.text("scanCode")
    above, below = _optional(r, "abovePrice"), _optional(r, "belowPrice")
    above_volume = r.integer("aboveVolume", -1)
    if code not in CODES:
        client.send(out.error(req_id, 162, "Historical Market Data Service error message:"
                               f"Scanner type {code!r} is not supported (served: "
                               f"{', '.join(CODES)})"))
        return
    found = [c for c in candidates(state) if _passes(c, above, below, above_volume)]
    found.sort(key=_ORDER[code])
    count = MAX_ROWS if rows <= 0 else min(rows, MAX_ROWS)
    out_fields: list[object] = [20, 3, req_id, len(found[:count])]
    for rank, c in enumerate(found[:count]):
        out_fields += [rank, con_id_for(c.symbol), c.symbol, "STK", "", 0.0, "", "SMART",
                       "USD", c.symbol, "NMS", c.symbol, "", "", "", ""]
    client.send(out_fields)


def cancel_scanner_subscription(state: GatewayState, client: Client,
                                r: FieldReader) -> None:
    """cancelScannerSubscription (23): the sim's answer is a snapshot, nothing keeps running."""


def _passes(c: Candidate, above: float | None, below: float | None, volume: int) -> bool:
    price = c.last / 1_000_000
    return ((above is None or price > above) and (below is None or price < below)
            and (volume < 0 or c.volume > volume))


_ORDER = {
    "TOP_PERC_GAIN": lambda c: (-(c.last - c.reference) / c.reference, c.symbol),
    "MOST_ACTIVE": lambda c: (-c.volume, c.symbol),
    "HOT_BY_VOLUME": lambda c: (-c.hot, c.symbol),
}


def candidates(state: GatewayState) -> list[Candidate]:
    """Every symbol that printed today by the virtual instant, with its numbers."""
    now = state.clock.now_ns()
    day_start = exchange_ns(exchange_date(now), dt.time(0, 0))
    out_list = []
    for symbol in state.market.symbols:
        today = state.market.bars_between(symbol, day_start, now)
        if not today:
            continue
        before = state.market.bars_between(symbol, 0, day_start)
        reference = before[-1].close if before else today[0].open
        volume = sum(b.volume for b in today)
        recent = sum(b.volume for b in today if b.start >= now - HOT_WINDOW)
        elapsed = max(now - today[0].start, HOT_WINDOW)
        mean = volume * HOT_WINDOW / elapsed
        out_list.append(Candidate(symbol, today[-1].close, reference, volume,
                                  recent / mean if mean else 0.0))
    return out_list
