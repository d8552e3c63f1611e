"""The router's pure half: refs, plan -> orders, statuses, and the ladder arithmetic
of cumulative exits in a reduce-OCA group, checked against a model of the broker."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from ib_async import Order

from breakoutd.core.ladder import credit_rungs, ladder_for, rebuild_ladder
from breakoutd.core.params import EntryKind
from breakoutd.core.plans import OrderPlan, Rung
from breakoutd.core.refs import ENTRY, STOP, TAKE_PROFIT, RefParts, child_ref, parse_ref
from breakoutd.core.slicing import slice_ref
from breakoutd.ibkr.order_book import entry_status
from breakoutd.ibkr.orders_map import PlannedOrder, entry_values, exit_values
from breakoutd.ibkr.slicing import slice_order
from tests.factories import px

REF = "bo:20260309:rth:abc-1"


def plan_to_orders(plan: OrderPlan, account: str, ids: list[int]) -> list[PlannedOrder]:
    """The entry and its exits as ib_async orders, as the sender writes them."""
    entry = PlannedOrder(ENTRY, 0, Order(**entry_values(plan, account, ids[0])))
    return [entry, *(PlannedOrder(role, rung, Order(**values))
                     for role, rung, values in exit_values(plan, account, ids, ids[0]))]


def plan(rungs: tuple[tuple[str, int], ...] = (("10.50", 100),), sl: str | None = "9.80",
         entry: EntryKind = EntryKind.LIMIT_AT_ASK, qty: int = 100) -> OrderPlan:
    return OrderPlan(
        watcher_id="abc-1", symbol="ABC", order_ref=REF, qty=qty, entry=entry,
        limit=px("10.00") if entry is EntryKind.LIMIT_AT_ASK else None,
        reference_price=px("10.00"), rungs=tuple(Rung(px(p), q) for p, q in rungs),
        stop=px(sl) if sl else None, stop_limit=px(sl) - 20_000 if sl else None,
        oca_group=f"oca:{REF}", outside_rth=False, tif="GTC")


def test_refs_parse_back_and_foreign_refs_are_not_ours() -> None:
    assert parse_ref(REF) == RefParts(REF, ENTRY, 0)
    assert parse_ref(child_ref(REF, TAKE_PROFIT, 2)) == RefParts(REF, TAKE_PROFIT, 2)
    assert parse_ref(child_ref(REF, STOP)) == RefParts(REF, STOP, 0)
    for foreign in ("", "w-xyz", "bo:20260309:rth", f"{REF}:tp0", f"{REF}:xx", "x:1:2:3"):
        assert parse_ref(foreign) is None


def test_a_market_entry_without_exits_transmits_itself() -> None:
    [only] = plan_to_orders(plan((), sl=None, entry=EntryKind.MARKET), "DU1", [7])
    o = only.order
    assert (o.orderType, o.action, o.transmit, o.ocaGroup, o.tif, o.account) == (
        "MKT", "BUY", True, "", "GTC", "DU1")


def test_a_lone_exit_needs_no_oca_group() -> None:
    parent, stop = plan_to_orders(plan((), sl="9.80"), "DU1", [7, 8])
    assert (parent.order.transmit, stop.order.transmit) == (False, True)
    assert (stop.role, stop.order.parentId, stop.order.ocaGroup) == (STOP, 7, "")
    assert (stop.order.auxPrice, stop.order.lmtPrice) == (9.80, 9.78)


def test_ladder_rungs_are_sized_cumulatively_in_one_reduce_group() -> None:
    orders = plan_to_orders(plan((("10.20", 150), ("10.40", 100), ("10.60", 50)), qty=300),
                            "DU1", [1, 2, 3, 4, 5])
    assert [(p.role, p.rung, int(p.order.totalQuantity)) for p in orders] == [
        (ENTRY, 0, 300), (TAKE_PROFIT, 1, 150), (TAKE_PROFIT, 2, 250), (TAKE_PROFIT, 3, 300),
        (STOP, 0, 300)]
    assert {(p.order.ocaGroup, p.order.ocaType) for p in orders[1:]} == {(f"oca:{REF}", 2)}
    assert [p.order.orderRef for p in orders] == [
        REF, f"{REF}:tp1", f"{REF}:tp2", f"{REF}:tp3", f"{REF}:sl"]


def test_entry_status() -> None:
    assert entry_status("", 0, 0) == "working"
    assert entry_status("Submitted", 40, 0) == "partially_filled"
    assert entry_status("Filled", 100, 30) == "filled"
    assert entry_status("Cancelled", 40, 0) == "filled"
    assert entry_status("Cancelled", 0, 0) == "cancelled"
    assert entry_status("Inactive", 0, 0) == "rejected"
    assert entry_status("Filled", 100, 100) == "closed"


class Broker:
    """A model of the gateway's reduce-OCA group: a fill cuts every sibling by its size."""

    def __init__(self, totals: list[int]) -> None:
        self.total = list(totals)
        self.filled = [0] * len(totals)
        self.done = [False] * len(totals)

    def remaining(self, i: int) -> int:
        return 0 if self.done[i] else self.total[i] - self.filled[i]

    def fill(self, i: int, qty: int) -> None:
        self.filled[i] += qty
        self.done[i] = self.remaining(i) == 0
        for j in range(len(self.total)):
            if j != i and not self.done[j]:
                self.total[j] -= qty
                self.done[j] = self.total[j] <= self.filled[j]


