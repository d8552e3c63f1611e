"""The order book without a socket: what a status, an execution, a commission and a
reconciled entry do to an entry, and the events and stop moves they return."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

from breakoutd.core import events as ev
from breakoutd.core.params import EntryKind
from breakoutd.core.plans import OrderPlan, Rung
from breakoutd.core.refs import ENTRY, STOP, TAKE_PROFIT, child_ref
from breakoutd.ibkr.order_book import EntryBook, Execution, OrderBook
from breakoutd.ibkr.reconcile import ReconciledEntry, ReconciledFill, ReconciledOrder
from tests.factories import px

REF = "bo:20260309:rth:abc-1"
CLIENT = 7
AT = 1_000


def ladder_plan(qty: int = 300) -> OrderPlan:
    return OrderPlan(
        watcher_id="abc-1", symbol="ABC", order_ref=REF, qty=qty, entry=EntryKind.LIMIT_AT_ASK,
        limit=px("10.00"), reference_price=px("10.00"),
        rungs=(Rung(px("10.50"), 100), Rung(px("11.00"), 100), Rung(px("11.50"), 100)),
        stop=px("9.80"), stop_limit=px("9.78"), oca_group=f"oca:{REF}", outside_rth=False,
        tif="GTC")


def sent_ladder(book: OrderBook, level: str = "10.00") -> EntryBook:
    sent = [(ENTRY, 0, 11), (TAKE_PROFIT, 1, 12), (TAKE_PROFIT, 2, 13), (TAKE_PROFIT, 3, 14),
            (STOP, 0, 15)]
    return book.register(ladder_plan(), px(level), sent, CLIENT)


def fill(ref: str, exec_id: str, qty: int, price: str, side: str = "BOT",
         commission: float | None = None) -> Execution:
    return Execution(exec_id=exec_id, order_ref=ref, side=side, qty=qty, price=px(price),
                     commission=commission)


def test_the_order_book_runs_without_ib_async() -> None:
    code = ("import sys, breakoutd.ibkr.order_book; "
            "print('ib_async' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_a_status_is_emitted_once_and_an_error_rides_on_the_next() -> None:
    book = OrderBook()
    entry = sent_ladder(book)
    parent = entry.parent()
    assert parent is not None and book.order(CLIENT, 11) is parent
    parent.detail = "399 warning"
    first = book.apply_status(parent, "Submitted", 0, 300, AT)
    assert isinstance(first, ev.OrderStatusChanged)
    assert (first.order_ref, first.role, first.status, first.detail) == \
        (REF, "entry", "Submitted", "399 warning")
    assert book.apply_status(parent, "Submitted", 0, 300, AT + 1) is None  # a duplicate
    again = book.apply_status(parent, "Submitted", 100, 200, AT + 2)
    assert again is not None and again.detail == ""


def test_executions_count_once_and_an_entry_fill_prices_the_position() -> None:
    book = OrderBook()
    entry = sent_ladder(book)
    a = book.apply_exec(fill(REF, "e1", 100, "10.00", commission=1.0), AT)
    b = book.apply_exec(fill(REF, "e2", 200, "10.03"), AT)
    assert a is not None and b is not None
    assert book.apply_exec(fill(REF, "e1", 100, "10.00"), AT) is None  # seen before
    assert book.apply_exec(fill("bo:20260309:rth:other", "e3", 1, "1.00"), AT) is None
    assert (entry.entry.filled, entry.entry.avg_price) == (300, px("10.02"))
    assert (b.event.cum_qty, b.event.price, b.event.commission) == (300, Decimal("10.03"), None)
    # e1 came with its commission, e2 without: only e2's report is still to come.
    assert book.apply_commission("e1", REF, 1.0, 0.0, AT) is None
    late = book.apply_commission("e2", REF, 1.5, 0.0, AT)
    assert late is not None and (late.order_ref, late.commission) == (REF, 1.5)
    assert book.apply_commission("e2", REF, 1.5, 0.0, AT) is None


def test_a_rung_fill_returns_the_stop_move_to_the_level_and_a_stop_fill_only_its_size() -> None:
    book = OrderBook()
    entry = sent_ladder(book, level="10.10")
    parent = entry.parent()
    assert parent is not None
    book.apply_exec(fill(REF, "e1", 300, "10.00"), AT)
    book.apply_status(parent, "Filled", 300, 0, AT)
    book.settle(parent)
    assert parent.done.is_set() and entry.entry.status == "filled"
    assert entry.entry.ladder is not None and entry.entry.ladder.stop == px("9.80")

    rung1 = book.apply_exec(fill(child_ref(REF, TAKE_PROFIT, 1), "x1", 100, "10.50", "SLD"), AT)
    assert rung1 is not None and rung1.ladder_move is not None
    old, new = rung1.ladder_move
    assert (old.stop, new.stop, new.stop_qty) == (px("9.80"), px("10.10"), 200)
    entry.entry.ladder = new  # the router's move_stop keeps it

    stop = book.apply_exec(fill(child_ref(REF, STOP), "x2", 50, "10.10", "SLD"), AT)
    assert stop is not None and stop.ladder_move is None
    assert entry.entry.ladder.stop_qty == 150 and entry.entry.sold == 150


def test_an_unknown_ref_is_refused_by_require() -> None:
    book = OrderBook()
    try:
        book.require(REF)
    except Exception as exc:  # noqa: BLE001 - the error tree's OrderRejected
        assert "no such entry" in str(exc)
    else:
        raise AssertionError("require() accepted a ref it does not know")


def test_a_reconciled_ladder_whose_rung_filled_returns_the_missed_stop_move() -> None:
    def order(role: str, rung: int, oid: int, qty: int, filled: int, status: str,
              limit: str | None = None, stop: str | None = None) -> ReconciledOrder:
        return ReconciledOrder(
            order_ref=child_ref(REF, role, rung), role=role, rung=rung,  # type: ignore[arg-type]
            order_id=oid, client_id=CLIENT, perm_id=oid * 10,
            status=status, qty=qty, filled=filled, limit=px(limit) if limit else None,
            stop=px(stop) if stop else None, outside_rth=False, tif="GTC")

    def execution(exec_id: str, role: str, rung: int, oid: int, side: str, qty: int,
                  price: str, commission: float | None) -> ReconciledFill:
        return ReconciledFill(exec_id=exec_id, order_ref=REF, role=role, rung=rung,  # type: ignore[arg-type]
                              order_id=oid, perm_id=oid * 10, side=side, qty=qty,
                              price=px(price), commission=commission)

    orders = (order(ENTRY, 0, 11, 300, 300, "Filled", "10.00"),
              order(TAKE_PROFIT, 1, 12, 100, 100, "Filled", "10.50"),
              order(TAKE_PROFIT, 2, 13, 100, 0, "Submitted", "11.00"),
              order(STOP, 0, 15, 200, 0, "PreSubmitted", "9.78", "9.80"))
    fills = (execution("e1", ENTRY, 0, 11, "BOT", 300, "10.00", 1.0),
             execution("x1", TAKE_PROFIT, 1, 12, "SLD", 100, "10.50", None))
    rec = ReconciledEntry(order_ref=REF, watcher_id="abc-1", symbol="ABC", orders=orders,
                          fills=fills, status="filled", bought=300, sold=100,
                          avg_price=px("10.00"))
    book = OrderBook()
    move = book.adopt(rec, px("10.10"))
    assert move is not None
    old, new = move
    assert (old.stop, new.stop, new.stop_qty) == (px("9.80"), px("10.10"), 200)
    adopted = book.require(REF)
    assert adopted.entry.filled == 300 and adopted.entry.sold == 100
    assert {"e1", "x1"} <= book.execs and "e1" in book.commissions
    assert book.by_ref(child_ref(REF, STOP)) is adopted.orders[(STOP, 0)]
