"""Writing then reading a tape gives it back unchanged (property tests)."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from breakoutd.core.bars import NS
from breakoutd.tape import (
    Tape,
    TapeRow,
    format_tape,
    parse_tape,
    read_tape,
    tape_from_rows,
    write_tape,
)

SETTINGS = settings(derandomize=True, database=None, max_examples=60, deadline=None)
# Two days around the 2013 switch to daylight time, so both offsets occur.
START = int(dt.datetime(2013, 3, 9, 4, 0, tzinfo=dt.UTC).timestamp())
SPAN = 3 * 86400
PRICE = st.integers(1, 10**12 - 1)  # any micro price below $1,000,000
SIZE = st.integers(0, 10**9)
PRICE_TEXT = re.compile(r"\d+\.\d{2}(\d{0,4}[1-9])?")


@st.composite
def rows_of(draw: st.DrawFn, symbol: str) -> list[TapeRow]:
    seconds = draw(st.lists(st.integers(0, SPAN), min_size=1, max_size=15, unique=True))
    rows = []
    for second in sorted(seconds):
        trade = draw(st.none() | st.lists(PRICE, min_size=4, max_size=4).map(sorted))
        bid = draw(st.none() | st.tuples(PRICE, SIZE))
        ask = draw(st.none() | st.tuples(PRICE, SIZE))
        if trade is None and bid is None and ask is None:
            bid = (1, 0)
        low, mid1, mid2, high = trade or (None,) * 4
        open_, close = (mid1, mid2) if draw(st.booleans()) else (mid2, mid1)
        rows.append(TapeRow((START + second) * NS, symbol, open_, high, low, close,
                            None if trade is None else draw(SIZE),
                            bid and bid[0], bid and bid[1], ask and ask[0], ask and ask[1]))
    return rows


@st.composite
def tapes(draw: st.DrawFn) -> Tape:
    symbols = draw(st.sets(st.sampled_from(["A", "BAC", "BRK.B", "SPY", "X2"]), min_size=1,
                           max_size=3))
    return tape_from_rows([row for sym in sorted(symbols) for row in draw(rows_of(sym))])


@SETTINGS
@given(tapes())
def test_format_then_parse_gives_the_tape_back(tape):
    assert parse_tape(format_tape(tape)).symbols == tape.symbols


@SETTINGS
@given(tapes())
def test_written_text_is_sorted_and_plain(tape):
    lines = format_tape(tape).decode().splitlines()[1:]
    assert len(lines) == tape.rows
    keys = [(dt.datetime.fromisoformat(line.split(",")[0]), line.split(",")[1]) for line in lines]
    assert keys == sorted(keys)
    for line in lines:
        fields = line.split(",")
        assert fields[0][-6:] in ("-05:00", "-04:00")  # exchange time
        for text in (fields[k] for k in (2, 3, 4, 5, 7, 9)):
            assert text == "" or PRICE_TEXT.fullmatch(text), text


@settings(derandomize=True, database=None, max_examples=15, deadline=None)
@given(tapes())
def test_write_then_read_files_plain_and_gzip(tape):
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("t.csv", "t.csv.gz"):
            path = Path(tmp) / name
            write_tape(path, tape)
            assert read_tape(path).symbols == tape.symbols


def test_prices_are_written_with_minimal_decimals_but_at_least_two():
    rows = [TapeRow(START * NS, "BAC", None, None, None, None, None, 13_940_000, 100,
                    456_700, 200),
            TapeRow(START * NS + NS, "BAC", 190_000_000, 190_000_000, 190_000_000, 190_000_000,
                    5, 123_456_789, 1, 100, 3)]
    text = format_tape(tape_from_rows(rows)).decode().splitlines()
    assert text[1:] == ["2013-03-08T23:00:00-05:00,BAC,,,,,,13.94,100,0.4567,200",
                        "2013-03-08T23:00:01-05:00,BAC,190.00,190.00,190.00,190.00,5,"
                        "123.456789,1,0.0001,3"]


def test_gzip_output_is_the_same_bytes_every_time(tmp_path):
    rows = [TapeRow(START * NS, "BAC", None, None, None, None, None, 13_940_000, 100, 13_950_000, 1)]
    tape = tape_from_rows(rows)
    write_tape(tmp_path / "a.csv.gz", tape)
    write_tape(tmp_path / "b.csv.gz", tape)
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()
