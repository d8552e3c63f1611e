"""``breakoutctl tail``: the events journal in readable lines, and following it."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from breakoutd.cli.ctl import main
from breakoutd.cli.ctl_status import LineReader, tail
from breakoutd.core import events as ev
from breakoutd.daemon.journal import Journal

DAY = dt.date(2026, 3, 9)
WALL = "2026-03-09T09:30:01.250000-04:00"
AT = 1_773_063_001_250_000_000  # the same instant on the broker's clock


def journal(var: Path, day: dt.date = DAY) -> Journal:
    return Journal(var, day, wall=lambda: WALL)


def armed(wid: str) -> ev.WatcherStarted:
    return ev.WatcherStarted(at=AT, watcher_id=wid, symbol="AAPL", level=Decimal("190.00"),
                             session_day=DAY.isoformat(), disarm_at=2)


def test_tail_prints_events_as_the_console_does(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    j = journal(tmp_path)
    j.write(armed("AAPL@190"))
    j.write(ev.Rejected(at=AT, watcher_id="AAPL@190", reason="quote_stale", kind="close",
                        trigger_at=AT, quote_age=2.5))
    j.write(ev.ConnectionLost(at=AT, reason="socket closed"))
    j.close()
    assert main(["tail", "--var", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-03-09 09:30:01.250 -04:00 ET AAPL@190: armed, level 190.00",
        "2026-03-09 09:30:01.250 -04:00 ET AAPL@190: REJECTED quote_stale, quote age 2.50s",
        "2026-03-09 09:30:01.250 -04:00 ET DISCONNECTED: socket closed",
    ]


def test_n_limits_to_the_last_events_and_a_torn_line_is_not_printed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    j = journal(tmp_path)
    for n in range(5):
        j.write(armed(f"W{n}@1"))
    j.close()
    with (j.dir / "events.jsonl").open("ab") as f:
        f.write(b'{"wall":"2026-03-09T09:30:02-04:00","event":"Watcher')  # still being written
    assert main(["tail", "--var", str(tmp_path), "-n", "2"]) == 0
    assert [line.split(" ", 4)[4] for line in capsys.readouterr().out.splitlines()] == [
        "W3@1: armed, level 190.00", "W4@1: armed, level 190.00"]


def test_the_newest_day_is_the_default_and_day_picks_another(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = journal(tmp_path, DAY)
    old.write(armed("OLD@1"))
    old.close()
    new = journal(tmp_path, DAY + dt.timedelta(days=1))
    new.write(armed("NEW@1"))
    new.close()
    main(["tail", "--var", str(tmp_path)])
    assert "NEW@1" in capsys.readouterr().out
    main(["tail", "--var", str(tmp_path), "--day", DAY.isoformat()])
    assert "OLD@1" in capsys.readouterr().out


def test_an_unknown_event_is_shown_raw_and_no_journal_is_an_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tail", "--var", str(tmp_path)]) == 1
    assert "no events journal" in capsys.readouterr().err
    j = journal(tmp_path)
    j.record("events", event="FromTheFuture", at=1, novelty=True)
    j.close()
    assert main(["tail", "--var", str(tmp_path)]) == 0
    assert 'FromTheFuture: {"wall"' in capsys.readouterr().out


class Follow:
    """``tail --follow`` in a thread, stopped at the end of the test."""

    def __init__(self, var: Path) -> None:
        self.out = io.StringIO()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=tail, args=(var,), kwargs=dict(
            day=None, n=10, follow=True, out=self.out, poll=0.01,
            running=lambda: not self._stop.is_set()))
        self._thread.start()

    def lines(self) -> list[str]:
        return [line.split(" ", 4)[4] for line in self.out.getvalue().splitlines()]

    def wait(self, predicate: Callable[[list[str]], bool]) -> None:
        deadline = time.monotonic() + 10  # a bound on a hang, not a timing assertion
        while not predicate(self.lines()):
            assert time.monotonic() < deadline, f"tail printed {self.lines()}"
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


LOST = (b'{"wall":"' + WALL.encode() + b'","mono_ns":1,"event":"ConnectionLost",'
        b'"at":5,"reason":"socket closed"}\n')


def test_a_torn_last_line_waits_until_it_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(LOST[:30])
    reader = LineReader(path)
    assert reader.read() == []
    with path.open("ab") as f:
        f.write(LOST[30:] + LOST[:10])
    assert reader.read() == [LOST[:-1]]
    with path.open("ab") as f:
        f.write(LOST[10:])
    assert reader.read() == [LOST[:-1]]
    assert reader.read() == []


def test_follow_prints_appended_lines_and_moves_to_the_next_day(tmp_path: Path) -> None:
    j = journal(tmp_path)
    j.write(armed("A@1"))
    follow = Follow(tmp_path)
    try:
        follow.wait(lambda lines: lines == ["A@1: armed, level 190.00"])
        j.write(armed("B@1"))
        follow.wait(lambda lines: lines[-1:] == ["B@1: armed, level 190.00"])
        with (j.dir / "events.jsonl").open("ab", buffering=0) as f:
            f.write(LOST[:30])  # printed once whole, however the polls fall
            f.write(LOST[30:])
        follow.wait(lambda lines: lines[-1:] == ["DISCONNECTED: socket closed"])
        j.close()
        tomorrow = journal(tmp_path, DAY + dt.timedelta(days=1))
        tomorrow.write(armed("C@1"))
        follow.wait(lambda lines: lines[-1:] == ["C@1: armed, level 190.00"])
        tomorrow.close()
    finally:
        follow.stop()
    assert follow.lines() == ["A@1: armed, level 190.00", "B@1: armed, level 190.00",
                              "DISCONNECTED: socket closed", "C@1: armed, level 190.00"]
