"""A gateway restart that keeps state: orders, executions, positions and order ids survive."""

from __future__ import annotations

from breakoutd.sim.matching import ExecutionEvent, MatchingEngine, SimOrder
from tests.factories import at, px


def order(order_id: int, action: str, kind: str, price: str, parent: int = 0,
          transmit: bool = True, ref: str = "") -> SimOrder:
    is_stop = kind == "STP"
    return SimOrder(client_id=5, order_id=order_id, symbol="BAC", action=action,
                    total_qty=100, order_type=kind,
                    lmt_price=None if is_stop else px(price),
                    aux_price=px(price) if is_stop else None,
                    parent_id=parent, transmit=transmit, order_ref=ref)


def engine_with_a_filled_bracket() -> MatchingEngine:
    eng = MatchingEngine(clock=lambda: at("10:00:00"))
    eng.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    eng.place(order(11, "BUY", "LMT", "10.05", transmit=False, ref="w1-entry"))
    eng.place(order(12, "SELL", "LMT", "10.50", parent=11, transmit=False, ref="w1-tp"))
    eng.place(order(13, "SELL", "STP", "9.80", parent=11, ref="w1-sl"))
    return eng


def test_restore_keeps_orders_executions_positions_and_ids() -> None:
    before = engine_with_a_filled_bracket()
    state = before.snapshot()
    after = MatchingEngine(clock=lambda: at("10:05:00"))
    after.restore(state)
    assert [(o.order_ref, s) for o, s in after.open_orders(5)] == [
        ("w1-tp", "Submitted"), ("w1-sl", "PreSubmitted")]
    assert [e.order_ref for e, _ in after.executions()] == ["w1-entry"]
    assert after.positions() == {"BAC": (100, px("10.06"))}
    assert after.next_valid_id(5) == 14
    assert after.account_values() == before.account_values()


def test_a_restored_engine_goes_on_matching_and_the_snapshot_is_independent() -> None:
    before = engine_with_a_filled_bracket()
    state = before.snapshot()
    before.cancel(5, 12)  # changes after the snapshot must not leak into it
    after = MatchingEngine(clock=lambda: at("10:05:00"))
    after.restore(state)
    events = after.on_trade("BAC", 0, px("10.51"), 100)
    assert [e.order_ref for e in events if isinstance(e, ExecutionEvent)] == ["w1-tp"]
    assert after.open_orders() == []
    assert after.positions()["BAC"] == (0, 0)
    # A new order after the restart gets fresh perm and exec ids.
    after.on_quote("BAC", 0, px("10.00"), 500, px("10.05"), 500)
    after.place(order(14, "BUY", "LMT", "10.05"))
    execs = [e for e, _ in after.executions()]
    assert len({e.exec_id for e in execs}) == len(execs) == 3
    assert len({e.perm_id for e in execs}) == 3
