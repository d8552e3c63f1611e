"""Matching rules of the simulated gateway: quote fills, trade-through, stops, partials."""

from __future__ import annotations

from breakoutd.sim.matching import (
    ExecutionEvent,
    MatchingEngine,
    OrderStatusEvent,
    SimOrder,
)
from breakoutd.sim.matching.book import row_prints
from tests.factories import ManualClock, at, px


def make_engine() -> MatchingEngine:
    return MatchingEngine(clock=ManualClock(at("10:00:00")))


def order(order_id: int, action: str = "BUY", qty: int = 100, kind: str = "LMT",
          lmt: str | None = None, aux: str | None = None, **extra: object) -> SimOrder:
    return SimOrder(client_id=1, order_id=order_id, symbol="BAC", action=action,
                    total_qty=qty, order_type=kind,
                    lmt_price=px(lmt) if lmt else None, aux_price=px(aux) if aux else None,
                    **extra)  # type: ignore[arg-type]


def quote(eng: MatchingEngine, bid: str, bid_size: int, ask: str, ask_size: int) -> list:
    return eng.on_quote("BAC", 0, px(bid), bid_size, px(ask), ask_size)


def fills(events: list) -> list[tuple[int, int, str]]:
    """(order id, shares, price) of every execution among events."""
    return [(e.order_id, e.shares, str(e.price / 1e6)) for e in events
            if isinstance(e, ExecutionEvent)]


def statuses(events: list, order_id: int) -> list[str]:
    return [e.status for e in events if isinstance(e, OrderStatusEvent) and e.order_id == order_id]


def test_market_buy_fills_at_the_ask_and_market_sell_at_the_bid() -> None:
    eng = make_engine()
    quote(eng, "13.90", 500, "13.91", 500)
    assert fills(eng.place(order(1, kind="MKT"))) == [(1, 100, "13.91")]
    assert fills(eng.place(order(2, action="SELL", kind="MKT"))) == [(2, 100, "13.9")]


def test_limit_at_or_above_the_ask_fills_at_the_ask() -> None:
    eng = make_engine()
    quote(eng, "13.90", 500, "13.91", 500)
    assert fills(eng.place(order(1, lmt="13.95"))) == [(1, 100, "13.91")]
    assert fills(eng.place(order(2, lmt="13.91"))) == [(2, 100, "13.91")]
    assert fills(eng.place(order(3, action="SELL", lmt="13.85"))) == [(3, 100, "13.9")]


def test_limit_below_the_ask_rests_submitted_and_fills_when_the_ask_comes_down() -> None:
    eng = make_engine()
    quote(eng, "13.90", 500, "13.92", 500)
    events = eng.place(order(1, lmt="13.91"))
    assert fills(events) == [] and statuses(events, 1) == ["Submitted"]
    assert fills(quote(eng, "13.89", 500, "13.91", 500)) == [(1, 100, "13.91")]


def test_market_order_waits_for_a_quote() -> None:
    eng = make_engine()
    assert fills(eng.place(order(1, kind="MKT"))) == []
    assert fills(quote(eng, "10.00", 100, "10.01", 100)) == [(1, 100, "10.01")]


def test_resting_buy_limit_fills_at_its_price_on_a_print_strictly_below() -> None:
    eng = make_engine()
    quote(eng, "9.98", 100, "10.02", 100)
    eng.place(order(1, lmt="10.00"))
    assert fills(eng.on_trade("BAC", 0, px("10.00"), 1000)) == []  # at the limit: queue unknown
    assert fills(eng.on_trade("BAC", 0, px("9.99"), 60)) == [(1, 60, "10.0")]  # up to the print
    assert fills(eng.on_trade("BAC", 0, px("9.99"), 500)) == [(1, 40, "10.0")]


def test_resting_sell_limit_fills_on_a_print_strictly_above() -> None:
    eng = make_engine()
    quote(eng, "9.98", 100, "10.02", 100)
    eng.place(order(1, action="SELL", lmt="10.05"))
    assert fills(eng.on_trade("BAC", 0, px("10.05"), 500)) == []
    assert fills(eng.on_trade("BAC", 0, px("10.06"), 500)) == [(1, 100, "10.05")]


def test_partial_fill_takes_the_displayed_size_then_the_next_quotes() -> None:
    eng = make_engine()
    quote(eng, "10.00", 100, "10.01", 100)
    events = eng.place(order(1, qty=250, lmt="10.02"))
    assert fills(events) == [(1, 100, "10.01")]
    partial = [e for e in events if isinstance(e, OrderStatusEvent)][-1]
    assert (partial.status, partial.filled, partial.remaining) == ("Submitted", 100, 150)
    assert fills(quote(eng, "10.00", 100, "10.02", 100)) == [(1, 100, "10.02")]
    assert fills(quote(eng, "10.00", 100, "10.03", 100)) == []  # above the limit
    events = quote(eng, "10.00", 100, "10.02", 300)
    assert fills(events) == [(1, 50, "10.02")]
    final = [e for e in events if isinstance(e, OrderStatusEvent)][-1]
    assert (final.status, final.filled, final.remaining, final.avg_fill_price) == (
        "Filled", 250, 0, px("10.016"))  # (100 * 10.01 + 150 * 10.02) / 250


