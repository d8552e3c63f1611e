"""The compiled reader and the general (arrow) reader agree on every file.

The compiled one-pass reader takes canonical files; it must never accept a
file the general reader refuses, nor read a different tape from it.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from breakoutd.tape import TapeError, format_tape, synthetic_tape
from breakoutd.tape import reader as tape_reader
from breakoutd.tape.compiled import _time, parse_canonical
from breakoutd.tape.source import body_start
from breakoutd.tape.times import epoch_seconds

SHARED_TAPES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tapes"


def both_paths(text: bytes) -> tuple[object, object, bool]:
    """(what the reader gives, what the general reader gives, whether the compiled one read it);
    each a dict of symbols or the TapeError raised."""
    def outcome(read):
        try:
            return read().symbols
        except TapeError as err:
            return str(err)

    view = memoryview(text)
    try:
        body = view[body_start(view, "t.csv"):]
    except TapeError:
        body = view[:0]  # both refuse the header
    compiled = len(body) > 0 and parse_canonical(body) is not None
    return (outcome(lambda: tape_reader._parse(view, "t.csv", False)),
            outcome(lambda: tape_reader._parse_general(body, "t.csv", False)), compiled)


def small_tape_text(seed: int) -> bytes:
    day = dt.date(2024, 3, 5)
    tape = synthetic_tape(seed, ["A", "BRK.B", "Z9"], day, start=dt.time(9, 30),
                          end=dt.time(9, 31), density=0.6)
    return format_tape(tape)


def test_a_synthetic_multi_symbol_day_reads_the_same_both_ways():
    text = format_tape(synthetic_tape(5, ["SPY", "BAC", "AAPL"], dt.date(2024, 3, 5),
                                      density=0.05))
    got, general, compiled = both_paths(text)
    assert compiled and isinstance(got, dict) and got == general
    assert sum(len(s) for s in got.values()) > 1000


def test_crlf_line_ends_read_the_same_both_ways():
    text = small_tape_text(1).replace(b"\n", b"\r\n").replace(b"\r\n", b"\n", 1)
    got, general, compiled = both_paths(text)
    assert compiled and isinstance(got, dict) and got == general


@pytest.mark.realdata
def test_recorded_tapes_take_the_compiled_path_and_read_the_same():
    tapes = sorted(SHARED_TAPES.glob("*.csv.gz")) if SHARED_TAPES.is_dir() else []
    if not tapes:
        pytest.skip("../shared/data is not beside the checkout")
    for path in tapes[:2]:
        got, general, compiled = both_paths(tape_reader.load(path).tobytes())
        assert compiled and isinstance(got, dict) and got == general, path.name


MUTATION_BYTES = b",.-+:0123456789TZ \r\nAa"


def mutate(text: bytes, rng: random.Random) -> bytes:
    """One random edit of the data lines: a byte replaced, removed or inserted,
    or a line repeated or moved."""
    head, _, body = text.partition(b"\n")
    kind = rng.randrange(5)
    if kind < 3:
        at = rng.randrange(len(body) - 1)
        new = bytes([rng.choice(MUTATION_BYTES)])
        body = body[:at] + (new, b"", new + body[at:at + 1])[kind] + body[at + 1:]
    else:
        lines = body.split(b"\n")[:-1]
        line = lines.pop(rng.randrange(len(lines)))
        lines.insert(rng.randrange(len(lines) + 1), line)
        if kind == 3:
            lines.insert(rng.randrange(len(lines) + 1), line)
        body = b"\n".join(lines) + b"\n"
    return head + b"\n" + body


def test_the_compiled_reader_accepts_nothing_the_general_one_refuses():
    rng = random.Random(20240305)
    texts = [small_tape_text(seed) for seed in range(3)]
    accepted = 0
    for k in range(1000):
        text = mutate(texts[k % 3], rng)
        got, general, compiled = both_paths(text)
        assert got == general, text
        accepted += compiled
    assert 0 < accepted < 1000  # both kinds of file were met


def arrow_seconds(texts: list[str]) -> list[int | None]:
    """Arrow's reading of each time text (None: refused)."""
    out = []
    for text in texts:
        try:
            out.append(pc.cast(pa.array([text]), pa.timestamp("s", tz="UTC"))
                       .cast(pa.int64())[0].as_py())
        except pa.ArrowInvalid:
            out.append(None)
    return out


def compiled_seconds(text: str) -> int | None:
    raw = np.frombuffer((text + ",").encode(), dtype=np.uint8)
    if len(raw) != 26:
        return None
    value = int(_time(raw, 0))
    return None if value == -1 else value


def time_grid() -> list[str]:
    texts = [f"2013-10-07T09:30:00{sign}{h:02d}:{m:02d}" for sign in "+-"
             for h in range(25) for m in (0, 1, 30, 59, 60)]
    for year in (1899, 1900, 1970, 2000, 2023, 2024, 2100, 2199, 2200):
        for month in range(0, 14):
            texts += [f"{year}-{month:02d}-{day:02d}T23:59:59-04:00" for day in (0, 1, 28, 29, 30, 31, 32)]
    texts += [f"2013-10-07T{h:02d}:{m:02d}:{s:02d}+00:00"
              for h in (0, 23, 24) for m in (0, 59, 60) for s in (0, 59, 60)]
    return texts


def test_the_compiled_time_parser_reads_what_arrow_reads_or_gives_up():
    texts = time_grid()
    expected = arrow_seconds(texts)
    taken = 0
    for text, want in zip(texts, expected, strict=True):
        got = compiled_seconds(text)
        if got is not None:
            assert got == want, text
            taken += 1
        elif want is not None and text[:4] not in ("1899", "2200"):
            raise AssertionError(f"{text} is valid but the compiled parser gave up")
    assert taken > 500


def test_the_vectorised_time_parser_agrees_with_arrow():
    rng = random.Random(7)
    texts = time_grid()
    texts += [f"2013-10-{d:02d}T09:30:00{o}" for d in range(1, 31) for o in ("Z", "-04:00", "+0100")]
    rng.shuffle(texts)
    texts += [""]
    arr = pa.array([t.encode() for t in texts], type=pa.binary())
    times = epoch_seconds(arr)
    expected = arrow_seconds(texts[:-1])
    assert times.empty is not None and times.empty.tolist() == [False] * (len(texts) - 1) + [True]
    first_bad = next(k for k, v in enumerate(expected) if v is None)
    assert times.unreadable == first_bad
    readable = [t for t, v in zip(texts, expected, strict=False) if v is not None]
    clean = epoch_seconds(pa.array([t.encode() for t in readable], type=pa.binary()))
    assert clean.unreadable is None and clean.empty is None
    assert clean.seconds.tolist() == [v for v in expected if v is not None]


def test_the_fast_checks_read_what_the_row_by_row_checks_read(monkeypatch):
    rng = random.Random(11)
    texts = [small_tape_text(seed) for seed in range(3)]
    mutated = [mutate(texts[k % 3], rng) for k in range(300)] + texts
    general = [both_paths(text)[1] for text in mutated]
    monkeypatch.setattr(tape_reader, "fast_columns", lambda table, times: None)
    slow = [both_paths(text)[1] for text in mutated]
    assert slow == general
    assert sum(isinstance(got, dict) for got in slow) > 3  # valid files were met
