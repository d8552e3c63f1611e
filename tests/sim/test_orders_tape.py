"""A bracket through a recorded day of BAC, replayed row by row into the matching engine."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path

import pytest

from breakoutd.calendar import day_sessions, exchange_ns
from breakoutd.core.bars import NS
from breakoutd.core.prices import to_micros
from breakoutd.sim.matching import ExecutionEvent, MatchingEngine, OrderStatusEvent, SimOrder
from breakoutd.sim.matching.book import row_prints

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
TAPE = DATA / "tapes" / "BAC_20131007.csv.gz"
DAY = dt.date(2013, 10, 7)
CENT = 10_000

pytestmark = pytest.mark.realdata

Row = tuple[int, int | None, int | None, int | None, int | None, int | None,
            int | None, int | None, int | None, int | None]


def read_rows(path: Path) -> list[Row]:
    """(time, open, high, low, close, volume, bid, bid_size, ask, ask_size) per row."""
    def price(text: str) -> int | None:
        return to_micros(text) if text else None

    def count(text: str) -> int | None:
        return int(text) if text else None

    rows = []
    with gzip.open(path, "rt", newline="") as fh:
        for r in csv.DictReader(fh):
            time = int(dt.datetime.fromisoformat(r["time"]).timestamp()) * NS
            rows.append((time, price(r["open"]), price(r["high"]), price(r["low"]),
                         price(r["close"]), count(r["volume"]), price(r["bid"]),
                         count(r["bid_size"]), price(r["ask"]), count(r["ask_size"])))
    return rows


def expected_exit(rows: list[Row], tp: int, sl: int) -> tuple[int, str]:
    """Scan the tape by the documented rules: the first row that exits, and how."""
    for time, o, h, low, c, vol, bid, _bs, _ask, _as in rows:
        if o is not None and h is not None and low is not None and c is not None:
            for price, _size in row_prints(o, h, low, c, vol):
                if price <= sl:
                    return time, "stop"
                if price > tp:
                    return time, "target"
        if bid is not None and bid >= tp:
            return time, "target"
    raise AssertionError("the bracket never exits on this tape")


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    if not TAPE.exists():
        pytest.skip(f"recorded tape not found: {TAPE}")
    return read_rows(TAPE)


@pytest.mark.parametrize(("tp_cents", "sl_cents", "how"), [(5, 5, "target"), (20, 3, "stop")])
def test_bracket_on_a_recorded_day_exits_where_the_tape_says(
    rows: list[Row], tp_cents: int, sl_cents: int, how: str
) -> None:
    sessions = day_sessions(DAY)
    assert sessions is not None
    clock = [rows[0][0]]
    eng = MatchingEngine(clock=lambda: clock[0], sessions=sessions.session_at)
    start = exchange_ns(DAY, dt.time(9, 35))
    before = [r for r in rows if r[0] + NS <= start]
    after = [r for r in rows if r[0] + NS > start]
    for time, *fields in before:
        clock[0] = time + NS
        eng.on_row(time, "BAC", *fields)

    ask_in_force = next(r[8] for r in reversed(before) if r[8] is not None)
    assert ask_in_force is not None
    tp, sl = ask_in_force + tp_cents * CENT, ask_in_force - sl_cents * CENT
    clock[0] = start
    def bracket_order(order_id: int, action: str, kind: str, price: int, parent: int = 0,
                      transmit: bool = False) -> SimOrder:
        is_stop = kind == "STP"
        return SimOrder(client_id=1, order_id=order_id, symbol="BAC", action=action,
                        total_qty=100, order_type=kind, lmt_price=None if is_stop else price,
                        aux_price=price if is_stop else None, parent_id=parent,
                        transmit=transmit)

    eng.place(bracket_order(1, "BUY", "LMT", ask_in_force))
    eng.place(bracket_order(2, "SELL", "LMT", tp, parent=1))
    events = eng.place(bracket_order(3, "SELL", "STP", sl, parent=1, transmit=True))
    entry = [e for e in events if isinstance(e, ExecutionEvent)]
    assert [(e.shares, e.price) for e in entry] == [(100, ask_in_force)]

    exits: list[tuple[int, ExecutionEvent]] = []
    finals: dict[int, str] = {}
    for time, *fields in after:
        clock[0] = time + NS
        for e in eng.on_row(time, "BAC", *fields):
            if isinstance(e, ExecutionEvent):
                exits.append((time, e))
            elif isinstance(e, OrderStatusEvent) and e.status in ("Filled", "Cancelled"):
                finals[e.order_id] = e.status

    exit_time, scanned = expected_exit(after, tp, sl)
    assert scanned == how  # the case exercises the exit it is named for
    first_time, first = exits[0]
    assert first_time == exit_time
    assert first.order_id == (2 if how == "target" else 3)
    assert sorted(finals.items()) == ([(2, "Filled"), (3, "Cancelled")] if how == "target"
                                      else [(2, "Cancelled"), (3, "Filled")])
    assert sum(e.shares for _, e in exits) == 100
    assert eng.positions()["BAC"][0] == 0
    assert eng.open_orders() == []
