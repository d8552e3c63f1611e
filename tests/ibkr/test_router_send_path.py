"""The router's send path against the simulated gateway, through the real ib_async
client: an entry written from learnt templates reaches the broker exactly as one
written by ib_async; the journal sync and the state save follow each send before
the next order leaves; refs known at the broker are refused however they became
known (another client, a child order, a reconnect); and the state store saves
"soon" in the next turn of the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from ib_async import IB, Contract, Order

from breakoutd.core import events as ev
from breakoutd.core.params import EntryKind
from breakoutd.core.plans import OrderPlan, Quote, plan_order
from breakoutd.core.refs import order_ref
from breakoutd.daemon.disk import DiskWorker
from breakoutd.daemon.state import FiredEntry, StateStore
from breakoutd.errors import OrderRejected
from breakoutd.ibkr.router import DuplicateOrderError, OrderRouter
from breakoutd.sim import SimGateway
from breakoutd.sim.matching import SimOrder
from tests.factories import spec
from tests.ibkr.test_router import SYMBOL, Events, rising_market
from tests.sim.simkit import DAY, at, connect, px, run, sim, stock, sync

LEVEL = px("10.00")


def make_plan(wid: str, *, ask: str = "9.90", tp: tuple[str, ...] = ("10.50",),
              sl: str | None = "9.50", qty: int = 100, split: tuple[str, ...] = (),
              **params: Any) -> OrderPlan:
    """A plan as the core builds it; the default BUY LMT at 9.90 rests (offered at 10.00)."""
    quote = Quote(at("09:31:00"), px(ask) - 10_000, 500, px(ask), 500)
    # The core refuses an ask below the level, so a resting entry is priced on a level
    # at its ask; the router is handed LEVEL, as the daemon hands it the watcher's.
    watcher = spec(ask if px(ask) < LEVEL else "10.00", wid=wid, symbol=SYMBOL, qty=qty, tp=tp, sl=sl, tp_split=split,
                   **params)
    plan = plan_order(watcher, quote, order_ref(DAY.strftime("%Y%m%d"), "rth", wid))
    assert isinstance(plan, OrderPlan), plan
    return plan


def received(gw: SimGateway, ref: str) -> list[SimOrder]:
    """The orders of an entry as the sim decoded them (live or done), in id order, with
    ids made relative to the bracket and the ref cut out of orderRef and OCA group."""
    orders = sorted((o for o, _ in gw.engine.open_orders(None) + gw.engine.completed_orders()
                     if o.order_ref == ref or o.order_ref.startswith(f"{ref}:")),
                    key=lambda o: o.order_id)
    index = {o.order_id: i for i, o in enumerate(orders)}
    return [dataclasses.replace(
        o, order_id=index[o.order_id], perm_id=0,
        parent_id=index[o.parent_id] if o.parent_id else -1,
        order_ref=o.order_ref.removeprefix(ref), oca_group=o.oca_group.replace(ref, "<ref>"))
        for o in orders]


class PlaceOrderCalls:
    """Counts calls of ib_async's serialiser (``Client.placeOrder``), or of another method,
    and passes them on."""

    def __init__(self, owner: Any, monkeypatch: pytest.MonkeyPatch,
                 method: str = "") -> None:
        self.count = 0
        target = owner if method else owner.client
        name = method or "placeOrder"
        self._real: Callable[..., Any] = getattr(target, name)
        monkeypatch.setattr(target, name, self)

    def __call__(self, *args: Any) -> Any:
        self.count += 1
        return self._real(*args)


def assert_same_orders(a: list[SimOrder], b: list[SimOrder], name: str,
                       but: tuple[str, ...] = ()) -> None:
    """Two brackets the sim received are the same orders, field by field (``but`` these)."""
    assert len(a) == len(b) > 0, name
    for x, y in zip(a, b, strict=True):
        differ = [f.name for f in dataclasses.fields(SimOrder)
                  if f.name not in but and getattr(x, f.name) != getattr(y, f.name)]
        assert differ == [], (name, x.order_ref, differ)


def sent_count(gw: SimGateway) -> int:
    """Every order the sim's engine ever took (live or done)."""
    return len(gw.engine.open_orders(None)) + len(gw.engine.completed_orders())


