"""placeOrder messages built from learnt templates are ib_async's own bytes.

The router writes an entry's orders from :class:`OrderTemplates` instead of
ib_async's serialiser. Whatever the broker receives must not depend on which
path wrote it, so every message is held, byte for byte, against what
``Client.placeOrder`` writes for the same order on a real ib_async client
connected to the simulated gateway, over a few hundred seeded random plans
(entry kinds, ladders, stops, sizes, prices, tifs, refs, accounts, contracts).
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

from ib_async import IB, Contract, Order
from ib_async.client import Client
from ib_async.util import UNSET_DOUBLE, UNSET_INTEGER
from ib_async.wrapper import Wrapper

from breakoutd.core.params import EntryKind
from breakoutd.core.plans import OrderPlan, Quote, plan_order
from breakoutd.core.refs import order_ref
from breakoutd.ibkr.orders_map import entry_values, exit_values
from breakoutd.ibkr.orderwire import OrderTemplates, wire_text
from breakoutd.ibkr.readybracket import ready_bracket
from breakoutd.sim import Market
from tests.factories import px, spec
from tests.sim.simkit import at, connect, run, sim, stock, walk

SYMBOLS = ("ABC", "XYZ", "QRS")
ACCOUNTS = ("DU0000001", "DU7654321", "")


def market() -> Market:
    """Three symbols the sim knows (only their contracts matter here)."""
    return Market(walk(1, "ABC", seconds=60) + walk(2, "XYZ", seconds=60, price="12.00")
                  + walk(3, "QRS", seconds=60, price="0.85"))


def ib_async_message(ib: IB, contract: Contract, values: dict[str, Any]) -> str:
    """What ib_async's own serialiser writes for ``Order(**values)`` (nothing is sent)."""
    client: Any = ib.client
    captured: list[str] = []
    order = Order(**{k: v for k, v in values.items() if k != "orderId"})
    client.sendMsg = captured.append
    try:
        client.placeOrder(values["orderId"], contract, order)
    finally:
        del client.sendMsg
    [message] = captured
    return message


def price(rnd: random.Random, low: float, high: float) -> str:
    """A random price as text: 4 decimals below a dollar, cents above."""
    value = rnd.uniform(low, high)
    return f"{value:.4f}" if value < 1 else f"{value:.2f}"


def random_plan(rnd: random.Random, symbol: str) -> OrderPlan:
    """A random plan as the core builds one; retried until the core accepts it."""
    while True:
        ask = price(rnd, 0.2, 400)
        rungs = rnd.choice((0, 1, 1, 2, 3, 4, 6))
        tp = tuple(f"{float(ask) * (1 + 0.01 * (i + 1) + rnd.random() / 50):.2f}"
                   for i in range(rungs))
        split: tuple[str, ...] = ()
        if rungs > 1 and rnd.random() < 0.6:
            weights = [rnd.randint(1, 9) for _ in range(rungs)]
            split = tuple(f"{w / sum(weights):.2f}" for w in weights)
        sl = f"{float(ask) * rnd.uniform(0.7, 0.97):.2f}" if rnd.random() < 0.7 else None
        sized: dict[str, Any] = {}
        if sl is not None and rnd.random() < 0.3:
            sized["risk_usd"] = Decimal(rnd.randint(50, 2000))
        wid = f"{symbol.lower()}-{rnd.randint(0, 10**6)}{rnd.choice(('', '_x', '-é'))}"
        ref = order_ref(f"2026{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}",
                        rnd.choice(("premarket", "rth", "afterhours")), wid)
        watcher = spec("1.00", wid=wid, symbol=symbol, qty=rnd.randint(1, 5000), tp=tp, sl=sl,
                       tp_split=split, entry=rnd.choice(list(EntryKind)),
                       tif=rnd.choice(("DAY", "GTC", "IOC")), rth=rnd.random() < 0.5, **sized)
        quote = Quote(at("09:31:00"), None, None, px(ask), rnd.randint(1, 9) * 100)
        plan = plan_order(watcher, quote, ref)
        if isinstance(plan, OrderPlan):
            return plan


def plan_values(rnd: random.Random, plan: OrderPlan, account: str) -> list[dict[str, Any]]:
    """The attribute dicts of a plan's orders, with random order ids, as the router sends."""
    first = rnd.choice((1, rnd.randint(2, 999), rnd.randint(1000, 2**31 - 100)))
    ids = list(range(first, first + 1 + len(plan.rungs) + (plan.stop is not None)))
    exits = exit_values(plan, account, ids, ids[0])
    return [entry_values(plan, account, ids[0]), *(values for _, _, values in exits)]


def test_messages_from_templates_equal_ib_async_bytes_for_random_plans() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = await connect(gw)
            contracts = [await stock(ib, s) for s in SYMBOLS]
            templates = OrderTemplates(ib.client)
            rnd = random.Random(20260309)
            checked = 0
            seen_types: set[tuple[str, str, bool]] = set()
            for n in range(200):
                contract = rnd.choice(contracts)
                plan = random_plan(rnd, contract.symbol)
                account = rnd.choice(ACCOUNTS)
                for values in plan_values(rnd, plan, account):
                    assert templates.learn(contract, values), values
                    expected = ib_async_message(ib, contract, values)
                    assert templates.message(contract, values) == expected, (n, values)
                    seen_types.add((values["action"], values["orderType"], "ocaType" in values))
                    checked += 1
            # every shape the router sends came up, and learning never sent anything
            assert seen_types == {("BUY", "LMT", False), ("BUY", "MKT", False),
                                  ("SELL", "LMT", False), ("SELL", "LMT", True),
                                  ("SELL", "STP LMT", False), ("SELL", "STP LMT", True)}
            assert checked > 400
            assert gw.engine.open_orders(None) == [] and gw.engine.completed_orders() == []
            ib.disconnect()
    run(body())


