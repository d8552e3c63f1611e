"""The recorded tapes beside the checkout read exactly (skipped when absent)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path

import pytest

from breakoutd.core.bars import NS
from breakoutd.core.prices import to_micros
from breakoutd.tape import TapeRow, iter_rows, read_tape, read_tapes, write_tape

pytestmark = pytest.mark.realdata

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def shared_tapes(folder: str) -> list[Path]:
    """The recorded tapes in ../shared/data/<folder>, or [] when absent."""
    directory = SHARED_DATA / folder
    return sorted(directory.glob("*.csv.gz")) if directory.is_dir() else []


TAPES = shared_tapes("tapes")
HOLDOUT = shared_tapes("holdout")


def reference_rows(path: Path) -> list[TapeRow]:
    """Rows decoded the slow, obvious way: csv, fromisoformat, Decimal."""
    with gzip.open(path, "rt", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        return [_reference_row(fields) for fields in reader]


def _reference_row(f: list[str]) -> TapeRow:
    def price(text: str) -> int | None:
        return to_micros(text) if text else None

    def whole(text: str) -> int | None:
        return int(text) if text else None

    when = int(dt.datetime.fromisoformat(f[0]).timestamp()) * NS
    return TapeRow(when, f[1], price(f[2]), price(f[3]), price(f[4]), price(f[5]), whole(f[6]),
                   price(f[7]), whole(f[8]), price(f[9]), whole(f[10]))


def skip_unless(paths: list[Path]) -> None:
    if not paths:
        pytest.skip("../shared/data is not beside the checkout")


@pytest.mark.parametrize("name", [p.name for p in TAPES] or ["absent"])
def test_every_row_of_a_recorded_tape_is_decoded_exactly(name):
    skip_unless(TAPES)
    path = next(p for p in TAPES if p.name == name)
    expected = reference_rows(path)
    tape = read_tape(path)
    assert tape.rows == len(expected)
    assert list(tape.symbols) == [name.split("_")[0]]
    assert list(iter_rows(tape)) == expected


@pytest.mark.parametrize("name", [p.name for p in HOLDOUT] or ["absent"])
def test_holdout_tapes_read_with_the_right_rows_and_ends(name):
    skip_unless(HOLDOUT)
    path = next(p for p in HOLDOUT if p.name == name)
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()[1:]
    first, last = (_reference_row(line.split(",")) for line in (lines[0], lines[-1]))
    tape = read_tape(path)
    sym = tape.symbols[name.split("_")[0]]
    assert len(sym) == len(lines)
    assert (sym.row(0), sym.row(len(sym) - 1)) == (first, last)
    day = dt.datetime.strptime(name.split("_")[1][:8], "%Y%m%d").date()
    assert tape.dates() == [day]


def test_first_and_last_rows_of_bac_and_spy_by_hand():
    skip_unless(TAPES)
    bac = read_tape(next(p for p in TAPES if p.name == "BAC_20131007.csv.gz")).symbols["BAC"]
    at_4 = int(dt.datetime(2013, 10, 7, 8, 0, tzinfo=dt.UTC).timestamp()) * NS
    assert bac.row(0) == TapeRow(at_4, "BAC", 13_940_000, 13_940_000, 13_940_000, 13_940_000,
                                 500, 13_840_000, 700, 13_950_000, 20_000)
    assert bac.row(len(bac) - 1) == TapeRow(at_4 + 16 * 3600 * NS, "BAC", None, None, None, None,
                                            None, 13_800_000, 8000, 13_860_000, 18000)


def test_merging_three_days_of_two_symbols():
    skip_unless(TAPES)
    tape = read_tapes(TAPES)
    assert list(tape.symbols) == ["BAC", "SPY"]
    assert tape.rows == sum(read_tape(p).rows for p in TAPES)
    assert tape.dates() == [dt.date(2013, 10, 7), dt.date(2013, 10, 8), dt.date(2013, 10, 9)]
    for sym in tape.symbols.values():
        assert (sym.time[1:] > sym.time[:-1]).all()


def test_gzip_and_plain_copies_of_a_recorded_tape_read_the_same(tmp_path):
    skip_unless(TAPES)
    source = TAPES[0]
    plain = tmp_path / source.name.removesuffix(".gz")
    plain.write_bytes(gzip.decompress(source.read_bytes()))
    assert read_tape(plain).symbols == read_tape(source).symbols


def test_recorded_tapes_survive_a_write_and_read(tmp_path):
    skip_unless(TAPES)
    tape = read_tapes(TAPES)
    out = tmp_path / "all.csv"
    write_tape(out, tape)
    assert read_tape(out).symbols == tape.symbols
