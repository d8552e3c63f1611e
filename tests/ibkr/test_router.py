"""The order router against the simulated gateway, through the real ib_async client:
brackets, ladders, once-only refs, rejections, cancels, modifies, and the
statuses ib_async gets wrong."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ib_async import IB

from breakoutd.core import events as ev
from breakoutd.core.bars import NS
from breakoutd.core.plans import OrderPlan, Quote, plan_order
from breakoutd.core.refs import order_ref
from breakoutd.daemon.state import StateStore
from breakoutd.ibkr.router import DuplicateOrderError, OrderRouter
from breakoutd.sim import Market, Row, SimGateway
from breakoutd.sim.matching import SimOrder
from tests.factories import spec
from tests.sim.simkit import DAY, at, connect, px, row, run, sim, stock, sync, until

SYMBOL = "ABC"


def steady(start: str, seconds: int, bid: str, ask: str, last: str,
           size: int = 1000) -> list[Row]:
    """The same quote and a print at ``last`` every second."""
    t0 = at(start)
    return [row(t0 + i * NS, SYMBOL, (last, last, last, last, 1000), bid, ask, size, size)
            for i in range(seconds)]


def rising_market() -> Market:
    """9.99/10.00 until 09:32, then 10.25 (09:32), 10.45 (09:33), 10.19 (09:34)."""
    return Market(steady("09:00:00", 32 * 60, "9.99", "10.00", "10.00")
                  + steady("09:32:00", 60, "10.24", "10.25", "10.25")
                  + steady("09:33:00", 60, "10.44", "10.45", "10.45")
                  + steady("09:34:00", 60, "10.18", "10.19", "10.19")
                  + steady("09:35:00", 600, "10.18", "10.19", "10.19"))


def make_plan(wid: str, *, ask: str = "10.00", tp: tuple[str, ...] = ("10.50",),
              sl: str = "9.80", qty: int = 100) -> OrderPlan:
    """A plan priced like the core prices one: BUY LMT at the ask."""
    quote = Quote(at("09:31:00"), px(ask) - 10_000, 500, px(ask), 500)
    # A resting entry (an ask below 10.00) is priced on a level at its ask: the core
    # refuses an ask below the level, and the router is handed its own level anyway.
    level = ask if px(ask) < px("10.00") else "10.00"
    plan = plan_order(spec(level, wid=wid, symbol=SYMBOL, qty=qty, tp=tp, sl=sl), quote,
                      order_ref(DAY.strftime("%Y%m%d"), "rth", wid))
    assert isinstance(plan, OrderPlan), plan
    return plan


@dataclass
class Events:
    """Everything the router emitted, in order."""

    items: list[ev.Event] = field(default_factory=list)

    def __call__(self, event: ev.Event) -> None:
        self.items.append(event)

    def of(self, kind: type[Any], **match: Any) -> list[Any]:
        return [e for e in self.items if isinstance(e, kind)
                and all(getattr(e, k) == v for k, v in match.items())]

    def statuses(self, role: str, rung: int = 0) -> list[tuple[str, int, int]]:
        return [(e.status, e.filled, e.remaining)
                for e in self.of(ev.OrderStatusChanged, role=role, rung=rung)]


@dataclass
class Side:
    """The daemon side: an ib_async client, a router and its events."""

    ib: IB
    router: OrderRouter
    events: Events
    contract: Any

    async def until(self, predicate: Callable[[], bool]) -> None:
        await until(self.ib, predicate)


@contextlib.asynccontextmanager
async def daemon_side(gw: SimGateway, store: StateStore | None = None,
                      client_id: int = 1) -> AsyncIterator[Side]:
    """Connect, qualify ABC and start a router; close it all afterwards."""
    ib = await connect(gw, client_id)
    events = Events()
    router = OrderRouter(ib, account=gw.account, emit=events, clock=gw.now_ns, ids=store)
    try:
        yield Side(ib, router, events, await stock(ib, SYMBOL))
    finally:
        router.close()
        ib.disconnect()


def sim_orders(gw: SimGateway, ref: str) -> dict[str, tuple[SimOrder, str]]:
    """The sim's live orders of an entry by ref suffix (``entry``, ``tp1``, ``sl``)."""
    out = {}
    for order, status in gw.engine.open_orders(None):
        if order.order_ref.startswith(ref):
            out[order.order_ref[len(ref) + 1:] or "entry"] = (order, status)
    return out


