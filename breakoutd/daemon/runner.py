"""One armed watcher in the live daemon: bars in, decisions and entries out.

The rules are the core's :class:`WatcherMachine`; this class only turns its
decisions into events and, on a trigger, into an entry: a fresh quote (with
``quote_warmup`` and one snapshot, strategy.md), the plan, the day's limits
(the trading day's gate), the connection's health, then the router.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Protocol

from breakoutd.core import events as ev
from breakoutd.core.bars import NS, Bar
from breakoutd.core.near_miss import NearMiss, NearMissTally
from breakoutd.core.plans import OrderPlan, PlanTemplate, Quote, Rejection
from breakoutd.core.prices import to_decimal, to_decimal_or_none
from breakoutd.core.refs import order_ref
from breakoutd.core.variants import NearMiss as BarNearMiss
from breakoutd.core.watcher import Expiry, Trigger, WatcherMachine, WatcherState
from breakoutd.daemon.state import FiredEntry


class EntryPort(Protocol):
    """What a runner needs from the daemon to enter."""

    async def fresh_quote(self, symbol: str, max_age: int, warmup: float
                          ) -> tuple[Quote | None, int | None]: ...

    def send(self, plan: OrderPlan, level: int, announce: Callable[[], None]) -> None: ...

    def last_quote(self, symbol: str) -> Quote | None: ...

    def degraded(self, symbol: str) -> str | None:
        """Why the broker connection or the symbol's data cannot be trusted now, or None."""


class EntryGate(Protocol):
    """What a runner needs from the day's trading state: single-fire and the risk check."""

    def mark_fired(self, watcher_id: str, entry: FiredEntry, *, soon: bool = False) -> None: ...

    def check(self, plan: OrderPlan) -> Rejection | None: ...


def near_miss_event(watcher_id: str, miss: BarNearMiss) -> ev.NearMiss:
    """The journal's view of a core near miss (the mean volume to two decimals)."""
    mean = None if miss.mean is None else (
        Decimal(miss.mean.numerator) / miss.mean.denominator).quantize(Decimal("0.01"))
    bar = miss.bar
    return ev.NearMiss(at=bar.end, watcher_id=watcher_id, kind=miss.kind, bar_start=bar.start,
                       close=to_decimal(bar.close), volume=bar.volume, mean_volume=mean)



