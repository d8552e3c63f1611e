"""Prices read as doubles convert to micro-dollars exactly, and only then.

The argument is in ``decimal_floats_to_micros``; these tests check it
exhaustively on the grids that matter (every sub-dollar micro price, every
cent price below $10,000, the top of the range) and on random samples, and
check that the CSV parser really returns the nearest double of the text.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from breakoutd.core.bars import NS
from breakoutd.core.prices import to_micros
from breakoutd.tape import TapeError, iter_rows, parse_tape
from breakoutd.tape.checks import decimal_floats_to_micros
from breakoutd.tape.model import EXCHANGE_TZ, HEADER

LIMIT = 10**12  # $1,000,000 in micros: the exactness bound


def assert_round_trip(n: np.ndarray) -> None:
    """n / 1e6 is the double nearest the decimal text of n micros (one correctly
    rounded division), i.e. what a correct parser returns for that text."""
    micros, exact = decimal_floats_to_micros(n / 1e6)
    assert exact.all()
    assert np.array_equal(micros.astype(np.int64), n)


def test_every_sub_dollar_micro_price_is_exact():
    assert_round_trip(np.arange(1, 1_000_001, dtype=np.int64))


def test_every_cent_price_below_ten_thousand_dollars_is_exact():
    assert_round_trip(np.arange(1, 1_000_001, dtype=np.int64) * 10_000)


def test_the_top_million_micro_prices_below_a_million_dollars_are_exact():
    # The error bound grows with the price: the top of the range is the worst.
    assert_round_trip(np.arange(LIMIT - 1_000_000, LIMIT, dtype=np.int64))


def test_random_six_decimal_prices_are_exact():
    rng = np.random.default_rng(20131007)
    uniform = rng.integers(1, LIMIT, size=1_000_000)
    log_uniform = np.exp(rng.uniform(0, np.log(LIMIT), size=1_000_000)).astype(np.int64)
    assert_round_trip(np.concatenate([uniform, np.maximum(log_uniform, 1)]))


def test_seven_decimal_prices_are_never_taken_for_six():
    rng = np.random.default_rng(7)
    tenths = rng.integers(1, LIMIT * 10, size=1_000_000)
    tenths = tenths[tenths % 10 != 0]  # a non-zero seventh decimal
    _, exact = decimal_floats_to_micros(tenths / 1e7)
    assert not exact.any()


def test_division_gives_the_same_double_as_parsing_the_text():
    rng = np.random.default_rng(3)
    for n in rng.integers(1, LIMIT, size=20_000).tolist():
        assert float(f"{n // 10**6}.{n % 10**6:06d}") == n / 1e6


def test_the_reader_converts_written_decimals_exactly():
    rng = np.random.default_rng(11)
    expected, lines = {}, []
    for k in range(20_000):
        decimals = int(rng.integers(0, 7))
        whole = int(rng.integers(0 if decimals else 1, 10 ** int(rng.integers(1, 7))))
        frac = int(rng.integers(1, 10**decimals)) if decimals else 0
        text = f"{whole}.{frac:0{decimals}d}" if decimals else str(whole)
        when = dt.datetime(2013, 10, 7, 9, 30, tzinfo=EXCHANGE_TZ) + dt.timedelta(seconds=k // 10)
        symbol = f"S{k % 10}"
        lines.append(f"{when.isoformat()},{symbol},,,,,,{text},100,{text},100")
        expected[(symbol, int(when.timestamp()) * NS)] = to_micros(text)
    tape = parse_tape(f"{HEADER}\n{chr(10).join(lines)}\n".encode(), "exact.csv")
    assert {(r.symbol, r.time): r.bid for r in iter_rows(tape)} == expected
    assert {(r.symbol, r.time): r.ask for r in iter_rows(tape)} == expected


def test_the_reader_refuses_a_seventh_decimal_anywhere_in_range():
    for text in ("0.0000001", "0.1234567", "13.9400001", "999999.9999991"):
        line = f"2013-10-07T09:30:00-04:00,BAC,,,,,,{text},100,13.95,100"
        try:
            parse_tape(f"{HEADER}\n{line}\n".encode(), "x.csv")
        except TapeError as err:
            assert err.column == "bid" and "more than 6 decimal places" in err.reason
        else:
            raise AssertionError(f"{text} was accepted")
