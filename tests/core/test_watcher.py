"""The watcher state machine: windows, ordering at one instant, single-fire."""

from __future__ import annotations

from breakoutd.core.bars import MINUTE, NS
from breakoutd.core.watcher import Expiry, Trigger, WatcherMachine, WatcherState
from tests.factories import at, min_bar, sec_bar, spec

L = "5.00"


def machine(a: str = "09:30:00", z: str = "16:00:00", **params: object) -> WatcherMachine:
    return WatcherMachine(spec(L, **params), at(a), at(z))


def test_close_rule_triggers_at_the_bar_close() -> None:
    m = machine()
    assert m.on_close_bar(min_bar(at("09:40:00"), "4.90", "5.05", "4.90", "4.99")) is None
    trig = m.on_close_bar(min_bar(at("09:41:00"), "4.99", "5.05", "4.98", "5.00"))
    assert trig == Trigger("close", at("09:42:00"), trig.bar)
    assert m.state is WatcherState.TRIGGERED


def test_bar_closing_exactly_at_arming_is_not_evaluated() -> None:
    m = machine()
    assert m.on_close_bar(min_bar(at("09:29:00"), "5.00", "5.10", "5.00", "5.10")) is None
    assert m.state is WatcherState.ARMED and m.bars_evaluated == 0


def test_bar_closing_exactly_at_disarm_is_evaluated() -> None:
    m = machine(z="11:00:00")
    trig = m.on_close_bar(min_bar(at("10:59:00"), "5.00", "5.10", "5.00", "5.10"))
    assert trig is not None and trig.at == at("11:00:00")


def test_bar_closing_after_disarm_is_not_evaluated() -> None:
    m = machine(z="11:00:00")
    assert m.on_close_bar(min_bar(at("11:00:00"), "5.00", "5.10", "5.00", "5.10")) is None


def test_arming_mid_bar_evaluates_that_bar_with_all_its_trades() -> None:
    # Armed at 10:15:30: the 10:15 bar (closing 10:16) is the first one evaluated.
    m = machine(a="10:15:30")
    trig = m.on_close_bar(min_bar(at("10:15:00"), "5.05", "5.10", "5.00", "5.02"))
    assert trig is not None and trig.kind == "close" and trig.at == at("10:16:00")


def test_fast_bar_containing_a_fractional_arming_instant_is_not_evaluated() -> None:
    m = WatcherMachine(spec(L), at("09:41:23") + NS // 2, at("16:00:00"))
    assert m.on_fast_bar(sec_bar(at("09:41:23"), "5.10", "5.12", "5.09", "5.10")) is None
    assert m.on_fast_bar(sec_bar(at("09:41:24"), "5.10", "5.12", "5.09", "5.10")) is not None


def test_fast_bar_starting_at_arming_is_evaluated_and_one_ending_after_disarm_is_not() -> None:
    m = machine(a="09:41:23", z="09:41:24")
    assert m.on_fast_bar(sec_bar(at("09:41:24"), "5.10", "5.12", "5.09", "5.10")) is None
    trig = m.on_fast_bar(sec_bar(at("09:41:23"), "5.10", "5.12", "5.09", "5.10"))
    assert trig is not None and trig.at == at("09:41:24")


def test_fast_and_close_at_the_same_instant_fast_wins_and_nothing_follows() -> None:
    m = machine()
    fast = m.on_fast_bar(sec_bar(at("09:41:59"), "5.06", "5.06", "5.05", "5.06"))
    assert fast is not None and fast.kind == "fast" and fast.at == at("09:42:00")
    assert m.on_close_bar(min_bar(at("09:41:00"), "4.90", "5.05", "4.90", "5.05")) is None
    assert m.decision == fast


def test_fast_rule_off_never_fires() -> None:
    m = machine(fast=None)
    assert m.on_fast_bar(sec_bar(at("09:41:23"), "5.10", "5.12", "5.09", "5.10")) is None
    assert m.state is WatcherState.ARMED


def test_max_bars_expires_after_n_evaluated_bars() -> None:
    m = machine(max_bars=3)
    for n in range(2):
        assert m.on_close_bar(min_bar(at("09:30:00") + n * MINUTE, "4.9", "4.9", "4.9", "4.9")) is None
    exp = m.on_close_bar(min_bar(at("09:32:00"), "4.9", "4.9", "4.9", "4.9"))
    assert exp == Expiry("max_bars", at("09:33:00"), 3)
    assert m.on_close_bar(min_bar(at("09:33:00"), "5.1", "5.1", "5.1", "5.1")) is None


def test_the_nth_bar_triggering_wins_over_max_bars() -> None:
    m = machine(max_bars=1)
    trig = m.on_close_bar(min_bar(at("09:30:00"), "5.1", "5.1", "5.1", "5.1"))
    assert isinstance(trig, Trigger)


def test_fast_trigger_at_the_instant_the_nth_bar_closes_wins() -> None:
    m = machine(max_bars=1)
    assert m.on_fast_bar(sec_bar(at("09:30:59"), "5.06", "5.06", "5.06", "5.06")) is not None
    assert m.on_close_bar(min_bar(at("09:30:00"), "4.9", "4.9", "4.9", "4.9")) is None


def test_max_bars_at_the_disarm_instant_reports_max_bars() -> None:
    m = machine(z="09:31:00", max_bars=1)
    exp = m.on_close_bar(min_bar(at("09:30:00"), "4.9", "4.9", "4.9", "4.9"))
    assert exp is not None and exp.reason == "max_bars"
    assert m.on_time(at("09:31:00")) is None


def test_session_end_expires_at_disarm() -> None:
    m = machine(z="16:00:00")
    assert m.on_time(at("15:59:59")) is None
    assert m.on_time(at("16:00:00")) == Expiry("session_end", at("16:00:00"), 0)
    assert m.state is WatcherState.EXPIRED


def test_single_fire() -> None:
    m = machine()
    first = m.on_close_bar(min_bar(at("09:40:00"), "5.1", "5.1", "5.1", "5.1"))
    assert first is not None
    assert m.on_close_bar(min_bar(at("09:41:00"), "5.2", "5.2", "5.2", "5.2")) is None
    assert m.on_fast_bar(sec_bar(at("09:42:23"), "5.10", "5.12", "5.09", "5.10")) is None
    assert m.on_time(at("16:00:00")) is None
    assert m.decision == first