def test_an_unlearnt_shape_has_no_message_and_a_learnt_one_serves_every_contract() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = await connect(gw)
            abc, xyz, qrs = [await stock(ib, s) for s in SYMBOLS]
            templates = OrderTemplates(ib.client)
            watcher = spec("10.00", wid="abc-1", symbol="ABC", qty=300,
                           tp=("10.50", "10.80"), sl="9.50")
            plan = plan_order(watcher, Quote(0, None, None, px("10.00"), 100),
                              order_ref("20260309", "rth", "abc-1"))
            assert isinstance(plan, OrderPlan)
            entry = entry_values(plan, gw.account, 41)
            [(_, _, tp1), (_, _, tp2), (_, _, stop)] = exit_values(plan, gw.account,
                                                                   [41, 42, 43, 44], 41)

            assert templates.message(abc, entry) is None  # nothing learnt yet
            assert templates.learn(abc, entry)
            assert templates.message(abc, stop) is None  # another shape
            assert templates.message(abc, {**entry, "account": "DU7654321"}) is None
            assert templates.message(abc, {**entry, "orderType": "MKT"}) is None

            for contract in (abc, xyz, qrs):  # learnt on ABC, served for every symbol
                message = templates.message(contract, entry)
                assert message == ib_async_message(ib, contract, entry)
                assert f"\0{contract.conId}\0{contract.symbol}\0STK\0" in message
            assert templates.message(xyz, entry) != templates.message(abc, entry)

            assert templates.learn(qrs, tp1)  # one rung's template serves the others
            for contract in (abc, xyz):
                assert templates.message(contract, tp2) == ib_async_message(ib, contract, tp2)

            templates.forget()  # a new connection: learnt again before use
            assert templates.message(abc, entry) is None
            ib.disconnect()
    run(body())


def ib_async_field(value: object) -> str:
    """One field as ib_async's ``Client.send`` writes it, without its separator."""
    client: Any = Client(Wrapper(None))  # type: ignore[arg-type, no-untyped-call]
    client.connState = Client.CONNECTED
    captured: list[str] = []
    client.sendMsg = captured.append
    client.send(value)
    [message] = captured
    assert message.endswith("\0")
    return message[:-1]


def test_wire_text_writes_each_field_as_ib_async_does() -> None:
    values: list[object] = [
        True, False, 0, 1, -7, 123_456_789, 2**40, UNSET_INTEGER, UNSET_INTEGER - 1,
        0.0, -0.0, 1.5, 10.25, 0.1234, 1e-7, 1e22, 123456789.125, UNSET_DOUBLE, math.inf,
        -math.inf, math.nan, None, "", "DAY", "bo:20260309:rth:abc-1:tp2", "oca:é", "a b",
    ]
    for value in values:
        assert wire_text(value) == ib_async_field(value), value
    assert [wire_text(v) for v in (True, UNSET_INTEGER, UNSET_DOUBLE, math.inf, None)] == [
        "1", "", "", "Infinite", ""]


def repriced(plan: OrderPlan, rnd: random.Random) -> OrderPlan:
    """The same plan triggered at another ask: only the limit moves (what a ready bracket
    leaves open); a market entry keeps its None limit."""
    if plan.limit is None:
        return plan._replace(reference_price=plan.reference_price + 10_000)
    low = max(plan.stop or 0, 0)
    high = plan.rungs[0].price if plan.rungs else plan.limit * 2
    limit = rnd.randint(low + 1, high - 1) if high - low > 2 else plan.limit
    return plan._replace(limit=limit, reference_price=limit)


def test_brackets_written_ahead_equal_ib_async_bytes_once_ids_and_limit_are_in() -> None:
    async def body() -> None:
        async with sim(market()) as gw:
            ib = await connect(gw)
            contracts = [await stock(ib, s) for s in SYMBOLS]
            templates = OrderTemplates(ib.client)
            rnd = random.Random(20261202)
            checked = 0
            for n in range(150):
                contract = rnd.choice(contracts)
                sample = random_plan(rnd, contract.symbol)
                account = rnd.choice(ACCOUNTS)
                for values in plan_values(rnd, sample, account):  # as prepare() learns them
                    templates.learn(contract, values)
                version = ib.client.serverVersion()
                ready = ready_bracket(templates, contract, sample, account, version)
                assert ready is not None
                plan = repriced(sample, rnd)
                assert ready.fits(plan, contract, account, version)
                sent = plan_values(rnd, plan, account)  # other ids, the trigger's limit
                ids = [v["orderId"] for v in sent]
                written = [ready.parent(plan, ids[0]), *ready.exits(ids)]
                assert written == [ib_async_message(ib, contract, v) for v in sent], n
                checked += len(written)
                # Anything else than ids and the limit is another bracket.
                other = rnd.choice(contracts)
                assert not ready.fits(plan._replace(qty=plan.qty + 1), contract, account, version)
                assert not ready.fits(plan, contract, account + "X", version)
                assert ready.fits(plan, other, account, version) == (other is contract)
                # a gateway of another version (after a reconnect) has other fields
                assert not ready.fits(plan, contract, account, version - 1)
            assert checked > 300
            assert gw.engine.open_orders(None) == [] and gw.engine.completed_orders() == []
            ib.disconnect()
    run(body())
