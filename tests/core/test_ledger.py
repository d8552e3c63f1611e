"""The day ledger: slots, notional, P&L after commissions, the losing streak, the halt."""

from __future__ import annotations

from decimal import Decimal

from breakoutd.core import events as ev
from breakoutd.core.ledger import DayLedger
from breakoutd.core.params import RiskLimits
from breakoutd.core.plans import OrderPlan, Quote, plan_order
from tests.factories import px, spec

USD = 1_000_000


def plan(watcher: str = "a", ask: str = "5.00", qty: int = 100) -> OrderPlan:
    p = plan_order(spec("5.00", qty=qty), Quote(0, None, None, px(ask), 100), f"bo:d:rth:{watcher}")
    assert isinstance(p, OrderPlan)
    return p._replace(watcher_id=watcher)


def enter(ledger: DayLedger, ref: str, price: str = "5.00", qty: int = 100) -> None:
    ledger.sent(ref, ref.split(":")[-1], "SYM", qty, px(price))
    ledger.filled(ref, f"{ref}:e", "SYM", "BOT", qty, px(price), USD)


def test_a_slot_is_taken_when_sent_and_freed_when_flat() -> None:
    ledger = DayLedger(RiskLimits(max_positions=1, max_entries_per_day=2))
    assert ledger.check(plan()) is None
    ledger.sent("bo:d:rth:a", "a", "SYM", 100, px("5.00"))
    assert ledger.check(plan("b")).reason == "risk_max_positions"  # type: ignore[union-attr]
    ledger.filled("bo:d:rth:a", "x1", "SYM", "BOT", 100, px("5.00"), USD)
    ledger.filled("bo:d:rth:a", "x2", "SYM", "SLD", 100, px("5.50"), USD)
    assert ledger.slots == 0 and ledger.check(plan("b")) is None
    assert ledger.realized == 48 * USD  # 50 gross less two 1.00 commissions
    enter(ledger, "bo:d:rth:b")
    ledger.filled("bo:d:rth:b", "y", "SYM", "SLD", 100, px("5.00"), USD)
    assert ledger.check(plan("c")).reason == "risk_max_entries"  # type: ignore[union-attr]


def test_an_entry_cancelled_unfilled_frees_its_slot_and_is_no_trade() -> None:
    ledger = DayLedger(RiskLimits(max_positions=1, max_consecutive_losses=1))
    ledger.sent("bo:d:rth:a", "a", "SYM", 100, px("5.00"))
    ledger.entry_done("bo:d:rth:a")
    assert ledger.slots == 0 and ledger.consecutive_losses == 0 and ledger.trip_due() is None


def test_notional_counts_what_is_held_at_cost_and_what_may_still_fill() -> None:
    ledger = DayLedger(RiskLimits(max_notional_usd=Decimal(1000)))
    ledger.sent("bo:d:rth:a", "a", "SYM", 100, px("5.00"))
    ledger.filled("bo:d:rth:a", "x1", "SYM", "BOT", 40, px("4.90"), None)
    assert ledger.notional == 40 * px("4.90") + 60 * px("5.00")
    assert ledger.check(plan("b", qty=101)).reason == "risk_max_notional"  # type: ignore[union-attr]
    assert ledger.check(plan("b", qty=100)) is None  # 196 + 300 + 500 = 996


def test_the_daily_loss_counts_unrealized_at_the_mark_and_commissions() -> None:
    ledger = DayLedger(RiskLimits(max_daily_loss_usd=Decimal(20)))
    enter(ledger, "bo:d:rth:a")
    ledger.mark("SYM", px("4.82"))  # -18 unrealized, -1 commission
    assert ledger.trip_due() is None
    ledger.mark("SYM", px("4.81"))
    trip = ledger.trip_due()
    assert trip is not None and trip.reason == "daily_loss"
    assert ledger.check(plan("b")).reason == "risk_halted"  # type: ignore[union-attr]
    ledger.halt(trip.reason)
    assert ledger.can_resume() is not None  # still past the limit
    ledger.mark("SYM", px("5.10"))
    assert ledger.can_resume() is None


