"""The fast rule's schedule, regimes and rounding, and the close rule (strategy.md)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from breakoutd.core.params import FastSchedule
from breakoutd.core.rules import (
    close_rule_fires,
    fast_rule_fires,
    fast_thresholds,
    regime_multiplier,
)
from tests.factories import at, min_bar, px, sec_bar

CENT = 10_000


@pytest.mark.parametrize(
    ("level", "m"),
    [("0.50", 1), ("3.99", 1), ("4.00", Fraction(11, 10)), ("6.99", Fraction(11, 10)),
     ("7.00", Fraction(5, 4)), ("250.00", Fraction(5, 4)), ("3.999999", 1)],
)
def test_regime_multiplier_edges(level: str, m: Fraction) -> None:
    assert regime_multiplier(px(level)) == m


@pytest.mark.parametrize(
    ("level", "distance", "spread"),
    [
        ("3.00", (15, 13, 11, 9, 7, 5), (4, 3, 3, 2, 2, 1)),
        ("5.00", (17, 14, 12, 10, 8, 6), (4, 4, 3, 2, 2, 1)),
        ("9.00", (19, 16, 14, 11, 9, 6), (5, 4, 4, 3, 2, 1)),
    ],
)
def test_default_schedule_matches_the_table(level: str, distance: tuple[int, ...],
                                            spread: tuple[int, ...]) -> None:
    th = fast_thresholds(FastSchedule(), px(level))
    assert tuple(d // CENT for d in th.distance) == distance
    assert tuple(s // CENT for s in th.spread) == spread


def test_ties_round_up_not_to_even() -> None:
    # 15 * 1.1 = 16.5 -> 17 (banker's rounding would give 16); 5 * 1.1 = 5.5 -> 6.
    th = fast_thresholds(FastSchedule(), px("4.00"))
    assert th.distance[0] == 17 * CENT
    assert th.distance[5] == 6 * CENT


def test_worked_example_fires_fast() -> None:
    # L = 5.00, 09:41:23 (k = 2): high 5.12, low 5.09, close 5.10 -> D 12c, S 3c.
    th = fast_thresholds(FastSchedule(), px("5.00"))
    bar = sec_bar(at("09:41:23"), "5.10", "5.12", "5.09", "5.10")
    assert th.k_of(bar.start) == 2
    assert fast_rule_fires(bar, px("5.00"), th)
    assert bar.end == at("09:41:24")


def test_worked_example_fails_a_cent_short_or_a_cent_too_wide() -> None:
    th = fast_thresholds(FastSchedule(), px("5.00"))
    assert not fast_rule_fires(sec_bar(at("09:41:23"), "5.10", "5.11", "5.09", "5.10"), px("5.00"), th)
    assert not fast_rule_fires(sec_bar(at("09:41:23"), "5.10", "5.12", "5.08", "5.10"), px("5.00"), th)
    assert not fast_rule_fires(sec_bar(at("09:41:23"), "5.10", "5.12", "5.09", "4.99"), px("5.00"), th)


@pytest.mark.parametrize(
    ("second", "k"), [(0, 0), (9, 0), (10, 1), (19, 1), (50, 5), (59, 5)]
)
def test_k_edges(second: int, k: int) -> None:
    th = fast_thresholds(FastSchedule(), px("3.00"))
    assert th.k_of(at(f"10:00:{second:02d}")) == k


def test_k_edge_changes_the_decision_at_second_10() -> None:
    # L = 3.00: k=0 needs +15c, k=1 +13c. A bar 13c above fires at :10, not at :09.
    th = fast_thresholds(FastSchedule(), px("3.00"))
    nine = sec_bar(at("10:00:09"), "3.12", "3.13", "3.11", "3.12")
    ten = sec_bar(at("10:00:10"), "3.12", "3.13", "3.11", "3.12")
    assert not fast_rule_fires(nine, px("3.00"), th)
    assert fast_rule_fires(ten, px("3.00"), th)


def test_second_59_uses_the_last_step() -> None:
    th = fast_thresholds(FastSchedule(), px("3.00"))
    bar = sec_bar(at("10:00:59"), "3.05", "3.05", "3.04", "3.05")  # D = 5c, S = 1c
    assert fast_rule_fires(bar, px("3.00"), th)


def test_custom_schedule_from_a_preset() -> None:
    sched = FastSchedule(Decimal(20), Decimal(8), Decimal(5), Decimal(2), step=15)
    th = fast_thresholds(sched, px("2.00"))
    # K = floor(59/15) = 3; D = 20 - 12k/3 -> 20, 16, 12, 8; S = 5 - k -> 5, 4, 3, 2.
    assert tuple(d // CENT for d in th.distance) == (20, 16, 12, 8)
    assert tuple(s // CENT for s in th.spread) == (5, 4, 3, 2)
    assert th.k_of(at("10:00:44")) == 2
    assert th.k_of(at("10:00:45")) == 3


def test_exact_decimal_comparisons() -> None:
    # 49.02 + 0.06 is not 49.08 in binary floats; in micros it is.
    th = fast_thresholds(FastSchedule(spread_start=Decimal(6)), px("49.02"))
    assert px("49.02") + px("0.06") == px("49.08")
    assert close_rule_fires(min_bar(at("10:00:00"), "49.00", "49.10", "49.00", "49.02"), px("49.02"))
    assert not close_rule_fires(min_bar(at("10:00:00"), "49.00", "49.10", "49.00", "49.019999"),
                                px("49.02"))
    assert th.distance[0] == 19 * CENT
