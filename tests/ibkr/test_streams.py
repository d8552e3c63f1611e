"""SymbolStream: prints and 5-second bars become closed bars in strategy.md's order."""

from __future__ import annotations

import random

from breakoutd.core.bars import MINUTE, NS, Bar
from breakoutd.ibkr.hours import parse_sessions
from breakoutd.ibkr.streams import SymbolStream
from tests.factories import ManualClock, at, px


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Bar]] = []

    def on_fast_bar(self, bar: Bar) -> None:
        self.seen.append(("fast", bar))

    def on_close_bar(self, bar: Bar) -> None:
        self.seen.append(("close", bar))


def stream(t: str) -> tuple[SymbolStream, ManualClock, Recorder, list[str]]:
    clock = ManualClock(at(t))
    health: list[str] = []
    s = SymbolStream("T", clock, lambda sym, kind, sec, detail: health.append(kind))
    rec = Recorder()
    s.add_listener(rec, MINUTE)
    return s, clock, rec, health


def test_a_second_reported_after_its_end_closes_at_once() -> None:
    s, clock, rec, _ = stream("09:59:59.500")
    clock.now = at("10:00:01")
    s.on_prints([(px("5.00"), 100), (px("5.05"), 100), (px("4.99"), 50)], at("10:00:00"))
    assert rec.seen == [("fast", Bar(at("10:00:00"), NS, px("5.00"), px("5.05"), px("4.99"),
                                     px("4.99"), 250))]


def test_a_second_in_progress_waits_for_the_next_second_or_the_clock() -> None:
    s, clock, rec, _ = stream("10:00:00.200")
    s.on_prints([(px("5.00"), 100)], None)
    assert rec.seen == []
    clock.now = at("10:00:01") + NS // 10
    s.on_prints([(px("5.01"), 100)], None)
    assert [b.start for _, b in rec.seen] == [at("10:00:00")]
    clock.now = at("10:00:02") + NS  # past the end plus the grace
    s.on_clock()
    assert [b.start for _, b in rec.seen] == [at("10:00:00"), at("10:00:01")]


def test_late_prints_for_a_closed_second_are_reported_not_counted() -> None:
    s, clock, rec, health = stream("09:59:59.500")
    clock.now = at("10:00:01")
    s.on_prints([(px("5.00"), 100)], at("10:00:00"))
    s.on_prints([(px("9.00"), 100)], at("10:00:00"))
    assert len(rec.seen) == 1 and health == ["late_print"]


def test_the_last_five_seconds_close_the_minute_after_its_last_second() -> None:
    s, clock, rec, _ = stream("10:00:59.500")
    s.on_prints([(px("5.10"), 100)], at("10:00:59"))  # in progress: not closed yet
    clock.now = at("10:01:00") + 1000
    s.on_bar5(Bar(at("10:00:00"), 5 * NS, px("5.00"), px("5.10"), px("5.00"), px("5.05"), 100))
    s.on_bar5(Bar(at("10:00:55"), 5 * NS, px("5.05"), px("5.10"), px("5.05"), px("5.10"), 100))
    kinds = [(k, b.start) for k, b in rec.seen]
    assert kinds == [("fast", at("10:00:59")), ("close", at("10:00:00"))]
    assert rec.seen[1][1] == Bar(at("10:00:00"), MINUTE, px("5.00"), px("5.10"), px("5.00"),
                                 px("5.10"), 200)


def test_a_quiet_tail_closes_the_minute_by_the_clock() -> None:
    s, clock, rec, _ = stream("10:00:30")
    s.on_bar5(Bar(at("10:00:00"), 5 * NS, px("5.00"), px("5.00"), px("5.00"), px("5.00"), 100))
    clock.now = at("10:01:01")
    s.on_clock()
    assert rec.seen == []  # still within the grace for a late 5-second bar
    clock.now = at("10:01:02")
    s.on_clock()
    assert [k for k, _ in rec.seen] == ["close"]


def quiet5(start: str, price: str) -> Bar:
    """IB's 5-second bar when nothing traded: volume 0 at the last price."""
    return Bar(at(start), 5 * NS, px(price), px(price), px(price), px(price), 0)