def test_two_orders_do_not_both_take_the_same_displayed_size() -> None:
    eng = make_engine()
    quote(eng, "10.00", 100, "10.01", 150)
    assert fills(eng.place(order(1, lmt="10.01"))) == [(1, 100, "10.01")]
    assert fills(eng.place(order(2, lmt="10.01"))) == [(2, 50, "10.01")]


def test_older_order_has_priority_on_a_new_quote() -> None:
    eng = make_engine()
    quote(eng, "10.00", 100, "10.05", 100)
    eng.place(order(1, lmt="10.02"))
    eng.place(order(2, lmt="10.03"))
    assert fills(quote(eng, "10.00", 100, "10.01", 150)) == [(1, 100, "10.01"), (2, 50, "10.01")]


def test_buy_stop_triggers_on_a_print_at_the_stop_and_fills_no_better_than_it() -> None:
    eng = make_engine()
    quote(eng, "9.98", 500, "10.00", 500)
    events = eng.place(order(1, kind="STP", aux="10.05"))
    assert statuses(events, 1) == ["PreSubmitted"]
    assert fills(eng.on_trade("BAC", 0, px("10.04"), 100)) == []
    events = eng.on_trade("BAC", 0, px("10.05"), 100)
    # The quote is a second old (ask 10.00): the fill is at the triggering print.
    assert statuses(events, 1) == ["Submitted", "Filled"]
    assert fills(events) == [(1, 100, "10.05")]


def test_sell_stop_fills_at_the_bid_when_the_bid_is_worse_than_the_print() -> None:
    eng = make_engine()
    quote(eng, "9.80", 500, "9.82", 500)
    eng.place(order(1, action="SELL", kind="STP", aux="9.90"))
    assert fills(eng.on_trade("BAC", 0, px("9.89"), 100)) == [(1, 100, "9.8")]


def test_quotes_alone_never_trigger_a_stop() -> None:
    eng = make_engine()
    quote(eng, "10.00", 500, "10.01", 500)
    eng.place(order(1, action="SELL", kind="STP", aux="9.90"))
    assert fills(quote(eng, "9.50", 500, "9.60", 500)) == []


def test_stop_limit_rests_as_a_limit_after_the_trigger() -> None:
    eng = make_engine()
    quote(eng, "10.00", 500, "10.01", 500)
    eng.place(order(1, action="SELL", kind="STP LMT", aux="9.90", lmt="9.88"))
    events = eng.on_trade("BAC", 0, px("9.85"), 100)  # triggers; worst price 9.85 < 9.88
    assert statuses(events, 1) == ["Submitted"] and fills(events) == []
    assert fills(quote(eng, "9.86", 500, "9.87", 500)) == []  # bid below the limit
    assert fills(eng.on_trade("BAC", 0, px("9.89"), 40)) == [(1, 40, "9.88")]
    assert fills(quote(eng, "9.88", 500, "9.89", 500)) == [(1, 60, "9.88")]


def test_a_tape_row_prints_open_low_high_close_with_the_volume_split() -> None:
    assert row_prints(px("10.00"), px("10.10"), px("9.90"), px("10.05"), 400) == [
        (px("10.00"), 100), (px("9.90"), 100), (px("10.10"), 100), (px("10.05"), 100)]
    assert row_prints(px("10.00"), px("10.00"), px("10.00"), px("10.00"), 7) == [(px("10.00"), 7)]
    assert row_prints(px("10.00"), px("10.10"), px("10.00"), px("10.10"), 3) == [
        (px("10.00"), 2), (px("10.10"), 1)]


def test_a_row_fires_the_stop_below_before_the_target_above() -> None:
    eng = make_engine()
    quote(eng, "10.00", 500, "10.01", 500)
    eng.place(order(1, qty=100, kind="MKT"))
    eng.place(order(2, action="SELL", lmt="10.20", oca_group="exit", oca_type=1))
    eng.place(order(3, action="SELL", kind="STP", aux="9.90", oca_group="exit", oca_type=1))
    events = eng.on_row(0, "BAC", px("10.00"), px("10.30"), px("9.80"), px("10.00"), 800,
                        px("9.99"), 100, px("10.00"), 100)
    assert fills(events) == [(3, 100, "9.8")]
    assert statuses(events, 2) == ["Cancelled"]
    assert eng.positions()["BAC"] == (0, 0)


def test_a_row_quote_is_applied_after_its_prints() -> None:
    eng = make_engine()
    quote(eng, "10.00", 500, "10.05", 500)
    eng.place(order(1, lmt="10.02"))
    events = eng.on_row(0, "BAC", px("10.03"), px("10.03"), px("10.03"), px("10.03"), 100,
                        px("10.00"), 100, px("10.02"), 100)
    assert fills(events) == [(1, 100, "10.02")]


def test_a_triggered_stop_limit_never_fills_at_the_quote_from_before_its_trigger() -> None:
    eng = make_engine()
    quote(eng, "9.99", 500, "10.00", 500)  # a second old when the row prints
    eng.place(order(1, kind="STP LMT", aux="10.05", lmt="10.10"))
    events = eng.on_row(0, "BAC", px("10.12"), px("10.15"), px("10.11"), px("10.12"), 400,
                        px("10.12"), 500, px("10.13"), 500)
    assert fills(events) == [] and statuses(events, 1) == ["Submitted"]
    assert fills(quote(eng, "10.08", 500, "10.09", 500)) == [(1, 100, "10.09")]
