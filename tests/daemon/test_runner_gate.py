"""A runner's entry through the day's trading state: a send that fails takes no slot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from breakoutd.core import events as ev
from breakoutd.core.params import RiskLimits
from breakoutd.core.plans import OrderPlan, Quote
from breakoutd.core.watcher import WatcherMachine
from breakoutd.daemon.runner import WatcherRunner
from breakoutd.daemon.trading_day import TradingDay
from breakoutd.errors import OrderRejected
from tests.factories import at, min_bar, px, spec
from tests.sim.simkit import DAY


class Port:
    """The daemon's side of a runner: a fresh quote, and a send that fails or succeeds."""

    def __init__(self, fail: bool, emit: Callable[[ev.Event], None]) -> None:
        self.fail = fail
        self.emit = emit

    async def fresh_quote(self, symbol: str, max_age: int, warmup: float
                          ) -> tuple[Quote | None, int | None]:
        return None, None

    def last_quote(self, symbol: str) -> Quote | None:
        return Quote(at("09:31:00"), px("5.01"), 100, px("5.02"), 100)

    def degraded(self, symbol: str) -> str | None:
        return None

    def send(self, plan: OrderPlan, level: int, announce: Callable[[], None]) -> None:
        if self.fail:
            raise OrderRejected(f"{plan.order_ref}: sending failed (the socket closed)")
        announce()  # the orders are on the socket: the intent is journalled


def entry(tmp_path: Path, fail: bool) -> tuple[TradingDay, list[ev.Event]]:
    day = TradingDay(tmp_path, DAY, RiskLimits(max_positions=1, max_entries_per_day=1))
    events: list[ev.Event] = []

    def emit(e: ev.Event) -> None:  # as the daemon does: journal (here a list), then the ledger
        events.append(e)
        day.observe(e)

    s = spec("5.00", fast=None)
    runner = WatcherRunner(WatcherMachine(s, at("09:30:00"), at("16:00:00")), day="20260309",
                           session_of=lambda _: "rth", emit=emit, clock=lambda: at("09:31:00"),
                           port=Port(fail, emit), gate=day, on_done=lambda _: None)

    async def go() -> None:
        runner.on_close_bar(min_bar(at("09:30:00"), "4.99", "5.03", "4.98", "5.02"))

    asyncio.run(go())
    return day, events


def test_a_failed_send_frees_its_slot_and_its_count(tmp_path: Path) -> None:
    day, events = entry(tmp_path, fail=True)
    assert [(e.reason) for e in events if isinstance(e, ev.Rejected)] == ["order_failed"]
    assert day.ledger.entries == 0 and day.ledger.slots == 0
    assert day.has_fired("TEST@5.00")  # single-fire all the same


def test_a_sent_entry_takes_its_slot(tmp_path: Path) -> None:
    day, events = entry(tmp_path, fail=False)
    assert any(isinstance(e, ev.OrderIntent) for e in events)
    assert day.ledger.entries == 1 and day.ledger.slots == 1