def test_volume_zero_five_second_bars_are_no_part_of_a_close_rule_bar() -> None:
    s, clock, rec, _ = stream("10:00:04")
    clock.now = at("10:00:05.1")
    traded = Bar(at("10:00:00"), 5 * NS, px("5.00"), px("5.02"), px("4.98"), px("5.00"), 300)
    s.on_bar5(traded)
    for second in range(5, 55, 5):  # the rest of the minute is quiet, at a higher last price
        clock.now = at("10:00:00") + (second + 5) * NS + NS // 10
        s.on_bar5(quiet5(f"10:00:{second:02d}", "5.40"))
    assert rec.seen == []
    clock.now = at("10:01:00.1")
    s.on_bar5(quiet5("10:00:55", "5.40"))  # ends the minute: it is complete, closed at once
    assert rec.seen == [("close", traded._replace(size=MINUTE))]


def test_a_minute_of_volume_zero_bars_has_no_bar_even_at_the_level() -> None:
    s, clock, rec, health = stream("10:00:59")
    for second in range(0, 60, 5):
        clock.now = at("10:01:00") + (second + 5) * NS + NS // 10
        s.on_bar5(quiet5(f"10:01:{second:02d}", "5.40"))
    clock.now = at("10:03:00")
    s.on_clock()
    assert rec.seen == []
    assert "gap" not in health  # IB's quiet bars say the feed is alive


def test_ib_hours_text_gives_sessions_and_closed_days() -> None:
    sessions = parse_sessions("20261127:0400-20261127:1700;20261128:CLOSED",
                              "20261127:0930-20261127:1300;20261128:CLOSED", "US/Eastern")
    import datetime as dt
    day = sessions[dt.date(2026, 11, 27)]
    assert day is not None
    assert day.rth == (at("09:30:00", day.day), at("13:00:00", day.day))
    assert day.afterhours == (at("13:00:00", day.day), at("17:00:00", day.day))
    assert sessions[dt.date(2026, 11, 28)] is None


def test_a_new_subscription_repeating_the_last_trade_is_not_a_print() -> None:
    s, clock, rec, health = stream("10:00:05.300")
    s.on_prints([(px("5.00"), 100)], at("10:00:04"))  # the snapshot of the last trade
    assert rec.seen == [] and health == []
    clock.now = at("10:00:06")
    s.on_prints([(px("5.01"), 100)], at("10:00:05"))
    assert [b.start for _, b in rec.seen] == [at("10:00:05")]


def test_silence_and_late_bars_are_reported() -> None:
    s, clock, rec, health = stream("10:00:00")
    clock.now = at("10:01:01")
    s.on_clock()
    assert health == ["gap"]
    s.on_clock()
    assert health == ["gap"]  # once per silence
    s.on_bar5(Bar(at("10:00:50"), 5 * NS, px("5"), px("5"), px("5"), px("5"), 100))
    assert health == ["gap", "gap", "lag"]  # data again (gap over), and that bar was 6 s late


def test_prints_stamped_before_a_second_already_begun_are_reported_not_raised() -> None:
    s, clock, rec, health = stream("10:00:00.200")
    clock.now = at("10:00:02.300")
    s.on_prints([(px("5.00"), 100)], None)  # placed by arrival: 10:00:02 begun
    s.on_prints([(px("5.10"), 100)], at("10:00:01"))  # its stamp came later: before it
    assert health == ["late_print"]
    clock.now = at("10:00:04")
    s.on_clock()
    assert [(b.start, b.high) for _, b in rec.seen] == [(at("10:00:02"), px("5.00"))]


