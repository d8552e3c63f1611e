"""Journals write whole lines and survive a torn tail; the state store is atomic."""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from decimal import Decimal
from pathlib import Path

import pytest

from breakoutd.core.events import Rejected, WatcherStarted
from breakoutd.daemon.journal import Journal, LocalWall, read_journal
from breakoutd.daemon.state import FiredEntry, StateStore

DAY = dt.date(2026, 3, 9)


def journal(tmp_path: Path) -> Journal:
    ticks = iter(range(1000, 10**6))
    return Journal(tmp_path, DAY, wall=lambda: "2026-03-09T09:30:00.000000-04:00",
                   mono=lambda: next(ticks))


def test_events_are_one_json_object_per_line_with_stamps(tmp_path: Path) -> None:
    j = journal(tmp_path)
    j.write(WatcherStarted(at=1, watcher_id="A@1.00", symbol="A", level=Decimal("1.00"),
                           session_day="2026-03-09", disarm_at=2))
    j.write(Rejected(at=3, watcher_id="A@1.00", reason="quote_stale", kind="close",
                     trigger_at=3, quote_age=2.5, limit=Decimal("1.01")))
    j.record("ops", level="error", message="boom")
    j.close()
    events = read_journal(tmp_path / "journal" / "2026-03-09" / "events.jsonl")
    assert [e["event"] for e in events] == ["WatcherStarted", "Rejected"]
    assert events[0]["wall"].endswith("-04:00") and events[0]["mono_ns"] == 1000
    assert events[1]["reason"] == "quote_stale" and events[1]["quote_age"] == 2.5
    assert events[1]["limit"] == 1.01
    ops = read_journal(tmp_path / "journal" / "2026-03-09" / "ops.jsonl")
    assert ops[0]["message"] == "boom"


def test_a_torn_last_line_is_cut_when_the_journal_reopens(tmp_path: Path) -> None:
    j = journal(tmp_path)
    j.record("events", n=1)
    j.close()
    path = tmp_path / "journal" / "2026-03-09" / "events.jsonl"
    with path.open("ab") as f:
        f.write(b'{"n": 2, "tor')  # a crash in the middle of a write
    j = journal(tmp_path)
    j.record("events", n=3)
    j.close()
    assert [e["n"] for e in read_journal(path)] == [1, 3]


def test_state_survives_a_restart_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = StateStore(tmp_path, DAY)
    assert not store.has_fired("A@1.00")
    store.mark_fired("A@1.00", FiredEntry("bo:20260309:rth:A@1.00", 5, "entered"))
    store.note_order_id(41)
    store.save()
    again = StateStore(tmp_path, DAY)
    assert again.has_fired("A@1.00")
    assert again.state.fired["A@1.00"].outcome == "entered"
    assert again.state.order_id_high_water == 41
    assert os.listdir(tmp_path / "state") == ["2026-03-09.json"]
    assert not StateStore(tmp_path, DAY + dt.timedelta(days=1)).has_fired("A@1.00")


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "UTC"])
def test_the_journal_s_wall_time_is_what_datetime_writes_across_seconds_and_dst(
        zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        edges = [1_772_953_199_999_999_000, 1_772_953_200_000_001_000,  # 2026-03-08 02:00 ET
                 1_793_512_799_999_999_000, 1_793_512_800_000_000_000]  # 2026-11-01 02:00 ET
        rnd = random.Random(zone)
        instants = edges + sorted(rnd.randrange(1_700_000_000, 1_900_000_000) * 10**9
                                  + rnd.randrange(10**9) for _ in range(2000))
        clock = iter(instants)
        wall = LocalWall(lambda: next(clock))  # one instance across them, as the journal's
        for ns in instants:
            second, micros = divmod(ns // 1000, 1_000_000)
            expected = dt.datetime.fromtimestamp(second).astimezone().replace(
                microsecond=micros).isoformat(timespec="microseconds")
            assert wall() == expected
    finally:
        monkeypatch.undo()
        time.tzset()