def positions(events: Events) -> list[int]:
    """The position after each fill, as the router reported the fills."""
    held, out = 0, []
    for fill in events.of(ev.OrderFilled):
        held += fill.qty if fill.side == "BOT" else -fill.qty
        out.append(held)
    return out


def test_bracket_children_carry_prices_sizes_oca_and_outside_rth_then_tp_fills() -> None:
    async def body() -> None:
        async with sim(rising_market(), start="09:31:00") as gw, daemon_side(gw) as side:
            plan = make_plan("abc-b", tp=("10.20",))
            entry = await side.router.send(plan, side.contract, px("10.00"))
            await side.until(lambda: entry.status == "filled")
            await sync(side.ib)
            orders = sim_orders(gw, plan.order_ref)
            assert sorted(orders) == ["sl", "tp1"]  # the entry filled at once
            tp, tp_status = orders["tp1"]
            sl, sl_status = orders["sl"]
            assert (tp.action, tp.order_type, tp.lmt_price, tp.total_qty) == ("SELL", "LMT",
                                                                              px("10.20"), 100)
            assert (sl.action, sl.order_type, sl.aux_price, sl.lmt_price, sl.total_qty) == (
                "SELL", "STP LMT", px("9.80"), px("9.78"), 100)
            for child in (tp, sl):
                assert child.parent_id == entry.parent_id
                assert (child.oca_group, child.oca_type) == (f"oca:{plan.order_ref}", 2)
                assert (child.outside_rth, child.tif, child.account) == (True, "DAY", gw.account)
            assert (tp_status, sl_status) == ("Submitted", "PreSubmitted")

            await gw.advance_to(at("09:32:01"))
            await side.until(lambda: entry.status == "closed")
            await sync(side.ib)
            assert sim_orders(gw, plan.order_ref) == {}
            e = side.events
            assert [(x.role, x.order_type, x.qty, x.transmit) for x in e.of(ev.OrderSent)] == [
                ("entry", "LMT", 100, False), ("take_profit", "LMT", 100, False),
                ("stop", "STP LMT", 100, True)]
            assert [(f.role, f.side, f.qty, f.price) for f in e.of(ev.OrderFilled)] == [
                ("entry", "BOT", 100, Decimal("10.00")), ("take_profit", "SLD", 100,
                                                          Decimal("10.20"))]
            assert e.statuses("entry")[-1] == ("Filled", 100, 0)
            assert e.statuses("take_profit", 1)[-2:] == [("Submitted", 0, 100), ("Filled", 100, 0)]
            assert e.statuses("stop")[-1] == ("Cancelled", 0, 100)
            order = [(type(x).__name__, getattr(x, "role", ""), getattr(x, "status", ""))
                     for x in e.items if isinstance(x, ev.OrderFilled | ev.OrderStatusChanged)]
            assert order.index(("OrderFilled", "entry", "")) < order.index(
                ("OrderStatusChanged", "entry", "Filled")) < order.index(
                ("OrderFilled", "take_profit", "")) < order.index(
                ("OrderStatusChanged", "stop", "Cancelled"))
            assert len(e.of(ev.OrderIdAssigned)) == 3
            assert [c.commission for c in e.of(ev.CommissionReported)] == [1.0, 1.0]
            assert entry.avg_price == px("10.00") and entry.sold == 100
    run(body())


