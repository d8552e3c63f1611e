"""Brackets and OCA groups at the simulated gateway, as ib_async's bracketOrder sends them."""

from __future__ import annotations

from breakoutd.sim.matching import (
    CommissionEvent,
    ExecutionEvent,
    MatchingEngine,
    OpenOrderEvent,
    OrderErrorEvent,
    OrderStatusEvent,
    SimOrder,
)
from tests.factories import ManualClock, at, px


def order(order_id: int, action: str = "BUY", qty: int = 100, kind: str = "LMT",
          lmt: str | None = None, aux: str | None = None, **extra: object) -> SimOrder:
    return SimOrder(client_id=1, order_id=order_id, symbol="BAC", action=action,
                    total_qty=qty, order_type=kind,
                    lmt_price=px(lmt) if lmt else None, aux_price=px(aux) if aux else None,
                    **extra)  # type: ignore[arg-type]


def bracket(eng: MatchingEngine, entry: str = "10.05", tp: str = "10.50", sl: str = "9.80",
            qty: int = 100) -> list:
    """Place parent, take-profit and stop the way ib_async's bracketOrder does."""
    events = eng.place(order(1, qty=qty, lmt=entry, transmit=False))
    events += eng.place(order(2, "SELL", qty, lmt=tp, parent_id=1, transmit=False))
    events += eng.place(order(3, "SELL", qty, "STP", aux=sl, parent_id=1, transmit=True))
    return events


def make_engine() -> MatchingEngine:
    return MatchingEngine(clock=ManualClock(at("10:00:00")))


def trace(events: list) -> list[str]:
    out = []
    for e in events:
        if isinstance(e, OpenOrderEvent):
            out.append(f"open:{e.order.order_id}:{e.status}")
        elif isinstance(e, OrderStatusEvent):
            out.append(f"status:{e.order_id}:{e.status}")
        elif isinstance(e, ExecutionEvent):
            out.append(f"exec:{e.order_id}:{e.shares}@{e.price / 1e6}")
        elif isinstance(e, OrderErrorEvent):
            out.append(f"error:{e.order_id}:{e.code}")
    return out


def status_of(eng: MatchingEngine, order_id: int) -> str:
    status = eng.order_status(1, order_id)
    return "" if status is None else status.status


def test_untransmitted_orders_are_held_silently_until_the_transmitting_child() -> None:
    eng = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.10"), 500)
    assert eng.place(order(1, lmt="10.05", transmit=False)) == []
    assert eng.place(order(2, "SELL", lmt="10.50", parent_id=1, transmit=False)) == []
    assert eng.open_orders() == []
    events = eng.place(order(3, "SELL", kind="STP", aux="9.80", parent_id=1))
    assert trace(events) == [
        "open:1:Submitted", "status:1:Submitted",
        "open:2:PreSubmitted", "status:2:PreSubmitted",
        "open:3:PreSubmitted", "status:3:PreSubmitted"]
    assert [o.order_id for o, _ in eng.open_orders(1)] == [1, 2, 3]


def test_parent_fill_sets_the_children_working_and_the_stop_waits_for_its_trigger() -> None:
    eng = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    events = bracket(eng)
    assert trace(events)[6:] == [
        "exec:1:100@10.05", "open:1:Filled", "status:1:Filled", "status:2:Submitted"]
    assert status_of(eng, 3) == "PreSubmitted"


def test_take_profit_fills_and_the_stop_is_cancelled() -> None:
    eng = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    bracket(eng)
    events = eng.on_trade("BAC", 0, px("10.51"), 300)
    assert trace(events) == [
        "exec:2:100@10.5", "open:2:Filled", "status:2:Filled", "status:3:Cancelled"]
    assert eng.positions() == {"BAC": (0, 0)}
    assert eng.open_orders() == []
    # buy 100 @ 10.05 + $1, sell 100 @ 10.50 - $1: realized 45.00 - 2.00
    reports = [c for _, c in eng.executions()]
    assert [c.commission for c in reports] == [1.0, 1.0]
    assert [c.realized_pnl for c in reports] == [None, 43.0]
    assert eng.account_values()["RealizedPnL"] == "43.00"


def test_stop_fills_and_the_take_profit_is_cancelled() -> None:
    eng = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    bracket(eng)
    eng.on_quote("BAC", 0, px("9.79"), 500, px("9.81"), 500)
    events = eng.on_trade("BAC", 0, px("9.80"), 100)
    assert trace(events) == [
        "status:3:Submitted", "exec:3:100@9.79", "open:3:Filled", "status:3:Filled",
        "status:2:Cancelled"]
    assert eng.positions()["BAC"] == (0, 0)
    # buy 100 @ 10.05 + $1, sell 100 @ 9.79 - $1: realized -26.00 - 2.00
    assert eng.account_values()["RealizedPnL"] == "-28.00"