SHAPES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (the plan sent, the sample the router is prepared with: same shape, other numbers)
    "ladder+stop, GTC, outside RTH": (
        dict(tp=("10.50", "10.70", "10.90"), split=("0.5", "0.3", "0.2"), qty=300, tif="GTC"),
        dict(ask="9.70", tp=("11.00", "11.50"), sl="9.20", qty=40, tif="GTC")),
    "market entry, one take-profit, RTH only": (
        dict(ask="10.00", tp=("11.00",), sl=None, qty=150, entry=EntryKind.MARKET, rth=True),
        dict(ask="10.00", tp=("12.00",), sl=None, qty=5, entry=EntryKind.MARKET, rth=True)),
    "stop only": (dict(ask="9.80", tp=(), sl="9.00", qty=75),
                  dict(ask="9.60", tp=(), sl="8.80", qty=1000)),
    "entry alone": (dict(ask="9.70", tp=(), sl=None, qty=10, tif="GTC"),
                    dict(ask="9.75", tp=(), sl=None, qty=20, tif="GTC")),
}


def test_an_entry_from_templates_reaches_the_broker_as_ib_async_would_send_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        async with sim(rising_market(), start="09:31:00") as gw:
            ib = await connect(gw)
            contract = await stock(ib, SYMBOL)
            calls = PlaceOrderCalls(ib, monkeypatch)
            for n, (name, (sent, sample)) in enumerate(SHAPES.items()):
                brackets = []
                for prepared in (False, True):
                    plan = make_plan(f"abc-{n}-{prepared:d}", **sent)
                    router = OrderRouter(ib, account=gw.account, emit=Events(),
                                         clock=gw.now_ns)  # a router that has learnt nothing
                    if prepared:
                        router.prepare(contract, make_plan(f"sample-{n}", **sample))
                    before = calls.count
                    router.send_now(plan, contract, LEVEL)
                    serialised = calls.count - before
                    # ib_async serialised every order of the unprepared entry, none of the other
                    size = 1 + len(plan.rungs) + (plan.stop is not None)
                    assert serialised == (size if not prepared else 0), name
                    await sync(ib)
                    brackets.append(received(gw, plan.order_ref))
                    router.close()
                assert_same_orders(*brackets, name)

            # ... and that bracket is the one the plan asked for
            ladder = received(gw, make_plan("abc-0-1").order_ref)
            assert [(o.order_ref, o.action, o.order_type, o.total_qty, o.lmt_price, o.aux_price,
                     o.parent_id, o.transmit) for o in ladder] == [
                ("", "BUY", "LMT", 300, px("9.90"), None, -1, False),
                (":tp1", "SELL", "LMT", 150, px("10.50"), None, 0, False),
                (":tp2", "SELL", "LMT", 240, px("10.70"), None, 0, False),
                (":tp3", "SELL", "LMT", 300, px("10.90"), None, 0, False),
                (":sl", "SELL", "STP LMT", 300, px("9.48"), px("9.50"), 0, True)]
            assert {(o.tif, o.outside_rth, o.account, o.symbol) for o in ladder} == {
                ("GTC", True, gw.account, SYMBOL)}
            assert {(o.oca_group, o.oca_type) for o in ladder[1:]} == {("oca:<ref>", 2)}
            market = received(gw, make_plan("abc-1-1", **SHAPES[
                "market entry, one take-profit, RTH only"][0]).order_ref)
            assert [(o.order_type, o.total_qty, o.transmit, o.outside_rth, o.oca_group)
                    for o in market] == [("MKT", 150, False, False, ""),
                                         ("LMT", 150, True, False, "")]
            alone = received(gw, make_plan("abc-3-1", ask="9.70").order_ref)
            assert [(o.order_type, o.transmit, o.parent_id) for o in alone] == [("LMT", True, -1)]
            ib.disconnect()
    run(body())


