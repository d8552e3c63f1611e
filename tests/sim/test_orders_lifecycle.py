"""Order life at the simulated gateway: status sequences, sessions, modify, cancel, errors."""

from __future__ import annotations

from breakoutd.calendar import day_sessions
from breakoutd.sim.matching import (
    ExecutionEvent,
    MatchingEngine,
    OpenOrderEvent,
    OrderErrorEvent,
    OrderStatusEvent,
    SimOrder,
)
from tests.factories import DAY, ManualClock, at, px


def session_of(now: int) -> str | None:
    sessions = day_sessions(DAY)
    return None if sessions is None else sessions.session_at(now)


def make_engine(hms: str = "10:00:00") -> tuple[MatchingEngine, ManualClock]:
    clock = ManualClock(at(hms))
    return MatchingEngine(clock=clock, sessions=session_of), clock


def order(order_id: int, action: str = "BUY", qty: int = 100, kind: str = "LMT",
          lmt: str | None = None, aux: str | None = None, client: int = 1,
          **extra: object) -> SimOrder:
    return SimOrder(client_id=client, order_id=order_id, symbol="BAC", action=action,
                    total_qty=qty, order_type=kind,
                    lmt_price=px(lmt) if lmt else None, aux_price=px(aux) if aux else None,
                    **extra)  # type: ignore[arg-type]


def kinds(events: list) -> list[str]:
    """A compact trace: message kind and status or error code."""
    out = []
    for e in events:
        if isinstance(e, OpenOrderEvent):
            out.append(f"open:{e.order.order_id}:{e.status}")
        elif isinstance(e, OrderStatusEvent):
            out.append(f"status:{e.order_id}:{e.status}")
        elif isinstance(e, ExecutionEvent):
            out.append(f"exec:{e.order_id}")
        elif isinstance(e, OrderErrorEvent):
            out.append(f"error:{e.order_id}:{e.code}")
        else:
            out.append(type(e).__name__)
    return out


def errors(events: list) -> list[tuple[int, str]]:
    return [(e.code, e.message) for e in events if isinstance(e, OrderErrorEvent)]


def test_a_filled_order_reports_open_order_status_exec_commission_in_order() -> None:
    eng, _ = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 100, px("10.01"), 100)
    assert kinds(eng.place(order(1, lmt="10.01"))) == [
        "open:1:Submitted", "status:1:Submitted", "exec:1", "open:1:Filled", "status:1:Filled",
        "CommissionEvent", "PositionChanged", "AccountChanged"]


def test_perm_ids_and_exec_ids_are_unique() -> None:
    eng, _ = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 10_000, px("10.01"), 10_000)
    for i in range(1, 6):
        eng.place(order(i, lmt="10.01"))
    execs = [e for e, _ in eng.executions()]
    assert len({e.exec_id for e in execs}) == 5
    assert len({e.perm_id for e in execs}) == 5
    assert all(len(e.exec_id.split(".")) == 4 for e in execs)


def test_limit_without_outside_rth_waits_presubmitted_until_the_open() -> None:
    eng, clock = make_engine("08:00:00")
    eng.on_quote("BAC", 0, px("10.00"), 100, px("10.01"), 100)
    events = eng.place(order(1, lmt="10.05"))
    assert kinds(events) == ["open:1:PreSubmitted", "status:1:PreSubmitted"]
    clock.now = at("09:30:00")
    events = eng.advance()
    assert kinds(events)[:2] == ["status:1:Submitted", "exec:1"]


def test_limit_with_outside_rth_works_in_the_premarket() -> None:
    eng, _ = make_engine("08:00:00")
    eng.on_quote("BAC", 0, px("10.00"), 100, px("10.01"), 100)
    assert "exec:1" in kinds(eng.place(order(1, lmt="10.05", outside_rth=True)))


def test_stop_without_outside_rth_does_not_trigger_after_hours() -> None:
    eng, clock = make_engine("15:59:00")
    eng.on_quote("BAC", 0, px("10.00"), 100, px("10.01"), 100)
    eng.place(order(1, action="SELL", kind="STP", aux="9.90", tif="GTC"))
    clock.now = at("16:30:00")
    assert "exec:1" not in kinds(eng.on_trade("BAC", 0, px("9.50"), 100))


def test_market_order_outside_regular_hours_is_rejected() -> None:
    eng, _ = make_engine("08:00:00")
    eng.on_quote("BAC", 0, px("10.00"), 100, px("10.01"), 100)
    events = eng.place(order(1, kind="MKT", outside_rth=True))
    assert kinds(events) == ["error:1:201", "open:1:Inactive", "status:1:Inactive"]
    assert errors(events)[0][1].startswith("Order rejected - reason:")


def test_day_order_is_cancelled_at_the_close_and_gtc_survives() -> None:
    eng, clock = make_engine("15:00:00")
    eng.on_quote("BAC", 0, px("10.00"), 100, px("10.05"), 100)
    eng.place(order(1, lmt="10.01"))
    eng.place(order(2, lmt="10.01", tif="GTC"))
    eng.place(order(3, lmt="10.01", outside_rth=True))
    clock.now = at("16:00:00")
    assert kinds(eng.advance()) == ["status:1:Cancelled", "status:2:PreSubmitted"]
    clock.now = at("20:00:00")
    assert kinds(eng.advance()) == ["status:3:Cancelled"]
    assert [o.order_id for o, _ in eng.open_orders(1)] == [2]