def test_ladder_rungs_move_and_shrink_the_stop_and_never_go_short() -> None:
    async def body() -> None:
        async with sim(rising_market(), start="09:31:00") as gw, daemon_side(gw) as side:
            plan = make_plan("abc-l", tp=("10.20", "10.40", "10.60"), qty=300)
            entry = await side.router.send(plan, side.contract, px("10.00"))
            await side.until(lambda: entry.status == "filled")
            await sync(side.ib)
            orders = sim_orders(gw, plan.order_ref)
            # cumulative sizes in one reduce-OCA group (see orders_map)
            assert [orders[k][0].total_qty for k in ("tp1", "tp2", "tp3", "sl")] == [
                100, 200, 300, 300]
            moved = side.events.of

            await gw.advance_to(at("09:32:01"))
            await side.until(lambda: len(moved(ev.StopMoved)) == 1)
            await sync(side.ib)
            assert [(m.stop, m.stop_limit, m.qty) for m in moved(ev.StopMoved)] == [
                (Decimal("10.00"), Decimal("9.98"), 200)]
            orders = sim_orders(gw, plan.order_ref)
            sl = orders["sl"][0]
            assert (sl.aux_price, sl.lmt_price, sl.total_qty, sl.outside_rth) == (
                px("10.00"), px("9.98"), 200, True)
            assert [orders[k][0].total_qty for k in ("tp2", "tp3")] == [100, 200]

            await gw.advance_to(at("09:33:01"))
            await side.until(lambda: len(moved(ev.StopMoved)) == 2)
            await sync(side.ib)
            assert (moved(ev.StopMoved)[-1].stop, moved(ev.StopMoved)[-1].qty) == (
                Decimal("10.20"), 100)
            sl = sim_orders(gw, plan.order_ref)["sl"][0]
            assert (sl.aux_price, sl.lmt_price, sl.total_qty) == (px("10.20"), px("10.18"), 100)

            await gw.advance_to(at("09:34:01"))
            await side.until(lambda: entry.status == "closed")
            await sync(side.ib)
            fills = [(f.role, f.rung, f.qty) for f in side.events.of(ev.OrderFilled)]
            assert fills == [("entry", 0, 300), ("take_profit", 1, 100), ("take_profit", 2, 100),
                             ("stop", 0, 100)]
            assert positions(side.events) == [300, 200, 100, 0]
            assert side.events.statuses("take_profit", 3)[-1][0] == "Cancelled"
            assert gw.engine.positions()[SYMBOL][0] == 0
            assert entry.ladder is not None and entry.ladder.stop_qty == 0
    run(body())


def gap_market() -> Market:
    """Quiet at 10.00, then one second printing 10.65: every rung at once."""
    return Market(steady("09:00:00", 32 * 60, "9.99", "10.00", "10.00")
                  + steady("09:32:00", 1, "10.64", "10.65", "10.65")
                  + steady("09:32:01", 600, "10.00", "10.01", "10.00"))


def test_a_gap_through_every_rung_sells_the_position_exactly_once() -> None:
    async def body() -> None:
        async with sim(gap_market(), start="09:31:00") as gw, daemon_side(gw) as side:
            plan = make_plan("abc-g", tp=("10.20", "10.40", "10.60"), qty=300)
            entry = await side.router.send(plan, side.contract, px("10.00"))
            await side.until(lambda: entry.status == "filled")
            await gw.advance_to(at("09:32:05"))
            await side.until(lambda: side.events.statuses("stop")[-1][0] == "Cancelled")
            await sync(side.ib)
            assert positions(side.events) == [300, 200, 100, 0]
            assert gw.engine.positions()[SYMBOL][0] == 0
            assert entry.status == "closed"
            assert side.events.of(ev.StopMoved)[-1].qty == 0
            assert sim_orders(gw, plan.order_ref) == {}
    run(body())


def thin_market() -> Market:
    """Only 150 offered at 10.00 and nothing new until 09:32; then 10.25, then 10.45."""
    return Market(steady("09:00:00", 30 * 60, "9.99", "10.00", "10.00", size=150)
                  + steady("09:32:00", 60, "10.24", "10.25", "10.25")
                  + steady("09:33:00", 600, "10.44", "10.45", "10.45"))