def test_the_losing_streak_counts_after_the_last_commission_and_resets_on_a_win() -> None:
    ledger = DayLedger(RiskLimits(max_consecutive_losses=2))
    for n, exit_price in enumerate(("4.90", "5.50", "4.90")):
        ref = f"bo:d:rth:w{n}"
        enter(ledger, ref)
        ledger.filled(ref, f"{ref}:x", "SYM", "SLD", 100, px(exit_price), None)
        # Not counted until the exit's commission is known: the streak is still the last one.
        assert ledger.consecutive_losses == (0, 1, 0)[n]
        ledger.commission(f"{ref}:x", USD, ref)
    assert ledger.consecutive_losses == 1
    ref = "bo:d:rth:w3"
    enter(ledger, ref)
    # A scratch trade loses its two commissions: a loss.
    ledger.filled(ref, f"{ref}:x", "SYM", "SLD", 100, px("5.00"), USD)
    assert ledger.consecutive_losses == 2
    trip = ledger.trip_due()
    assert trip is not None and trip.reason == "consecutive_losses"
    ledger.halt(trip.reason)
    ledger.resume()
    assert ledger.halted is None and ledger.consecutive_losses == 0


def test_the_journal_s_events_rebuild_the_ledger_and_an_execution_counts_once() -> None:
    events: list[ev.Event] = [
        ev.OrderIntent(at=1, watcher_id="a", order_ref="bo:d:rth:a", kind="close", trigger_at=1,
                       symbol="SYM", qty=100, entry="limit_at_ask", limit=Decimal("5.00"),
                       take_profits=(Decimal("5.50"),), take_profit_qtys=(100,),
                       stop=Decimal("4.80"), stop_limit=Decimal("4.78"), outside_rth=True,
                       tif="DAY", reference=Decimal("5.00")),
        ev.OrderFilled(at=2, order_ref="bo:d:rth:a", role="entry", rung=0, order_id=1,
                       exec_id="e1", symbol="SYM", side="BOT", qty=100, price=Decimal("5.00"),
                       cum_qty=100),
        ev.CommissionReported(at=3, order_ref="bo:d:rth:a", exec_id="e1", commission=1.0,
                              realized_pnl=1e308),
        ev.OrderFilled(at=4, order_ref="bo:d:rth:a", role="stop", rung=0, order_id=3,
                       exec_id="e2", symbol="SYM", side="SLD", qty=100, price=Decimal("4.79"),
                       cum_qty=100, commission=1.0),
        ev.OrderFilled(at=4, order_ref="bo:d:rth:a", role="stop", rung=0, order_id=3,
                       exec_id="e2", symbol="SYM", side="SLD", qty=100, price=Decimal("4.79"),
                       cum_qty=100, commission=1.0),  # the same execution again: once
        ev.Halted(at=5, reason="consecutive_losses", detail=""),
    ]
    one = DayLedger(RiskLimits())
    for e in events:
        one.apply(e)
    assert one.realized == -23 * USD  # (4.79 - 5.00) x 100 less two 1.00 commissions
    assert one.consecutive_losses == 1 and one.halted == "consecutive_losses"
    assert one.entries == 1 and one.slots == 0


def test_the_ledger_keeps_a_sliced_entrys_trigger_and_the_slices_sent_from_the_journal() -> None:
    ref = "bo:d:rth:a"
    ledger = DayLedger(RiskLimits())
    ledger.apply(ev.OrderIntent(
        at=5, watcher_id="a", order_ref=ref, kind="close", trigger_at=5, symbol="SYM", qty=100,
        entry="limit_at_ask", limit=Decimal("5.00"), take_profits=(), take_profit_qtys=(),
        stop=None, stop_limit=None, outside_rth=False, tif="DAY", reference=Decimal("5.00")))
    for n in (1, 2):
        ledger.apply(ev.SliceSent(at=5 + n, order_ref=ref, watcher_id="a", symbol="SYM",
                                  number=n, count=3, order_id=n, qty=34 if n == 1 else 33,
                                  limit=Decimal("5.00"), due_at=5 + n))
    book = ledger.books[ref]
    assert (book.trigger_at, book.slices_sent, book.slices_over) == (5, {1, 2}, None)
    for reason in ("breaks_exits", "late"):  # the first reason holds
        ledger.apply(ev.SliceSkipped(at=9, order_ref=ref, watcher_id="a", number=3, count=3,
                                     reason=reason))
    assert book.slices_over == "breaks_exits"