def test_a_watcher_s_bracket_written_ahead_reaches_the_broker_as_ib_async_would_send_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Prepared with the watcher's own plan at another price, the entry only fills in its
    ids and limit: no serialiser, no template lookup, and the broker gets the same orders."""
    async def body() -> None:
        async with sim(rising_market(), start="09:31:00") as gw:
            ib = await connect(gw)
            contract = await stock(ib, SYMBOL)
            calls = PlaceOrderCalls(ib, monkeypatch)
            for n, (name, (sent, _)) in enumerate(SHAPES.items()):
                brackets = []
                for ahead in (False, True):
                    wid = f"ahead-{n}-{ahead:d}"
                    router = OrderRouter(ib, account=gw.account, emit=Events(), clock=gw.now_ns)
                    plan = make_plan(wid, **sent)
                    if ahead:  # armed: the plan at the level; triggered at the ask
                        router.prepare(contract, make_plan(wid, **{**sent, "ask": "9.60"}))
                        lookups = PlaceOrderCalls(router.sender.templates, monkeypatch, "message")
                    before = calls.count
                    router.send_now(plan, contract, LEVEL)
                    assert calls.count == before + (0 if ahead else len(received_shape(plan)))
                    if ahead:
                        assert lookups.count == 0, name  # the ready bracket, not templates
                    await sync(ib)
                    brackets.append(received(gw, plan.order_ref))
                    router.close()
                general, ahead_sent = brackets  # two watchers: their refs differ
                assert_same_orders(general, ahead_sent, name, but=("order_ref", "oca_group"))
                assert ahead_sent[0].lmt_price == plan.limit  # the trigger's, not the sample's
            ib.disconnect()
    run(body())


def received_shape(plan: OrderPlan) -> list[str]:
    """The roles of a plan's orders (what the serialiser is called for)."""
    return ["entry"] + ["tp"] * len(plan.rungs) + ["sl"] * (plan.stop is not None)


class SlowDisk:
    """The daemon's Durability on a real DiskWorker whose journal sync takes its time:
    each begin() queues a sync noting how many OrderSent events it covers."""

    def __init__(self, disk: DiskWorker, store: StateStore, events: Events, log: list[str],
                 fail: bool = False) -> None:
        self.disk, self.store, self.events, self.log = disk, store, events, log
        self.release = threading.Event()
        self.fail = fail

    def begin(self) -> None:
        covered = len(self.events.of(ev.OrderSent))

        def sync() -> None:
            self.release.wait(5)
            if self.fail:
                raise OSError(28, "No space left on device")
            self.log.append(f"synced {covered}")
        self.log.append(f"begun {covered}")
        self.disk.submit(sync)
        self.store.begin_save()

    def wait(self) -> None:
        self.disk.wait()