def test_a_partly_filled_entry_that_is_cancelled_ladders_what_it_bought() -> None:
    async def body() -> None:
        async with sim(thin_market(), start="09:31:00") as gw, daemon_side(gw) as side:
            plan = make_plan("abc-p", tp=("10.20", "10.40", "10.60"), qty=300)
            entry = await side.router.send(plan, side.contract, px("10.00"))
            await side.until(lambda: entry.status == "partially_filled")
            await side.router.cancel_entry(plan.order_ref)
            assert (entry.status, entry.filled) == ("filled", 150)
            await sync(side.ib)
            orders = sim_orders(gw, plan.order_ref)  # the broker protects the 150 bought
            assert [orders[k][0].total_qty for k in ("tp1", "tp2", "tp3", "sl")] == [
                100, 150, 150, 150]
            await gw.advance_to(at("09:33:01"))
            await side.until(lambda: entry.status == "closed")
            await sync(side.ib)
            assert positions(side.events) == [150, 50, 0]
            assert [(m.stop, m.qty) for m in side.events.of(ev.StopMoved)] == [
                (Decimal("10.00"), 50), (Decimal("10.20"), 0)]
            assert gw.engine.positions()[SYMBOL][0] == 0
            assert sim_orders(gw, plan.order_ref) == {}
    run(body())


def test_the_same_ref_twice_is_refused_and_nothing_more_is_sent(tmp_path: Path) -> None:
    async def body() -> None:
        store = StateStore(tmp_path, DAY)
        store.state.order_id_high_water = 500
        async with sim(rising_market(), start="09:31:00") as gw, \
                daemon_side(gw, store=store) as side:
            plan = make_plan("abc-d", ask="9.90")
            entry = await side.router.send(plan, side.contract, px("10.00"))
            await side.until(lambda: len(side.events.of(ev.OrderIdAssigned)) == 3)
            with pytest.raises(DuplicateOrderError, match=plan.order_ref):
                await side.router.send(plan, side.contract, px("10.00"))
            await sync(side.ib)
            assert len(sim_orders(gw, plan.order_ref)) == 3
            assert len(side.events.of(ev.OrderSent)) == 3
            # order ids above the persisted high-water mark, which is saved before the send
            assert entry.parent_id > 500
            assert StateStore(tmp_path, DAY).state.order_id_high_water == entry.stop_id
    run(body())


def test_a_rejected_entry_is_reported_inactive_with_the_reason() -> None:
    async def body() -> None:
        async with sim(rising_market(), start="09:31:00") as gw, daemon_side(gw) as side:
            gw.reject_next_order()
            entry = await side.router.send(make_plan("abc-r"), side.contract, px("10.00"))
            await side.until(lambda: entry.status == "rejected")
            [status] = side.events.of(ev.OrderStatusChanged, role="entry")
            assert status.status == "Inactive"
            assert "201" in status.detail and "simulated rejection" in status.detail
            assert not side.events.of(ev.OrderStatusChanged, status="Cancelled")
    run(body())


def test_cancel_entry_cancels_the_unfilled_entry_and_its_exits() -> None:
    async def body() -> None:
        async with sim(rising_market(), start="09:31:00") as gw, daemon_side(gw) as side:
            plan = make_plan("abc-c", ask="9.90")
            entry = await side.router.send(plan, side.contract, px("10.00"))
            await side.until(lambda: len(side.events.of(ev.OrderIdAssigned)) == 3)
            assert len(sim_orders(gw, plan.order_ref)) == 3
            await side.router.cancel_entry(plan.order_ref)
            assert entry.status == "cancelled"
            await side.until(lambda: len(side.events.of(ev.OrderStatusChanged,
                                                        status="Cancelled")) == 3)
            assert sim_orders(gw, plan.order_ref) == {}
            assert not side.events.of(ev.OrderFilled)
    run(body())


def falling_market() -> Market:
    """10.00 until 09:32, then offered at 9.94: a resting BUY at 9.95 fills."""
    return Market(steady("09:00:00", 32 * 60, "9.99", "10.00", "10.00")
                  + steady("09:32:00", 600, "9.93", "9.94", "9.94"))