def test_children_do_not_work_before_the_parent_fills() -> None:
    eng = make_engine()
    eng.on_quote("BAC", 0, px("10.10"), 500, px("10.20"), 500)
    bracket(eng, entry="10.05", tp="10.08", sl="10.00")
    events = eng.on_trade("BAC", 0, px("10.15"), 100) + eng.on_trade("BAC", 0, px("9.90"), 5)
    # The parent fills on the print at 9.90 (through its 10.05 limit), for 5 shares only.
    assert trace(events)[0] == "exec:1:5@10.05"
    assert "exec:2" not in " ".join(trace(events)) and "exec:3" not in " ".join(trace(events))
    assert (status_of(eng, 2), status_of(eng, 3)) == ("PreSubmitted", "PreSubmitted")


def test_a_partial_take_profit_fill_reduces_the_stop() -> None:
    eng = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    bracket(eng)
    events = eng.on_trade("BAC", 0, px("10.51"), 30)
    assert trace(events) == ["exec:2:30@10.5", "status:2:Submitted",
                             "open:3:PreSubmitted", "status:3:PreSubmitted"]
    reduced = [e for e in events if isinstance(e, OpenOrderEvent)][0].order
    assert reduced.total_qty == 70
    eng.on_quote("BAC", 0, px("9.70"), 500, px("9.75"), 500)
    events = eng.on_trade("BAC", 0, px("9.75"), 100)
    assert trace(events)[:2] == ["status:3:Submitted", "exec:3:70@9.7"]
    assert "status:2:Cancelled" in trace(events)
    assert eng.positions()["BAC"] == (0, 0)


def test_cancelling_the_parent_cancels_the_children() -> None:
    eng = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.10"), 500)
    bracket(eng)
    events = eng.cancel(1, 1)
    assert trace(events) == ["status:1:Cancelled", "error:1:202", "status:2:Cancelled",
                             "error:2:202", "status:3:Cancelled", "error:3:202"]


def test_cancelling_a_partly_filled_parent_protects_the_filled_shares() -> None:
    eng = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 40)
    bracket(eng)
    events = eng.cancel(1, 1)
    assert trace(events)[:2] == ["status:1:Cancelled", "error:1:202"]
    working = {o.order_id: (o.total_qty, s) for o, s in eng.open_orders()}
    assert working == {2: (40, "Submitted"), 3: (40, "PreSubmitted")}


def test_a_child_sent_after_the_parent_filled_works_at_once() -> None:
    eng = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    eng.place(order(1, lmt="10.05"))
    events = eng.place(order(2, "SELL", lmt="10.50", parent_id=1))
    assert trace(events) == ["open:2:Submitted", "status:2:Submitted"]


def test_a_child_of_an_unknown_parent_is_rejected() -> None:
    eng = make_engine()
    events = eng.place(order(2, "SELL", lmt="10.50", parent_id=99))
    assert [e.code for e in events if isinstance(e, OrderErrorEvent)] == [201]


def test_explicit_oca_type_1_cancels_the_group_on_any_fill() -> None:
    eng = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.10"), 500)
    eng.place(order(1, lmt="10.05", oca_group="g", oca_type=1))
    eng.place(order(2, lmt="10.04", oca_group="g", oca_type=1))
    events = eng.on_trade("BAC", 0, px("10.04"), 10)  # through 10.05 only, 10 of 100
    assert trace(events) == ["exec:1:10@10.05", "status:1:Submitted", "status:2:Cancelled"]


def test_explicit_oca_type_2_reduces_the_others() -> None:
    eng = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.10"), 500)
    eng.place(order(1, lmt="10.05", oca_group="g", oca_type=2))
    eng.place(order(2, qty=300, lmt="10.04", oca_group="g", oca_type=2))
    eng.on_trade("BAC", 0, px("10.04"), 100)
    assert {o.order_id: o.total_qty for o, _ in eng.open_orders()} == {2: 200}


def test_client_cancel_of_an_oca_order_cancels_its_group() -> None:
    eng = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.10"), 500)
    eng.place(order(1, lmt="10.05", oca_group="g", oca_type=1))
    eng.place(order(2, lmt="10.04", oca_group="g", oca_type=1))
    assert trace(eng.cancel(1, 1)) == ["status:1:Cancelled", "error:1:202", "status:2:Cancelled"]


def test_every_fill_has_exactly_one_commission_report() -> None:
    eng = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    events = bracket(eng) + eng.on_trade("BAC", 0, px("10.51"), 300)
    execs = [e.exec_id for e in events if isinstance(e, ExecutionEvent)]
    reports = [e.exec_id for e in events if isinstance(e, CommissionEvent)]
    assert execs == reports and len(execs) == 2
