"""Reading tape v1: values, presence, symbols, times, merging files."""

from __future__ import annotations

import datetime as dt
import gzip

import numpy as np
import pytest

from breakoutd.core.bars import NS
from breakoutd.tape import (
    TapeError,
    TapeRow,
    iter_rows,
    parse_tape,
    read_tape,
    read_tapes,
    tape_from_rows,
)
from breakoutd.tape.model import HEADER

BAC_0930 = "2013-10-07T09:30:00-04:00,BAC,13.94,13.95,13.93,13.94,500,13.93,700,13.95,20000"
BAC_0931_QUOTE = "2013-10-07T09:31:00-04:00,BAC,,,,,,13.94,800,13.96,100"
SPY_0930 = "2013-10-07T09:30:00-04:00,SPY,167.41,167.41,167.4,167.4,2049,167.27,100,167.41,600"
T0930 = int(dt.datetime(2013, 10, 7, 13, 30, tzinfo=dt.UTC).timestamp()) * NS


def test_a_trade_and_quote_row_is_decoded_exactly(make_tape):
    tape = read_tape(make_tape(BAC_0930))
    bac = tape.symbols["BAC"]
    assert bac.row(0) == TapeRow(T0930, "BAC", 13_940_000, 13_950_000, 13_930_000, 13_940_000,
                                 500, 13_930_000, 700, 13_950_000, 20_000)
    assert tape.rows == len(bac) == 1
    assert tape.sources == (str(make_tape(BAC_0930)),)


def test_a_quote_only_row_has_no_trade(make_tape):
    bac = read_tape(make_tape(BAC_0930, BAC_0931_QUOTE)).symbols["BAC"]
    assert bac.has_trade.tolist() == [True, False]
    assert bac.row(1).open is None and bac.row(1).volume is None
    assert (bac.open[1], bac.volume[1]) == (0, 0)
    assert bac.bid[1] == 13_940_000 and bac.ask_size[1] == 100


def test_rows_before_the_first_quote_have_no_quote(make_tape):
    line = "2013-10-08T04:00:00-04:00,NOQI,179.00,179.00,179.00,179.00,200,,,,"
    noqi = read_tape(make_tape(line)).symbols["NOQI"]
    assert not noqi.has_bid[0] and not noqi.has_ask[0]
    assert noqi.row(0).bid is None and noqi.row(0).ask_size is None
    assert noqi.close[0] == 179_000_000


def test_arrays_are_typed_and_read_only(make_tape):
    bac = read_tape(make_tape(BAC_0930, BAC_0931_QUOTE)).symbols["BAC"]
    assert bac.time.dtype == np.int64 and bac.close.dtype == np.int64
    assert bac.has_trade.dtype == np.bool_
    with pytest.raises(ValueError):
        bac.close[0] = 1


def test_multi_symbol_file_is_split_per_symbol_in_time_order(make_tape):
    path = make_tape(SPY_0930, BAC_0930, BAC_0931_QUOTE,
                     "2013-10-07T09:31:00-04:00,SPY,,,,,,167.3,100,167.32,1000")
    tape = read_tape(path)
    assert list(tape.symbols) == ["BAC", "SPY"]
    assert tape.rows == 4
    assert tape.symbols["SPY"].time.tolist() == [T0930, T0930 + 60 * NS]
    assert tape.symbols["SPY"].low[0] == 167_400_000
    assert tape.symbols["BAC"].has_trade.tolist() == [True, False]


def test_any_utc_offset_gives_the_same_instant(make_tape):
    variants = ["2013-10-07T09:30:00-04:00", "2013-10-07T13:30:00Z",
                "2013-10-07T13:30:00+00:00", "2013-10-07T15:30:00+02:00"]
    for k, when in enumerate(variants):
        line = f"{when},BAC,,,,,,13.93,700,13.95,20000"
        bac = read_tape(make_tape(line, name=f"t{k}.csv")).symbols["BAC"]
        assert bac.time[0] == T0930, when