def test_ioc_fills_what_it_can_and_cancels_the_rest() -> None:
    eng, _ = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 100, px("10.01"), 60)
    events = eng.place(order(1, lmt="10.01", tif="IOC"))
    assert kinds(events)[-1] == "status:1:Cancelled"
    assert eng.positions()["BAC"][0] == 60


def test_modify_changes_price_and_quantity_and_can_make_the_order_marketable() -> None:
    eng, _ = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    eng.place(order(1, lmt="10.01", order_ref="entry-1"))
    events = eng.place(order(1, qty=200, lmt="10.02", order_ref="entry-1"))
    assert kinds(events) == ["open:1:Submitted", "status:1:Submitted"]
    modified = events[0].order
    assert (modified.total_qty, modified.lmt_price, modified.perm_id) == (200, px("10.02"),
                                                                          1_000_000_001)
    events = eng.place(order(1, qty=200, lmt="10.05", order_ref="entry-1"))
    assert [e.shares for e in events if isinstance(e, ExecutionEvent)] == [200]


def test_cancel_reports_cancelled_then_error_202() -> None:
    eng, _ = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    eng.place(order(1, lmt="10.01"))
    events = eng.cancel(1, 1)
    assert kinds(events) == ["status:1:Cancelled", "error:1:202"]
    assert errors(events) == [(202, "Order Canceled - reason:")]
    assert eng.open_orders(1) == []
    assert eng.completed_orders()[0][1] == "Cancelled"


def test_cancel_of_a_filled_order_is_error_10148() -> None:
    eng, _ = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.01"), 500)
    eng.place(order(7, lmt="10.01"))
    assert errors(eng.cancel(1, 7)) == [
        (10148, "OrderId 7 that needs to be cancelled cannot be cancelled, state: Filled.")]


def test_cancel_of_an_unknown_order_is_error_10147() -> None:
    eng, _ = make_engine()
    assert errors(eng.cancel(1, 42)) == [
        (10147, "OrderId 42 that needs to be cancelled is not found.")]


def test_reusing_an_order_id_is_error_103() -> None:
    eng, _ = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    eng.place(order(1, lmt="10.01"))
    eng.cancel(1, 1)
    events = eng.place(order(1, lmt="10.02"))
    assert errors(events) == [(103, "Duplicate order id")]
    assert eng.open_orders() == []


def test_order_ids_are_per_client() -> None:
    eng, _ = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    eng.place(order(1, lmt="10.01", client=1))
    events = eng.place(order(1, lmt="10.02", client=2))
    assert errors(events) == []
    assert [(o.client_id, o.order_id) for o, _ in eng.open_orders()] == [(1, 1), (2, 1)]
    assert [o.client_id for o, _ in eng.open_orders(2)] == [2]


def test_reject_next_rejects_one_order_with_201_then_inactive() -> None:
    eng, _ = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    eng.reject_next(201, "simulated margin check")
    events = eng.place(order(1, lmt="10.01"))
    assert kinds(events) == ["error:1:201", "open:1:Inactive", "status:1:Inactive"]
    assert errors(events) == [(201, "Order rejected - reason:simulated margin check")]
    assert kinds(eng.place(order(2, lmt="10.01"))) == ["open:2:Submitted", "status:2:Submitted"]


def test_price_off_the_tick_is_error_110() -> None:
    eng, _ = make_engine()
    events = eng.place(order(1, lmt="10.015"))
    assert errors(events)[0][0] == 110
    assert eng.open_orders() == []


def test_unsupported_order_type_is_rejected_with_a_reason() -> None:
    eng, _ = make_engine()
    events = eng.place(order(1, kind="TRAIL", aux="0.10"))
    assert errors(events) == [(201, "Order rejected - reason:order type 'TRAIL' is not "
                                    "supported by the simulated gateway")]


def test_next_valid_id_is_one_past_the_highest_id_the_client_used() -> None:
    eng, _ = make_engine()
    assert eng.next_valid_id(1) == 1
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    eng.place(order(17, lmt="10.01"))
    eng.place(order(5, lmt="10.01"))
    assert (eng.next_valid_id(1), eng.next_valid_id(2)) == (18, 1)


def test_global_cancel_cancels_every_clients_orders() -> None:
    eng, _ = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    eng.place(order(1, lmt="10.01", client=1))
    eng.place(order(1, lmt="10.01", client=2))
    events = eng.cancel_all()
    assert [e.code for e in events if isinstance(e, OrderErrorEvent)] == [202, 202]
    assert eng.open_orders() == []


def test_order_status_describes_an_order_for_a_reconnecting_client() -> None:
    eng, _ = make_engine()
    eng.on_quote("BAC", 0, px("10.00"), 60, px("10.01"), 60)
    eng.place(order(3, lmt="10.01", order_ref="w1"))
    status = eng.order_status(1, 3)
    assert status is not None
    assert (status.status, status.filled, status.remaining) == ("Submitted", 60, 40)
    assert eng.order_status(1, 99) is None