def drive(seed: float, ticks_all: bool) -> tuple[list[tuple[str, Bar]], list[tuple[str, int]],
                                                list[int]]:
    """A seeded random life of one stream, ticked every 50 ms: bars, health, when."""
    clock = ManualClock(at("09:59:30"))
    health: list[tuple[str, int]] = []
    s = SymbolStream("T", clock, lambda sym, kind, sec, detail: health.append((kind, clock.now)))
    rec = Recorder()
    s.add_listener(rec, MINUTE)
    s.add_listener(Recorder(), 5 * NS)
    script = random.Random(seed)
    seen_at: list[int] = []
    for _ in range(600):
        clock.now += NS // 20
        roll = script.random()
        second = clock.now - clock.now % NS
        if roll < 0.08:
            stamp = None if script.random() < 0.3 else second - script.choice((0, NS))
            s.on_prints([(px("5.00") + script.randrange(-5, 5) * 10_000, 100)], stamp)
        elif roll < 0.10 and second % (5 * NS) < NS // 2:
            start = second - second % (5 * NS) - 5 * NS
            s.on_bar5(Bar(start, 5 * NS, px("5.00"), px("5.02"), px("4.98"), px("5.01"), 300))
        elif roll < 0.101:
            s.reset()
        elif roll < 0.105:
            clock.now += 61 * NS  # a silence long enough to be a gap
        if ticks_all or s.due <= clock.now:
            s.on_clock()
        seen_at.append(len(rec.seen))
    return rec.seen, health, seen_at


def test_ticking_only_when_due_delivers_what_ticking_always_does() -> None:
    """The daemon's tick asks a stream only once ``due`` has come: over seeded random
    prints, 5-second bars, silences and resubscriptions, the same bars and health
    events come out, at the same ticks, as when every tick asks every stream."""
    rnd = random.Random(20261202)
    kinds: set[str] = set()
    for _case in range(40):
        seed = rnd.random()
        always, when_due = drive(seed, True), drive(seed, False)
        assert always == when_due
        kinds |= {k for k, _ in always[1]} | {k for k, _ in always[0]}
    assert {"fast", "close", "gap"} <= kinds  # the cases reached what the tick closes


class Leaver(Recorder):
    """A watcher that enters on its first close-rule bar and leaves the stream then."""

    def __init__(self, stream: SymbolStream) -> None:
        super().__init__()
        self.stream = stream

    def on_close_bar(self, bar: Bar) -> None:
        super().on_close_bar(bar)
        self.stream.remove_listener(self)


def test_a_watcher_leaving_on_its_bar_does_not_cost_the_others_that_bar() -> None:
    """1-minute and 5-minute watchers on one symbol: the 1-minute one enters on the bar
    closing at 10:01 and leaves inside that delivery; the 5-minute bar still has it."""
    clock = ManualClock(at("09:59:59.900"))
    s = SymbolStream("T", clock)
    early, late = Leaver(s), Recorder()
    s.add_listener(early, MINUTE)
    s.add_listener(late, 5 * MINUTE)
    for n in range(60 // 5 * 2):  # 10:00:00 .. 10:01:55, five seconds each
        start = at("10:00:00") + n * 5 * NS
        clock.now = start + 5 * NS + NS // 10
        s.on_bar5(Bar(start, 5 * NS, px("5.00"), px("5.00") + n * 10_000, px("4.99"),
                      px("5.00"), 100))
        s.on_clock()
    assert [b.start for _, b in early.seen] == [at("10:00:00")]
    clock.now = at("10:05:03")
    s.on_clock()
    [(_, five)] = late.seen
    assert (five.start, five.high, five.volume) == (at("10:00:00"), px("5.00") + 23 * 10_000,
                                                    24 * 100)


def test_data_far_below_every_level_may_wait_but_open_bars_near_it_may_not() -> None:
    clock = ManualClock(at("10:00:00.100"))
    s = SymbolStream("T", clock)
    assert not s.might_act(px("999.00"))  # nobody listens
    near, far = Recorder(), Recorder()
    s.add_listener(far, MINUTE, px("12.00"))
    s.add_listener(near, MINUTE, px("10.00"))
    assert not s.might_act(px("9.99")) and s.might_act(px("10.00"))
    s.on_prints([(px("10.02"), 100)], None)  # an open second that reached the level
    assert s.might_act(px("9.50"))  # what closes it may trigger
    clock.now = at("10:00:02")
    s.on_clock()
    assert [b.high for _, b in near.seen] == [px("10.02")]
    # A 5-second bar near the level keeps the minute open near it.
    s.on_bar5(Bar(at("10:00:00"), 5 * NS, px("9.90"), px("10.05"), px("9.90"), px("9.95"), 100))
    assert s.might_act(0)
    s.remove_listener(near)
    assert not s.might_act(px("11.00"))  # the far watcher alone: 12.00
    s.add_listener(Recorder(), MINUTE)  # a listener with no level: every price matters
    assert s.might_act(0)
