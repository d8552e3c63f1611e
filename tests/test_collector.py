"""The collector policy: survivors of a collection leave the collector's walks."""

from __future__ import annotations

import gc

from breakoutd.collector import SurvivorFreezer


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_survivors_are_frozen_after_each_collection_and_swept_on_demand() -> None:
    freezer = SurvivorFreezer()
    freezer.start()
    try:
        assert gc.get_count()[1:] == (0, 0) and gc.get_freeze_count() > 0
        kept = [Node() for _ in range(50)]  # lives on
        young = gc.get_objects(0)
        assert any(o is kept for o in young)
        gc.collect(0)  # an automatic-size pass: its survivors are frozen after it
        assert not any(o is kept for g in range(3) for o in gc.get_objects(g))
        # A cycle frozen while alive, dropped later, waits for the daily sweep.
        a, b = Node(), Node()
        a.other, b.other = b, a
        gc.collect(0)
        del a, b
        frozen = gc.get_freeze_count()
        gc.collect()
        assert gc.get_freeze_count() >= frozen  # not collected by the day's passes
        freezer.sweep()
        assert gc.get_freeze_count() < frozen  # gone
    finally:
        freezer.stop()
    assert gc.get_freeze_count() == 0 and not any(
        getattr(cb, "__module__", "") == "breakoutd.collector" for cb in gc.callbacks)


def test_the_policy_holds_while_any_user_holds_it() -> None:
    first, second = SurvivorFreezer(), SurvivorFreezer()
    first.start()
    second.start()
    first.stop()
    first.stop()  # twice: still one user left
    assert any(getattr(cb, "__module__", "") == "breakoutd.collector" for cb in gc.callbacks)
    second.stop()
    assert not any(getattr(cb, "__module__", "") == "breakoutd.collector" for cb in gc.callbacks)
    assert gc.get_freeze_count() == 0