def test_dates_are_exchange_dates_not_utc_dates(make_tape):
    # 22:30 in New York is already the next day in UTC.
    late = "2013-10-07T22:30:00-04:00,BAC,,,,,,13.93,700,13.95,20000"
    nextday = "2013-10-08T04:00:00-04:00,SPY,,,,,,167.27,100,167.41,600"
    tape = read_tape(make_tape(late, nextday))
    assert tape.symbols["BAC"].dates() == [dt.date(2013, 10, 7)]
    assert tape.dates() == [dt.date(2013, 10, 7), dt.date(2013, 10, 8)]


def test_header_only_file_is_an_empty_tape(make_tape):
    tape = read_tape(make_tape())
    assert tape.rows == 0 and tape.symbols == {} and tape.dates() == []
    assert list(iter_rows(tape)) == []
    assert parse_tape(HEADER.encode()).rows == 0  # no newline after the header


def test_gzip_and_plain_read_the_same(make_tape):
    lines = (SPY_0930, BAC_0930, BAC_0931_QUOTE)
    plain = read_tape(make_tape(*lines))
    zipped = read_tape(make_tape(*lines, name="tape.csv.gz"))
    assert zipped.symbols == plain.symbols


def test_multi_member_gzip_is_read_whole(tmp_path):
    # What appending to a .gz file produces: two gzip members back to back.
    path = tmp_path / "appended.csv.gz"
    path.write_bytes(gzip.compress(f"{HEADER}\n{BAC_0930}\n".encode())
                     + gzip.compress(f"{BAC_0931_QUOTE}\n".encode()))
    assert read_tape(path).rows == 2


def test_crlf_line_ends_and_a_byte_order_mark_are_accepted():
    text = f"\ufeff{HEADER}\r\n{BAC_0930}\r\n{BAC_0931_QUOTE}\r\n".encode()
    assert parse_tape(text).symbols["BAC"].ask_size.tolist() == [20000, 100]


def test_iter_rows_interleaves_symbols_by_time_then_symbol(make_tape):
    path = make_tape(SPY_0930, BAC_0930, BAC_0931_QUOTE,
                     "2013-10-07T09:31:00-04:00,AAPL,,,,,,480.1,100,480.2,100")
    rows = list(iter_rows(read_tape(path)))
    assert [(r.time - T0930) // NS for r in rows] == [0, 0, 60, 60]
    assert [r.symbol for r in rows] == ["BAC", "SPY", "AAPL", "BAC"]
    assert rows[2].open is None and rows[2].bid == 480_100_000


def test_tape_from_rows_builds_the_same_tape_as_reading(make_tape):
    path = make_tape(SPY_0930, BAC_0930, BAC_0931_QUOTE)
    tape = read_tape(path)
    assert tape_from_rows(iter_rows(tape)).symbols == tape.symbols


def test_read_tapes_merges_a_symbol_across_files_by_time(make_tape):
    first = make_tape(BAC_0931_QUOTE, name="b.csv")
    second = make_tape(SPY_0930, BAC_0930, name="a.csv.gz")
    tape = read_tapes([first, second])
    assert tape.sources == (str(first), str(second))
    assert tape.rows == 3
    assert tape.symbols["BAC"].time.tolist() == [T0930, T0930 + 60 * NS]
    assert tape.symbols["BAC"].has_trade.tolist() == [True, False]
    assert list(tape.symbols) == ["BAC", "SPY"]


def test_read_tapes_refuses_the_same_symbol_and_second_in_two_files(make_tape):
    first = make_tape(BAC_0930, BAC_0931_QUOTE, name="one.csv")
    second = make_tape(SPY_0930, BAC_0931_QUOTE.replace("13.94,800", "13.94,900"), name="two.csv")
    with pytest.raises(TapeError) as err:
        read_tapes([first, second])
    assert str(err.value) == (f"{second}:3: time: second row for BAC at "
                              f"2013-10-07T09:31:00-04:00 (the first is {first}:3)")
    assert (err.value.path, err.value.line, err.value.column) == (str(second), 3, "time")


def test_read_tapes_of_nothing_is_empty():
    assert read_tapes([]).rows == 0


def test_threaded_read_gives_the_same_tape(make_tape):
    lines = (SPY_0930, BAC_0930, BAC_0931_QUOTE)
    assert read_tape(make_tape(*lines), use_threads=True).symbols == read_tape(
        make_tape(*lines)).symbols


def test_a_missing_file_raises_the_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_tape(tmp_path / "nope.csv")