ladders = st.lists(st.integers(1, 200), min_size=2, max_size=4)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(ladders, st.lists(st.tuples(st.integers(0, 4), st.integers(1, 300)), max_size=12))
def test_cumulative_exits_never_sell_more_than_the_position(qtys: list[int],
                                                            fills: list[tuple[int, int]]) -> None:
    bought = sum(qtys)
    thresholds = [sum(qtys[:n + 1]) for n in range(len(qtys))]
    broker = Broker([*thresholds, bought])  # the rungs, then the stop
    ladder = ladder_for(px("10.00"), tuple(px("11") + n for n in range(len(qtys))),
                        tuple(thresholds), bought, px("9.50"))
    for pick, want in fills:
        i = pick % len(broker.total)
        qty = min(want, broker.remaining(i))
        if qty <= 0:
            continue
        broker.fill(i, qty)
        sold = sum(broker.filled)
        assert sold <= bought
        if i < len(qtys):
            ladder, move = credit_rungs(ladder, qty)
            assert move.qty == ladder.stop_qty
        else:
            ladder = ladder._replace(stop_qty=ladder.stop_qty - qty)
        assert ladder.stop_qty == bought - sold
        assert broker.remaining(len(qtys)) == ladder.stop_qty


@settings(derandomize=True, max_examples=200, deadline=None)
@given(ladders, st.lists(st.tuples(st.integers(0, 3), st.integers(1, 300)), max_size=10))
def test_the_ladder_matches_the_broker_and_rebuilds_from_it(qtys: list[int],
                                                            fills: list[tuple[int, int]]) -> None:
    bought = sum(qtys)
    thresholds = [sum(qtys[:n + 1]) for n in range(len(qtys))]
    prices = tuple(px("11") + 10_000 * n for n in range(len(qtys)))
    broker = Broker([*thresholds, bought])
    ladder = ladder_for(px("10.00"), prices, tuple(thresholds), bought, px("9.50"))
    for pick, want in fills:
        i = pick % len(qtys)
        qty = min(want, broker.remaining(i))
        if qty > 0:
            broker.fill(i, qty)
            ladder, _ = credit_rungs(ladder, qty)
    for n in range(len(qtys)):  # a rung is complete exactly when the broker's is done
        assert (ladder.filled[n] >= ladder.qtys[n]) == broker.done[n]
    if broker.done[-1]:
        return
    view = [(prices[n], None if broker.done[n] else broker.remaining(n))
            for n in range(len(qtys))]
    rung_sold = sum(broker.filled[:-1])
    rebuilt = rebuild_ladder(px("10.00"), view, bought, rung_sold, rung_sold, px("9.50"))
    assert (rebuilt.stop, rebuilt.stop_qty) == (ladder.stop, ladder.stop_qty)
    assert [f >= q for f, q in zip(rebuilt.filled, rebuilt.qtys, strict=True)] == [
        f >= q for f, q in zip(ladder.filled, ladder.qtys, strict=True)]


def test_slice_refs_parse_back_as_entry_orders_with_their_number() -> None:
    assert parse_ref(slice_ref(REF, 1)) == RefParts(REF, ENTRY, 1)
    assert parse_ref(slice_ref(REF, 12)) == RefParts(REF, ENTRY, 12)
    for foreign in (f"{REF}:s0", f"{REF}:s", f"{REF}:sx", f"{REF}:s1:tp1"):
        assert parse_ref(foreign) is None


def test_a_later_slice_is_one_buy_of_its_own_with_the_entrys_terms() -> None:
    o = slice_order(REF, 2, 33, px("10.11"), order_id=12, tif="DAY", outside_rth=True,
                    account="DU1")
    assert (o.orderRef, o.action, o.orderType, o.totalQuantity, o.lmtPrice) == (
        f"{REF}:s2", "BUY", "LMT", 33, 10.11)
    assert (o.transmit, o.parentId, o.ocaGroup, o.tif, o.outsideRth, o.account) == (
        True, 0, "", "DAY", True, "DU1")
    market = slice_order(REF, 3, 33, None, order_id=13, tif="DAY", outside_rth=False,
                         account="DU1")
    assert (market.orderType, market.orderRef) == ("MKT", f"{REF}:s3")
