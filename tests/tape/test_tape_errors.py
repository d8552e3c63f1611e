"""Malformed tapes are refused with ``path:line: column: what is wrong``."""

from __future__ import annotations

import pytest

from breakoutd.tape import TapeError, read_tape
from breakoutd.tape.locate import locate_parse_error
from breakoutd.tape.model import COLUMNS, HEADER

GOOD = dict(zip(COLUMNS, "2013-10-07T09:30:00-04:00,BAC,13.94,13.95,13.93,13.94,500,"
                         "13.93,700,13.95,20000".split(","), strict=True))


def row(second: int = 0, **fields: str) -> str:
    """A valid row at 09:30:<second>, with some fields replaced."""
    values = {**GOOD, "time": f"2013-10-07T09:30:{second:02d}-04:00", **fields}
    return ",".join(values[c] for c in COLUMNS)


def no_trade(second: int = 0, **fields: str) -> str:
    """A valid quote-only row, with some fields replaced."""
    empty = dict.fromkeys(("open", "high", "low", "close", "volume"), "")
    return row(second, **{**empty, **fields})


# (data lines, bad line number, column, words the message must contain)
CASES = {
    "wrong column count": ([row(0), row(1) + ",7"], 3, "row", "has 12 fields, expected 11"),
    "too few columns": ([row(0), "2013-10-07T09:30:01-04:00,BAC,13.94"], 3, "row", "has 3 fields"),
    "blank line": ([row(0), "", row(1)], 3, "row", "blank line"),
    "unparsable time": ([row(0), row(1, time="yesterday")], 3, "time", "'yesterday' is not an ISO"),
    "invalid date": ([row(0, time="2013-02-30T09:30:00-05:00")], 2, "time", "not a valid time"),
    "time without offset": ([row(0), row(1, time="2013-10-07T09:30:01")], 3, "time",
                            "has no UTC offset"),
    "fractional seconds": ([row(0, time="2013-10-07T09:30:00.500-04:00")], 2, "time",
                           "fractional seconds"),
    "missing time": ([row(0), row(1, time="")], 3, "time", "missing"),
    "rows not sorted": ([row(5), row(6), row(2)], 4, "time",
                        "2013-10-07T09:30:02-04:00 is before the previous row's "
                        "2013-10-07T09:30:06-04:00"),
    "duplicate symbol and time": ([row(0), row(1), no_trade(1)], 4, "time",
                                  "second row for BAC at 2013-10-07T09:30:01-04:00 "
                                  "(the first is line 3)"),
    "lower-case symbol": ([row(0), row(1, symbol="bac")], 3, "symbol",
                          "'bac' is not an upper-case ticker"),
    "malformed symbol": ([row(0, symbol="BA C")], 2, "symbol", "'BA C' is not an upper-case"),
    "missing symbol": ([row(0), row(1, symbol="")], 3, "symbol", "missing"),
    "partial OHLC": ([row(0), row(1, low="")], 3, "low", "missing while open, high, close given"),
    "only a close": ([no_trade(0, close="13.94")], 2, "open", "missing while close given"),
    "high below low": ([row(0, high="13.92")], 2, "high", "13.92 is below low 13.93"),
    "open above high": ([row(0), row(1, open="13.96")], 3, "open",
                        "13.96 is outside the bar's low..high 13.93..13.95"),
    "close below low": ([row(0, close="13.90")], 2, "close", "13.90 is outside"),
    "negative volume": ([row(0), row(1, volume="-100")], 3, "volume", "-100 is negative"),
    "volume without prices": ([no_trade(0, volume="100")], 2, "volume",
                              "given without trade prices"),
    "prices without volume": ([row(0, volume="")], 2, "volume", "missing while trade prices"),
    "fractional volume": ([row(0, volume="100.5")], 2, "volume", "'100.5' is not a whole number"),
    "non-numeric price": ([row(0), row(1, high="13.9x")], 3, "high", "'13.9x' is not a number"),
    "non-numeric size": ([row(0, ask_size="lots")], 2, "ask_size", "'lots' is not a whole"),
    "nan price": ([row(0, bid="nan")], 2, "bid", "not a finite number"),
    "zero price": ([row(0), row(1, bid="0")], 3, "bid", "not a positive price"),
    "negative price": ([no_trade(0, ask="-13.95")], 2, "ask", "not a positive price"),
    "price of a million": ([no_trade(0, ask="1000000")], 2, "ask", "is not below 1,000,000"),
    "seven decimals": ([row(0), row(1, open="13.9400001")], 3, "open",
                       "13.9400001 has more than 6 decimal places"),
    "many decimals": ([row(0, close="13.940000000000001")], 2, "close", "more than 6 decimal"),
    "bid without size": ([row(0), row(1, bid_size="")], 3, "bid_size", "missing while bid is given"),
    "ask size without ask": ([row(0, ask="")], 2, "ask", "missing while ask_size is given"),
    "negative bid size": ([row(0, bid_size="-700")], 2, "bid_size", "-700 is negative"),
}