class WatcherRunner:
    """Feeds one machine and acts on its single decision."""

    def __init__(self, machine: WatcherMachine, *, day: str, session_of: Callable[[int], str],
                 emit: Callable[[ev.Event], None], clock: Callable[[], int],
                 port: EntryPort, gate: EntryGate,
                 on_done: Callable[[WatcherRunner], None]) -> None:
        self.machine = machine
        self.spec = machine.spec
        self._day = day
        self._session_of = session_of
        self._emit = emit
        self._clock = clock
        self._port = port
        self._gate = gate
        self._on_done = on_done
        self._max_age = int(machine.spec.params.quote_age * NS)
        self._templates: dict[str, PlanTemplate] = {}  # by session: see _template
        self._broke = False
        self.task: asyncio.Task[None] | None = None
        self.outcome: str | None = None
        self.last_price: int | None = None
        self.tally = NearMissTally(machine.level, machine.thresholds)  # for NearMissed

    def sample_plan(self, at: int) -> OrderPlan | None:
        """The plan an entry at the level would have at ``at`` (for the router to prepare)."""
        level = self.spec.level
        plan = self._template(at).at_quote(Quote(at, level, 100, level, 100))
        return None if isinstance(plan, Rejection) else plan

    @property
    def order_refs(self) -> list[str]:
        """The orderRefs of the sessions this runner has planned an entry for."""
        return [t.ref for t in self._templates.values()]

    def _template(self, at: int) -> PlanTemplate:
        """The entry plan, up to its price, of a trigger at ``at`` (its session's orderRef)."""
        session = self._session_of(at)
        template = self._templates.get(session)
        if template is None:
            ref = order_ref(self._day, session, self.spec.id)
            template = self._templates[session] = PlanTemplate(self.spec, ref)
        return template

    # --- bars ------------------------------------------------------------------------

    def on_fast_bar(self, bar: Bar) -> None:
        """A closed 1-second bar."""
        self.last_price = bar.close
        trigger = self.machine.on_fast_bar(bar)
        broke = (not self._broke and bar.close >= self.machine.level
                 and self.machine.fast_bar_in_window(bar))
        self._broke = self._broke or broke

        def break_detected() -> None:
            if broke:
                self._emit(ev.BreakDetected(at=bar.end, watcher_id=self.spec.id,
                                            price=to_decimal(bar.close)))

        if trigger is None:
            if self.machine.state is WatcherState.ARMED and self.machine.fast_bar_in_window(bar):
                self.tally.fast(bar)
            break_detected()
            return

        def triggered() -> ev.Event:  # built after the send (Decimals are slow)
            break_detected()  # the price went through the level before the rule fired
            return ev.FastTriggered(at=trigger.at, watcher_id=self.spec.id, bar_start=bar.start,
                                    high=to_decimal(bar.high), low=to_decimal(bar.low),
                                    close=to_decimal(bar.close))

        self._enter(trigger, triggered)

    def on_close_bar(self, bar: Bar) -> None:
        """A closed close-rule bar."""
        self.last_price = bar.close
        armed = self.machine.state is WatcherState.ARMED
        decision = self.machine.on_close_bar(bar)
        if armed and not isinstance(decision, Trigger) and self.machine.close_bar_in_window(bar):
            self.tally.close(bar)
        if isinstance(decision, Trigger):
            self._enter(decision, lambda: ev.Confirmed(
                at=decision.at, watcher_id=self.spec.id, bar_start=bar.start,
                close=to_decimal(bar.close), kind=decision.kind))  # type: ignore[arg-type]
            return
        miss = self.machine.near_miss
        if miss is not None:
            self.machine.near_miss = None
            self._emit(near_miss_event(self.spec.id, miss))
        if isinstance(decision, Expiry):
            self._expire(decision)

    def on_time(self, now: int) -> None:
        """Disarm at the end of the window."""
        expiry = self.machine.on_time(now)
        if expiry is not None:
            self._expire(expiry)

    def _expire(self, expiry: Expiry) -> None:
        self.outcome = "expired"
        self._emit(ev.Expired(at=expiry.at, watcher_id=self.spec.id, reason=expiry.reason,
                              bars_evaluated=expiry.bars_evaluated))
        self._emit(near_missed(self.spec.id, "expired", expiry.at, self.tally.result()))
        self._on_done(self)

    # --- entry -----------------------------------------------------------------------

    def _enter(self, trigger: Trigger, triggered: Callable[[], ev.Event]) -> None:
        """Enter at once with a fresh quote; else wait for one in a task (warmup, snapshot).

        The hot path: the machine's decision to the orders on the socket with no
        journal write, log line or trip through the event loop in between; the
        trigger and intent events follow right after the send."""
        quote = self._port.last_quote(self.spec.symbol)
        now = self._clock()
        if quote is not None and quote.valid_ask() is not None and now - quote.time <= self._max_age:
            self._decide(trigger, triggered, quote, now - quote.time)
            return
        self._emit(triggered())
        self.task = asyncio.get_running_loop().create_task(self._entry_after_warmup(trigger))

    async def _entry_after_warmup(self, trigger: Trigger) -> None:
        max_age = self._max_age
        quote, age = await self._port.fresh_quote(self.spec.symbol, max_age,
                                                  float(self.spec.params.quote_warmup))
        if quote is None or age is None or age > max_age:
            stale = self._port.last_quote(self.spec.symbol)
            limit = stale.valid_ask() if stale is not None else None
            self._reject(trigger, Rejection(
                "quote_stale", "no fresh ask after the warmup and a snapshot", limit),
                age / NS if age is not None else None)
            return
        self._decide(trigger, None, quote, age)

    def _decide(self, trigger: Trigger, triggered: Callable[[], ev.Event] | None, quote: Quote,
                age: int) -> None:
        spec = self.spec
        age_s = age / NS
        template = self._template(trigger.at)
        ref = template.ref
        plan = template.at_quote(quote)
        if not isinstance(plan, Rejection):
            limited = self._limits(plan)
            plan = limited if limited is not None else plan
        if isinstance(plan, Rejection):
            if triggered is not None:
                self._emit(triggered())
            self._reject(trigger, plan, age_s)
            return

        def announce() -> None:  # right after the orders are on the socket
            if triggered is not None:
                self._emit(triggered())
            self._emit(_intent(plan, trigger))

        # A crash right after the send cannot send twice: the broker keeps the
        # orderRef, and start-up reconciles by it before arming anything.
        try:
            self._port.send(plan, spec.level, announce)
        except Exception as exc:  # the broker refused: the watcher is done either way
            self._gate.mark_fired(spec.id, FiredEntry(ref, trigger.at, "rejected", str(exc),
                                                      trigger.kind))
            self._reject(trigger, Rejection("order_failed", str(exc), plan.limit), age_s,
                         record=False)
            return
        self._gate.mark_fired(spec.id, FiredEntry(ref, trigger.at, "entered", kind=trigger.kind),
                              soon=True)
        self.outcome = "entered"
        self._on_done(self)

    def _limits(self, plan: OrderPlan) -> Rejection | None:
        """The day's limits, then the connection and the data (strategy.md, Risk limits)."""
        limited = self._gate.check(plan)
        if limited is not None:
            return limited
        degraded = self._port.degraded(self.spec.symbol)
        return None if degraded is None else Rejection("degraded", degraded, plan.limit)

    def _reject(self, trigger: Trigger, r: Rejection, age: float | None,
                record: bool = True) -> None:
        if record:
            ref = self._template(trigger.at).ref
            self._gate.mark_fired(self.spec.id, FiredEntry(ref, trigger.at, "rejected", r.reason,
                                                           trigger.kind))
        self.outcome = "rejected"
        self._emit(ev.Rejected(at=self._clock(), watcher_id=self.spec.id, reason=r.reason,
                               kind=trigger.kind, trigger_at=trigger.at,  # type: ignore[arg-type]
                               quote_age=age, limit=to_decimal_or_none(r.limit), detail=r.detail))
        self._emit(near_missed(self.spec.id, "rejected", self._clock(), self.tally.result()))
        self._on_done(self)