def logged_writes(ib: IB, log: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Note every order the client writes to the socket."""
    conn = ib.client.conn
    real = conn.sendMsg

    def send(msg: bytes) -> None:
        if msg[4:6] == b"3\0":  # placeOrder, after the length prefix
            log.append("order")
        real(msg)
    monkeypatch.setattr(conn, "sendMsg", send)


@dataclasses.dataclass
class DiskRig:
    """A router on the sim whose Durability is a SlowDisk on a real DiskWorker."""

    gw: SimGateway
    ib: IB
    contract: Contract
    router: OrderRouter
    store: StateStore
    disk: DiskWorker
    durable: SlowDisk
    log: list[str]


@contextlib.asynccontextmanager
async def disk_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   fail: bool = False) -> AsyncIterator[DiskRig]:
    disk = DiskWorker()
    store = StateStore(tmp_path, DAY, disk)
    try:
        async with sim(rising_market(), start="09:31:00") as gw:
            ib = await connect(gw)
            contract = await stock(ib, SYMBOL)
            events, log = Events(), []
            durable = SlowDisk(disk, store, events, log, fail=fail)
            router = OrderRouter(ib, account=gw.account, emit=events, clock=gw.now_ns,
                                 ids=store, durability=durable)
            logged_writes(ib, log, monkeypatch)
            try:
                yield DiskRig(gw, ib, contract, router, store, disk, durable, log)
            finally:
                router.close()
                ib.disconnect()
    finally:
        durable.release.set()
        disk.close()


def test_the_journal_and_state_follow_each_send_before_the_next_order_leaves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        async with disk_rig(tmp_path, monkeypatch) as rig:
            router, contract, log = rig.router, rig.contract, rig.log

            def on_disk() -> int:
                return StateStore(tmp_path, DAY).state.order_id_high_water

            first = router.send_now(make_plan("abc-1"), contract, LEVEL)
            assert log == ["order"] * 3  # nothing begun on the hot path
            await asyncio.sleep(0)  # one turn of the loop: begun on the disk thread
            assert log == ["order"] * 3 + ["begun 3"]
            await asyncio.sleep(0.05)  # the loop runs on while the disk is busy
            assert log[-1] == "begun 3" and not rig.store.path.exists()
            threading.Timer(0.05, rig.durable.release.set).start()
            second = router.send_now(make_plan("abc-2"), contract, LEVEL)
            # the first entry's sync and state save were done before the second was written
            assert log == ["order"] * 3 + ["begun 3", "synced 3"] + ["order"] * 3
            assert on_disk() == first.stop_id
            await asyncio.sleep(0)
            rig.disk.wait()
            assert log[-2:] == ["begun 6", "synced 6"]
            assert second.stop_id is not None and second.parent_id > first.stop_id
            assert on_disk() == second.stop_id
            await asyncio.sleep(0)
            assert log.count("begun 6") == 1  # once per send, not once per loop turn
            await sync(rig.ib)
            assert sent_count(rig.gw) == 6
    run(body())


def test_an_entry_is_refused_when_the_last_one_is_not_on_disk_but_a_cancel_goes_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        async with disk_rig(tmp_path, monkeypatch, fail=True) as rig:
            router, contract = rig.router, rig.contract
            rig.durable.release.set()
            first = router.send_now(make_plan("abc-1"), contract, LEVEL)
            await asyncio.sleep(0)
            with pytest.raises(OrderRejected, match="No space left on device.*nothing sent"):
                router.send_now(make_plan("abc-2"), contract, LEVEL)
            await sync(rig.ib)
            assert sent_count(rig.gw) == 3
            # Cancelling reduces risk: it goes out although the disk failed again.
            rig.durable.begin()
            await router.cancel_entry(first.order_ref)
            entry = router.entry(first.order_ref)
            assert entry is not None and entry.status == "cancelled"
    run(body())


async def place_foreign(other: IB, contract: Contract, ref: str) -> None:
    """Another client's resting BUY with ``ref``, taken by the sim."""
    other.placeOrder(contract, Order(action="BUY", totalQuantity=10, orderType="LMT",
                                     lmtPrice=9.00, orderRef=ref, tif="DAY"))
    await sync(other)


def refused(ib: IB, contract: Contract, count: int) -> None:
    """Orders of the router's client that the gateway refuses (fractional size): ib_async
    keeps them, the broker never holds them, so they are gone after a reconnect."""
    for i in range(count):
        ib.placeOrder(contract, Order(action="BUY", totalQuantity=0.5, orderType="LMT",
                                      lmtPrice=9.00, orderRef=f"manual-{i}"))


def test_refs_known_at_the_broker_are_refused_also_after_a_reconnect() -> None:
    async def body() -> None:
        async with sim(rising_market(), start="09:31:00") as gw:
            ib = await connect(gw, 1)
            other = await connect(gw, 2)
            contract, theirs = await stock(ib, SYMBOL), await stock(other, SYMBOL)
            events = Events()
            router = OrderRouter(ib, account=gw.account, emit=events, clock=gw.now_ns)
            own = make_plan("abc-own")
            router.send_now(own, contract, LEVEL)
            await asyncio.sleep(0)  # the router has read what ib_async knows by now
            await sync(ib)

            def refuses(plan: OrderPlan) -> None:
                before = (len(events.items), sent_count(gw))
                with pytest.raises(DuplicateOrderError, match=plan.order_ref):
                    router.send_now(plan, contract, LEVEL)
                assert (len(events.items), sent_count(gw)) == before

            # Another client's entry, and another's take-profit rung: the broker holds the refs.
            by_other, by_child = make_plan("abc-other"), make_plan("abc-child")
            await place_foreign(other, theirs, by_other.order_ref)
            await place_foreign(other, theirs, f"{by_child.order_ref}:tp1")
            await place_foreign(other, theirs, make_plan("abc-10").order_ref)
            await ib.reqAllOpenOrdersAsync()  # as reconciliation asks at start-up
            for plan in (by_other, by_child, own):
                refuses(plan)
            await sync(ib)
            assert sent_count(gw) == 3 + 3
            # a ref that is only a string prefix of a known one is not refused
            router.send_now(make_plan("abc-1"), contract, LEVEL)

            # More orders than will come back after a reconnect, then read by the router.
            refused(ib, contract, 4)
            later = make_plan("abc-later")
            router.send_now(later, contract, LEVEL)
            await asyncio.sleep(0)
            read_before = len(ib.wrapper.trades)
            await sync(ib)

            ib.disconnect()
            while 1 in gw.clients:  # the sim frees the client id once it sees the socket close
                await asyncio.sleep(0.005)
            away = make_plan("abc-away")  # placed while the router's client is away
            await place_foreign(other, theirs, away.order_ref)
            await connect(gw, 1, ib=ib)
            await ib.reqAllOpenOrdersAsync()
            refused(ib, contract, 4)  # the new connection's orders outgrow the old count
            trades = ib.wrapper.trades
            refs = [t.order.orderRef for t in trades.values()]
            assert refs.index(away.order_ref) < read_before <= len(trades)
            await sync(ib)
            for plan in (away, by_other, by_child, own, later):
                refuses(plan)
            await sync(ib)
            assert sent_count(gw) == 3 + 3 + 3 + 3 + 1
            router.close()
            other.disconnect()
            ib.disconnect()
    run(body())


def test_mark_fired_soon_writes_after_a_loop_turn_inside_a_loop(tmp_path: Path) -> None:
    store = StateStore(tmp_path, DAY)

    async def body() -> None:
        store.mark_fired("abc-1", FiredEntry("bo:20260309:rth:abc-1", 1, "entered"), soon=True)
        store.mark_fired("abc-2", FiredEntry("bo:20260309:rth:abc-2", 2, "entered"), soon=True)
        assert not store.path.exists()
        await asyncio.sleep(0)
        assert sorted(StateStore(tmp_path, DAY).state.fired) == ["abc-1", "abc-2"]

    asyncio.run(body())


def test_mark_fired_soon_writes_at_once_outside_a_loop(tmp_path: Path) -> None:
    store = StateStore(tmp_path, DAY)
    entry = FiredEntry("bo:20260309:rth:abc-1", 1, "rejected", reason="no_quote")
    store.mark_fired("abc-1", entry, soon=True)
    assert StateStore(tmp_path, DAY).state.fired == {"abc-1": entry}



def test_a_long_ladder_is_prepared_and_sent_from_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ladders of any length: prepare learns every exit, and the entry leaves from templates."""
    async def body() -> None:
        async with sim(rising_market(), start="09:31:00") as gw:
            ib = await connect(gw)
            contract = await stock(ib, SYMBOL)
            calls = PlaceOrderCalls(ib, monkeypatch)
            rungs = tuple(f"{10.5 + i / 10:.2f}" for i in range(8))
            split = ("0.125",) * 8
            router = OrderRouter(ib, account=gw.account, emit=Events(), clock=gw.now_ns)
            router.prepare(contract, make_plan("sample-long", tp=rungs, split=split, qty=800))
            plan = make_plan("abc-long", tp=rungs, split=split, qty=800)
            learnt = calls.count  # prepare serialised probe orders (nothing was sent)
            router.send_now(plan, contract, LEVEL)
            assert calls.count == learnt
            await sync(ib)
            sent = received(gw, plan.order_ref)
            assert [o.order_ref for o in sent] == ["", *(f":tp{i}" for i in range(1, 9)), ":sl"]
            assert [o.total_qty for o in sent[1:-1]] == [100 * i for i in range(1, 9)]
            ib.disconnect()
    run(body())
