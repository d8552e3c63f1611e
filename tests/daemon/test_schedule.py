"""Session arming in exchange time: DST days, a holiday, an early close, the daily re-plan."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import os
from pathlib import Path

import pytest

from breakoutd.calendar import EXCHANGE_TZ, day_sessions, watcher_window
from breakoutd.core import events as ev
from breakoutd.core.bars import NS
from breakoutd.daemon.schedule import SessionScheduler, daily_trigger
from tests.daemon.daemonkit import running_daemon
from tests.daemon.test_daemon_sim import ramp
from tests.factories import at, spec

UTC = dt.UTC


def utc(day: str, hm: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hm}:00+00:00")


@pytest.mark.parametrize(("start", "fires"), [
    # Spring forward (2026-03-08, a Sunday): 03:30 EST, then 03:30 EDT, one hour earlier in UTC.
    ("2026-03-07T12:00:00-05:00", [utc("2026-03-08", "07:30"), utc("2026-03-09", "07:30")]),
    # Fall back (2026-11-01): 03:30 EDT the day before, then 03:30 EST; once each day.
    ("2026-10-31T12:00:00-04:00", [utc("2026-11-01", "08:30"), utc("2026-11-02", "08:30")]),
])
def test_the_daily_replan_fires_once_a_day_at_0330_exchange_time_across_dst(
        start: str, fires: list[dt.datetime]) -> None:
    trigger = daily_trigger()
    now = dt.datetime.fromisoformat(start)
    got, prev = [], None
    for _ in fires:
        prev = trigger.get_next_fire_time(prev, now)
        got.append(prev.astimezone(UTC))
        now = prev
    assert got == fires


def test_no_daily_job_near_midnight_or_in_the_dst_hour() -> None:
    for bad in (dt.time(0, 0), dt.time(23, 30), dt.time(2, 30)):
        with pytest.raises(ValueError):
            daily_trigger(bad)


@pytest.mark.parametrize(("day", "sessions", "window_utc"), [
    ("2026-03-06", ["premarket", "rth"], ("09:00", "21:00")),  # EST, the Friday before
    ("2026-03-09", ["premarket", "rth"], ("08:00", "20:00")),  # EDT, the Monday after
    ("2026-11-02", ["rth", "afterhours"], ("14:30", "01:00")),  # EST again: 09:30-20:00
    ("2026-11-27", ["rth"], ("14:30", "18:00")),  # early close 13:00 EST
    ("2026-11-27", ["afterhours"], ("18:00", "22:00")),  # after-hours 13:00-17:00
])
def test_arming_windows_follow_the_exchange_day(day: str, sessions: list[str],
                                                window_utc: tuple[str, str]) -> None:
    d = dt.date.fromisoformat(day)
    s = spec(sessions=tuple(_session(x) for x in sessions))
    day_s = day_sessions(d)
    assert day_s is not None
    a, z = watcher_window(s, day_s) or (0, 0)
    start = dt.datetime.fromtimestamp(a / NS, UTC).strftime("%H:%M")
    end = dt.datetime.fromtimestamp(z / NS, UTC).strftime("%H:%M")
    assert (start, end) == window_utc


def _session(name: str):  # type: ignore[no-untyped-def]
    from breakoutd.core.params import Session
    return Session(name)


def test_a_holiday_has_no_sessions() -> None:
    assert day_sessions(dt.date(2026, 11, 26)) is None  # Thanksgiving


def test_jobs_fire_at_broker_instants_whatever_the_virtual_day() -> None:
    async def body() -> list[int]:
        virtual_offset = -(250 * 86400 * NS)  # the broker's clock lives on another day
        clock = lambda: dt.datetime.now(EXCHANGE_TZ).timestamp().__int__() * NS + virtual_offset  # noqa: E731
        sched = SessionScheduler(clock)
        fired: list[int] = []
        done = asyncio.Event()
        target = clock() + NS // 2

        def job() -> None:
            fired.append(clock())
            done.set()
        sched.at("arm:x", target, job)
        sched.start()
        try:
            await asyncio.wait_for(done.wait(), 5)
        finally:
            sched.shutdown()
        return [f - target for f in fired]

    late = asyncio.run(body())
    assert len(late) == 1 and -NS < late[0] < 2 * NS


RTH_ONLY = "breakouts:\n  - symbol: DEMO\n    level: 10.00\n    qty: 10\n    sessions: [rth]\n"


def test_the_daemon_arms_at_the_open_and_disarms_at_an_early_close(tmp_path: Path) -> None:
    day = dt.date(2026, 11, 27)

    async def body() -> None:
        rows = ramp("09:29:50", 30, "9.50")
        async with running_daemon(rows, RTH_ONLY, tmp_path / "a", start="09:29:55", day=day) as r:
            await r.step(10, until=lambda: bool(r.events.of(ev.WatcherStarted)))
            assert [w.at for w in r.events.of(ev.WatcherStarted)] == [at("09:30:00", day)]
            assert await r.finish() == 0
        rows = ramp("12:59:50", 30, "9.50")
        async with running_daemon(rows, RTH_ONLY, tmp_path / "b", start="12:59:55", day=day) as r:
            await r.step(10, until=lambda: bool(r.events.of(ev.Expired)))
            expired = r.events.of(ev.Expired)
            assert [(e.at, e.reason) for e in expired] == [(at("13:00:00", day), "session_end")]
            assert await r.finish() == 0

    asyncio.run(asyncio.wait_for(body(), 60))


def test_the_daemon_arms_nothing_on_a_holiday(tmp_path: Path) -> None:
    day = dt.date(2026, 11, 26)

    async def body() -> None:
        async with running_daemon(ramp("09:29:50", 30, "9.50"), RTH_ONLY, tmp_path,
                                  start="09:29:55", day=day) as r:
            await r.step(10)
            assert not r.events.of(ev.WatcherStarted)
            state = [s.detail for s in r.events.of(ev.DaemonState) if s.state == "running"]
            assert state == ["0 armed, 0 waiting"]
            assert await r.finish() == 0

    asyncio.run(asyncio.wait_for(body(), 60))


def test_the_daily_replan_rolls_over_to_the_next_trading_day(tmp_path: Path) -> None:
    async def body() -> None:
        rows = ramp("09:29:50", 30, "9.50")
        async with running_daemon(rows, RTH_ONLY, tmp_path, start="09:29:55") as r:
            await r.step(10, until=lambda: bool(r.events.of(ev.WatcherStarted)))
            await r.gw.advance_to(at("03:30:00", dt.date(2026, 3, 10)))
            await r.daemon._new_day()  # what the 03:30 job runs
            assert r.daemon.day == dt.date(2026, 3, 10)
            assert r.daemon.store.path.name == "2026-03-10.json"  # written once something fires
            running = [s.detail for s in r.events.of(ev.DaemonState) if s.state == "running"]
            assert running[-1] == "new day 2026-03-10: 0 armed, 1 waiting"
            assert await r.finish() == 0
        assert (tmp_path / "journal" / "2026-03-10" / "events.jsonl").exists()

    asyncio.run(asyncio.wait_for(body(), 60))


def test_a_disk_that_refuses_the_new_days_journal_halts_until_it_can_be_opened(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import breakoutd.daemon.day as app_mod

    refused: list[Path] = []

    class RefusingJournal(app_mod.Journal):  # type: ignore[misc]
        """The new day's directory cannot be made while ``full`` holds."""
        full = False

        def __init__(self, root: Path, day: dt.date, **kwargs: object) -> None:
            if RefusingJournal.full:
                path = root / "journal" / day.isoformat()
                refused.append(path)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            super().__init__(root, day, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(app_mod, "Journal", RefusingJournal)
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    new_day = dt.date(2026, 3, 10)

    async def body() -> None:
        rows = ramp("09:29:50", 30, "9.50")
        async with running_daemon(rows, RTH_ONLY, tmp_path, start="09:29:55") as r:
            await r.step(10, until=lambda: bool(r.events.of(ev.WatcherStarted)))
            await r.gw.advance_to(at("03:30:00", new_day))
            RefusingJournal.full = True
            replan = asyncio.get_running_loop().create_task(r.daemon._new_day())
            await r.events.wait(lambda: bool(r.events.of(ev.Halted)))
            halted = r.events.of(ev.Halted)[-1]
            assert (halted.reason, halted.by) == ("disk", "disk")
            assert "No space left on device (ENOSPC)" in halted.detail
            assert r.daemon.state == "halted" and r.daemon.day != new_day
            assert not replan.done()  # it tries again, and nothing is planned meanwhile
            RefusingJournal.full = False  # space freed
            await asyncio.wait_for(replan, 10)
            assert r.daemon.day == new_day
            running = [s.detail for s in r.events.of(ev.DaemonState) if s.state == "running"]
            assert running[-1] == "new day 2026-03-10: 0 armed, 1 waiting"
            assert await r.finish() == 0
        assert refused and (tmp_path / "journal" / "2026-03-10" / "events.jsonl").exists()
        # The halt is in the journal of the day in force when it happened.
        old = (tmp_path / "journal" / "2026-03-09" / "events.jsonl").read_text()
        assert '"reason":"disk"' in old.replace(" ", "")

    asyncio.run(asyncio.wait_for(body(), 60))