def near_missed(watcher_id: str, outcome: str, at: int, nm: NearMiss) -> ev.NearMissed:
    """The NearMissed event of a tally."""
    return ev.NearMissed(
        at=at, watcher_id=watcher_id, outcome=outcome, level=to_decimal(nm.level),
        closest=to_decimal_or_none(nm.closest), closest_at=nm.closest_at, seconds=nm.seconds,
        seconds_closed_above=nm.seconds_closed_above, bars_closed_above=nm.bars_closed_above,
        touched=nm.touched, failed_distance=nm.failed_distance, failed_close=nm.failed_close,
        failed_spread=nm.failed_spread)


def _intent(plan: OrderPlan, trigger: Trigger) -> ev.OrderIntent:
    return ev.OrderIntent(
        at=trigger.at, watcher_id=plan.watcher_id, order_ref=plan.order_ref,
        kind=trigger.kind, trigger_at=trigger.at, symbol=plan.symbol,  # type: ignore[arg-type]
        qty=plan.qty, entry=plan.entry.value, limit=to_decimal_or_none(plan.limit),
        take_profits=tuple(to_decimal(r.price) for r in plan.rungs),
        take_profit_qtys=tuple(r.qty for r in plan.rungs), stop=to_decimal_or_none(plan.stop),
        stop_limit=to_decimal_or_none(plan.stop_limit), outside_rth=plan.outside_rth, tif=plan.tif,
        reference=to_decimal(plan.reference_price),
    )