@pytest.mark.parametrize("lines, line, column, words", CASES.values(), ids=CASES.keys())
def test_malformed_row_names_line_and_column(make_tape, lines, line, column, words):
    path = make_tape(*lines)
    with pytest.raises(TapeError) as err:
        read_tape(path)
    assert (err.value.path, err.value.line, err.value.column) == (str(path), line, column)
    assert str(err.value).startswith(f"{path}:{line}: {column}: ")
    assert words in err.value.reason


@pytest.mark.parametrize("lines", [list(c[0]) for c in CASES.values()], ids=CASES.keys())
def test_gzip_reports_the_same_error(make_tape, lines):
    with pytest.raises(TapeError) as plain:
        read_tape(make_tape(*lines))
    with pytest.raises(TapeError) as zipped:
        read_tape(make_tape(*lines, name="tape.csv.gz"))
    assert (zipped.value.line, zipped.value.column, zipped.value.reason) == (
        plain.value.line, plain.value.column, plain.value.reason)


def test_the_earliest_bad_row_is_reported_whatever_the_check(make_tape):
    lines = [row(0), row(1), row(2, high="13.92"), row(3, symbol="bac"), row(3)]
    with pytest.raises(TapeError) as err:
        read_tape(make_tape(*lines))
    assert (err.value.line, err.value.column) == (4, "high")


def test_an_unreadable_field_far_into_a_big_file_is_located(make_tape):
    lines = [no_trade(s % 60, symbol=f"S{s // 60:03d}") for s in range(6000)]
    lines.sort()
    lines[4321] = lines[4321].replace("13.95", "13,95", 1)
    with pytest.raises(TapeError) as err:
        read_tape(make_tape(*lines))
    assert (err.value.line, err.value.column) == (4323, "row")


@pytest.mark.parametrize("header, words", [
    (None, "found '2013-10-07T09:30:00-04:00,BAC,"),
    (HEADER.replace("bid_size", "bidsize"), "expected 'time,symbol,open"),
    (HEADER.replace(",ask_size", ""), "found 'time,symbol,open,high,low,close,volume,bid,bid_size,ask'"),
    ("", "found an empty line"),
])
def test_wrong_or_missing_header_is_line_1(make_tape, header, words):
    path = make_tape(row(0), header=header)
    with pytest.raises(TapeError) as err:
        read_tape(path)
    assert (err.value.line, err.value.column) == (1, "header")
    assert words in err.value.reason


def test_empty_file_is_refused_for_its_missing_header(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(TapeError, match=r"empty.csv:1: header: expected .* found an empty line"):
        read_tape(path)


def test_corrupt_gzip_is_refused(tmp_path):
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00not really gzip at all")
    with pytest.raises(TapeError, match=r"bad.csv.gz: gzip: not a readable gzip file"):
        read_tape(path)


def test_a_line_only_the_fast_parser_refuses_is_found_by_bisection():
    lines = [row(s) for s in range(50)]
    lines[37] = lines[37].replace(",BAC,", ",XBAC,")  # every field reads, one parse fails
    body = "".join(f"{line}\n" for line in lines).encode()
    err = locate_parse_error(body, "t.csv", lambda prefix: b"XBAC" not in prefix, "boom")
    assert str(err) == "t.csv:39: row: unreadable: boom"
