"""Records pickled as their constructor's arguments come back equal, and only fit records qualify."""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass
from decimal import Decimal

import pytest

from breakoutd.core.params import FastSchedule, SourceRef, StrategyParams, WatcherSpec
from breakoutd.core.records import pickled_by_fields


def test_a_watcher_spec_comes_back_equal_with_its_source() -> None:
    spec = WatcherSpec("spy-1", "SPY", 450_120_000, StrategyParams(fast=FastSchedule(
        distance_start=Decimal("12.5"))), qty=100, tp=(451_000_000, 452_000_000),
        tp_split=(Decimal("0.5"), Decimal("0.5")), sl=449_000_000,
        source=SourceRef("w.yaml", 7))
    back = pickle.loads(pickle.dumps(spec))
    assert back == spec and back.source == SourceRef("w.yaml", 7)  # source is not compared
    assert back.params.fast.distance_start == Decimal("12.5")
    assert copy.deepcopy(spec) == spec


def test_a_record_with_a_post_init_or_a_computed_field_is_refused() -> None:
    with pytest.raises(TypeError, match="Checked: not a record"):
        @pickled_by_fields
        @dataclass(frozen=True, slots=True)
        class Checked:
            a: int
            b: int

            def __post_init__(self) -> None:
                if self.a > self.b:
                    raise ValueError("a > b")
