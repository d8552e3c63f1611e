"""The tape recorder: quotes and prints become tape v1 rows, whole lines only."""

from __future__ import annotations

import gzip
from pathlib import Path

from breakoutd.core.bars import NS
from breakoutd.tape import iter_rows, read_tape
from breakoutd.tape.recorder import TAPE_NAME, DayTapeFile, SecondRows, TapeRecorder
from tests.daemon.daemonkit import at, px


def test_prints_make_the_second_and_the_quote_is_the_one_at_its_end() -> None:
    rows = SecondRows()
    s = at("09:30:00")
    rows.quote("AAA", s - NS // 2, px("9.99"), 100, px("10.01"), 200)  # in force from 09:29:59.5
    rows.prints("AAA", s, [(px("10.00"), 10), (px("10.05"), 5), (px("9.98"), 1),
                           (px("10.02"), 4)])
    rows.quote("AAA", s + NS, px("10.01"), 300, px("10.03"), 100)  # arrives as 09:30:00 ends
    rows.quote("BBB", s + NS // 4, px("5.00"), 1, px("5.02"), 2)
    # 09:29:59 is two seconds over; 09:30:00 is in its grace: a late print may still come.
    assert rows.due(s + 2 * NS) == ["2026-03-09T09:29:59-04:00,AAA,,,,,,9.99,100,10.01,200"]
    lines = rows.due(s + 3 * NS)
    assert lines == [
        "2026-03-09T09:30:00-04:00,AAA,10.00,10.05,9.98,10.02,20,10.01,300,10.03,100",
        "2026-03-09T09:30:00-04:00,BBB,,,,,,5.00,1,5.02,2",
    ]
    rows.prints("AAA", s, [(px("10.50"), 1)])  # its second is written: dropped, counted
    assert rows.late == 1 and rows.drain() == []


def test_a_quote_carried_forward_on_a_second_with_only_a_print() -> None:
    rows = SecondRows()
    s = at("09:30:00")
    rows.quote("AAA", s, px("9.99"), 100, px("10.01"), 200)
    rows.prints("AAA", s + 5 * NS, [(px("10.00"), 7)])
    assert rows.drain()[-1] == "2026-03-09T09:30:05-04:00,AAA,10.00,10.00,10.00,10.00,7,9.99,100,10.01,200"


def test_a_torn_last_member_is_cut_away_and_the_file_goes_on(tmp_path: Path) -> None:
    path = tmp_path / TAPE_NAME
    f = DayTapeFile(path)
    f.append(["2026-03-09T09:30:00-04:00,AAA,10.00,10.00,10.00,10.00,1,,,,"])
    whole = path.stat().st_size
    f.append(["2026-03-09T09:30:01-04:00,AAA,10.01,10.01,10.01,10.01,1,,,,"])
    with open(path, "r+b") as handle:  # killed in the middle of the second write
        handle.truncate(whole + 9)
    again = DayTapeFile(path)
    assert again.repaired == 9 and again.rows == 1
    assert again.last_time == "2026-03-09T09:30:00-04:00"
    again.append(["2026-03-09T09:30:02-04:00,AAA,10.02,10.02,10.02,10.02,3,,,,"])
    text = gzip.decompress(path.read_bytes()).decode()
    assert text.splitlines()[0].startswith("time,symbol,")
    assert [line[:25] for line in text.splitlines()[1:]] == [
        "2026-03-09T09:30:00-04:00", "2026-03-09T09:30:02-04:00"]
    tape = read_tape(path)  # several gzip members read as one tape
    assert [r.close for r in iter_rows(tape)] == [px("10.00"), px("10.02")]


def test_the_recorder_rotates_per_exchange_day_and_skips_what_a_restart_has(tmp_path: Path) -> None:
    now = [at("15:59:58")]
    rec = TapeRecorder(tmp_path, lambda: now[0])
    rec.on_prints("AAA", [(px("10.00"), 1)], at("15:59:58"))
    now[0] = at("16:00:10")
    rec.flush()
    again = TapeRecorder(tmp_path, lambda: now[0])  # a restart: the same second again
    again.on_prints("AAA", [(px("10.00"), 1)], at("15:59:58"))
    again.on_prints("AAA", [(px("10.01"), 2)], at("16:00:20"))
    again.close()
    day = tmp_path / "2026-03-09" / TAPE_NAME
    assert [r.close for r in iter_rows(read_tape(day))] == [px("10.00"), px("10.01")]
    nxt = TapeRecorder(tmp_path, lambda: now[0])
    nxt.on_prints("AAA", [(px("10.10"), 1)], at("09:30:00") + 24 * 3600 * NS)
    nxt.close()
    assert (tmp_path / "2026-03-10" / TAPE_NAME).exists()