def test_10148_on_the_cancel_of_a_filled_entry_is_not_taken_for_a_cancel() -> None:
    async def body() -> None:
        async with sim(falling_market(), start="09:31:00") as gw, daemon_side(gw) as side:
            plan = make_plan("abc-f", ask="9.95")
            entry = await side.router.send(plan, side.contract, px("10.00"))
            await side.until(lambda: len(side.events.of(ev.OrderIdAssigned)) == 3)
            await gw.advance_to(at("09:32:01"))  # the entry fills; ib_async has not read it yet
            cancel = asyncio.create_task(side.router.cancel_entry(plan.order_ref))
            await asyncio.sleep(0)
            trade = side.ib.wrapper.trades[(1, entry.parent_id)]
            assert trade.orderStatus.status == "PendingCancel"
            # The gateway's refusal overtakes the fill report: ib_async marks it Cancelled.
            side.ib.wrapper.error(entry.parent_id, 10148, f"OrderId {entry.parent_id} that "
                                  "needs to be cancelled cannot be cancelled, state: Filled.", "")
            assert trade.orderStatus.status != "Cancelled"  # put back by the router
            await cancel
            await sync(side.ib)
            assert entry.status == "filled" and entry.filled == 100
            assert not side.events.of(ev.OrderStatusChanged, status="Cancelled")
            filled = side.events.of(ev.OrderStatusChanged, role="entry", status="Filled")
            assert len(filled) == 1 and filled[0].detail.startswith("10148 ")
            assert sorted(sim_orders(gw, plan.order_ref)) == ["sl", "tp1"]
    run(body())


def test_duplicate_order_status_messages_give_one_event_each() -> None:
    async def body() -> None:
        async with sim(rising_market(), start="09:31:00") as gw, daemon_side(gw) as side:
            gw.duplicate_order_status(True)
            plan = make_plan("abc-u")
            entry = await side.router.send(plan, side.contract, px("10.00"))
            await side.until(lambda: entry.status == "filled")
            await side.router.modify_exits(plan.order_ref, (px("10.60"),), None)
            await side.until(lambda: len(side.events.of(ev.OrderModified)) == 1)
            await sync(side.ib)
            await sync(side.ib)
            for role, rung in (("entry", 0), ("take_profit", 1), ("stop", 0)):
                seen = side.events.statuses(role, rung)
                assert seen and len(seen) == len(set(seen)), (role, seen)
            assert side.events.statuses("take_profit", 1) == [
                ("PreSubmitted", 0, 100), ("Submitted", 0, 100)]
    run(body())


def test_modify_exits_moves_take_profit_and_stop_at_the_broker() -> None:
    async def body() -> None:
        async with sim(rising_market(), start="09:31:00") as gw, daemon_side(gw) as side:
            plan = make_plan("abc-m")
            entry = await side.router.send(plan, side.contract, px("10.00"))
            await side.until(lambda: entry.status == "filled")
            await side.router.modify_exits(plan.order_ref, (px("10.60"),), px("9.70"))
            await sync(side.ib)
            orders = sim_orders(gw, plan.order_ref)
            tp, sl = orders["tp1"][0], orders["sl"][0]
            assert (tp.lmt_price, tp.total_qty, tp.outside_rth) == (px("10.60"), 100, True)
            assert (sl.aux_price, sl.lmt_price, sl.total_qty, sl.outside_rth) == (
                px("9.70"), px("9.68"), 100, True)
            assert [(m.role, m.limit, m.stop) for m in side.events.of(ev.OrderModified)] == [
                ("take_profit", Decimal("10.60"), None),
                ("stop", Decimal("9.68"), Decimal("9.70"))]
            with pytest.raises(Exception, match="2 take-profit prices for 1 rungs"):
                await side.router.modify_exits(plan.order_ref, (px("10.60"), px("10.70")), None)
    run(body())
