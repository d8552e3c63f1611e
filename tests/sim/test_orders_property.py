"""Invariants of brackets under random markets (hypothesis, derandomized)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from breakoutd.sim.matching import MatchingEngine, SimOrder
from tests.factories import at

CENT = 10_000

price = st.integers(min_value=900, max_value=1100).map(lambda cents: cents * CENT)
size = st.integers(min_value=0, max_value=400)
quote_step = st.tuples(st.just("quote"), price, st.integers(1, 30), size, size)
trade_step = st.tuples(st.just("trade"), price, st.integers(1, 400))
cancel_step = st.tuples(st.just("cancel"), st.sampled_from([1, 2, 3]))
steps = st.lists(st.one_of(quote_step, trade_step, cancel_step), max_size=60)


def sell(order_id: int, qty: int, kind: str, lmt: int | None, aux: int | None) -> SimOrder:
    return SimOrder(client_id=1, order_id=order_id, symbol="T", action="SELL", total_qty=qty,
                    order_type=kind, lmt_price=lmt, aux_price=aux, parent_id=1,
                    transmit=order_id == 3)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(entry=price, qty=st.integers(1, 500), stop_limit=st.booleans(), steps=steps,
       first=quote_step)
def test_a_long_bracket_never_fills_both_children_nor_goes_short(
    entry: int, qty: int, stop_limit: bool, steps: list, first: tuple
) -> None:
    eng = MatchingEngine(clock=lambda: at("10:00:00"))
    tp, sl = entry + 30 * CENT, entry - 30 * CENT
    steps = [first, *steps]
    eng.place(SimOrder(client_id=1, order_id=1, symbol="T", action="BUY", total_qty=qty,
                       order_type="LMT", lmt_price=entry, transmit=False))
    eng.place(sell(2, qty, "LMT", tp, None))
    eng.place(sell(3, qty, "STP LMT" if stop_limit else "STP",
                   sl - 2 * CENT if stop_limit else None, sl))
    for step in steps:
        if step[0] == "quote":
            _, bid, spread, bid_size, ask_size = step
            eng.on_quote("T", 0, bid, bid_size, bid + spread * CENT, ask_size)
        elif step[0] == "trade":
            eng.on_trade("T", 0, step[1], step[2])
        else:
            eng.cancel(1, step[1])
        status = {i: eng.order_status(1, i) for i in (1, 2, 3)}
        filled = {i: s.filled if s else 0 for i, s in status.items()}
        position = eng.positions().get("T", (0, 0))[0]
        assert position >= 0
        assert position == filled[1] - filled[2] - filled[3]
        assert not (status[2] and status[3]
                    and status[2].status == "Filled" and status[3].status == "Filled")
        assert filled[2] + filled[3] <= filled[1]
        assert len(eng.executions()) == len({e.exec_id for e, _ in eng.executions()})
