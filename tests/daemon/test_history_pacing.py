"""IB's historical-data pacing: waits are computed on an injected clock, never slept for real."""

from __future__ import annotations

import asyncio

from breakoutd.core.bars import MINUTE, Bar
from breakoutd.daemon.history_pacing import HistoryPacer
from breakoutd.daemon.levels_live import LiveLevels


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_an_identical_request_waits_15_s_and_others_are_spread() -> None:
    t = FakeTime()
    pacer = HistoryPacer(t, t.sleep)

    async def go() -> None:
        await pacer.turn("a")
        await pacer.turn("b")  # different: only the 1 s spacing
        await pacer.turn("a")  # identical: 15 s after the first
    asyncio.run(go())
    assert t.slept == [1.0, 14.0]


def test_at_most_60_requests_in_ten_minutes() -> None:
    t = FakeTime()
    pacer = HistoryPacer(t, t.sleep)

    async def go() -> None:
        for n in range(61):
            await pacer.turn(n)
    asyncio.run(go())
    # 60 go one second apart (0..59 s); the 61st waits until the first is 600 s old.
    assert t.now == 1000.0 + 600.0
    assert pacer.sent_in_window == 60


def test_watchers_on_one_range_share_one_request() -> None:
    t = FakeTime()
    asked: list[tuple[str, int, int]] = []

    async def fetch(symbol: str, start: int, end: int) -> list[Bar]:
        asked.append((symbol, start, end))
        await asyncio.sleep(0)
        return [Bar(start, MINUTE, 1, 2, 1, 2, 10)]

    levels = LiveLevels(fetch, HistoryPacer(t, t.sleep))

    async def go() -> list[list[Bar]]:
        return list(await asyncio.gather(*(levels.bars("SPY", 0, MINUTE) for _ in range(3)),
                                         levels.bars("SPY", 0, 2 * MINUTE)))
    got = asyncio.run(go())
    assert asked == [("SPY", 0, MINUTE), ("SPY", 0, 2 * MINUTE)]
    assert got[0] == got[1] == got[2] and t.slept == [1.0]
